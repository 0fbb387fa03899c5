"""Generated dashboards and rules: committed files match the code, and the JSON is sound.

The JSON under ``provisioning/grafana/dashboards/`` is what Grafana loads; these tests read the
committed files (not freshly generated ones) so that what is checked is what ships.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import prometheus

from dashboards import generate
from dashboards.common import MARKET
from dashboards.config import DATASOURCE_UID, TAG, THRESHOLDS
from exporter.core import DEFAULT_EXEMPLAR_MIN_USD
from exporter.metrics import FAMILIES, HistogramFamily
from tests.monitoring_support import (
    DASHBOARD_FILES,
    ROOT,
    RULE_FILES,
    dashboard_expressions,
    load_dashboard,
    load_yaml,
    panels,
    recording_rules,
)

if TYPE_CHECKING:
    from pathlib import Path

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
METRIC = re.compile(r"\b(?:[a-z_]+:)?cryptoliq_[a-z0-9_]+(?::[a-z0-9_]+)?\b")


def test_committed_files_match_the_code() -> None:
    """Regenerate with `python -m dashboards` after changing dashboards/."""
    stale = [str(path.relative_to(ROOT)) for path in generate.stale()]
    assert stale == [], "out of date, run `python -m dashboards`"


def test_every_generated_dashboard_is_committed_and_nothing_else() -> None:
    assert {path.stem for path in DASHBOARD_FILES} == set(generate.DASHBOARDS)


def test_generation_is_deterministic() -> None:
    assert generate.artifacts() == generate.artifacts()


@pytest.fixture(scope="module", autouse=True)
def sdk_plugins() -> None:
    """The SDK decodes panel options and queries through its registry of panel/query types."""
    register_default_plugins()


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_round_trips_through_the_sdk_loader(path: Path) -> None:
    """Grafana's own schema, as the SDK models it, reads every field back unchanged."""
    data = load_dashboard(path)
    model = dashboard_model.Dashboard.from_json(data)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == data
    for panel in model.panels or []:
        assert isinstance(panel, dashboard_model.Panel)
        # Typed, not the SDK's fallback bags: the panel type and query type were recognised.
        assert not isinstance(panel.options, dict), panel.title
        for target in panel.targets or []:
            assert isinstance(target, prometheus.Dataquery), panel.title


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_dashboard_conventions(path: Path) -> None:
    dashboard = load_dashboard(path)
    assert dashboard["uid"] == path.stem
    assert TAG in dashboard["tags"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert {"datasource", "exchange", "coin"} <= set(variables)
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["current"]["value"] == DATASOURCE_UID
    for name in ("exchange", "coin"):
        assert variables[name]["datasource"] == DATASOURCE_REF
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["title"].strip(), panel
        assert panel["description"].strip(), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_uids_are_unique() -> None:
    uids = [load_dashboard(path)["uid"] for path in DASHBOARD_FILES]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_panels_fit_the_grid_without_overlapping(path: Path) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(load_dashboard(path)):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[x, y]}"
                cells[x, y] = panel["title"]


def usd_only(panel: dict[str, Any]) -> bool:
    """Every query is a plain USD quantity (no ratio, no count of orders)."""
    exprs = [target["expr"] for target in panel["targets"]]
    names = [name for expr in exprs for name in METRIC.findall(expr)]
    return (
        bool(names)
        and all(
            re.search(r"_usd(_total)?(:[a-z0-9]+)?$", name) and ":ratio" not in name
            for name in names
        )
        and not any("/" in expr or "count" in expr for expr in exprs)
    )


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_usd_panels_have_a_currency_unit(path: Path) -> None:
    for panel in panels(load_dashboard(path)):
        if panel["type"] == "heatmap" or not usd_only(panel):
            continue
        assert panel["fieldConfig"]["defaults"]["unit"] == "currencyUSD", panel["title"]


def heatmap_panel(uid: str, metric: str) -> dict[str, Any]:
    dashboard = load_dashboard(generate.DASHBOARD_DIR / f"{uid}.json")
    (panel,) = (
        panel
        for panel in panels(dashboard)
        if panel["type"] == "heatmap" and metric in panel["targets"][0]["expr"]
    )
    return panel


def test_liquidation_heatmap_keeps_the_bins_as_they_are() -> None:
    """cryptoliq_heatmap_usd bins are not cumulative: the `heatmap` format would subtract
    neighbours, and Grafana must not re-bucket them either."""
    panel = heatmap_panel("cryptoliq-liquidation-heatmap", "cryptoliq_heatmap_usd")
    (target,) = panel["targets"]
    assert target["format"] == "time_series"
    assert target["legendFormat"] == "{{price}}"
    assert panel["options"]["calculate"] is False
    assert panel["options"]["rowsFrame"]["layout"] == "ge"  # `price` is the bin's lower edge
    assert panel["options"]["yAxis"]["unit"] == "currencyUSD"


def test_mark_price_sits_below_the_heatmap_on_the_same_time_axis() -> None:
    dashboard = load_dashboard(generate.DASHBOARD_DIR / "cryptoliq-liquidation-heatmap.json")
    heatmap = heatmap_panel("cryptoliq-liquidation-heatmap", "cryptoliq_heatmap_usd")
    (price,) = (
        p
        for p in panels(dashboard)
        if p["type"] == "timeseries" and "cryptoliq_mark_price_usd" in str(p["targets"])
    )
    assert price["gridPos"]["y"] == heatmap["gridPos"]["y"] + heatmap["gridPos"]["h"]
    assert (price["gridPos"]["x"], price["gridPos"]["w"]) == (
        heatmap["gridPos"]["x"],
        heatmap["gridPos"]["w"],
    )
    width = heatmap["options"]["yAxis"]["axisWidth"]
    assert price["fieldConfig"]["defaults"]["custom"]["axisWidth"] == width
    assert dashboard["graphTooltip"] == 1  # shared crosshair


HEATMAP_DASHBOARD = generate.DASHBOARD_DIR / "cryptoliq-liquidation-heatmap.json"
LEVERAGE_ORDER = ("low", "mid", "high")
"""``leverage`` label values of cryptoliq_liquidation_map_usd, from the lowest leverage up."""
SIDE_HUES = {"long": "red", "short": "green"}
SHADES = ("super-light-", "light-", "", "semi-dark-", "dark-")
"""Prefixes of Grafana's named colours, lightest first."""


def panel_titled(dashboard: dict[str, Any], prefix: str) -> dict[str, Any]:
    (panel,) = (p for p in panels(dashboard) if p["title"].startswith(prefix))
    return panel


def transformation(panel: dict[str, Any], id_: str) -> dict[str, Any]:
    (step,) = (step for step in panel["transformations"] if step["id"] == id_)
    options: dict[str, Any] = step["options"]
    return options


def colours(panel: dict[str, Any]) -> dict[str, str]:
    """Fixed colour of each series named by a by-name override."""
    return {
        override["matcher"]["options"]: prop["value"]["fixedColor"]
        for override in panel["fieldConfig"]["overrides"]
        if override["matcher"]["id"] == "byName"
        for prop in override["properties"]
        if prop["id"] == "color"
    }


def series_names(panel: dict[str, Any]) -> dict[str, str]:
    """refId -> the name its value column gets from the organize transformation."""
    rename = transformation(panel, "organize")["renameByName"]
    return {target["refId"]: rename[f"Value #{target['refId']}"] for target in panel["targets"]}


def test_liquidation_map_stacks_every_side_and_leverage_band_in_its_colour() -> None:
    """Bars by side x leverage: longs red, shorts green, darker for higher leverage; every
    query's column is renamed to a series that has its colour."""
    panel = panel_titled(load_dashboard(HEATMAP_DASHBOARD), "Liquidation map")
    assert panel["type"] == "barchart"
    options = panel["options"]
    assert (options["stacking"], options["orientation"]) == ("normal", "vertical")
    assert options["xField"] == "price"
    names, colour_of = series_names(panel), colours(panel)
    shades: dict[str, list[int]] = {side: [] for side in SIDE_HUES}
    seen = set()
    for target in panel["targets"]:
        assert (target["instant"], target["format"]) == (True, "table"), target["refId"]
        assert target["expr"].startswith("sum by (price) (cryptoliq_liquidation_map_usd{")
        match = re.search(r'side="(\w+)", leverage="(\w+)"', target["expr"])
        assert match is not None, target["expr"]
        side, leverage = match.groups()
        seen.add((side, leverage))
        colour = colour_of[names[target["refId"]]]
        shade, hue = colour.removesuffix(SIDE_HUES[side]), SIDE_HUES[side]
        assert colour == shade + hue, (target["refId"], colour)
        shades[side].append(SHADES.index(shade))
        assert LEVERAGE_ORDER.index(leverage) == len(shades[side]) - 1  # low, mid, high
    assert seen == {(side, leverage) for side in SIDE_HUES for leverage in LEVERAGE_ORDER}
    for side, order in shades.items():
        assert order == sorted(set(order)), f"{side}: not darker with leverage"


@pytest.mark.parametrize("title", ["Liquidation map", "Cumulative liquidations"])
def test_map_panels_join_the_bins_and_sort_them_as_numbers(title: str) -> None:
    """`price` is a label, i.e. text, and "100000" < "99000" as text: the rows must be sorted
    after converting it to a number. The trend panel needs it ascending and numeric; the bar
    chart takes it back to text shown as is (unit `string`), not rounded as USD."""
    panel = panel_titled(load_dashboard(HEATMAP_DASHBOARD), title)
    steps = [
        (step["id"], step["options"].get("conversions", [{}])[0].get("destinationType"))
        for step in panel["transformations"]
    ]
    head = [
        ("merge", None),
        ("organize", None),
        ("convertFieldType", "number"),
        ("sortBy", None),
    ]
    assert steps[:4] == head
    assert transformation(panel, "sortBy")["sort"] == [{"field": "price", "desc": False}]
    assert transformation(panel, "organize")["excludeByName"] == {"Time": True}
    assert panel["options"]["xField"] == "price"
    if panel["type"] == "barchart":
        assert steps[4:] == [("convertFieldType", "string")]
        (price,) = (
            o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "price"
        )
        assert price["properties"] == [{"id": "unit", "value": "string"}]
    else:
        assert panel["type"] == "trend"
        assert steps[4:] == []
    for target in panel["targets"]:
        assert (target["instant"], target["format"]) == (True, "table"), target["refId"]
        assert target["expr"].startswith("sum by (price) ("), target["refId"]
        assert f"Value #{target['refId']}" in transformation(panel, "organize")["renameByName"]


def test_cumulative_curves_sit_below_the_map_on_the_same_price_axis() -> None:
    dashboard = load_dashboard(HEATMAP_DASHBOARD)
    bars = panel_titled(dashboard, "Liquidation map")
    curves = panel_titled(dashboard, "Cumulative liquidations")
    assert curves["gridPos"]["y"] == bars["gridPos"]["y"] + bars["gridPos"]["h"]
    assert (curves["gridPos"]["x"], curves["gridPos"]["w"]) == (
        bars["gridPos"]["x"],
        bars["gridPos"]["w"],
    )
    width = bars["fieldConfig"]["defaults"]["custom"]["axisWidth"]
    assert curves["fieldConfig"]["defaults"]["custom"]["axisWidth"] == width
    names, colour_of = series_names(curves), colours(curves)
    assert {ref: colour_of[name] for ref, name in names.items()} == SIDE_HUES
    for ref, target in ((t["refId"], t) for t in curves["targets"]):
        assert "cryptoliq_liquidation_map_cumulative_usd" in target["expr"]
        assert f'side="{ref}"' in target["expr"]


def test_map_is_read_next_to_the_mark_price_and_the_book_ratio() -> None:
    dashboard = load_dashboard(HEATMAP_DASHBOARD)
    bars = panel_titled(dashboard, "Liquidation map")["gridPos"]
    curves = panel_titled(dashboard, "Cumulative liquidations")["gridPos"]
    beside = [
        panel
        for panel in panels(dashboard)
        if panel["gridPos"]["x"] == bars["x"] + bars["w"]
        and bars["y"] <= panel["gridPos"]["y"] < curves["y"] + curves["h"]
    ]
    exprs = " ".join(target["expr"] for panel in beside for target in panel["targets"])
    for metric in (
        "cryptoliq_mark_price_usd",
        "cryptoliq_liquidation_map_bin_width_usd",
        "cryptoliq_heatmap_positions_coins",
        "cryptoliq_heatmap_open_interest_coins",
    ):
        assert metric in exprs
    (ratio,) = (p for p in beside if "cryptoliq_heatmap_positions_coins" in str(p["targets"]))
    defaults = ratio["fieldConfig"]["defaults"]
    assert (defaults["unit"], defaults["min"], defaults["max"]) == ("percentunit", 0, 1)


def test_order_size_heatmap_reads_the_histogram() -> None:
    panel = heatmap_panel("cryptoliq-liquidations", "cryptoliq_liquidation_size_usd_bucket")
    (target,) = panel["targets"]
    assert target["format"] == "heatmap"
    assert "by (le)" in target["expr"]
    assert panel["options"]["calculate"] is False


def test_liquidation_bars_use_increase_per_interval_and_side_colours() -> None:
    dashboard = load_dashboard(generate.DASHBOARD_DIR / "cryptoliq-liquidations.json")
    (bars,) = (p for p in panels(dashboard) if p["title"] == "Liquidations by side")
    assert "increase(cryptoliq_liquidations_usd_total" in bars["targets"][0]["expr"]
    assert "[$__interval]" in bars["targets"][0]["expr"]
    assert bars["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars"
    colours = {
        override["matcher"]["options"]: override["properties"][0]["value"]["fixedColor"]
        for override in bars["fieldConfig"]["overrides"]
    }
    assert colours == {"long": "red", "short": "green"}


def test_liquidation_totals_over_time_are_bars_longs_red_shorts_green() -> None:
    """Wherever USD liquidated per side is drawn over time (both dashboards), it is stacked
    bars with the side colours traders read."""
    found = [
        (path.stem, panel)
        for path in DASHBOARD_FILES
        for panel in panels(load_dashboard(path))
        if panel["type"] == "timeseries"
        and any(
            "increase(cryptoliq_liquidations_usd_total" in target["expr"]
            and "by (side)" in target["expr"]
            for target in panel["targets"]
        )
    ]
    assert {uid for uid, _ in found} == {"cryptoliq-liquidations", "cryptoliq-market-context"}
    for uid, panel in found:
        custom = panel["fieldConfig"]["defaults"]["custom"]
        assert (custom["drawStyle"], custom["stacking"]["mode"]) == ("bars", "normal"), uid
        assert panel["targets"][0]["legendFormat"] == "{{side}}", uid
        assert colours(panel) == SIDE_HUES, uid


LIQUIDATIONS_DASHBOARD = generate.DASHBOARD_DIR / "cryptoliq-liquidations.json"
SIZE_BUCKETS = re.compile(r"cryptoliq_liquidation_size_usd_bucket\{(?P<matchers>[^}]*)\}")


def test_live_orders_are_the_size_histograms_exemplars_on_a_usd_axis() -> None:
    """The live panel asks for exemplars with an expression that selects every bucket of the
    size histogram (no ``le`` matcher, the dashboard's own filters) and keeps only ``side``,
    so each order's dot takes its side's colour; its values are USD on a log axis that
    reaches down to the exemplar floor, so no order is clamped to the axis."""
    panel = panel_titled(load_dashboard(LIQUIDATIONS_DASHBOARD), "Live liquidations")
    (target,) = panel["targets"]
    assert target["exemplar"] is True
    assert (target["range"], target["format"]) == (True, "time_series")
    (matchers,) = SIZE_BUCKETS.findall(target["expr"])
    assert matchers == MARKET
    assert "le" not in re.findall(r"(\w+)\s*=~?", matchers)
    assert target["legendFormat"] == "{{side}}"
    assert colours(panel) == SIDE_HUES
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] == "currencyUSD"
    assert defaults["custom"]["scaleDistribution"] == {"type": "log", "log": 10}
    assert defaults["custom"]["axisSoftMin"] == DEFAULT_EXEMPLAR_MIN_USD
    assert "cryptoliq_liquidation_largest_usd" in target["expr"]  # the line over the dots
    for words in ("exemplar_min_usd", "one exemplar per bucket", "last order per bucket"):
        assert words in panel["description"], words


MARKET_CONTEXT = generate.DASHBOARD_DIR / "cryptoliq-market-context.json"
MARKET_CONTEXT_SERIES = (
    "cryptoliq_index_price_usd",
    "cryptoliq_funding_rate",
    "cryptoliq_funding_predicted_rate",
    "cryptoliq_funding_next_timestamp_seconds",
    "cryptoliq_funding_interval_seconds",
    "cryptoliq_long_short_ratio",
    "market:cryptoliq_funding_rate:annualised",
    "coin:cryptoliq_funding_rate:annualised_oi_weighted",
    "market:cryptoliq_basis_usd:mark_minus_index",
    "market:cryptoliq_basis:ratio",
)


def test_market_context_shows_every_funding_positioning_and_basis_series() -> None:
    exprs = [e.expr for e in dashboard_expressions(load_dashboard(MARKET_CONTEXT))]
    named = {name for expr in exprs for name in METRIC.findall(expr)}
    assert set(MARKET_CONTEXT_SERIES) <= named
    sources = {m for expr in exprs for m in re.findall(r'source="(\w+)"', expr)}
    assert sources == {"accounts", "top_accounts", "top_positions"}
    assert any("cryptoliq_funding_next_timestamp_seconds" in e and "- time()" in e for e in exprs)


def test_funding_sits_above_the_liquidations_on_the_same_time_axis() -> None:
    """Funding vs liquidations: the coin's open-interest-weighted funding (with the squeeze-
    setup alerts' thresholds either side) directly above its liquidation bars, same width and
    y-axis width, so the two time axes line up under the shared crosshair."""
    dashboard = load_dashboard(MARKET_CONTEXT)
    funding = panel_titled(dashboard, "Funding vs liquidations: funding")
    bars = panel_titled(dashboard, "Funding vs liquidations: liquidations")
    assert "coin:cryptoliq_funding_rate:annualised_oi_weighted" in funding["targets"][0]["expr"]
    assert "cryptoliq_liquidations_usd_total" in bars["targets"][0]["expr"]
    assert bars["gridPos"]["y"] == funding["gridPos"]["y"] + funding["gridPos"]["h"]
    assert (bars["gridPos"]["x"], bars["gridPos"]["w"]) == (
        funding["gridPos"]["x"],
        funding["gridPos"]["w"],
    )
    width = funding["fieldConfig"]["defaults"]["custom"]["axisWidth"]
    assert bars["fieldConfig"]["defaults"]["custom"]["axisWidth"] == width
    assert colours(bars) == SIDE_HUES
    steps = funding["fieldConfig"]["defaults"]["thresholds"]["steps"]
    limit = THRESHOLDS.funding_annualised
    assert [step["value"] for step in steps] == [None, -limit, limit]
    assert dashboard["graphTooltip"] == 1  # shared crosshair


def test_every_dashboard_has_queries() -> None:
    for path in DASHBOARD_FILES:
        assert len(dashboard_expressions(load_dashboard(path))) >= 5, path.stem


def exposed_series() -> set[str]:
    """Names of every series the exporter's own families put in a scrape."""
    names: set[str] = set()
    for family in FAMILIES:
        if isinstance(family, HistogramFamily):
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
        else:
            names.add(family.exposed_name)
    return names


def test_queries_name_only_series_that_exist() -> None:
    """A metric renamed in exporter/metrics.py (or a typo) in a dashboard or rule would only
    show as "No data" in Grafana: every cryptoliq name queried is exposed or recorded."""
    known = exposed_series() | set(recording_rules())
    queries = [
        (expression.name, expression.expr)
        for path in DASHBOARD_FILES
        for expression in dashboard_expressions(load_dashboard(path))
    ]
    queries += [
        (rule.get("record") or rule["alert"], rule["expr"])
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]
    named = [(where, name) for where, expr in queries for name in METRIC.findall(expr)]
    assert named  # the pattern finds names at all
    assert [(where, name) for where, name in named if name not in known] == []
