"""Liquidation heatmap: where the model expects open positions to be liquidated, per coin.

The heatmap is ``cryptoliq_heatmap_usd{coin, side, price}``: one gauge per price bin holding the
estimated USD whose liquidation price lies in that bin. The query keeps Grafana's ``time_series``
format with one series per bin (legend ``{{price}}``) and the panel does not calculate buckets:
the ``heatmap`` query format would treat the bins as cumulative ``le`` buckets and subtract
neighbours, corrupting values that are not cumulative.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import heatmap as heatmap_model

from dashboards.common import (
    DATASOURCE,
    EXCHANGE,
    RATIO,
    SIDE_COLORS,
    USD,
    coin_variable,
    dashboard,
    datasource_variable,
    exchange_variable,
    fixed_color,
    merge_table,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from dashboards.config import THRESHOLDS

if TYPE_CHECKING:
    from grafana_foundation_sdk.cog.builder import Builder

UID: Final = "cryptoliq-liquidation-heatmap"
COIN: Final = 'coin="$coin"'
"""This dashboard shows one coin at a time: prices of different coins share no axis."""
MOVES: Final = "1%|2%|5%"
Y_AXIS_WIDTH: Final = 80
"""Both price panels reserve the same width for their y axis so their time axes line up."""


def price_heatmap() -> heatmap.Panel:
    return (
        heatmap.Panel()
        .title("Liquidation heatmap · $coin")
        .description(
            "Estimated USD of open positions whose liquidation price lies in each price bin "
            "(y: the bin's lower edge), over time; longs below the price, shorts above. "
            "Bright bands are clusters the price is drawn to and may cascade through. "
            "Source: `cryptoliq_heatmap_usd`, both sides summed."
        )
        .datasource(DATASOURCE)
        # Up to ~480 bins per coin change slowly: one column a minute is detail enough.
        .interval("1m")
        .with_target(
            query(f"sum by (price) (cryptoliq_heatmap_usd{{{COIN}}})", "{{price}}"),
        )
        .calculate(calculate=False)
        .rows_frame(
            heatmap.RowsHeatmapOptions()
            .layout(common_model.HeatmapCellLayout.GE)
            .value("liquidation USD")
        )
        .y_axis(
            heatmap.YAxisConfig()
            .unit(USD)
            .axis_placement(common_model.AxisPlacement.LEFT)
            .axis_width(Y_AXIS_WIDTH)
        )
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Viridis")
            .scale(heatmap_model.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(128)
        )
        .cell_gap(0)
        .cell_values(heatmap.CellValues().unit(USD))
        .show_legend()
        .height(14)
        .span(24)
    )


def mark_price() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Mark price · $coin",
            "Average mark price over the selected exchanges, on the heatmap's time axis.",
            unit=USD,
        )
        .with_target(
            query(
                f"avg by (coin) (cryptoliq_mark_price_usd{{{COIN}, {EXCHANGE}}})",
                "mark price",
            )
        )
        .axis_width(Y_AXIS_WIDTH)
        .axis_placement(common_model.AxisPlacement.LEFT)
        .fill_opacity(0)
        .line_width(2)
        .height(6)
        .span(24)
    )


def at_risk_now() -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title("At risk if the price moves")
        .description(
            "Estimated USD liquidated if the price moved 1, 2 or 5 % against each side now: "
            "longs on a drop, shorts on a rise (`cryptoliq_liquidation_at_risk_usd`)."
        )
        .datasource(DATASOURCE)
        .unit(USD)
        .orientation(common_model.VizOrientation.HORIZONTAL)
        .display_mode(common_model.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
        .min(0)
        .height(8)
        .span(8)
    )
    for side, direction in (("long", "down"), ("short", "up")):
        panel = panel.with_target(
            query(
                "sum by (move) (cryptoliq_liquidation_at_risk_usd"
                f'{{{COIN}, side="{side}", move=~"{MOVES}"}})',
                f"{side}s, price {direction} {{{{move}}}}",
                ref_id=side,
                instant=True,
            )
        ).override_by_query(side, [fixed_color(SIDE_COLORS[side])])
    return panel


def at_risk_over_time() -> timeseries.Panel:
    return (
        timeseries_panel(
            "At risk over time",
            "The same estimate over time, per side and move.",
            unit=USD,
        )
        .with_target(
            query(
                "sum by (side, move) "
                f'(cryptoliq_liquidation_at_risk_usd{{{COIN}, move=~"{MOVES}"}})',
                "{{side}} {{move}}",
            )
        )
        .height(8)
        .span(16)
    )


def clusters(side: str) -> table.Panel:
    """Top clusters of one side: price, estimated USD, and signed distance from the mark price."""
    where = "above" if side == "short" else "below"
    columns = {"price": "cluster price", "usd": "estimated USD", "distance": "distance"}
    panel = (
        table_panel(
            f"Top {side} clusters ({where} the price)",
            f"The model's largest {side} liquidation bins ({where} the mark price) by rank: "
            "bin centre, estimated USD, and distance from the average mark price over all "
            "exchanges. The "
            "LiquidationClusterNearPrice alert watches clusters within "
            f"{THRESHOLDS.cluster_distance:.0%}.",
            unit=USD,
        )
        .height(7)
        .span(12)
        .sort_by([common_builder.TableSortByFieldState().display_name("rank")])
        .override_by_name("distance", [dashboard_model.DynamicConfigValue("unit", RATIO)])
    )
    selector = f'{{{COIN}, side="{side}"}}'
    for ref, metric in (
        ("price", "cryptoliq_liquidation_cluster_price_usd"),
        ("usd", "cryptoliq_liquidation_cluster_usd"),
        ("distance", "coin_side_rank:cryptoliq_liquidation_cluster_distance:ratio"),
    ):
        expr = f"max by (rank) ({metric}{selector})"
        panel = panel.with_target(query(expr, ref_id=ref, instant=True, table=True))
    return panel.transformations(merge_table(["rank"], columns))


def accuracy() -> list[stat.Panel]:
    """How well the model's heatmaps placed the liquidations that then happened (last 24 h)."""
    hit_ratio = (
        stat_panel(
            "Model hit ratio · 24h",
            "Share of the last 24 hours' liquidation USD that fell in the model's top-decile "
            "bins at that moment (`cryptoliq_heatmap_hit_ratio`).",
            unit=RATIO,
            sparkline=True,
        )
        .with_target(query(f"max by (coin) (cryptoliq_heatmap_hit_ratio{{{COIN}}})", "{{coin}}"))
        .min(0)
        .max(1)
    )
    lift = stat_panel(
        "Model lift · 24h",
        "Hit ratio divided by what a uniform guess of as many bins would score; 1 means no "
        "skill (`cryptoliq_heatmap_lift`).",
        unit="suffix:x",
        sparkline=True,
    ).with_target(query(f"max by (coin) (cryptoliq_heatmap_lift{{{COIN}}})", "{{coin}}"))
    scored = stat_panel(
        "Scored liquidations · 24h",
        "Liquidation USD of the last 24 hours behind the hit ratio and lift: with little of "
        "it, both are noise (`cryptoliq_heatmap_scored_usd`).",
        unit=USD,
    ).with_target(query(f"max by (coin) (cryptoliq_heatmap_scored_usd{{{COIN}}})", "{{coin}}"))
    bin_width = stat_panel(
        "Price bin width",
        "Width of one heatmap price bin (`cryptoliq_heatmap_bin_width_usd`).",
        unit=USD,
    ).with_target(query(f"max by (coin) (cryptoliq_heatmap_bin_width_usd{{{COIN}}})", "{{coin}}"))
    return [panel.height(4).span(6) for panel in (hit_ratio, lift, scored, bin_width)]


def build() -> dashboard_builder.Dashboard:
    board = dashboard(
        UID,
        "Liquidation heatmap",
        "Estimated liquidation levels per coin from the exporter's heatmap model: the price x "
        "time heatmap with the mark price below it, USD at risk per price move, the largest "
        "clusters on each side and how accurate the model has been.",
        time_from="now-6h",
        variables=[datasource_variable(), exchange_variable(), coin_variable(multi=False)],
    )
    panels: list[Builder[dashboard_model.Panel]] = [
        price_heatmap(),
        mark_price(),
        at_risk_now(),
        at_risk_over_time(),
        clusters("short"),
        clusters("long"),
        *accuracy(),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board
