"""Health per venue, read per exchange: the feeds of one exchange (Binance USD-M and COIN-M)
are one exchange to the metrics. Up only while every feed is, counters summed, the latest
message of either, the backfill as far as the least advanced feed, sampled if either is."""

from __future__ import annotations

from exporter.events import Reason
from exporter.health import Health, LostReason, Stream


def test_two_feeds_of_one_exchange_read_as_one() -> None:
    clock = [100.0]
    health = Health(("binance", "binance_coinm", "bybit"), lambda: clock[0])
    for venue in ("binance", "binance_coinm", "bybit"):
        health.mark_up(venue, Stream.LIQUIDATIONS)
        health.mark_up(venue, Stream.OPEN_INTEREST)
    health.message("binance", Stream.LIQUIDATIONS, 3)
    clock[0] = 200.0
    health.message("binance_coinm", Stream.LIQUIDATIONS, 2)
    health.invalid("binance", Stream.LIQUIDATIONS, Reason.MALFORMED)
    health.invalid("binance_coinm", Stream.LIQUIDATIONS, Reason.MALFORMED)
    health.lost("binance_coinm", LostReason.INTERNAL_ERROR)
    health.duplicate("binance")
    health.backfill_progress("binance", 4, 4)
    health.backfill_progress("binance_coinm", 1, 4)
    health.mark_down("binance_coinm", Stream.OPEN_INTEREST)

    snap = health.snapshot()
    assert snap.exchanges == ("binance", "bybit")
    assert snap.up == {"binance": False, "bybit": True}  # COIN-M's poll is down
    assert snap.messages == {("binance", Stream.LIQUIDATIONS): 5}
    assert snap.last_message_s == {("binance", Stream.LIQUIDATIONS): 200.0}
    assert snap.invalid == {("binance", Stream.LIQUIDATIONS, Reason.MALFORMED): 2}
    assert snap.lost == {("binance", LostReason.INTERNAL_ERROR): 1}
    assert snap.duplicates == {"binance": 1}
    assert snap.backfill_progress == {"binance": 0.25, "bybit": 0.0}
    assert snap.completeness == {"binance": "sampled", "bybit": "complete"}
    # Restarts stay per task: each feed's collector is its own.
    assert snap.restarts == {"binance": 0, "binance_coinm": 0, "bybit": 0}
