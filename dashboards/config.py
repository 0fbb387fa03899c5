"""The one place for alert thresholds and the identities dashboards, rules and provisioning share.

Alerts (``rules.py``) and dashboard threshold lines (``liquidations.py``, ``exporter_health.py``)
read their numbers from ``THRESHOLDS``; change a value here, run ``python -m dashboards``, and the
rules, the dashboards and the promtool expectations in ``tests/promtool/`` that quote it must move
together (the promtool tests are hand-written on purpose, so a changed threshold is a visible diff).

Market thresholds were picked from ``tests/data/btc_liquidations_1h_usd_2025-11_2026-05.csv``
(4316 hourly BTC liquidation totals across all exchanges, 2025-11-23 .. 2026-05-22, from a public
aggregator). Statistics quoted below come from that file. Two things to keep in mind:

- By default the exporter sees three venues (Binance, Bybit, OKX), and Binance's stream is
  sampled (at most one order per symbol per second), so it sees less than the aggregator. USD
  floors below assume it sees about half, and are set to half of the aggregator-wide level they
  were derived from. With every venue enabled it sees more (Bitget is sampled too), so the floors
  are crossed somewhat more often; they were not re-derived for that (no per-venue history).
- The floors are calibrated on BTC. ETH liquidations run at a similar scale; smaller coins (SOL)
  cross the floors only in their largest events. Ratios are scale-free and apply to every coin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

JOB: Final = "cryptoliq"
"""Prometheus ``job`` of the exporter (``provisioning/prometheus/prometheus.yml``)."""

DATASOURCE_UID: Final = "cryptoliq-prometheus"
"""uid of the provisioned Prometheus datasource (``provisioning/grafana/datasources/``)."""

DATASOURCE_NAME: Final = "Prometheus"

TAG: Final = "cryptoliq"
"""Every dashboard carries this tag; the dashboards' link bar lists dashboards by it."""

RUNBOOK_URL: Final = (
    "https://github.com/cryptoliq/cryptoliq-exporter/blob/main/docs/monitoring-stack.md"
)
"""Where the alerts' runbooks live: every alert's ``runbook_url`` is this plus ``#`` and its name
in lower case, the anchor of its section in ``docs/monitoring-stack.md`` (Runbooks). Point it at
your own copy (fork, wiki mirror) and regenerate; ``tests/test_rules.py`` checks the anchors."""

FRAME_LIMIT: Final = "10 MiB"
"""ccxt's WebSocket client refuses larger frames (``max_msg_size``, fixed in ccxt); the exporter
counts each as a lost liquidation (``reason="frame_too_large"``)."""


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds and durations. Field docs say what the number means and why it is that."""

    cascade_ratio: float = 10.0
    """Last hour's liquidations (both sides) as a multiple of the hourly average of the past 24 h.

    In the data, this ratio has median 0.28, p95 4.9, p99 10.7; it reached 10 in 1.3 % of hours.
    Together with ``cascade_min_usd`` it fired in 21 episodes in 5.9 months (3.6 a month)."""

    cascade_min_usd: float = 15e6
    """Floor on last hour's liquidations for a cascade: $30M aggregator-wide (p99 of hourly totals
    is $27M, 1.9 % of hours exceed $20M), halved for the venues the exporter sees."""

    squeeze_ratio: float = 5.0
    """One side's last hour as a multiple of that side's hourly average of the past 24 h (p95 of
    the long-side ratio is 5.9, of the short side 5.7)."""

    squeeze_side_share: float = 0.8
    """Minimum share of last hour's liquidations on the squeezed side. Large hours are one-sided:
    in 3 of 4 of the 225 hours above $10M the dominant side had more than 92 % of the USD."""

    squeeze_min_usd: float = 10e6
    """Floor on the squeezed side's last hour: $20M aggregator-wide, halved. With the ratio and
    share above it fired 6.3 times a month for longs and 3.2 times for shorts in the data."""

    cluster_distance: float = 0.01
    """A cluster counts as near when its price is within this fraction of the mark price."""

    cluster_share: float = 0.075
    """A near cluster is large when its bin holds at least this share of all the USD on the coin's
    heatmap (both sides). Relative to the model's own total so that it does not depend on how the
    model is scaled or on the coin. With the default grid (242 bins per side) a uniform map puts
    0.2 % in a bin; in the demo the five largest bins per side held 4-9 % each and the largest of
    each coin 6.6-9 %, so 7.5 % means one of the very largest clusters on the map. Provisional:
    tune against a few weeks of live output."""

    stale_liquidations_seconds: int = 900
    """No frame at all on a liquidation stream for this long. Bybit and OKX answer an application
    ping every 18 s; Binance's pings are WebSocket control frames that are not counted, so a quiet
    Binance stream of a few symbols only shows data frames and can be silent for minutes."""

    stale_open_interest_seconds: int = 180
    """No open-interest poll answer for this long: 12 missed polls at the default 15 s interval
    (raise it if ``poll_interval_seconds`` is raised above a minute)."""

    stale_positioning_seconds: int = 1200
    """No long/short-ratio poll answer for this long: 3 missed polls at the default 300 s
    ``positioning_interval_seconds`` plus a poll's own time (the ratios shown are that old)."""

    cascade_for: str = "2m"
    squeeze_for: str = "2m"
    cluster_for: str = "5m"
    """Clusters move with the price; a cluster must stay near for 5 minutes to be worth a look."""
    feed_down_for: str = "5m"
    """The collectors retry with backoff capped at 60 s; 5 minutes is several failed retries."""
    stale_for: str = "2m"
    exporter_down_for: str = "2m"
    """Eight failed scrapes at the 15 s scrape interval."""
    lost_window: str = "10m"
    """Any increase of ``cryptoliq_liquidations_lost_total`` over this window is an alert: every
    loss understates the totals, so there is no threshold above zero. The alert stays firing for
    this long after the last loss, so losses a few minutes apart (oversized frames come with a
    venue's bursts) make one alert rather than a flapping one, and an isolated loss is still on
    Alertmanager's page for a while; a longer window would only delay the resolved notice."""
    lost_for: str = "0m"
    """A lost liquidation is a fact, not a reading that may recover: waiting would only delay
    the alert, and ``increase`` over ``lost_window`` already holds it that long."""

    restarts_window: str = "15m"
    restarts_min: int = 3
    """Restarts of one supervised task within ``restarts_window`` that make it a crash loop.
    The supervisor restarts a dead task after 0.5-1 s, doubling up to 30-60 s, and starts again
    from the bottom once a run lasted over 60 s: a task that dies at once restarts some 20 times
    in 15 minutes, one that dies every few minutes 3-5 times; a rare bug hit once restarts once,
    logs its traceback and carries on (the Exporter health dashboard shows it), which is no page.
    ``increase`` extrapolates a little above the true count, never below, so the threshold is a
    whole number (``>= 3``): ``> 2`` would let two restarts read as 2.03 and fire."""
    restarts_for: str = "0m"
    """A restart is a fact, and ``restarts_window`` already holds the alert for 15 minutes."""

    invalid_share: float = 0.01
    """Invalid messages as a share of all messages of an exchange's stream over 15 minutes. A
    healthy feed sends well-formed messages for markets the exporter knows, so the share sits at
    0; 1 % is past a stray frame and far below a format change, which rejects most of a stream.
    Invalid counts liquidation entries and messages count frames, so a frame of several bad
    entries counts more than once and the share can exceed 100 %."""

    invalid_min_count: int = 5
    """Floor on the invalid messages themselves in the 15 minutes (a rate of 5 per 900 s), so one
    bad message on a quiet stream (one in 20 is 5 %) does not page. A floor on the invalid count
    rather than on all messages: a quiet stream whose every message is rejected still alerts."""
    invalid_for: str = "5m"
    """The 15-minute rate already smooths; 5 more minutes keeps a single burst from paging at
    once while a format change, which persists, fires within 20 minutes."""

    backfill_window: str = "1h"
    """Any increase of ``cryptoliq_backfill_failures_total`` over this window is an alert: the
    backfill runs once, at start-up, so the alert clears an hour after the last failure."""
    backfill_for: str = "0m"

    funding_annualised: float = 0.5
    """Open-interest-weighted funding, annualised, at which a coin's positioning is crowded:
    ``>= 0.5`` for longs (``LongSqueezeSetup``), ``<= -0.5`` for shorts (``ShortSqueezeSetup``).
    Binance, Bybit and OKX charge 0.01 % per 8 h when the perpetual trades at its index
    (10.95 % a year): funding = premium + clamp(0.01 % - premium, -0.05 %, +0.05 %) leaves it at
    0.01 % while the average premium stays within -0.04 % .. +0.06 %. 50 % a year is 0.046 %
    per 8 h, 4.6x that baseline: the perpetual averaging about 0.1 % above the index over the
    interval; -0.046 % needs it about 0.1 % below, so one magnitude is equally extreme both
    ways, although the baseline is positive. The repository has no funding history to count
    episodes in; provisional, like ``cluster_share``: tune against live output."""

    oi_rise: float = 0.05
    """Rise of the coin's open interest in coins over ``oi_rise_window`` that means positions are
    being added. In the shared Binance BTCUSDT 5-minute data (2026-06-07 .. 06-22, without its
    frozen stretch: 2,629 4-hour windows) the 4 h change in coins has p95 +1.35 %, p99 +2.0 %
    and a largest rise of +3.4 %: +5 % is beyond anything in that fortnight for BTC and still
    rare for more volatile coins. In coins, not USD, because USD open interest rises with the
    price alone, and longs crowd in rallies."""
    oi_rise_window: str = "4h"
    squeeze_setup_for: str = "15m"
    """The funding rate of the current interval moves with the premium all the time; a quarter
    of an hour of crowding is a setup, a spike is not."""


THRESHOLDS: Final = Thresholds()
