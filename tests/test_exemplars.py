"""The live liquidation feed: every liquidation of at least ``exemplar_min_usd`` becomes the
OpenMetrics exemplar of its size-histogram bucket (the latest per bucket), within the format's
128-character label limit; the Prometheus text format carries none."""

from __future__ import annotations

import re

from exporter.core import EXEMPLAR_LABEL_CHARACTERS, Core, liquidation_exemplar
from exporter.exposition import Exposition
from exporter.histogram import Exemplar
from tests.conftest import FakeClock, make_liquidation

EXCHANGES = ("binance", "okx")
EXEMPLAR = re.compile(
    r'^(\S+_bucket\{[^}]*le="([^"]+)"[^}]*\}) \S+ # \{([^}]*)\} (\S+) (\S+)$', re.M
)


def bucket_exemplars(text: str) -> dict[str, tuple[str, float, float]]:
    """Series -> (exemplar labels, value, timestamp) of every bucket line with an exemplar."""
    return {m[1]: (m[3], float(m[4]), float(m[5])) for m in EXEMPLAR.finditer(text)}


def test_sizeable_liquidations_are_the_latest_exemplar_of_their_bucket(clock: FakeClock) -> None:
    core = Core(EXCHANGES, clock, exemplar_min_usd=10_000.0)
    small = make_liquidation(clock, notional_usd=9_999.0, quantity=0.125)
    first = make_liquidation(clock, notional_usd=25_000.0, price=80_000.5, quantity=0.3125)
    clock.now += 2.5
    latest = make_liquidation(clock, notional_usd=50_000.0, price=79_000.25, quantity=0.625)
    whale = make_liquidation(
        clock, exchange="okx", side="short", notional_usd=2_500_000.0, price=81_000.0, quantity=30
    )
    for event in (small, first, latest, whale):
        core.record_liquidation(event)
    text = Exposition().render_snapshot(core.snapshot(), openmetrics_format=True)
    exemplars = bucket_exemplars(text)
    series = "cryptoliq_liquidation_size_usd_bucket"
    long_100k = f'{series}{{coin="BTC",exchange="binance",le="100000.0",side="long"}}'
    short_10m = f'{series}{{coin="BTC",exchange="okx",le="1e+07",side="short"}}'
    assert exemplars == {
        long_100k: (
            'exchange="binance",price="79000.25",side="long",symbol="BTC/USDT:USDT"',
            50_000.0,
            latest.timestamp_ms / 1000,
        ),
        short_10m: (
            'exchange="okx",price="81000.0",side="short",symbol="BTC/USDT:USDT"',
            2_500_000.0,
            whale.timestamp_ms / 1000,
        ),
    }
    # The same scrape in the text format: the same samples, no exemplars.
    plain = Exposition().render_snapshot(core.snapshot())
    assert " # {" not in plain
    assert plain.count(f"{series}{{") == text.count(f"{series}{{")


def test_a_threshold_of_none_turns_exemplars_off(clock: FakeClock) -> None:
    core = Core(EXCHANGES, clock, exemplar_min_usd=None)
    core.record_liquidation(make_liquidation(clock, notional_usd=5e6, quantity=62.5))
    text = Exposition().render_snapshot(core.snapshot(), openmetrics_format=True)
    assert bucket_exemplars(text) == {}


def test_exemplar_labels_stay_within_128_characters(clock: FakeClock) -> None:
    """OpenMetrics caps an exemplar's label names and values at 128 characters together: a
    symbol that would pass it is left out, never cut (a cut symbol names another market)."""
    event = make_liquidation(clock, symbol="BTC/USDT:USDT")
    assert liquidation_exemplar(event) == Exemplar(
        (
            ("exchange", "binance"),
            ("price", "80000.0"),
            ("side", "long"),
            ("symbol", "BTC/USDT:USDT"),
        ),
        40_000.0,
        event.timestamp_ms / 1000,
    )
    long_symbol = "X" * 80 + "/USDT:USDT"
    event = make_liquidation(clock, symbol=long_symbol, exchange="bybit")
    labels = dict(liquidation_exemplar(event).labels)
    assert "symbol" not in labels
    assert labels == {"exchange": "bybit", "price": "80000.0", "side": "long"}
    fits = "Y" * (EXEMPLAR_LABEL_CHARACTERS - 50)
    exemplar = liquidation_exemplar(make_liquidation(clock, symbol=fits))
    assert sum(len(n) + len(v) for n, v in exemplar.labels) <= EXEMPLAR_LABEL_CHARACTERS
    assert dict(exemplar.labels)["symbol"] == fits


def test_an_older_order_never_replaces_a_newer_exemplar(clock: FakeClock) -> None:
    """Two feeds of one exchange (Binance USD-M and COIN-M) interleave: a late, older order in
    the bucket keeps the newer exemplar (Prometheus would drop the older one)."""
    core = Core(EXCHANGES, clock)
    newer = make_liquidation(clock, notional_usd=20_000.0, quantity=0.25)
    older = make_liquidation(
        clock,
        symbol="BTC/USD:BTC",
        notional_usd=30_000.0,
        quantity=0.375,
        timestamp_ms=newer.timestamp_ms - 1_000,
    )
    core.record_liquidation(newer)
    core.record_liquidation(older)
    (labels, value, timestamp) = next(
        iter(
            bucket_exemplars(
                Exposition().render_snapshot(core.snapshot(), openmetrics_format=True)
            ).values()
        )
    )
    assert (value, timestamp) == (20_000.0, newer.timestamp_ms / 1000)
    assert 'symbol="BTC/USDT:USDT"' in labels
