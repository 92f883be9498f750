"""A time budget that every retry and request in a run respects.

Event Grid waits 30 s for an answer and then counts the delivery as failed (and retries it).
The event path therefore runs under a ~25 s budget: retries that would sleep past it stop early
and leave the rest to Event Grid's redelivery and the nightly reconcile. A context variable
carries the budget so adapters need no extra parameter to honour it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from sync.errors import TransientError

T = TypeVar("T")

_deadline: ContextVar[float | None] = ContextVar("lockstep_deadline", default=None)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Runs the block under a budget (monotonic clock); nested budgets keep the tighter one."""
    candidate = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(candidate if current is None else min(current, candidate))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the current budget (may be negative), or None when unbounded."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


async def within_budget(awaitable: Awaitable[T]) -> T:
    """Awaits within the current budget; running out is a transient failure (retried later)."""
    left = remaining()
    if left is None:
        return await awaitable
    try:
        async with asyncio.timeout(max(left, 0.0)):
            return await awaitable
    except TimeoutError:
        raise TransientError(
            "time budget exhausted; Event Grid redelivery or the nightly reconcile will finish"
        ) from None
