"""A fuzz run: over 10,000 malformed frames mixed with valid ones, through the fake exchange,
ccxt.pro and the collectors. Nothing crashes, every valid liquidation is counted exactly once,
every malformed frame is counted once by reason, and the logs stay rate-limited."""

from __future__ import annotations

import json
import logging
import random
import time
from typing import TYPE_CHECKING

import pytest

from exporter.events import SIDES
from exporter.health import Stream
from exporter.venues import exchange_label
from tests.collector_harness import (
    VENUE_TRANSPORTS,
    RecordingCore,
    eventually,
    make_collector,
    running,
)
from tests.venues import case_of

if TYPE_CHECKING:
    from exporter.config import Transport
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration

MALFORMED_PER_VENUE = 3400  # x every venue: over 10,000 for the first three alone
VALID_SHARE = 0.2
BAD_VALUES: list[object] = [
    "NaN",
    "-1",
    "0",
    "1e30",
    "abc",
    "",
    [],
    {},
    True,
    None,
    -5,
    1e300,
    "inf",
]


def mutate(template: str, venue: str, rng: random.Random) -> str | bytes:
    """One malformed frame built from a valid one."""
    kind = rng.randrange(6)
    if kind == 0:  # cut short: invalid JSON
        return template[: rng.randrange(1, len(template) - 1)]
    if kind == 1:  # binary junk (not UTF-8)
        return bytes([0xFF, 0xFE]) + rng.randbytes(rng.randrange(1, 40))
    if kind == 2:  # valid JSON, not an exchange frame
        return rng.choice(["[1, 2]", "42", '"x"', "null", '{"foo": 1}', "{}"])
    frame = json.loads(template)
    case = case_of(venue)
    entry = case.entry_of(frame)
    if kind == 3:  # a field with a bad value
        entry[rng.choice(case.fields)] = rng.choice(BAD_VALUES)
    elif kind == 4:  # a field missing
        field = rng.choice(case.fields)
        if isinstance(entry, list):  # an array entry (Bitfinex): cut it short at the field
            del entry[int(field) :]
        else:
            del entry[field]
    else:  # a market nobody lists
        case.spoil_market(frame)
    return json.dumps(frame)


@pytest.mark.parametrize(("venue", "transport"), VENUE_TRANSPORTS)
async def test_fuzzed_frames_are_counted_and_skipped(
    venue: str,
    transport: Transport,
    caplog: pytest.LogCaptureFixture,
    fake_exchange: FakeExchangeFactory,
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    rng = random.Random(f"fuzz-{venue}")
    fake = await fake_exchange(venue)
    core = RecordingCore()
    symbols = fake.symbols[:2]  # BTC, ETH
    label = exchange_label(venue)
    async with running(make_collector(fake, core, symbols, transport=transport)):
        await fake.wait_subscribed(symbols)
        await eventually(lambda: core.health.is_up(venue), "up")
        now = int(time.time() * 1000)
        template = fake.publish_liquidation(symbols[0], "long", 80_000.0, 0.5, now).raw
        assert isinstance(template, str)
        valid = 1
        malformed = 0
        while malformed < MALFORMED_PER_VENUE:
            if rng.random() < VALID_SHARE:
                symbol = rng.choice(symbols)
                price = 80_000.0 if symbol.startswith("BTC") else 3_000.0
                side = rng.choice(SIDES)
                # Distinct times: equal liquidations would rightly be de-duplicated.
                fake.publish_liquidation(symbol, side, price, 0.5, now + valid)
                valid += 1
            else:
                await fake.send_raw(mutate(template, venue, rng))
                malformed += 1
        await eventually(lambda: len(core.liquidations) >= valid, "every valid frame", 60)
        invalid = core.health.snapshot().invalid

        def counted() -> int:
            return sum(
                n
                for (e, s, _), n in core.health.snapshot().invalid.items()
                if e == label and s is Stream.LIQUIDATIONS
            )

        await eventually(lambda: counted() >= malformed, "every malformed frame counted", 30)
        invalid = core.health.snapshot().invalid
        assert core.health.is_up(venue)  # the stream survived all of it
    assert len(core.liquidations) == valid
    assert counted() == malformed, dict(invalid)
    reasons = {r.value for (_, _, r) in invalid}
    assert {"malformed", "unknown_symbol", "missing_field"} <= reasons, reasons
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 15, [r.getMessage() for r in warnings][:20]
