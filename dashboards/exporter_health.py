"""Exporter health: is every feed up and fresh, how often does it fail, and what does it cost.

Failure counters (reconnects, invalid messages) only have series once something failed; their
panels add zero series for the exchanges in view so that "no failures" reads as 0, not as
"No data", which looks the same as a broken query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.common import (
    COIN,
    EXCHANGE,
    MARKET,
    RATIO,
    SECONDS,
    bars_panel,
    coin_variable,
    dashboard,
    datasource_variable,
    exchange_variable,
    query,
    stat_panel,
    threshold_line,
    timeseries_panel,
    value_mapping,
)
from dashboards.config import FRAME_LIMIT, JOB, THRESHOLDS

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import dashboard as dashboard_builder
    from grafana_foundation_sdk.builders import stat, timeseries
    from grafana_foundation_sdk.cog.builder import Builder

UID: Final = "cryptoliq-exporter-health"
TARGET: Final = f'job="{JOB}"'
ZERO_PER_STREAM: Final = (
    f"sum by (exchange, stream) (0 * cryptoliq_last_message_timestamp_seconds{{{EXCHANGE}}})"
)
"""A zero for every (exchange, stream) that has reported at least once."""


def exchange_up() -> stat.Panel:
    return (
        stat_panel(
            "Exchange feeds",
            "UP while the exchange's liquidation stream is subscribed and its latest "
            "open-interest poll succeeded (`cryptoliq_exchange_up`). Its long/short-ratio "
            "poll (stream `positioning`) is context and does not count: its failures show "
            "as that stream's reconnects and invalid messages below. With shards (--shard), "
            "an exchange is UP when every replica serving some of its markets says so.",
            unit="none",
        )
        .with_target(
            query(
                f"min by (exchange) (cryptoliq_exchange_up{{{EXCHANGE}}})",
                "{{exchange}}",
                instant=True,
            )
        )
        .mappings(value_mapping({"1": ("UP", "green"), "0": ("DOWN", "red")}))
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .height(4)
        .span(12)
    )


def exporter_up() -> stat.Panel:
    return (
        stat_panel(
            "Exporter",
            f"Whether Prometheus can scrape the exporter (`up{{{TARGET}}}`), per instance.",
            unit="none",
        )
        .with_target(query(f"up{{{TARGET}}}", "{{instance}}", instant=True))
        .mappings(value_mapping({"1": ("UP", "green"), "0": ("DOWN", "red")}))
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .height(4)
        .span(6)
    )


def version() -> stat.Panel:
    return (
        stat_panel("Version", "Exporter version (`cryptoliq_build_info`).", unit="none")
        .with_target(
            query("count by (version) (cryptoliq_build_info)", "{{version}}", instant=True)
        )
        .text_mode(common_model.BigValueTextMode.NAME)
        .height(4)
        .span(6)
    )


def backfill_progress() -> stat.Panel:
    return (
        stat_panel(
            "Start-up backfill",
            "Share of each exchange's markets whose open-interest history (the heatmap's past) "
            "has been fetched or given up since start-up "
            "(`cryptoliq_backfill_progress_ratio`). The feeds do not wait for it: an exchange "
            "is up as soon as its stream and first poll are. With shards, the slowest replica's.",
            unit=RATIO,
        )
        .with_target(
            query(
                f"min by (exchange) (cryptoliq_backfill_progress_ratio{{{EXCHANGE}}})",
                "{{exchange}}",
                instant=True,
            )
        )
        .height(4)
        .span(12)
    )


def heatmap_ready() -> stat.Panel:
    return (
        stat_panel(
            "Heatmap ready",
            "READY once every market of the coin has its history in the heatmap "
            "(`cryptoliq_heatmap_ready`); WAITING while its live readings wait for the "
            "backfill, when the heatmap of that coin shows nothing or only the past.",
            unit="none",
        )
        .with_target(
            query(
                f"min by (coin) (cryptoliq_heatmap_ready{{{COIN}}})",
                "{{coin}}",
                instant=True,
            )
        )
        .mappings(value_mapping({"1": ("READY", "green"), "0": ("WAITING", "orange")}))
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .height(4)
        .span(12)
    )


def message_age() -> timeseries.Panel:
    panel = timeseries_panel(
        "Time since last message",
        "Seconds since the last frame (data, acknowledgement or pong) of each liquidation "
        "stream and the last answer of each open-interest and long/short-ratio (`positioning`) "
        "poll. The CryptoliqFeedStale alert "
        f"fires above {THRESHOLDS.stale_liquidations_seconds} s for liquidations (dashed line) "
        f"and {THRESHOLDS.stale_open_interest_seconds} s for open interest.",
        unit=SECONDS,
    ).with_target(
        query(
            f"time() - cryptoliq_last_message_timestamp_seconds{{{EXCHANGE}}}",
            "{{exchange}} {{stream}}",
        )
    )
    return threshold_line(panel, THRESHOLDS.stale_liquidations_seconds).height(8).span(12)


def message_rate() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Messages per second",
            "WebSocket frames, open-interest readings and long/short ratios received per "
            "second, valid or not.",
            unit="short",
        )
        .with_target(
            query(
                "sum by (exchange, stream) "
                f"(rate(cryptoliq_messages_total{{{EXCHANGE}}}[$__rate_interval]))",
                "{{exchange}} {{stream}}",
            )
        )
        .height(8)
        .span(12)
    )


def reconnects() -> timeseries.Panel:
    return (
        bars_panel(
            "Reconnects and retried polls",
            "WebSocket reconnections and retried open-interest and long/short-ratio polls per "
            "bar. Zero lines are "
            "drawn for streams that never failed.",
            unit="short",
        )
        .with_target(
            query(
                "sum by (exchange, stream) "
                f"(increase(cryptoliq_reconnects_total{{{EXCHANGE}}}[$__interval]))"
                f" or {ZERO_PER_STREAM}",
                "{{exchange}} {{stream}}",
            )
        )
        .height(8)
        .span(8)
    )


def invalid_messages() -> timeseries.Panel:
    return (
        bars_panel(
            "Invalid messages by reason",
            "Messages rejected and skipped per bar, by exchange and reason (`malformed`, "
            "`missing_field`, `not_finite`, ...). A zero line (reason `none`) is drawn for "
            "exchanges without rejections.",
            unit="short",
        )
        .with_target(
            query(
                "sum by (exchange, reason) "
                f"(increase(cryptoliq_invalid_messages_total{{{EXCHANGE}}}[$__interval]))"
                " or label_replace(sum by (exchange) "
                f'(0 * cryptoliq_exchange_up{{{EXCHANGE}}}), "reason", "none", "", "")',
                "{{exchange}} {{reason}}",
            )
        )
        .height(8)
        .span(8)
    )


def lost_liquidations() -> timeseries.Panel:
    # The exporter reports 0 for every exchange and reason from the start: no zero series needed.
    return (
        bars_panel(
            "Lost liquidations by reason",
            "Liquidations a venue sent that the exporter could not count, per bar, by exchange "
            "and reason. `frame_too_large`: a WebSocket frame over the client's "
            f"{FRAME_LIMIT} limit (a burst), counted once per frame however many liquidations "
            "it held; `internal_error`: an entry the exporter's own parser or core failed on, "
            "a bug (see the exporter log). Anything above 0 means that exchange's liquidation "
            "totals are understated; the CryptoliqLiquidationsLost alert fires on it.",
            unit="short",
        )
        .with_target(
            query(
                "sum by (exchange, reason) "
                f"(increase(cryptoliq_liquidations_lost_total{{{EXCHANGE}}}[$__interval]))",
                "{{exchange}} {{reason}}",
            )
        )
        .height(8)
        .span(8)
    )


def restarts_and_drops() -> timeseries.Panel:
    return (
        bars_panel(
            "Task restarts and late liquidations",
            "Supervised tasks (each exchange's collector, the demo, the state snapshots) that "
            "died and were restarted, whatever the exchange selection, and liquidations older "
            "than 24 h on arrival (counted in totals, not in windows), per bar.",
            unit="short",
        )
        .with_target(
            query(
                f"sum by (task) (increase(cryptoliq_task_restarts_total{{{TARGET}}}[$__interval]))",
                "{{task}} restarts",
                ref_id="restarts",
            )
        )
        .with_target(
            query(
                "sum by (exchange) "
                f"(increase(cryptoliq_liquidations_dropped_late_total{{{EXCHANGE}}}[$__interval]))",
                "{{exchange}} late",
                ref_id="late",
            )
        )
        .height(8)
        .span(8)
    )


def stale_readings() -> timeseries.Panel:
    # The exporter reports 0 for every enabled exchange from the start: no zero series needed.
    return (
        bars_panel(
            "Stale open-interest readings",
            "Open-interest readings the heatmap model set aside, per bar, by exchange "
            "(`cryptoliq_heatmap_stale_readings_total`): the exchange's open interest had not "
            "changed for too long (stale data upstream), or the reading was the step when it "
            "moved again. Such readings neither open nor close positions, so while they last "
            "that exchange's open interest does not move the heatmap.",
            unit="short",
        )
        .with_target(
            query(
                "sum by (exchange) "
                f"(increase(cryptoliq_heatmap_stale_readings_total{{{EXCHANGE}}}[$__interval]))",
                "{{exchange}}",
            )
        )
        .height(8)
        .span(8)
    )


def price_spread() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Mark price spread across exchanges",
            "(highest - lowest) / average mark price per coin over the selected exchanges. "
            "Exchanges agree within a few basis points; a feed that stopped updating shows up "
            "here as a growing spread.",
            unit=RATIO,
        )
        .with_target(
            query(
                f"(max by (coin) (cryptoliq_mark_price_usd{{{MARKET}}})"
                f" - min by (coin) (cryptoliq_mark_price_usd{{{MARKET}}}))"
                f" / avg by (coin) (cryptoliq_mark_price_usd{{{MARKET}}})",
                "{{coin}}",
            )
        )
        .decimals(4)
        .height(8)
        .span(8)
    )


def scrape_time() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Scrape time",
            "Time the exporter took to build its previous /metrics response, and the whole "
            "scrape as Prometheus measured it.",
            unit=SECONDS,
        )
        .with_target(
            query(
                f"cryptoliq_scrape_render_seconds{{{TARGET}}}",
                "render {{instance}}",
                ref_id="render",
            )
        )
        .with_target(
            query(f"scrape_duration_seconds{{{TARGET}}}", "scrape {{instance}}", ref_id="scrape")
        )
        .height(8)
        .span(8)
    )


def samples() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Samples per scrape",
            "Series in one scrape: grows with markets, windows and heatmap bins.",
            unit="short",
        )
        .with_target(query(f"scrape_samples_scraped{{{TARGET}}}", "{{instance}}"))
        .height(8)
        .span(8)
    )


def process() -> timeseries.Panel:
    return (
        timeseries_panel(
            "Exporter process",
            "Resident memory (left) and CPU cores used (right).",
            unit="bytes",
        )
        .with_target(
            query(f"process_resident_memory_bytes{{{TARGET}}}", "memory {{instance}}", ref_id="rss")
        )
        .with_target(
            query(
                f"rate(process_cpu_seconds_total{{{TARGET}}}[$__rate_interval])",
                "cpu {{instance}}",
                ref_id="cpu",
            )
        )
        .override_by_query(
            "cpu",
            [
                dashboard_model.DynamicConfigValue("unit", "percentunit"),
                dashboard_model.DynamicConfigValue("custom.axisPlacement", "right"),
            ],
        )
        .height(8)
        .span(8)
    )


def build() -> dashboard_builder.Dashboard:
    board = dashboard(
        UID,
        "Exporter health",
        "Health of cryptoliq-exporter and its exchange feeds: up, freshness, message rates, "
        "reconnects, rejected messages, lost liquidations, data quality (stale open interest, "
        "price spread) and the exporter's own cost.",
        time_from="now-3h",
        variables=[datasource_variable(), exchange_variable(), coin_variable()],
    )
    panels: list[Builder[dashboard_model.Panel]] = [
        exchange_up(),
        exporter_up(),
        version(),
        backfill_progress(),
        heatmap_ready(),
        message_age(),
        message_rate(),
        reconnects(),
        invalid_messages(),
        lost_liquidations(),
        restarts_and_drops(),
        stale_readings(),
        price_spread(),
        scrape_time(),
        samples(),
        process(),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board
