"""Market context: funding, long/short positioning and the basis, next to the liquidations.

Crowded positioning is what a cascade feeds on: longs paying high funding while open interest
grows (the squeeze-setup alerts), a lopsided long/short ratio, a perpetual far above its index.
The funding-vs-liquidations pair puts the coin's funding and its liquidations on one time axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.common import (
    COIN,
    MARKET,
    RATIO,
    SECONDS,
    USD,
    coin_variable,
    dashboard,
    datasource_variable,
    exchange_variable,
    merge_table,
    query,
    stat_panel,
    table_panel,
    threshold_line,
    thresholds,
    timeseries_panel,
)
from dashboards.config import THRESHOLDS
from dashboards.liquidations import by_side_bars

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import dashboard as dashboard_builder
    from grafana_foundation_sdk.builders import stat, table, timeseries
    from grafana_foundation_sdk.cog.builder import Builder

UID: Final = "cryptoliq-market-context"
FUNDING: Final = "market:cryptoliq_funding_rate:annualised"
FUNDING_COIN: Final = "coin:cryptoliq_funding_rate:annualised_oi_weighted"
BASIS_USD: Final = "market:cryptoliq_basis_usd:mark_minus_index"
BASIS_RATIO: Final = "market:cryptoliq_basis:ratio"
"""Recording rules (``rules.py``) this dashboard reads."""

COUNTDOWN: Final = "dthms"
"""Grafana's ``hh:mm:ss`` duration unit, for the time left to the next funding payment."""
RATE_DECIMALS: Final = 4
"""Funding per interval is a few hundredths of a percent (0.0100 %)."""
Y_AXIS_WIDTH: Final = 80
"""The funding and liquidation panels reserve the same width for their y axis, so that their
time axes line up."""
LONG_SHORT_SOURCES: Final = {
    "accounts": ("accounts", "accounts net long over accounts net short (Binance, Bybit, OKX)"),
    "top_accounts": (
        "top trader accounts",
        "the same among the venue's top traders (Binance, OKX)",
    ),
    "top_positions": (
        "top trader positions",
        "the top traders' long over short position size (Binance, OKX)",
    ),
}
"""``source`` label value -> (title, what the ratio counts, and who publishes it)."""
FUNDING_NOTE: Final = (
    " Funding is paid at each funding time by one side to the other: positive, longs pay "
    "shorts. The venues charge 0.01 % per 8 h (10.95 % a year) while the perpetual trades at "
    "its index."
)
BY_MARKET: Final = "exchange, symbol, coin"
"""The labels of one market, without the exporter's ``job`` and ``instance``."""


def per_market(metric: str, *, matchers: str = MARKET) -> str:
    return f"avg by ({BY_MARKET}) ({metric}{{{matchers}}})"


def oi_weighted_now() -> stat.Panel:
    return (
        stat_panel(
            "Funding · open-interest weighted, a year",
            "What each coin's positions pay in funding, annualised: every market's annualised "
            "rate weighted by its open interest, over every exchange that reports one (the "
            f"recording rule `{FUNDING_COIN}`, which the LongSqueezeSetup and "
            "ShortSqueezeSetup alerts read; the exchange selection does not apply). Red from "
            f"{THRESHOLDS.funding_annualised:.0%} either way, where they fire if open interest "
            f"also rose {THRESHOLDS.oi_rise:.0%} in {THRESHOLDS.oi_rise_window}." + FUNDING_NOTE,
            unit=RATIO,
            sparkline=True,
        )
        .with_target(query(f"{FUNDING_COIN}{{{COIN}}}", "{{coin}}"))
        .thresholds(
            thresholds(
                (None, "red"),
                (-THRESHOLDS.funding_annualised, "green"),
                (THRESHOLDS.funding_annualised, "red"),
            )
        )
        .decimals(1)
        .height(5)
        .span(12)
    )


def next_funding() -> stat.Panel:
    return (
        stat_panel(
            "Next funding in",
            "Time to each exchange's next funding payment, the earliest of its selected "
            "markets (`cryptoliq_funding_next_timestamp_seconds - time()`).",
            unit=COUNTDOWN,
        )
        .with_target(
            query(
                f"min by (exchange) (cryptoliq_funding_next_timestamp_seconds{{{MARKET}}})"
                " - time()",
                "{{exchange}}",
                instant=True,
            )
        )
        .color_mode(common_model.BigValueColorMode.NONE)
        .height(5)
        .span(12)
    )


def funding_over_time() -> timeseries.Panel:
    """Top half of the funding-vs-liquidations pair: the alerts' funding, per coin."""
    panel = timeseries_panel(
        "Funding vs liquidations: funding, open-interest weighted, a year",
        "Each coin's open-interest-weighted funding, annualised, over every exchange "
        f"(`{FUNDING_COIN}`), on the same time axis as the coin's liquidations below: "
        "crowded funding that unwinds in a burst of long (red) or short (green) liquidations "
        "is a squeeze. The dashed lines are the squeeze-setup alerts' thresholds "
        f"(±{THRESHOLDS.funding_annualised:.0%}). Select one coin to read the two one to "
        "one." + FUNDING_NOTE,
        unit=RATIO,
    ).with_target(query(f"{FUNDING_COIN}{{{COIN}}}", "{{coin}}"))
    return (
        threshold_line(panel, -THRESHOLDS.funding_annualised, THRESHOLDS.funding_annualised)
        .decimals(1)
        .axis_width(Y_AXIS_WIDTH)
        .axis_placement(common_model.AxisPlacement.LEFT)
        .height(8)
        .span(24)
    )


def liquidations_over_time() -> timeseries.Panel:
    """Bottom half of the funding-vs-liquidations pair: the Liquidations dashboard's bars."""
    return (
        by_side_bars()
        .title("Funding vs liquidations: liquidations by side")
        .axis_width(Y_AXIS_WIDTH)
        .axis_placement(common_model.AxisPlacement.LEFT)
        .height(8)
        .span(24)
    )


def funding_table() -> table.Panel:
    """One row per market: the current rate, annualised, predicted, when and how often."""
    columns = {
        "rate": "rate / interval",
        "annualised": "a year",
        "predicted": "predicted / interval",
        "next": "next funding in",
        "interval": "interval",
    }
    panel = (
        table_panel(
            "Funding by market",
            "Every market's funding rate of the current interval (`cryptoliq_funding_rate`, "
            "paid at the next funding time), the same annualised over its interval "
            f"(`{FUNDING}`: comparable across venues that charge every 1, 4 or 8 h), the "
            "venue's predicted rate of the interval after where it publishes one, the time "
            "to the next payment and the interval. Largest annualised first." + FUNDING_NOTE,
            unit=RATIO,
        )
        .decimals(RATE_DECIMALS)
        .height(8)
        .span(24)
        .sort_by([common_builder.TableSortByFieldState().display_name("a year").desc(desc=True)])
        .override_by_name(
            "a year", [dashboard_model.DynamicConfigValue(id_val="decimals", value=1)]
        )
        .override_by_name(
            "next funding in", [dashboard_model.DynamicConfigValue(id_val="unit", value=COUNTDOWN)]
        )
        .override_by_name(
            "interval", [dashboard_model.DynamicConfigValue(id_val="unit", value=SECONDS)]
        )
    )
    queries = {
        "rate": per_market("cryptoliq_funding_rate"),
        "annualised": per_market(FUNDING),
        "predicted": per_market("cryptoliq_funding_predicted_rate"),
        "next": f"{per_market('cryptoliq_funding_next_timestamp_seconds')} - time()",
        "interval": per_market("cryptoliq_funding_interval_seconds"),
    }
    for ref, expr in queries.items():
        panel = panel.with_target(query(expr, ref_id=ref, instant=True, table=True))
    return panel.transformations(merge_table(BY_MARKET.split(", "), columns))


def annualised_by_market() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Funding by market, a year",
            f"Each market's funding rate annualised over its interval (`{FUNDING}`), so "
            "that venues charging every 1, 4 or 8 h compare." + FUNDING_NOTE,
            unit=RATIO,
        )
        .with_target(query(per_market(FUNDING), "{{exchange}} {{symbol}}"))
        .decimals(1)
        .height(8)
        .span(12)
    )


def rate_and_predicted() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Funding rate per interval, current and predicted",
            "Each market's funding rate of the current interval (`cryptoliq_funding_rate`, "
            "solid) and the venue's predicted rate of the interval after (dashed, "
            "`cryptoliq_funding_predicted_rate`, where published). Per interval: a 1 h rate "
            "and an 8 h rate of the same size are not the same cost (see the annualised "
            "panel).",
            unit=RATIO,
        )
        .with_target(query(per_market("cryptoliq_funding_rate"), "{{exchange}} {{symbol}}"))
        .with_target(
            query(
                per_market("cryptoliq_funding_predicted_rate"),
                "{{exchange}} {{symbol}} predicted",
                ref_id="B",
            )
        )
        .override_by_regexp(
            ".* predicted$",
            [
                dashboard_model.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                )
            ],
        )
        .decimals(RATE_DECIMALS)
        .height(8)
        .span(12)
    )


def long_short(source: str) -> timeseries.Panel:
    title, counts = LONG_SHORT_SOURCES[source]
    panel = timeseries_panel(
        f"Long/short ratio · {title}",
        f'The venue\'s long/short ratio (`cryptoliq_long_short_ratio{{source="{source}"}}`): '
        f"{counts}, over its statistics `period` (5 minutes). Above 1 (the dashed line) more "
        "long than short; a lopsided ratio is a crowded side.",
        unit="none",
    ).with_target(
        query(
            f'avg by (exchange, symbol) (cryptoliq_long_short_ratio{{source="{source}", '
            f"{MARKET}}})",
            "{{exchange}} {{symbol}}",
        )
    )
    return threshold_line(panel, 1.0, color="text").decimals(2).height(8).span(8)


def basis_ratio() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Basis, % of the index",
            "Mark price minus index price as a fraction of the index price, per market "
            f"(`{BASIS_RATIO}`): the perpetual's premium over the venue's spot reference. "
            "Funding follows it: a persistent premium is what makes longs pay.",
            unit=RATIO,
        )
        .with_target(query(per_market(BASIS_RATIO), "{{exchange}} {{symbol}}"))
        .decimals(3)
        .height(8)
        .span(12)
    )


def basis_usd() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Basis in USD",
            f"Mark price minus index price per market, in USD (`{BASIS_USD}`).",
            unit=USD,
        )
        .with_target(query(per_market(BASIS_USD), "{{exchange}} {{symbol}}"))
        .height(8)
        .span(12)
    )


def prices_table() -> table.Panel:
    columns = {
        "mark": "mark price",
        "index": "index price",
        "basis_usd": "basis",
        "basis_ratio": "basis %",
    }
    panel = (
        table_panel(
            "Mark and index price",
            "Every market's mark price, the venue's index price (`cryptoliq_index_price_usd`, "
            "its spot reference) and the basis between them, in USD and as a fraction of the "
            "index.",
            unit=USD,
        )
        .height(8)
        .span(24)
        .override_by_name(
            "basis %",
            [
                dashboard_model.DynamicConfigValue(id_val="unit", value=RATIO),
                dashboard_model.DynamicConfigValue(id_val="decimals", value=3),
            ],
        )
    )
    queries = {
        "mark": per_market("cryptoliq_mark_price_usd"),
        "index": per_market("cryptoliq_index_price_usd"),
        "basis_usd": per_market(BASIS_USD),
        "basis_ratio": per_market(BASIS_RATIO),
    }
    for ref, expr in queries.items():
        panel = panel.with_target(query(expr, ref_id=ref, instant=True, table=True))
    return panel.transformations(merge_table(BY_MARKET.split(", "), columns))


def build() -> dashboard_builder.Dashboard:
    board = dashboard(
        UID,
        "Market context",
        "Funding (per interval, annualised, open-interest weighted, predicted, next payment), "
        "long/short ratios and the basis per exchange and coin, and funding against "
        "liquidations on one time axis.",
        time_from="now-24h",
        variables=[datasource_variable(), exchange_variable(), coin_variable()],
    )
    panels: list[Builder[dashboard_model.Panel]] = [
        oi_weighted_now(),
        next_funding(),
        funding_over_time(),
        liquidations_over_time(),
        funding_table(),
        annualised_by_market(),
        rate_and_predicted(),
        *(long_short(source) for source in LONG_SHORT_SOURCES),
        basis_ratio(),
        basis_usd(),
        prices_table(),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board
