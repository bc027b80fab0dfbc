"""Deadlines for tests, scaled by one setting: ``KTRDR_TEST_TIME_SCALE`` (default 1).

Every wait in the tests is for a condition, with a deadline from ``scaled(seconds)``; on a
loaded or slow machine set ``KTRDR_TEST_TIME_SCALE=3`` (say) and every deadline, call timeout
and the per-test timeout grow alike. Deadlines are generous: they only bound how long a
broken test takes to fail, a passing one never waits for them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable


def time_scale() -> float:
    raw = os.environ.get("KTRDR_TEST_TIME_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"KTRDR_TEST_TIME_SCALE={raw!r} is not a number") from None
    if scale <= 0:
        raise ValueError(f"KTRDR_TEST_TIME_SCALE={raw!r} must be above 0")
    return scale


def scaled(seconds: float) -> float:
    """``seconds`` times ``KTRDR_TEST_TIME_SCALE``."""
    return seconds * time_scale()


def wait_until(
    condition: Callable[[], object], timeout_s: float, what: str, *, poll_s: float = 0.05
) -> object:
    """Poll ``condition`` until it returns something true, or fail after ``scaled(timeout_s)``."""
    deadline = time.monotonic() + scaled(timeout_s)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {scaled(timeout_s):g} s")
        time.sleep(poll_s)


async def async_wait_until(
    condition: Callable[[], object | Awaitable[object]],
    timeout_s: float,
    what: str,
    *,
    poll_s: float = 0.05,
) -> object:
    """``wait_until`` for a coroutine; ``condition`` may be a function or a coroutine function."""
    deadline = time.monotonic() + scaled(timeout_s)
    while True:
        value = condition()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {scaled(timeout_s):g} s")
        await asyncio.sleep(poll_s)
