"""``le`` of the size histogram, as a real ``prometheus_client.Histogram`` with the same buckets
writes it (``1e+06``, not ``1000000.0``): otherwise the series differ from any other client's
and a query with ``le="1e+06"`` finds nothing. Both renderers, both exposition formats."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from exporter.app import Exporter, create_app
from exporter.config import Config
from exporter.core import Core
from exporter.exposition import negotiate, reference_body
from exporter.histogram import SIZE_BUCKETS_USD
from exporter.metrics import SIZE_HISTOGRAM
from tests.conftest import FakeClock, make_liquidation

if TYPE_CHECKING:
    from pytest_aiohttp import AiohttpClient

# On a bound, between bounds, above the last: every bucket gets a different count.
SIZES_USD = (50.0, 100.0, 999.0, 5e4, 1e6, 3e6, 1e7, 2e7)
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
BUCKET_LINE = re.compile(
    r"^(?P<name>\w+_bucket)\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.MULTILINE
)
LABEL = re.compile(r'(\w+)="([^"]*)"')


def bucket_lines(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], str]]:
    """(name, sorted labels as written, value as written) of every ``_bucket`` sample."""
    return {
        (m["name"], tuple(sorted(LABEL.findall(m["labels"]))), m["value"])
        for m in BUCKET_LINE.finditer(text)
    }


def client_python_text(*, openmetrics_format: bool) -> str:
    registry = CollectorRegistry()
    histogram = Histogram(
        SIZE_HISTOGRAM.name,
        SIZE_HISTOGRAM.documentation,
        SIZE_HISTOGRAM.labels,
        registry=registry,
        buckets=SIZE_BUCKETS_USD,
    )
    for usd in SIZES_USD:
        histogram.labels(exchange="binance", coin="BTC", side="long").observe(usd)
    encoder = openmetrics.generate_latest if openmetrics_format else generate_latest
    return encoder(registry).decode()


async def exporter_texts(aiohttp_client: AiohttpClient, accept: str | None) -> list[str]:
    """/metrics of the real app (the fast renderer) and the reference rendering of the same
    snapshot through prometheus_client (``SnapshotCollector``)."""
    clock = FakeClock()
    # No exemplars: the client's histogram here has none to compare them with (tests/
    # test_exemplars.py and the byte-for-byte test in test_exposition.py cover them).
    core = Core(("binance",), clock, exemplar_min_usd=None)
    for usd in SIZES_USD:
        core.record_liquidation(make_liquidation(clock, notional_usd=usd, quantity=usd / 8e4))
    app = create_app(Exporter(config=Config(), core=core))
    client = await aiohttp_client(app)
    response = await client.get("/metrics", headers={"Accept": accept} if accept else {})
    assert response.status == 200
    reference = reference_body(core.snapshot(), negotiate(accept), None).decode()
    return [await response.text(), reference]


@pytest.mark.parametrize("accept", [None, OPENMETRICS], ids=["text", "openmetrics"])
async def test_le_values_match_client_pythons_histogram(
    aiohttp_client: AiohttpClient, accept: str | None
) -> None:
    expected = bucket_lines(client_python_text(openmetrics_format=accept is not None))
    assert len(expected) == len(SIZE_BUCKETS_USD) + 1
    les = {dict(labels)["le"] for _, labels, _ in expected}
    assert {"1e+06", "1e+07", "+Inf"} <= les
    for text in await exporter_texts(aiohttp_client, accept):
        assert bucket_lines(text) == expected
        assert "1000000.0" not in text
