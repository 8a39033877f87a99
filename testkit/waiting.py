"""Waiting for something to happen, the one way tests and benchmarks do it.

A condition is a callable returning something truthy once the thing happened; it may
be sync or async (a coroutine function, or a lambda returning an awaitable).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def within(condition: Callable[[], Any], seconds: float, *, interval: float = 0.05) -> bool:
    """Poll `condition` until it is truthy (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


async def wait_until(
    condition: Callable[[], Any], seconds: float, what: str, *, interval: float = 0.05
) -> None:
    """Poll `condition` until it is truthy; fail the test, naming `what`, after `seconds`."""
    if not await within(condition, seconds, interval=interval):
        raise AssertionError(f"timed out after {seconds} s waiting for {what}")
