"""Which markets one exporter replica serves when N replicas split them (``--shard I/N``).

The rule, the same in every replica and across restarts: a market belongs to shard
``1 + (H mod N)``, where ``H`` is the first 8 bytes (big-endian) of the BLAKE2b digest of
``"<exchange label>\\0<unified symbol>"`` (e.g. ``binance\\0BTC/USD:BTC`` for Binance COIN-M):
a series' own ``exchange`` and ``symbol`` labels say which replica serves it. It needs no
coordination; going from N to N + 1 replicas moves about N / (N + 1) of the markets.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

MAX_SHARDS: Final = 64
_SHARD = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count <= MAX_SHARDS:
            raise ValueError(f"expected I/N with 1 <= I <= N <= {MAX_SHARDS}")

    @property
    def whole(self) -> bool:
        """One replica serves every market."""
        return self.count == 1

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, exchange: str, symbol: str) -> bool:
        """Whether this shard serves ``symbol`` of ``exchange`` (the ``exchange`` label)."""
        return self.whole or shard_of(exchange, symbol, self.count) == self.index

    def __str__(self) -> str:
        return self.label


WHOLE: Final = Shard()


def shard_of(exchange: str, symbol: str, count: int) -> int:
    """The shard (1..count) of a market under the documented rule."""
    digest = hashlib.blake2b(f"{exchange}\0{symbol}".encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % count


def parse_shard(text: str) -> Shard:
    """``"2/3"`` -> ``Shard(2, 3)``; ValueError saying what is expected otherwise."""
    match = _SHARD.match(text)
    if match is None:
        raise ValueError(f"expected I/N with 1 <= I <= N <= {MAX_SHARDS}, e.g. 1/3")
    return Shard(int(match.group(1)), int(match.group(2)))
