"""The one place for alert thresholds and the identities dashboards, rules and provisioning share.

Alerts (``rules.py``) and dashboard threshold lines (``liquidations.py``, ``exporter_health.py``)
read their numbers from ``THRESHOLDS``; change a value here, run ``python -m dashboards``, and the
rules, the dashboards and the promtool expectations in ``tests/promtool/`` that quote it must move
together (the promtool tests are hand-written on purpose, so a changed threshold is a visible diff).

Market thresholds were picked from ``tests/data/btc_liquidations_1h_usd_2025-11_2026-05.csv``
(4316 hourly BTC liquidation totals across all exchanges, 2025-11-23 .. 2026-05-22, from a public
aggregator). Statistics quoted below come from that file. Two things to keep in mind:

- By default the exporter sees three venues (Binance, Bybit, OKX), and Binance's stream is
  sampled (at most one order per symbol per second), so it sees less than the aggregator. USD
  floors below assume it sees about half, and are set to half of the aggregator-wide level they
  were derived from. With every venue enabled it sees more (Bitget is sampled too), so the floors
  are crossed somewhat more often; they were not re-derived for that (no per-venue history).
- The floors are calibrated on BTC. ETH liquidations run at a similar scale; smaller coins (SOL)
  cross the floors only in their largest events. Ratios are scale-free and apply to every coin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

JOB: Final = "cryptoliq"
"""Prometheus ``job`` of the exporter (``provisioning/prometheus/prometheus.yml``)."""

DATASOURCE_UID: Final = "cryptoliq-prometheus"
"""uid of the provisioned Prometheus datasource (``provisioning/grafana/datasources/``)."""

DATASOURCE_NAME: Final = "Prometheus"

TAG: Final = "cryptoliq"
"""Every dashboard carries this tag; the dashboards' link bar lists dashboards by it."""

FRAME_LIMIT: Final = "10 MiB"
"""ccxt's WebSocket client refuses larger frames (``max_msg_size``, fixed in ccxt); the exporter
counts each as a lost liquidation (``reason="frame_too_large"``)."""


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds and durations. Field docs say what the number means and why it is that."""

    cascade_ratio: float = 10.0
    """Last hour's liquidations (both sides) as a multiple of the hourly average of the past 24 h.

    In the data, this ratio has median 0.28, p95 4.9, p99 10.7; it reached 10 in 1.3 % of hours.
    Together with ``cascade_min_usd`` it fired in 21 episodes in 5.9 months (3.6 a month)."""

    cascade_min_usd: float = 15e6
    """Floor on last hour's liquidations for a cascade: $30M aggregator-wide (p99 of hourly totals
    is $27M, 1.9 % of hours exceed $20M), halved for the venues the exporter sees."""

    squeeze_ratio: float = 5.0
    """One side's last hour as a multiple of that side's hourly average of the past 24 h (p95 of
    the long-side ratio is 5.9, of the short side 5.7)."""

    squeeze_side_share: float = 0.8
    """Minimum share of last hour's liquidations on the squeezed side. Large hours are one-sided:
    in 3 of 4 of the 225 hours above $10M the dominant side had more than 92 % of the USD."""

    squeeze_min_usd: float = 10e6
    """Floor on the squeezed side's last hour: $20M aggregator-wide, halved. With the ratio and
    share above it fired 6.3 times a month for longs and 3.2 times for shorts in the data."""

    cluster_distance: float = 0.01
    """A cluster counts as near when its price is within this fraction of the mark price."""

    cluster_share: float = 0.075
    """A near cluster is large when its bin holds at least this share of all the USD on the coin's
    heatmap (both sides). Relative to the model's own total so that it does not depend on how the
    model is scaled or on the coin. With the default grid (242 bins per side) a uniform map puts
    0.2 % in a bin; in the demo the five largest bins per side held 4-9 % each and the largest of
    each coin 6.6-9 %, so 7.5 % means one of the very largest clusters on the map. Provisional:
    tune against a few weeks of live output."""

    stale_liquidations_seconds: int = 900
    """No frame at all on a liquidation stream for this long. Bybit and OKX answer an application
    ping every 18 s; Binance's pings are WebSocket control frames that are not counted, so a quiet
    Binance stream of a few symbols only shows data frames and can be silent for minutes."""

    stale_open_interest_seconds: int = 180
    """No open-interest poll answer for this long: 12 missed polls at the default 15 s interval
    (raise it if ``poll_interval_seconds`` is raised above a minute)."""

    cascade_for: str = "2m"
    squeeze_for: str = "2m"
    cluster_for: str = "5m"
    """Clusters move with the price; a cluster must stay near for 5 minutes to be worth a look."""
    feed_down_for: str = "5m"
    """The collectors retry with backoff capped at 60 s; 5 minutes is several failed retries."""
    stale_for: str = "2m"
    exporter_down_for: str = "2m"
    """Eight failed scrapes at the 15 s scrape interval."""
    lost_window: str = "10m"
    """Any increase of ``cryptoliq_liquidations_lost_total`` over this window is an alert: every
    loss understates the totals, so there is no threshold above zero. The alert stays firing for
    this long after the last loss, so losses a few minutes apart (oversized frames come with a
    venue's bursts) make one alert rather than a flapping one, and an isolated loss is still on
    Alertmanager's page for a while; a longer window would only delay the resolved notice."""
    lost_for: str = "0m"
    """A lost liquidation is a fact, not a reading that may recover: waiting would only delay
    the alert, and ``increase`` over ``lost_window`` already holds it that long."""


THRESHOLDS: Final = Thresholds()
