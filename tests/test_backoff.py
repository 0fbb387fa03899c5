"""Backoff: grows, is capped, is jittered (no two exporters in lockstep), resets on success."""

from __future__ import annotations

import random

from exporter.backoff import Backoff


def test_delays_grow_to_the_cap_with_jitter() -> None:
    backoff = Backoff(initial=1.0, cap=60.0, factor=2.0, jitter=0.5, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays):
        base = min(60.0, 2.0**n)
        assert base * 0.5 <= delay <= base
    assert max(delays) <= 60.0
    assert len({round(d, 6) for d in delays[7:]}) == len(delays[7:])  # jittered at the cap


def test_two_exporters_do_not_retry_in_lockstep() -> None:
    a = Backoff(rng=random.Random(1))
    b = Backoff(rng=random.Random(2))
    assert [a.next_delay() for _ in range(5)] != [b.next_delay() for _ in range(5)]


def test_reset_starts_over() -> None:
    backoff = Backoff(initial=1.0, cap=60.0, jitter=0.0)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0
