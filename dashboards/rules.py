"""Prometheus recording and alerting rules, with every threshold taken from ``config.THRESHOLDS``.

Recording rules follow ``level:metric:operations``: ``level`` lists the labels kept, ``metric``
the source metric, ``operations`` what was applied (``sum`` for the aggregation the level
implies, ``avg24h`` for a 24 h average over time, ``ratio_avg24h`` for a value divided by it).
Alerts use the recorded series, so what an alert saw can be graphed as is. Each group holds the
recording rules its alerts read, before them: rules of one group run in order, so an alert
always sees the values recorded in the same evaluation (across groups it might see the previous
one, and promtool's expected values would depend on group order).

The 24 h norm is an average over Prometheus's own history of the recorded 1 h totals, not the
exporter's 24 h window divided by 24: the exporter's windows restart empty with the process,
which would make every restart look like a cascade (1 h = 24 h total for the first hour).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import yaml

from dashboards.config import FRAME_LIMIT, JOB, THRESHOLDS, Thresholds

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


def number(value: float) -> str:
    """A threshold as PromQL and prose print it: ``15000000``, ``0.8``, ``10``."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def usd(value: float) -> str:
    return f"${value / 1e6:g}M"


def minutes(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def last_hour_usd(selector: str) -> str:
    """Go template printing last hour's USD for the alert's coin; ``%s`` in ``selector`` is it.

    The selector goes into a Go raw string (backticks) so that PromQL keeps its double quotes.
    """
    return (
        f"{{{{ with printf `{selector}` $labels.coin | query }}}}"
        "${{ . | first | value | humanize }}{{ end }}"
    )


def alert(
    name: str, expr: str, *, duration: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    """One alerting rule: every alert has a ``for``, a severity and both annotations."""
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
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
            f'{{stream="open_interest"}} > {t.stale_open_interest_seconds}',
            duration=t.stale_for,
            severity="warning",
            summary="{{ $labels.exchange }} {{ $labels.stream }} feed stale",
            description="No {{ $labels.stream }} message from {{ $labels.exchange }} for "
            "{{ $value | humanizeDuration }} (limits: "
            f"{minutes(t.stale_liquidations_seconds)} for liquidations, "
            f"{minutes(t.stale_open_interest_seconds)} for open interest).",
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
            {"name": "cryptoliq.exporter", "rules": [*exporter_alerts(t), lost_alert(t)]},
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
