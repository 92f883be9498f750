"""One answer per key for a short while, shared by every concurrent caller.

A reconcile repairing fifty variables of one environment must not list its flows, ask for its
dependencies or look for its agents fifty times. The first caller starts the lookup; the rest
await the same future until it is `seconds` old. A failed answer is asked again at once.
`start` asks early (a write is about to happen, see sync.targets.base.Consumer.prepare) without
waiting: whoever then needs the answer finds it ready, or asks again, and reports, if it failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedAnswers(Generic[T]):
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._answers: dict[Hashable, tuple[float, asyncio.Future[T]]] = {}

    def get(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """The shared answer for `key` (shielded: one caller's cancellation spares the others)."""
        now = time.monotonic()
        cached = self._answers.get(key)
        if cached is None or now - cached[0] > self._seconds or (cached[1].done() and cached[1].exception()):
            cached = (now, asyncio.ensure_future(make()))
            self._answers[key] = cached
            for stale in [k for k, (at, _) in self._answers.items() if now - at > self._seconds]:
                del self._answers[stale]
        return asyncio.shield(cached[1])

    def start(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> None:
        """Starts the lookup for `key` unless a fresh one is shared already; never raises, and its
        failure is left to the next `get` (which asks again) rather than logged as unretrieved."""
        self.get(key, make).add_done_callback(_retrieved)


def _retrieved(future: asyncio.Future[T]) -> None:
    if not future.cancelled():
        future.exception()
