"""Prometheus recording and alerting rules, with every threshold taken from ``config.THRESHOLDS``.

Recording rules follow ``level:metric:operations``: ``level`` lists the labels kept
(``instance`` stands for the scrape target, ``job`` and ``instance``; ``market`` for
``exchange``, ``symbol`` and ``coin``), ``metric`` the source metric (without ``_total`` once
rated), ``operations`` what was applied (``sum`` for the aggregation the level implies,
``avg24h`` for a 24 h average over time, ``ratio_avg24h`` for a value divided by it, ``rate15m``
for a per-second rate over 15 minutes). Alerts use the recorded series, so what an alert saw can
be graphed as is. Each group holds the recording rules its alerts read, before them: rules of
one group run in order, so an alert always sees the values recorded in the same evaluation
(across groups it might see the previous one, and promtool's expected values would depend on
group order).

Every alert links its runbook (``runbook_url``): the section of ``docs/monitoring-stack.md``
named after it, under ``config.RUNBOOK_URL``.

The 24 h norm is an average over Prometheus's own history of the recorded 1 h totals, not the
exporter's 24 h window divided by 24: the exporter's windows restart empty with the process,
which would make every restart look like a cascade (1 h = 24 h total for the first hour).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import yaml

from dashboards.config import FRAME_LIMIT, JOB, RUNBOOK_URL, THRESHOLDS, Thresholds

if TYPE_CHECKING:
    from collections.abc import Mapping

SIDE_1H: Final = "coin_side_window:cryptoliq_liquidations_window_usd"
COIN_1H: Final = "coin_window:cryptoliq_liquidations_window_usd"
MARK: Final = "coin:cryptoliq_mark_price_usd:avg"
HEATMAP_TOTAL: Final = "coin:cryptoliq_heatmap_usd:sum"
CLUSTER_DISTANCE: Final = "coin_side_rank:cryptoliq_liquidation_cluster_distance:ratio"

LIQUIDATION_RECORDS: Final = (
    # Liquidations per coin and side, all exchanges: what the market alerts compare.
    (f"{SIDE_1H}:sum", "sum by (coin, side, window) (cryptoliq_liquidations_window_usd)"),
    (f"{COIN_1H}:sum", f"sum by (coin, window) ({SIDE_1H}:sum)"),
    (f"{SIDE_1H}:avg24h", f'avg_over_time({SIDE_1H}:sum{{window="1h"}}[24h])'),
    (f"{COIN_1H}:avg24h", f'avg_over_time({COIN_1H}:sum{{window="1h"}}[24h])'),
    (f"{SIDE_1H}:ratio_avg24h", f'{SIDE_1H}:sum{{window="1h"}} / {SIDE_1H}:avg24h'),
    (f"{COIN_1H}:ratio_avg24h", f'{COIN_1H}:sum{{window="1h"}} / {COIN_1H}:avg24h'),
    (
        f"{SIDE_1H}:share",
        (
            f'{SIDE_1H}:sum{{window="1h"}}\n'
            "  / ignoring (side) group_left ()\n"
            f'{COIN_1H}:sum{{window="1h"}}'
        ),
    ),
)
"""``(record, expr)`` in evaluation order: later rules read earlier ones of the same pass."""

HEATMAP_RECORDS: Final = (
    # Price, open interest and heatmap per coin: the reference points for cluster alerts.
    (MARK, "avg by (coin) (cryptoliq_mark_price_usd)"),
    ("coin:cryptoliq_open_interest_usd:sum", "sum by (coin) (cryptoliq_open_interest_usd)"),
    (HEATMAP_TOTAL, "sum by (coin) (cryptoliq_heatmap_usd)"),
    (
        CLUSTER_DISTANCE,
        (
            f"(cryptoliq_liquidation_cluster_price_usd - on (coin) group_left () {MARK})\n"
            "  / on (coin) group_left ()\n"
            f"{MARK}"
        ),
    ),
)
"""``(record, expr)`` in evaluation order: later rules read earlier ones of the same pass."""

SECONDS_PER_YEAR: Final = 31_536_000
"""365 days: the year funding is annualised over (the venues quote APR on 365 days)."""

FUNDING: Final = "market:cryptoliq_funding_rate:annualised"
FUNDING_COIN: Final = "coin:cryptoliq_funding_rate:annualised_oi_weighted"
OI_COINS: Final = "coin:cryptoliq_open_interest_coins:sum"
BASIS_USD: Final = "market:cryptoliq_basis_usd:mark_minus_index"

# Per-market rules match on every label a market's series carry, job and instance too: two
# exporters scraping one market (an HA pair, a second job) must not meet as many-to-many.
POSITIONING_RECORDS: Final = (
    # Funding per year, whatever the market's interval (1 h, 4 h, 8 h): comparable across venues.
    (
        FUNDING,
        (
            "cryptoliq_funding_rate * on (job, instance, exchange, symbol, coin) "
            f"({SECONDS_PER_YEAR} / cryptoliq_funding_interval_seconds)"
        ),
    ),
    # What the coin's positions pay on average: each market weighted by its open interest, over
    # the markets that report a funding rate only (the others would dilute it towards 0).
    (
        FUNDING_COIN,
        (
            "sum by (coin) (\n"
            f"  {FUNDING}\n"
            "  * on (job, instance, exchange, symbol, coin)\n"
            "  cryptoliq_open_interest_usd\n"
            ")\n"
            "/\n"
            "sum by (coin) (\n"
            "  cryptoliq_open_interest_usd\n"
            "  and on (job, instance, exchange, symbol, coin)\n"
            f"  {FUNDING}\n"
            ")"
        ),
    ),
    # Open interest in coins: positions opened and closed, without the price's moves in it.
    (OI_COINS, "sum by (coin) (cryptoliq_open_interest_coins)"),
    # The perpetual's premium over the venue's spot index, in USD and as a fraction of it.
    (
        BASIS_USD,
        (
            "cryptoliq_mark_price_usd\n"
            "  - on (job, instance, exchange, symbol, coin)\n"
            "cryptoliq_index_price_usd"
        ),
    ),
    (
        "market:cryptoliq_basis:ratio",
        f"{BASIS_USD}\n  / on (job, instance, exchange, symbol, coin)\ncryptoliq_index_price_usd",
    ),
)
"""``(record, expr)`` in evaluation order: later rules read earlier ones of the same pass."""

RATE_WINDOW: Final = "15m"
RATE_WINDOW_SECONDS: Final = 900
MESSAGES: Final = "instance_exchange_stream:cryptoliq_messages:rate15m"
INVALID: Final = "instance_exchange_stream:cryptoliq_invalid_messages:rate15m"
INVALID_SHARE: Final = "instance_exchange_stream:cryptoliq_invalid_messages:ratio_rate15m"

MESSAGE_RECORDS: Final = (
    # Per exchange and stream of each exporter: the reasons of invalid messages summed.
    (
        MESSAGES,
        (
            "sum by (job, instance, exchange, stream) "
            f"(rate(cryptoliq_messages_total[{RATE_WINDOW}]))"
        ),
    ),
    (
        INVALID,
        (
            "sum by (job, instance, exchange, stream) "
            f"(rate(cryptoliq_invalid_messages_total[{RATE_WINDOW}]))"
        ),
    ),
    (INVALID_SHARE, f"{INVALID} / {MESSAGES}"),
)
"""``(record, expr)`` in evaluation order: later rules read earlier ones of the same pass."""


def number(value: float) -> str:
    """A threshold as PromQL and prose print it: ``15000000``, ``0.8``, ``10``."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def usd(value: float) -> str:
    return f"${value / 1e6:g}M"


def minutes(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def per_8h(annualised: float) -> str:
    """An annualised funding rate as the 8-hourly rate the venues quote: 0.5 -> ``0.046%``."""
    return f"{annualised * 8 * 3600 / SECONDS_PER_YEAR * 100:.2g}%"


def last_hour_usd(selector: str) -> str:
    """Go template printing last hour's USD for the alert's coin; ``%s`` in ``selector`` is it.

    The selector goes into a Go raw string (backticks) so that PromQL keeps its double quotes.
    """
    return (
        f"{{{{ with printf `{selector}` $labels.coin | query }}}}"
        "${{ . | first | value | humanize }}{{ end }}"
    )


def runbook(name: str) -> str:
    """The alert's section of docs/monitoring-stack.md: a heading that is the alert's name, whose
    GitHub anchor is the name in lower case."""
    return f"{RUNBOOK_URL}#{name.lower()}"


def alert(
    name: str, expr: str, *, duration: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    """One alerting rule: every alert has a ``for``, a severity, both annotations and its
    runbook."""
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook(name),
        },
    }


def squeeze(name: str, side: str, direction: str, t: Thresholds) -> dict[str, Any]:
    """One side dominating an hour far above its own norm: price moving through its levels."""
    side_1h = f'side="{side}",window="1h"'
    return alert(
        name,
        f"{SIDE_1H}:ratio_avg24h{{{side_1h}}} >= {number(t.squeeze_ratio)}\n"
        "and on (coin, side)\n"
        f"{SIDE_1H}:share{{{side_1h}}} >= {number(t.squeeze_side_share)}\n"
        "and on (coin, side)\n"
        f"{SIDE_1H}:sum{{{side_1h}}} >= {number(t.squeeze_min_usd)}",
        duration=t.squeeze_for,
        severity="warning",
        summary=f"{side.capitalize()} squeeze on {{{{ $labels.coin }}}}",
        description=f"{{{{ $labels.coin }}}} {side}s: "
        + last_hour_usd(f'{SIDE_1H}:sum{{coin="%s",{side_1h}}}')
        + ' liquidated in the last hour, {{ $value | printf "%.1f" }}x their hourly '
        f"average of the past 24 h and at least {percent(t.squeeze_side_share)} of all "
        f"liquidations: the price is {direction} through {side} liquidation levels.",
    )


def liquidation_alerts(t: Thresholds) -> list[dict[str, Any]]:
    cascade = alert(
        "LiquidationCascade",
        f'{COIN_1H}:ratio_avg24h{{window="1h"}} >= {number(t.cascade_ratio)}\n'
        "and on (coin)\n"
        f'{COIN_1H}:sum{{window="1h"}} >= {number(t.cascade_min_usd)}',
        duration=t.cascade_for,
        severity="critical",
        summary="Liquidation cascade on {{ $labels.coin }}",
        description="{{ $labels.coin }}: "
        + last_hour_usd(f'{COIN_1H}:sum{{coin="%s",window="1h"}}')
        + ' liquidated in the last hour, {{ $value | printf "%.1f" }}x the hourly average '
        f"of the past 24 h (alert at {number(t.cascade_ratio)}x and {usd(t.cascade_min_usd)}).",
    )
    squeezes = [
        squeeze("LongSqueeze", "long", "falling", t),
        squeeze("ShortSqueeze", "short", "rising", t),
    ]
    return [cascade, *squeezes]


def cluster_alert(t: Thresholds) -> dict[str, Any]:
    return alert(
        "LiquidationClusterNearPrice",
        "max by (coin, side) (\n"
        "  cryptoliq_liquidation_cluster_usd\n"
        "  and on (coin, side, rank)\n"
        f"  (abs({CLUSTER_DISTANCE}) <= {number(t.cluster_distance)})\n"
        ")\n"
        ">= on (coin) group_left ()\n"
        f"({number(t.cluster_share)} * {HEATMAP_TOTAL})",
        duration=t.cluster_for,
        severity="warning",
        summary="Large {{ $labels.side }} liquidation cluster near the {{ $labels.coin }} price",
        description="An estimated ${{ $value | humanize }} of {{ $labels.coin }} "
        "{{ $labels.side }} positions would be liquidated within "
        f"{percent(t.cluster_distance)} "
        '{{ if eq $labels.side "long" }}below{{ else }}above{{ end }} the mark price, '
        f"at least {percent(t.cluster_share)} of all the USD on the heatmap.",
    )


def exporter_alerts(t: Thresholds) -> list[dict[str, Any]]:
    target = f'up{{job="{JOB}"}}'
    return [
        alert(
            "CryptoliqExporterDown",
            f"{target} == 0 or absent({target})",
            duration=t.exporter_down_for,
            severity="critical",
            summary="cryptoliq exporter down",
            description="{{ with $labels.instance }}Prometheus cannot scrape the exporter at "
            f"{{{{ . }}}}{{{{ else }}}}Prometheus has no {JOB} target{{{{ end }}}}: no "
            "liquidation, open-interest or health data is coming in.",
        ),
        alert(
            "CryptoliqExchangeFeedDown",
            "cryptoliq_exchange_up == 0",
            duration=t.feed_down_for,
            severity="warning",
            summary="{{ $labels.exchange }} feed down",
            description="The {{ $labels.exchange }} liquidation stream is not subscribed or its "
            f"open-interest polls fail, for {t.feed_down_for} now. The exporter keeps "
            "retrying; see cryptoliq_reconnects_total and the exporter log.",
        ),
        alert(
            "CryptoliqFeedStale",
            "time() - cryptoliq_last_message_timestamp_seconds"
            f'{{stream="liquidations"}} > {t.stale_liquidations_seconds}\n'
            "or\n"
            "time() - cryptoliq_last_message_timestamp_seconds"
            f'{{stream="open_interest"}} > {t.stale_open_interest_seconds}\n'
            "or\n"
            "time() - cryptoliq_last_message_timestamp_seconds"
            f'{{stream="positioning"}} > {t.stale_positioning_seconds}',
            duration=t.stale_for,
            severity="warning",
            summary="{{ $labels.exchange }} {{ $labels.stream }} feed stale",
            description="No {{ $labels.stream }} message from {{ $labels.exchange }} for "
            "{{ $value | humanizeDuration }} (limits: "
            f"{minutes(t.stale_liquidations_seconds)} for liquidations, "
            f"{minutes(t.stale_open_interest_seconds)} for open interest, "
            f"{minutes(t.stale_positioning_seconds)} for long/short ratios).",
        ),
        alert(
            "CryptoliqOpenInterestFrozen",
            'increase(cryptoliq_heatmap_stale_readings_total{source="live"}[10m]) > 0',
            duration="0m",
            severity="warning",
            summary="{{ $labels.exchange }} open interest frozen upstream",
            description="Open interest from {{ $labels.exchange }} has not changed for longer "
            "than heatmap_stale_after_seconds: a value carried forward upstream. The heatmap "
            "opens and closes nothing from it until it moves again (the exporter log names the "
            "market); the open-interest gauges still show the frozen value.",
        ),
    ]


LOST_COUNT: Final = '{{ $value | printf "%.0f" }}'
"""The alert's value, ``increase`` of a counter: a whole number give or take extrapolation."""


def lost_reasons(window: str) -> dict[str, str]:
    """Every ``reason`` of ``cryptoliq_liquidations_lost_total``: what happened, what to do."""
    return {
        # Counted once per frame: the liquidations in a refused frame cannot be counted.
        "frame_too_large": f"{LOST_COUNT} WebSocket frame(s) over the client's {FRAME_LIMIT} "
        f"limit in the last {window}, a burst from the venue. The client refused each, so the "
        "liquidations in it are not counted (a frame counts once, however many it held). If it "
        f"keeps happening, the venue's bursts have outgrown the {FRAME_LIMIT} limit: report it.",
        "internal_error": f"{LOST_COUNT} liquidation(s) in the last {window} on which the "
        "exporter's own parser or core failed: a bug, not bad input (that counts as invalid "
        "messages). Find the traceback in the exporter log and report it.",
    }


def lost_alert(t: Thresholds) -> dict[str, Any]:
    """Any lost liquidation: the exchange's totals are understated by at least that much.

    ``increase`` reads a counter reset (the exporter restarted) and a counter that stays where it
    is as no increase; the counters start at 0 for every exchange and reason, so the first loss
    after a start counts too.
    """
    reasons = "".join(
        f'{{{{ {"if" if index == 0 else "else if"} eq $labels.reason "{reason}" }}}}{text}'
        for index, (reason, text) in enumerate(lost_reasons(t.lost_window).items())
    )
    return alert(
        "CryptoliqLiquidationsLost",
        f"increase(cryptoliq_liquidations_lost_total[{t.lost_window}]) > 0",
        duration=t.lost_for,
        severity="warning",
        summary="{{ $labels.exchange }} liquidations lost ({{ $labels.reason }})",
        description="{{ $labels.exchange }} liquidation totals are understated: "
        + reasons
        + f"{{{{ else }}}}{LOST_COUNT} lost in the last {t.lost_window} "
        "({{ $labels.reason }}); see the exporter log.{{ end }}",
    )


def restarts_alert(t: Thresholds) -> dict[str, Any]:
    """A supervised task dying again and again: a crash loop, not a one-off bug."""
    return alert(
        "CryptoliqTaskCrashLooping",
        f"increase(cryptoliq_task_restarts_total[{t.restarts_window}]) >= {t.restarts_min}",
        duration=t.restarts_for,
        severity="warning",
        summary="cryptoliq task {{ $labels.task }} keeps dying",
        description="The supervised task {{ $labels.task }} died and was restarted "
        '{{ $value | printf "%.0f" }} '
        f"times in the last {t.restarts_window} (alert at {t.restarts_min}): it fails again and "
        "again. While it is down its work stops: the feeds of the exchange of that name, the "
        "demo's market (demo) or the state snapshots (snapshots). The exporter log has each "
        "traceback.",
    )


def invalid_alert(t: Thresholds) -> dict[str, Any]:
    """A stream whose messages the exporter rejects: a venue's format changed, or its markets."""
    return alert(
        "CryptoliqInvalidMessages",
        f"{INVALID_SHARE} >= {number(t.invalid_share)}\n"
        "and\n"
        f"{INVALID} >= {t.invalid_min_count} / {RATE_WINDOW_SECONDS}",
        duration=t.invalid_for,
        severity="warning",
        summary="{{ $labels.exchange }} {{ $labels.stream }}: invalid messages",
        description="{{ $value | humanizePercentage }} of the {{ $labels.stream }} messages from "
        f"{{{{ $labels.exchange }}}} in the last {RATE_WINDOW} were invalid and skipped (alert "
        f"at {percent(t.invalid_share)} and {t.invalid_min_count} messages): what they carried "
        "is not counted. cryptoliq_invalid_messages_total says why (reason), the exporter log "
        "shows examples.",
    )


def backfill_alert(t: Thresholds) -> dict[str, Any]:
    """Markets whose history could not be fetched at start-up.

    The backfill starts before the exporter serves its first scrape, so a failure can already be
    in the first sample Prometheus takes, where ``increase`` sees no increase: the second arm
    takes a count above 0 of an exporter that Prometheus did not scrape ``backfill_window`` ago.
    """
    window = t.backfill_window
    return alert(
        "CryptoliqBackfillFailed",
        f"increase(cryptoliq_backfill_failures_total[{window}]) > 0\n"
        "or\n"
        "(\n"
        "  cryptoliq_backfill_failures_total > 0\n"
        f"  unless cryptoliq_backfill_failures_total offset {window}\n"
        ")",
        duration=t.backfill_for,
        severity="info",
        summary="{{ $labels.exchange }} history backfill failed",
        description='{{ $value | printf "%.0f" }} market(s) of {{ $labels.exchange }} got no '
        "history at start-up: their heatmap starts from live readings and lacks the positions "
        "opened before (liquidation totals and open interest are not affected). The exporter log "
        "names each market and the error.",
    )


def oi_rise(window: str) -> str:
    """Go template printing the rise of the alert's coin's open interest over ``window``."""
    selector = f'{OI_COINS}{{coin="%[1]s"}}'
    return (
        f"{{{{ with printf `{selector} / {selector} offset {window} - 1` $labels.coin | query }}}}"
        "{{ . | first | value | humanizePercentage }}{{ end }}"
    )


def squeeze_setup(name: str, side: str, t: Thresholds) -> dict[str, Any]:
    """One side crowded: paying extreme funding to hold while the coin's positions grow."""
    long = side == "long"
    threshold = t.funding_annualised if long else -t.funding_annualised
    payer, payee, move = ("longs", "shorts", "fall") if long else ("shorts", "longs", "rise")
    return alert(
        name,
        f"{FUNDING_COIN} {'>=' if long else '<='} {number(threshold)}\n"
        "and on (coin)\n"
        f"{OI_COINS} / {OI_COINS} offset {t.oi_rise_window} >= {number(1 + t.oi_rise)}",
        duration=t.squeeze_setup_for,
        severity="info",
        summary=f"{side.capitalize()} squeeze setup on {{{{ $labels.coin }}}}",
        description=f"{{{{ $labels.coin }}}} {payer} are crowded: funding is "
        "{{ $value | humanizePercentage }} a year, weighted by open interest "
        f"({payer} pay {payee}; alert at {percent(threshold)}, {per_8h(threshold)} per 8 h "
        "against the usual 0.01%), while open interest in coins rose "
        + oi_rise(t.oi_rise_window)
        + f" in {t.oi_rise_window} (alert at {percent(t.oi_rise)}). A {move} in the price could "
        f"force them out in a cascade: a {side} squeeze.",
    )


def positioning_alerts(t: Thresholds) -> list[dict[str, Any]]:
    return [
        squeeze_setup("LongSqueezeSetup", "long", t),
        squeeze_setup("ShortSqueezeSetup", "short", t),
    ]


def records(rules: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    return [{"record": record, "expr": expr} for record, expr in rules]


def rule_groups(t: Thresholds = THRESHOLDS) -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "cryptoliq.liquidations",
                "rules": [*records(LIQUIDATION_RECORDS), *liquidation_alerts(t)],
            },
            {"name": "cryptoliq.heatmap", "rules": [*records(HEATMAP_RECORDS), cluster_alert(t)]},
            {
                "name": "cryptoliq.positioning",
                "rules": [*records(POSITIONING_RECORDS), *positioning_alerts(t)],
            },
            {
                "name": "cryptoliq.exporter",
                "rules": [
                    *records(MESSAGE_RECORDS),
                    *exporter_alerts(t),
                    lost_alert(t),
                    restarts_alert(t),
                    invalid_alert(t),
                    backfill_alert(t),
                ],
            },
        ]
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks so the rule files read like PromQL."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(document: Mapping[str, Any]) -> str:
    header = (
        "# Generated by `python -m dashboards` from dashboards/rules.py and dashboards/config.py\n"
        "# (thresholds). Do not edit: change the Python and regenerate.\n"
    )
    return header + yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True
    )
