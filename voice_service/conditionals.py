"""The voice conditionals cache: computed once per (voice model, audio content hash).

Computing conditionals from a reference clip runs the speech tokenizer, speaker
encoders and mel extraction (hundreds of milliseconds on a GPU), so the result is
kept in memory (LRU) and on disk, and simultaneous requests for one clip share a
single computation.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from .log import logger

T = TypeVar("T")


@dataclass
class CacheStats:
    """Counters for /healthz and tests."""

    memory_hits: int = 0
    disk_hits: int = 0
    computations: int = 0
    shared_waits: int = 0


class ConditionalsCache(Generic[T]):
    """In-memory LRU in front of an optional on-disk store, with single-flight computation.

    Args:
        capacity: Entries kept in memory.
        directory: Where entries are kept on disk; None keeps them only in memory.
        load: Reads an entry from a file (blocking; run in a thread).
        save: Writes an entry to a file (blocking; run in a thread).
    """

    def __init__(
        self,
        *,
        capacity: int,
        directory: Path | None,
        load: Callable[[Path], T],
        save: Callable[[T, Path], None],
    ) -> None:
        self._capacity = capacity
        self._directory = directory
        self._load = load
        self._save = save
        self._memory: OrderedDict[tuple[str, str], T] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Task[tuple[T, str]]] = {}
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._memory)

    async def get_or_compute(
        self, model: str, digest: str, compute: Callable[[], Awaitable[T]]
    ) -> tuple[T, str]:
        """Return the entry for (model, digest), computing it at most once.

        The computation runs in its own task, so a requester that goes away (its client
        disconnected) does not cancel it for the others waiting on the same clip.

        Returns:
            The entry and where it came from: "memory", "disk", "shared" or "computed".
        """
        key = (model, digest)
        if key in self._memory:
            self._memory.move_to_end(key)
            self.stats.memory_hits += 1
            return self._memory[key], "memory"
        task = self._pending.get(key)
        if task is not None:
            self.stats.shared_waits += 1
            value, _ = await asyncio.shield(task)
            return value, "shared"
        task = asyncio.create_task(self._fill(key, compute), name="conditionals-fill")
        self._pending[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def peek(self, model: str, digest: str) -> T | None:
        """The entry for (model, digest) if it is in memory (counted as a memory hit)."""
        value = self._memory.get((model, digest))
        if value is not None:
            self._memory.move_to_end((model, digest))
            self.stats.memory_hits += 1
        return value

    async def aclose(self) -> None:
        """Wait for computations still running (their results are kept)."""
        if self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

    def _finished(self, key: tuple[str, str], task: asyncio.Task[tuple[T, str]]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved so a failure nobody awaited is not reported as lost

    async def _fill(self, key: tuple[str, str], compute: Callable[[], Awaitable[T]]) -> tuple[T, str]:
        value, source = await self._load_or_compute(key[0], key[1], compute)
        self._remember(key, value)
        return value, source

    async def _load_or_compute(
        self, model: str, digest: str, compute: Callable[[], Awaitable[T]]
    ) -> tuple[T, str]:
        path = self._path(model, digest)
        if path is not None and path.exists():
            try:
                value = await asyncio.to_thread(self._load, path)
            except Exception:  # a torn or stale file is recomputed, not fatal
                logger.warning("conditionals cache file unreadable", extra={"voice_model": model})
            else:
                self.stats.disk_hits += 1
                return value, "disk"
        value = await compute()
        self.stats.computations += 1
        if path is not None:
            try:
                await asyncio.to_thread(self._write, value, path)
            except OSError:
                logger.warning("conditionals cache not writable", extra={"voice_model": model})
        return value, "computed"

    def _write(self, value: T, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        self._save(value, partial)
        partial.replace(path)  # atomic: readers never see half a file

    def _remember(self, key: tuple[str, str], value: T) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self._capacity:
            self._memory.popitem(last=False)

    def _path(self, model: str, digest: str) -> Path | None:
        if self._directory is None:
            return None
        return self._directory / model / f"{digest}.pt"
