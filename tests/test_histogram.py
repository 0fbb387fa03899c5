"""Size histogram: le semantics at the bucket edges."""

from __future__ import annotations

import pytest

from exporter.histogram import SIZE_BUCKETS_USD, SizeHistogram


def test_bucket_bounds_of_the_contract() -> None:
    assert SIZE_BUCKETS_USD == (100.0, 1e3, 1e4, 1e5, 1e6, 1e7)


@pytest.mark.parametrize(
    ("usd", "first_bucket"),
    [
        (0.01, 0),
        (100.0, 0),  # exactly on a bound: counts in that bound's bucket (le)
        (100.000001, 1),
        (999.99, 1),
        (1000.0, 1),
        (1e7, 5),
        (1e7 + 1, 6),  # only +Inf
        (5e8, 6),
    ],
)
def test_value_lands_in_its_cumulative_buckets(usd: float, first_bucket: int) -> None:
    histogram: SizeHistogram[str] = SizeHistogram()
    histogram.observe("k", usd)
    counts = histogram.counts()
    assert counts.bounds[-1] == float("inf")
    expected = [0] * first_bucket + [1] * (7 - first_bucket)
    assert counts.cumulative[0].tolist() == expected
    assert counts.sums[0] == usd


def test_keys_are_independent_and_cumulative_counts_grow() -> None:
    histogram: SizeHistogram[tuple[str, str]] = SizeHistogram()
    for usd in (50.0, 150.0, 5e6, 2e7):
        histogram.observe(("binance", "long"), usd)
    histogram.observe(("okx", "short"), 1e3)
    counts = histogram.counts()
    rows = dict(zip(counts.keys, counts.cumulative.tolist(), strict=True))
    assert rows["binance", "long"] == [1, 2, 2, 2, 2, 3, 4]
    assert rows["okx", "short"] == [0, 1, 1, 1, 1, 1, 1]


def test_rejects_unsorted_bounds() -> None:
    with pytest.raises(ValueError, match="increasing"):
        SizeHistogram([10.0, 5.0])
