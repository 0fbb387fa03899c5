"""Open interest: how much is at stake per exchange and coin, and how it changes.

Open interest that builds up is the fuel of the next cascade; open interest that drops sharply
together with liquidations is a cascade happening.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.common import (
    MARKET,
    RATIO,
    USD,
    bars_panel,
    coin_variable,
    dashboard,
    datasource_variable,
    exchange_variable,
    merge_table,
    query,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import dashboard as dashboard_builder
    from grafana_foundation_sdk.builders import stat, table, timeseries
    from grafana_foundation_sdk.cog.builder import Builder

UID: Final = "cryptoliq-open-interest"
OI: Final = f"cryptoliq_open_interest_usd{{{MARKET}}}"


def change(by: str, window: str) -> str:
    """Change of open interest over ``window`` as a fraction of its value ``window`` ago.

    ``delta`` over a range uses the samples in it, so with less history than ``window`` (a fresh
    Prometheus) it is the change over the history there is rather than nothing.
    """
    return f"sum by ({by}) (delta({OI}[{window}])) / sum by ({by}) ({OI} - delta({OI}[{window}]))"


def totals() -> stat.Panel:
    return (
        stat_panel(
            "Open interest",
            "Open interest in USD per coin over the selected exchanges.",
            unit=USD,
            sparkline=True,
        )
        .with_target(query(f"sum by (coin) ({OI})", "{{coin}}"))
        .height(5)
        .span(12)
    )


def change_stat(window: str) -> stat.Panel:
    return (
        stat_panel(
            f"Change · {window}",
            f"Change of open interest per coin over the last {window}, relative to its value "
            f"{window} ago (less history: since the history starts).",
            unit=RATIO,
        )
        .with_target(query(change("coin", window), "{{coin}}", instant=True))
        .thresholds(thresholds((None, "red"), (0, "green")))
        .decimals(2)
        .height(5)
        .span(6)
    )


def by_market() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Open interest by exchange and coin",
            "Open interest in USD of each market.",
            unit=USD,
        )
        .with_target(query(f"sum by (exchange, coin) ({OI})", "{{exchange}} {{coin}}"))
        .height(9)
        .span(12)
    )


def changes_over_time() -> timeseries.Panel:
    return (
        bars_panel(
            "Open interest change per interval",
            "USD added (up) or closed (down) per bar and coin: the value at the end of each "
            "`$__interval` minus the value at its start.",
            unit=USD,
        )
        .with_target(
            query(
                f"sum by (coin) ({OI}) - sum by (coin) ({OI} offset $__interval)",
                "{{coin}}",
            )
        )
        .height(9)
        .span(12)
    )


def in_coins() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Open interest in coins",
            "Open interest in coins of the base currency: unlike USD, it does not move with "
            "the price, so it shows positions opened and closed.",
            unit="short",
        )
        .with_target(
            query(
                f"sum by (exchange, coin) (cryptoliq_open_interest_coins{{{MARKET}}})",
                "{{exchange}} {{coin}}",
            )
        )
        .height(9)
        .span(12)
    )


def markets_table() -> table.Panel:
    columns = {
        "usd": "open interest",
        "coins": "coins",
        "price": "mark price",
        "change_1h": "change 1h",
        "change_24h": "change 24h",
    }
    panel = (
        table_panel(
            "Markets", "Open interest, mark price and relative change of every market.", unit=USD
        )
        .height(9)
        .span(12)
        .override_by_name("coins", [dashboard_model.DynamicConfigValue("unit", "short")])
        .override_by_regexp("change.*", [dashboard_model.DynamicConfigValue("unit", RATIO)])
    )
    for ref, expr in (
        ("usd", f"sum by (exchange, coin) ({OI})"),
        ("coins", f"sum by (exchange, coin) (cryptoliq_open_interest_coins{{{MARKET}}})"),
        ("price", f"avg by (exchange, coin) (cryptoliq_mark_price_usd{{{MARKET}}})"),
        ("change_1h", change("exchange, coin", "1h")),
        ("change_24h", change("exchange, coin", "24h")),
    ):
        panel = panel.with_target(query(expr, ref_id=ref, instant=True, table=True))
    return panel.transformations(merge_table(["exchange", "coin"], columns))


def build() -> dashboard_builder.Dashboard:
    board = dashboard(
        UID,
        "Open interest",
        "Open interest per exchange and coin, in USD and in coins, and how it changes.",
        time_from="now-24h",
        variables=[datasource_variable(), exchange_variable(), coin_variable()],
    )
    panels: list[Builder[dashboard_model.Panel]] = [
        totals(),
        change_stat("1h"),
        change_stat("24h"),
        by_market(),
        changes_over_time(),
        in_coins(),
        markets_table(),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board
