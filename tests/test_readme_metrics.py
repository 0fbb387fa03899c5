"""The README's metric table against the metric contract (``exporter.metrics.FAMILIES``): a
family added, renamed or relabelled in code and not in the README fails here."""

from __future__ import annotations

import re
from typing import Final

import pytest

from exporter.metrics import FAMILIES
from tests.monitoring_support import ROOT

README: Final = ROOT / "README.md"
ROW: Final = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<type>[^|]+?) \| (?P<labels>[^|]+?) \|")
NO_LABELS: Final = "—"


def metrics_section(text: str) -> str:
    """The README's "## Metrics" section, up to the next second-level heading."""
    match = re.search(r"^## Metrics\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Metrics' section"
    return match.group(1)


def table(section: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, type, label names) of each row of ``| metric | type | labels | meaning |``."""
    rows = []
    for line in section.splitlines():
        row = ROW.match(line)
        if row is None:
            continue
        labels = row["labels"].strip()
        names = () if labels == NO_LABELS else tuple(n.strip() for n in labels.split(","))
        rows.append((row["name"], row["type"].strip(), names))
    return rows


def test_readme_lists_exactly_the_defined_families() -> None:
    """Names as exposed (counters with ``_total``, ``cryptoliq_build_info``), the type as the
    text format's ``# TYPE`` line has it (an info family is a gauge there), the label names in
    the family's order."""
    rows = table(metrics_section(README.read_text(encoding="utf-8")))
    listed = [name for name, _, _ in rows]
    assert len(listed) == len(set(listed)), "a metric listed twice"
    expected = {f.exposed_name: (f.text_type, f.labels) for f in FAMILIES}
    assert {name: (kind, labels) for name, kind, labels in rows} == expected


@pytest.mark.parametrize(
    ("line", "row"),
    [
        (
            "| `a_total` | counter | exchange, stream | x |",
            ("a_total", "counter", ("exchange", "stream")),
        ),
        ("| `b` | gauge | — | y, z |", ("b", "gauge", ())),
        ("| metric | type | labels | meaning |", None),
    ],
)
def test_table_parsing(line: str, row: tuple[str, str, tuple[str, ...]] | None) -> None:
    assert table(line) == ([row] if row else [])
