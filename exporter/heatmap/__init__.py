"""Liquidation heatmap: an open-interest model of where leveraged positions would be liquidated.

``params`` holds every assumption, ``model`` the per-coin state and its update, ``views`` what the
metrics show, ``book`` the per-coin collection with accuracy scoring. See docs/heatmap-model.md.
"""

from exporter.heatmap.book import Accuracy, HeatmapBook, HeatmapSnapshot
from exporter.heatmap.params import HeatmapParams

__all__ = ["Accuracy", "HeatmapBook", "HeatmapParams", "HeatmapSnapshot"]
