"""Liquidations: what got liquidated, on which side, where, and how large the orders were."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import heatmap, stat, table, timeseries
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import heatmap as heatmap_model

from dashboards.common import (
    DATASOURCE,
    EXCHANGE,
    MARKET,
    MIN_BAR_INTERVAL,
    SIDE_COLORS,
    USD,
    bars_panel,
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
    threshold_line,
    timeseries_panel,
)
from dashboards.config import THRESHOLDS
from exporter.core import DEFAULT_EXEMPLAR_MIN_USD
from exporter.venues import sampled_exchanges

if TYPE_CHECKING:
    from grafana_foundation_sdk.cog.builder import Builder

UID: Final = "cryptoliq-liquidations"
TABLE_WINDOWS: Final = ("1h", "4h", "12h", "24h")
TOP_EXCHANGES: Final = 6
"""Exchanges drawn on their own in the by-exchange chart; the rest are summed as ``others``, so
the chart stays readable with every venue enabled."""
SAMPLED_NOTE: Final = (
    f" {' and '.join(e.capitalize() for e in sampled_exchanges())} publish a sample of their "
    'liquidations (`cryptoliq_venue_info{completeness="sampled"}`), so totals that include '
    "them are lower bounds."
)

USD_BARS: Final = (
    f"sum by (exchange) (increase(cryptoliq_liquidations_usd_total{{{MARKET}}}[$__interval]))"
)
TOP_RANKING: Final = (
    f"topk({TOP_EXCHANGES}, sum by (exchange) "
    f"(increase(cryptoliq_liquidations_usd_total{{{MARKET}}}[$__range] @ end())))"
)
"""The largest exchanges by USD over the whole time range, ranked once at its end, so the same
ones are drawn in every bar."""
COMPLETENESS: Final = (
    "group_left(completeness) max by (exchange, completeness) (cryptoliq_venue_info)"
)
"""Joined onto a per-exchange series: its completeness as a label, for the legend."""


def window_stat(window: str) -> stat.Panel:
    """Long and short USD liquidated in the trailing ``window`` (the exporter's rolling gauge)."""
    return side_colored(
        stat_panel(
            f"Liquidated · {window}",
            f"USD notional of liquidation orders in the trailing {window}, by the side of the "
            "liquidated position (long = red, short = green), over the selected exchanges and "
            "coins. From the exporter's rolling window, so it is exact whatever the time range."
            + SAMPLED_NOTE,
            unit=USD,
        )
        .with_target(
            query(
                f'sum by (side) (cryptoliq_liquidations_window_usd{{window="{window}", {MARKET}}})',
                "{{side}}",
                instant=True,
            )
        )
        .height(4)
        .span(6)
    )


def largest_order_stat() -> stat.Panel:
    return side_colored(
        stat_panel(
            "Largest order · 24h",
            "The largest single liquidation order in the trailing 24 hours, per side.",
            unit=USD,
        )
        .with_target(
            query(
                f'max by (side) (cryptoliq_liquidation_largest_usd{{window="24h", {MARKET}}})',
                "{{side}}",
                instant=True,
            )
        )
        .height(4)
        .span(6)
    )


def by_side_bars() -> timeseries.Panel:
    return (
        side_colored(
            bars_panel(
                "Liquidations by side",
                "USD liquidated per bar (`increase` of the USD counter over each `$__interval`), "
                "longs red and shorts green, stacked.",
                unit=USD,
            ).with_target(
                query(
                    "sum by (side) "
                    f"(increase(cryptoliq_liquidations_usd_total{{{MARKET}}}[$__interval]))",
                    "{{side}}",
                )
            )
        )
        .height(9)
        .span(12)
    )


def live_orders() -> timeseries.Panel:
    """The liquidation orders feed: every exemplar of the size histogram is one order, a dot at
    its time and USD, coloured by its side's line (Grafana colours an exemplar like the series
    whose labels it shares, here ``side``).

    Grafana asks Prometheus for the exemplars of every series a target's expression selects, and
    draws them on the panel's y scale, clamped to it. So the expression is the largest order per
    side, in USD (the axis reaches the largest dot), joined with the size histogram's buckets,
    which carry the orders: the join keeps every line and names the buckets for the exemplar
    query, with no ``le`` matcher so that every bucket's orders come back.
    """
    largest = (
        "max by (side) (max_over_time(cryptoliq_liquidation_largest_usd"
        f'{{window="5m", {MARKET}}}[$__interval])) > 0'
    )
    orders = f"group by (side) (cryptoliq_liquidation_size_usd_bucket{{{MARKET}}})"
    return (
        side_colored(
            timeseries_panel(
                "Live liquidations",
                "The liquidation orders feed: each dot is one liquidation order of at least "
                f"${DEFAULT_EXEMPLAR_MIN_USD:,.0f} (the exporter's `exemplar_min_usd`), at its "
                "time and USD notional, red for a long liquidated and green for a short; hover "
                "over it for the venue (`exchange`), `symbol`, `side` and `price`. The dots are "
                "OpenMetrics exemplars of the `cryptoliq_liquidation_size_usd` buckets, and the "
                "format holds one exemplar per bucket series: each scrape carries the latest "
                "order of each exchange, coin, side and size bucket, so a burst within one "
                "scrape interval shows its last order per bucket. Grafana thins dense dots "
                "too: per time step it keeps the largest, then only orders at least two "
                "standard deviations smaller (zoom in for more). The lines are the largest "
                "order of each side in the trailing 5 minutes "
                "(`cryptoliq_liquidation_largest_usd`, exact): the dots lie on or below them. "
                "Prometheus keeps exemplars only with `--enable-feature=exemplar-storage`, in "
                "a ring buffer (`storage.exemplars.max_exemplars`, default 100,000), so old "
                "dots age out before the lines." + SAMPLED_NOTE,
                unit=USD,
            ).with_target(query(f"({largest}) and on (side) {orders}", "{{side}}", exemplars=True))
        )
        .legend(legend(["max", "lastNotNull"]))
        .interval(MIN_BAR_INTERVAL)
        .scale_distribution(
            common_builder.ScaleDistributionConfig()
            .type(common_model.ScaleDistribution.LOG)
            .log(10)
        )
        .axis_soft_min(DEFAULT_EXEMPLAR_MIN_USD)
        .fill_opacity(0)
        .height(10)
        .span(24)
    )


def by_exchange_bars() -> timeseries.Panel:
    """The top exchanges by USD over the range, each on its own with its completeness, and the
    rest as one ``others`` series."""
    top = f"(({USD_BARS}) and on (exchange) {TOP_RANKING})"
    others = (
        f"label_replace(sum(({USD_BARS}) unless on (exchange) {TOP_RANKING}), "
        '"exchange", "others", "", "")'
    )
    return (
        bars_panel(
            "Liquidations by exchange",
            f"USD liquidated per bar, both sides, stacked by exchange: the {TOP_EXCHANGES} "
            "largest over the time range, then the rest as `others`. The legend says whether "
            "an exchange's feed is complete or sampled (a lower bound)." + SAMPLED_NOTE,
            unit=USD,
        )
        .with_target(
            query(f"{top} * on (exchange) {COMPLETENESS}", "{{exchange}} ({{completeness}})")
        )
        .with_target(query(others, "{{exchange}}", ref_id="B"))
        .height(9)
        .span(12)
    )


def per_exchange_table() -> table.Panel:
    """One row per exchange: completeness, whether it is up, and its trailing totals."""
    columns = {"up": "up", "usd_1h": "1h USD", "usd_24h": "24h USD", "orders_24h": "24h orders"}
    panel = (
        table_panel(
            "Per exchange",
            "Every enabled exchange, largest 24 h total first: whether its public feed is "
            "complete or sampled (a sampled exchange's totals are lower bounds), whether it is "
            "up (`cryptoliq_exchange_up`), and its liquidations in the trailing 1 and 24 hours "
            "over the selected coins. An exchange with several feeds (Binance USD-M and "
            "COIN-M, Bybit linear and inverse) is one row; `symbol` tells its markets apart.",
            unit=USD,
        )
        .height(8)
        .span(24)
        .sort_by([common_builder.TableSortByFieldState().display_name("24h USD").desc(desc=True)])
    )

    def window(metric: str, span: str) -> str:
        selector = f'{{window="{span}", {MARKET}}}'
        return f"sum by (exchange) (cryptoliq_liquidations_window_{metric}{selector})"

    up = f"cryptoliq_exchange_up{{{EXCHANGE}}} * on (exchange) {COMPLETENESS}"
    queries = {
        "up": f"min by (exchange, completeness) ({up})",  # every replica serving it (--shard)
        "usd_1h": window("usd", "1h"),
        "usd_24h": window("usd", "24h"),
        "orders_24h": window("orders", "24h"),
    }
    for ref, expr in queries.items():
        panel = panel.with_target(query(expr, ref_id=ref, instant=True, table=True))
    panel = panel.transformations(merge_table(["exchange", "completeness"], columns))
    panel = panel.override_by_name(
        "up", [dashboard_model.DynamicConfigValue(id_val="unit", value="bool_yes_no")]
    )
    return panel.override_by_name(
        "24h orders", [dashboard_model.DynamicConfigValue(id_val="unit", value="short")]
    )


def per_coin_table() -> table.Panel:
    """One row per coin: long and short USD in each trailing window, then the largest order."""
    columns: dict[str, str] = {}
    panel = (
        table_panel(
            "Per coin",
            "USD liquidated per coin in the trailing 1, 4, 12 and 24 hours, longs and shorts, "
            "over the selected exchanges, and the largest single order of the last 24 hours.",
            unit=USD,
        )
        .height(8)
        .span(24)
        .sort_by([common_builder.TableSortByFieldState().display_name("24h long").desc(desc=True)])
    )
    for window in TABLE_WINDOWS:
        for side in ("long", "short"):
            ref = f"{side}_{window}"
            columns[ref] = f"{window} {side}"
            panel = panel.with_target(
                query(
                    "sum by (coin) (cryptoliq_liquidations_window_usd"
                    f'{{window="{window}", side="{side}", {MARKET}}})',
                    ref_id=ref,
                    instant=True,
                    table=True,
                )
            )
    columns["largest_24h"] = "largest order 24h"
    panel = panel.with_target(
        query(
            f'max by (coin) (cryptoliq_liquidation_largest_usd{{window="24h", {MARKET}}})',
            ref_id="largest_24h",
            instant=True,
            table=True,
        )
    )
    panel = panel.transformations(merge_table(["coin"], columns))
    for side, color in SIDE_COLORS.items():
        panel = panel.override_by_regexp(
            f".* {side}",
            [
                fixed_color(color),
                dashboard_model.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-text"}
                ),
            ],
        )
    return panel


def size_heatmap() -> heatmap.Panel:
    """The size histogram as a heatmap: which order sizes dominate, and when."""
    return (
        heatmap.Panel()
        .title("Order size distribution")
        .description(
            "Number of liquidation orders per size bucket (100, 1k, 10k, 100k, 1M, 10M USD) "
            "and per bar, from the `cryptoliq_liquidation_size_usd` histogram. The `heatmap` "
            "query format turns its cumulative `le` buckets into per-bucket counts."
        )
        .datasource(DATASOURCE)
        .interval(MIN_BAR_INTERVAL)
        .with_target(
            query(
                "sum by (le) "
                f"(increase(cryptoliq_liquidation_size_usd_bucket{{{MARKET}}}[$__interval]))",
                "{{le}}",
                heatmap=True,
            )
        )
        .calculate(calculate=False)
        .y_axis(heatmap.YAxisConfig().unit(USD).axis_placement(common_model.AxisPlacement.LEFT))
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common_model.HeatmapCellLayout.LE))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(heatmap_model.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
        )
        .cell_values(heatmap.CellValues().unit("short"))
        .show_legend()
        .height(9)
        .span(12)
    )


def order_rate() -> timeseries.Panel:
    return (
        side_colored(
            timeseries_panel(
                "Liquidation orders per minute",
                "Liquidation orders per minute by side (rate of `cryptoliq_liquidations_total`).",
                unit="short",
            ).with_target(
                query(
                    "60 * sum by (side) "
                    f"(rate(cryptoliq_liquidations_total{{{MARKET}}}[$__rate_interval]))",
                    "{{side}}",
                )
            )
        )
        .height(9)
        .span(12)
    )


def cascade_indicator() -> timeseries.Panel:
    """The quantity the LiquidationCascade alert watches, with its threshold drawn in."""
    panel = timeseries_panel(
        "Cascade indicator: last hour vs its 24 h average",
        "Last hour's liquidations (both sides, all exchanges) divided by the average hourly "
        "amount of the past 24 hours, per coin (recording rule "
        "`coin_window:cryptoliq_liquidations_window_usd:ratio_avg24h`). The LiquidationCascade "
        f"alert fires at {THRESHOLDS.cascade_ratio:g}x (dashed line) when the hour also "
        f"exceeds ${THRESHOLDS.cascade_min_usd / 1e6:g}M.",
        unit="suffix:x",
    ).with_target(
        query(
            "coin_window:cryptoliq_liquidations_window_usd:ratio_avg24h"
            '{window="1h", coin=~"$coin"}',
            "{{coin}}",
        )
    )
    return threshold_line(panel, THRESHOLDS.cascade_ratio).height(9).span(12)


def squeeze_indicator() -> timeseries.Panel:
    """The quantity the Long/ShortSqueeze alerts watch, per side, with the threshold."""
    panel = timeseries_panel(
        "Squeeze indicator: each side's last hour vs its 24 h average",
        "Each side's last hour of liquidations divided by that side's average hourly amount "
        "of the past 24 hours (recording rule "
        "`coin_side_window:cryptoliq_liquidations_window_usd:ratio_avg24h`). LongSqueeze and "
        f"ShortSqueeze fire at {THRESHOLDS.squeeze_ratio:g}x (dashed line) when the side also "
        f"has {THRESHOLDS.squeeze_side_share:.0%} of the hour and "
        f"${THRESHOLDS.squeeze_min_usd / 1e6:g}M.",
        unit="suffix:x",
    ).with_target(
        query(
            "coin_side_window:cryptoliq_liquidations_window_usd:ratio_avg24h"
            '{window="1h", coin=~"$coin"}',
            "{{coin}} {{side}}",
        )
    )
    return threshold_line(panel, THRESHOLDS.squeeze_ratio).height(9).span(12)


def build() -> dashboard_builder.Dashboard:
    board = dashboard(
        UID,
        "Liquidations",
        "Liquidations from cryptoliq-exporter on every enabled venue: totals per side and "
        "window, the orders themselves as they come (exemplars), over time, per exchange "
        "(largest first, the rest as others; sampled feeds marked) and coin, and order sizes.",
        time_from="now-6h",
        variables=[datasource_variable(), exchange_variable(), coin_variable()],
    )
    panels: list[Builder[dashboard_model.Panel]] = [
        window_stat("1h"),
        window_stat("4h"),
        window_stat("24h"),
        largest_order_stat(),
        live_orders(),
        by_side_bars(),
        by_exchange_bars(),
        per_exchange_table(),
        per_coin_table(),
        size_heatmap(),
        order_rate(),
        cascade_indicator(),
        squeeze_indicator(),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board
