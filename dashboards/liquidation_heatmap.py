"""Liquidation heatmap: where the model expects open positions to be liquidated, per coin.

The heatmap is ``cryptoliq_heatmap_usd{coin, side, price}``: one gauge per price bin holding the
estimated USD whose liquidation price lies in that bin. The query keeps Grafana's ``time_series``
format with one series per bin (legend ``{{price}}``) and the panel does not calculate buckets:
the ``heatmap`` query format would treat the bins as cumulative ``le`` buckets and subtract
neighbours, corrupting values that are not cumulative.

Grafana's heatmap panel cannot draw a line over its cells: every series of its queries becomes a
row of cells, and its only overlay is Prometheus exemplars. The mark price is therefore its own
panel below the heatmap, on the same time axis.

The liquidation map (``cryptoliq_liquidation_map_usd``) is the model's state now, by price: a bar
chart of instant table queries, one row per price bin, with the cumulative curves
(``cryptoliq_liquidation_map_cumulative_usd``) in a trend panel of the same width below it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    heatmap,
    stat,
    table,
    timeseries,
    trend,
)
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
    legend,
    merge_table,
    query,
    side_colored,
    stat_panel,
    table_panel,
    timeseries_panel,
    tooltip,
)
from dashboards.config import THRESHOLDS
from exporter.heatmap.params import band_titles

if TYPE_CHECKING:
    from grafana_foundation_sdk.cog.builder import Builder

UID: Final = "cryptoliq-liquidation-heatmap"
COIN: Final = 'coin="$coin"'
"""This dashboard shows one coin at a time: prices of different coins share no axis."""
MOVES: Final = "1%|2%|5%"
CLUSTER_ROWS: Final = 5  # the exporter's own cluster count (HeatmapParams.clusters)
Y_AXIS_WIDTH: Final = 80
"""Both price panels reserve the same width for their y axis so their time axes line up; so do
the liquidation map and its cumulative curves, for their price axes."""
LEVERAGE_BANDS: Final = band_titles()
"""The ``leverage`` label values of ``cryptoliq_liquidation_map_usd`` and what each stands for."""
LEVERAGE_SHADES: Final = {"low": "light-", "mid": "", "high": "dark-"}
"""Prefixes of Grafana's named colours: the side's colour (``SIDE_COLORS``), darker for higher
leverage."""
MAP_WIDTH: Final = 18
"""The liquidation map and its cumulative curves: same width, one above the other, so their price
axes line up; the stats beside them take the rest of the row."""


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


def convert_price(to: str) -> dashboard_model.DataTransformerConfig:
    return dashboard_model.DataTransformerConfig(
        id_val="convertFieldType",
        options={"conversions": [{"targetField": "price", "destinationType": to}], "fields": {}},
    )


def by_price(
    columns: dict[str, str], *, text_axis: bool
) -> list[dashboard_model.DataTransformerConfig]:
    """Instant table queries by ``price`` as one frame, one row per bin, in price order.

    ``columns`` maps each query's ref id to its series name. Every query returns the same bins
    (the map's grid is contiguous, zeros included), so rows merge on ``price``. ``price`` is a
    label, hence text, and text sorts "100000" before "99000": it is made a number to sort. A bar
    chart (``text_axis``) takes it back to text so that its axis and tooltip show each bin's
    lower edge as the exporter wrote it; a number would be rounded by the display unit (USD shows
    105,000 and 105,500 both as "$106K"), and the bar chart's axis is one slot per row anyway.
    """
    steps = [
        *merge_table(["price"], columns),
        convert_price("number"),
        dashboard_model.DataTransformerConfig(
            id_val="sortBy", options={"fields": {}, "sort": [{"field": "price", "desc": False}]}
        ),
    ]
    if text_axis:
        steps.append(convert_price("string"))
    return steps


def liquidation_map() -> barchart.Panel:
    """The model's positions now, by liquidation price: stacked bars by side and leverage band."""
    panel = (
        barchart.Panel()
        .title("Liquidation map · $coin")
        .description(
            "Where the model expects open positions to be liquidated, now: estimated USD (at "
            "the mark price) of positions whose liquidation price lies in each price bin (x: "
            "the bin's lower edge), stacked by side and leverage: longs in reds (liquidated if "
            "the price falls to the bin), shorts in greens (if it rises to it), darker for "
            "higher leverage (≤10x, 10-50x, >50x). Longs sit below the mark price and shorts "
            "above it, so the price is where red turns to green. Bins are two heatmap bins "
            "wide (see *map bin width*) and span the heatmap's range, the mark price ± 15 % by "
            "default. A model built from open interest and prices, not positions an exchange "
            "reported "
            "(`cryptoliq_liquidation_map_usd`); summed over leverage, it is the heatmap's "
            "latest column at half its resolution."
        )
        .datasource(DATASOURCE)
        .unit(USD)
        .x_field("price")
        .orientation(common_model.VizOrientation.VERTICAL)
        .stacking(common_model.StackingMode.NORMAL)
        .show_value(common_model.VisibilityMode.NEVER)
        .x_tick_label_rotation(0)
        .x_tick_label_spacing(100)  # at least 100 px between price labels: one every few bars
        .fill_opacity(85)
        .line_width(1)
        .axis_placement(common_model.AxisPlacement.LEFT)
        .axis_width(Y_AXIS_WIDTH)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common_model.LegendDisplayMode.LIST)
            .placement(common_model.LegendPlacement.BOTTOM)
            .show_legend(show_legend=True)
        )
        .tooltip(tooltip().hide_zeros(hide_zeros=True))
        # Exactly the label text: Grafana would otherwise parse it and format it as USD.
        .override_by_name("price", [dashboard_model.DynamicConfigValue("unit", "string")])
        .height(10)
        .span(MAP_WIDTH)
    )
    columns: dict[str, str] = {}
    for side, color in SIDE_COLORS.items():
        for leverage, band in LEVERAGE_BANDS.items():
            ref, name = f"{side}_{leverage}", f"{side} {band}"
            columns[ref] = name
            panel = panel.with_target(
                query(
                    "sum by (price) (cryptoliq_liquidation_map_usd"
                    f'{{{COIN}, side="{side}", leverage="{leverage}"}})',
                    ref_id=ref,
                    instant=True,
                    table=True,
                )
            ).override_by_name(name, [fixed_color(LEVERAGE_SHADES[leverage] + color)])
    return panel.transformations(by_price(columns, text_axis=True))


def cumulative_map() -> trend.Panel:
    """USD liquidated if the price went to x: the map summed from the mark price outwards."""
    names = {"long": "longs if the price falls here", "short": "shorts if the price rises here"}
    panel = (
        trend.Panel()
        .title("Cumulative liquidations · $coin")
        .description(
            "The liquidation map added up from the mark price outwards: at each price (x: a map "
            "bin's lower edge), the estimated USD of long positions liquidated if the price fell "
            "to it (red, growing to the left) and of short positions liquidated if it rose to "
            "that bin's upper edge (green, growing to the right). Both are near zero at the mark "
            "price, where the curves meet. A model estimate, not reported positions "
            "(`cryptoliq_liquidation_map_cumulative_usd`)."
        )
        .datasource(DATASOURCE)
        .unit(USD)
        .x_field("price")
        .line_width(2)
        .fill_opacity(10)
        .show_points(common_model.VisibilityMode.NEVER)
        .axis_placement(common_model.AxisPlacement.LEFT)
        .axis_width(Y_AXIS_WIDTH)
        .legend(legend(["max"]))
        .tooltip(tooltip())
        .height(8)
        .span(MAP_WIDTH)
    )
    for side, name in names.items():
        panel = panel.with_target(
            query(
                "sum by (price) "
                f'(cryptoliq_liquidation_map_cumulative_usd{{{COIN}, side="{side}"}})',
                ref_id=side,
                instant=True,
                table=True,
            )
        ).override_by_name(name, [fixed_color(SIDE_COLORS[side])])
    return panel.transformations(by_price(names, text_axis=False))


def map_scale() -> stat.Panel:
    """Beside the map: where the price is now, and how wide one of the map's bars is."""
    return (
        stat_panel(
            "Mark price · map bin",
            "The mark price now, averaged over the selected exchanges: on the liquidation map "
            "it is where the red bars end and the green ones begin. Below it, the width of one "
            "map bin (`cryptoliq_liquidation_map_bin_width_usd`), two heatmap bins.",
            unit=USD,
        )
        .with_target(
            query(
                f"avg by (coin) (cryptoliq_mark_price_usd{{{COIN}, {EXCHANGE}}})",
                "mark price",
                ref_id="mark",
                instant=True,
            )
        )
        .with_target(
            query(
                f"max by (coin) (cryptoliq_liquidation_map_bin_width_usd{{{COIN}}})",
                "map bin width",
                ref_id="bin",
                instant=True,
            )
        )
        .color_mode(common_model.BigValueColorMode.NONE)
        .orientation(common_model.VizOrientation.HORIZONTAL)  # one value above the other
        .height(10)
        .span(24 - MAP_WIDTH)
    )


def book_ratio() -> stat.Panel:
    """How much of the coin's open interest the model's positions account for, per side."""
    return (
        side_colored(
            stat_panel(
                "Open interest in the model",
                "Coins held by the model's estimated positions of each side, as a share of the "
                "open interest in coins of the coin's heatmap markets "
                "(`cryptoliq_heatmap_positions_coins` over "
                "`cryptoliq_heatmap_open_interest_coins`, each summed first so that shards add "
                "up). Every open contract has a long and a short holder, so a model that knew "
                "every position would show 100 % on both sides. It "
                "knows only positions opened in the history it has seen (turnover and "
                "liquidations are replaced, not lost): the lower the share, the more of the open "
                "interest the map and the heatmap leave out.",
                unit=RATIO,
                sparkline=True,
            ).with_target(
                query(
                    f"sum by (side) (cryptoliq_heatmap_positions_coins{{{COIN}}}) / on () "
                    f"group_left () sum (cryptoliq_heatmap_open_interest_coins{{{COIN}}})",
                    "{{side}}",
                )
            )
        )
        .orientation(common_model.VizOrientation.HORIZONTAL)  # one side above the other
        .min(0)
        .max(1)
        .height(8)
        .span(24 - MAP_WIDTH)
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
    """The largest bins of one side of the summed heatmap: exact over every exchange and every
    replica (``--shard``), which per-replica cluster metrics are not."""
    where = "above" if side == "short" else "below"
    return (
        table_panel(
            f"Top {side} clusters ({where} the price)",
            f"The {CLUSTER_ROWS} largest {side} bins of the heatmap summed over every exchange "
            f"(and every exporter replica): each bin's lower edge and estimated USD. "
            f"{side.title()} liquidation prices lie {where} the mark price: the model sweeps "
            "those the price crossed. The LiquidationClusterNearPrice alert watches clusters "
            "within "
            f"{THRESHOLDS.cluster_distance:.0%}.",
            unit=USD,
        )
        .height(7)
        .span(12)
        .sort_by(
            [common_builder.TableSortByFieldState().display_name("estimated USD").desc(desc=True)]
        )
        .with_target(
            query(
                f"topk({CLUSTER_ROWS}, sum by (price) "
                f'(cryptoliq_heatmap_usd{{{COIN}, side="{side}"}}))',
                ref_id="usd",
                instant=True,
                table=True,
            )
        )
        .transformations(merge_table(["price"], {"usd": "estimated USD"}))
    )


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
    # Amounts of USD are neither good nor bad: no threshold colour (Grafana's default turns
    # anything from 80 up red).
    scored, bin_width = (
        panel.color_mode(common_model.BigValueColorMode.NONE) for panel in (scored, bin_width)
    )
    return [panel.height(4).span(6) for panel in (hit_ratio, lift, scored, bin_width)]


def build() -> dashboard_builder.Dashboard:
    board = dashboard(
        UID,
        "Liquidation heatmap",
        "Estimated liquidation levels per coin from the exporter's heatmap model: the price x "
        "time heatmap with the mark price below it, the liquidation map now (by price and "
        "leverage, with cumulative curves) and how much of the open interest the model holds, "
        "USD at risk per price move, the largest clusters on each side and how accurate the "
        "model has been.",
        time_from="now-6h",
        variables=[datasource_variable(), exchange_variable(), coin_variable(multi=False)],
    )
    panels: list[Builder[dashboard_model.Panel]] = [
        price_heatmap(),
        mark_price(),
        liquidation_map(),
        map_scale(),
        cumulative_map(),
        book_ratio(),
        at_risk_now(),
        at_risk_over_time(),
        clusters("short"),
        clusters("long"),
        *accuracy(),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board
