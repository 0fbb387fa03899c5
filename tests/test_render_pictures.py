"""docs/render_pictures.py draws both pictures (matplotlib comes with the optional ``docs`` extra).

The script is loaded from its file, as it is no module of the package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "docs" / "render_pictures.py"


def test_both_pictures_are_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = pytest.importorskip("matplotlib.image")
    spec = importlib.util.spec_from_file_location("render_pictures", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)
    spec.loader.exec_module(script)
    script.main(["--hours", "1.5", "--warmup", "0.5", "--out", str(tmp_path / "images")])
    for name in ("heatmap.png", "liquidation-map.png"):
        path = tmp_path / "images" / name
        assert path.stat().st_size > 10_000, name
        assert image.imread(path).shape[:2] == (700, 1400), name
