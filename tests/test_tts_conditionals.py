"""The conditionals cache: LRU in memory, files on disk, one computation per clip."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from voice_service.conditionals import ConditionalsCache

pytestmark = pytest.mark.unit


def make_cache(directory: Path | None, capacity: int = 2) -> ConditionalsCache[dict]:
    return ConditionalsCache(
        capacity=capacity,
        directory=directory,
        load=lambda path: json.loads(path.read_text()),
        save=lambda value, path: path.write_text(json.dumps(value)),
    )


async def test_concurrent_requests_share_one_computation(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    calls = 0

    async def compute() -> dict:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"voice": 1}

    results = await asyncio.gather(*(cache.get_or_compute("m", "abc", compute) for _ in range(5)))
    assert calls == 1
    assert sorted(source for _, source in results) == ["computed"] + ["shared"] * 4
    assert all(value == {"voice": 1} for value, _ in results)
    assert await cache.get_or_compute("m", "abc", compute) == ({"voice": 1}, "memory")


async def test_a_cancelled_first_requester_does_not_cancel_the_computation(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    started = asyncio.Event()

    async def compute() -> dict:
        started.set()
        await asyncio.sleep(0.05)
        return {"voice": 2}

    first = asyncio.create_task(cache.get_or_compute("m", "x", compute))
    await started.wait()
    second = asyncio.create_task(cache.get_or_compute("m", "x", compute))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == ({"voice": 2}, "shared")
    await cache.aclose()


async def test_entries_survive_on_disk_and_memory_is_lru(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, capacity=1)

    async def value(v: int) -> dict:
        return {"v": v}

    await cache.get_or_compute("m", "a", lambda: value(1))
    await cache.get_or_compute("m", "b", lambda: value(2))
    assert len(cache) == 1
    assert (tmp_path / "m" / "a.pt").exists()
    assert await cache.get_or_compute("m", "a", lambda: value(99)) == ({"v": 1}, "disk")
    fresh = make_cache(tmp_path)
    assert await fresh.get_or_compute("m", "b", lambda: value(99)) == ({"v": 2}, "disk")
    assert fresh.stats.computations == 0


async def test_a_failed_computation_is_not_cached(tmp_path: Path) -> None:
    cache = make_cache(None)

    async def boom() -> dict:
        raise RuntimeError("bad clip")

    async def ok() -> dict:
        return {"ok": True}

    with pytest.raises(RuntimeError):
        await cache.get_or_compute("m", "a", boom)
    assert await cache.get_or_compute("m", "a", ok) == ({"ok": True}, "computed")


async def test_an_unreadable_file_is_recomputed(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.pt").write_text("{torn")
    cache = make_cache(tmp_path)

    async def ok() -> dict:
        return {"ok": 1}

    assert await cache.get_or_compute("m", "a", ok) == ({"ok": 1}, "computed")
