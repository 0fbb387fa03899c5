"""Snapshots of the rolling windows and the heatmap, so a restart does not lose the day.

One ``state.npz`` in the state directory: numpy arrays plus a JSON header, written to a
temporary file, fsynced and renamed over the old one (a crash mid-write leaves the previous
snapshot whole). A snapshot that is truncated, corrupt, or from another format version is
reported and ignored: the exporter starts fresh rather than crashing or trusting it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from exporter.core import Core

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILE_NAME = "state.npz"
HEADER = "__header__"

Arrays = dict[str, np.ndarray[Any, Any]]


class SnapshotError(ValueError):
    """A snapshot that cannot be used."""


def encode(header: dict[str, Any], arrays: Arrays) -> bytes:
    buffer = io.BytesIO()
    payload = {HEADER: np.array(json.dumps({"version": FORMAT_VERSION, **header}))}
    np.savez_compressed(buffer, allow_pickle=False, **payload, **arrays)
    return buffer.getvalue()


def decode(data: bytes) -> tuple[dict[str, Any], Arrays]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error) as exc:
        raise SnapshotError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if HEADER not in arrays:
        raise SnapshotError("no header")
    try:
        header = json.loads(str(arrays.pop(HEADER)))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"bad header ({exc})") from None
    if not isinstance(header, dict) or header.get("version") != FORMAT_VERSION:
        version = header.get("version") if isinstance(header, dict) else None
        raise SnapshotError(f"format version {version!r}, this exporter reads {FORMAT_VERSION}")
    return header, arrays


def write_atomically(path: Path, data: bytes) -> None:
    """Write-then-rename in the same directory: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save(core: Core, directory: Path) -> float:
    """Snapshot ``core`` now; returns the seconds it took."""
    started = time.perf_counter()
    header, arrays = core.export_state()
    write_atomically(directory / FILE_NAME, encode(header, arrays))
    return time.perf_counter() - started


def restore(core: Core, directory: Path) -> bool:
    """Load the snapshot into ``core`` if there is a usable one; never raises for a bad file."""
    path = directory / FILE_NAME
    if not path.exists():
        log.info("state: no snapshot in %s; starting fresh", directory)
        return False
    try:
        header, arrays = decode(path.read_bytes())
        core.import_state(header, arrays)
    except (SnapshotError, ValueError, KeyError, TypeError) as exc:
        log.warning("state: ignoring snapshot %s (%s); starting fresh", path, exc)
        return False
    except OSError as exc:
        log.warning("state: cannot read %s (%s); starting fresh", path, exc)
        return False
    log.info("state: restored %s (saved at %s)", path, header.get("saved_at"))
    return True


def final_save(core: Core, directory: Path) -> None:
    """The snapshot taken at shutdown, once nothing feeds ``core`` any more: a failure is
    logged, not raised (the process is stopping either way)."""
    try:
        seconds = save(core, directory)
    except OSError as exc:
        log.warning("state: final snapshot to %s failed: %s", directory, exc)
    else:
        log.info("state: final snapshot written in %.3fs", seconds)


class Snapshotter:
    """Saves every ``interval`` seconds; a failed save is logged and retried next time."""

    name = "snapshots"

    def __init__(
        self,
        core: Core,
        directory: Path,
        interval: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._core = core
        self._directory = directory
        self._interval = interval
        self._sleep = sleep

    async def run(self) -> None:
        while True:
            await self._sleep(self._interval)
            try:
                seconds = save(self._core, self._directory)
            except OSError as exc:
                log.warning("state: snapshot to %s failed: %s", self._directory, exc)
            else:
                log.debug("state: snapshot written in %.3fs", seconds)
