"""Step 1: may we write to this environment now? One admin-API call per environment per run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from sync.errors import PermanentError
from sync.mapping import Environment
from sync.models import EnvironmentStatus
from sync.plan import readiness_problem

K = TypeVar("K")
V = TypeVar("V")


class EnvironmentDirectory(Protocol):
    async def get_environment(self, environment_id: str) -> EnvironmentStatus: ...


class OncePerRun(Generic[K, V]):
    """Runs one lookup per key per run and shares the answer (or the error) with every caller.

    Concurrent targets in the same environment must not each ask: that would multiply requests
    by the number of mapped variables. The first caller starts the lookup; the rest await it.
    """

    def __init__(self, lookup: Callable[[K], Awaitable[V]]) -> None:
        self._lookup = lookup
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        if key not in self._pending:
            self._pending[key] = asyncio.ensure_future(self._lookup(key))
        return await asyncio.shield(self._pending[key])

    def close(self) -> None:
        for future in self._pending.values():
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved: each caller already reported it
            else:
                future.cancel()


class ReadinessChecks:
    """Answers 'ready', 'not yet' (retryable) or raises PermanentError, per environment per run."""

    def __init__(self, directory: EnvironmentDirectory) -> None:
        self._statuses: OncePerRun[str, EnvironmentStatus] = OncePerRun(directory.get_environment)

    async def not_ready_reason(self, environment: Environment) -> str | None:
        """None when the environment may be written now; a reason when waiting could fix it."""
        problem = readiness_problem(await self._statuses.get(environment.id), environment)
        if problem is None:
            return None
        reason, retryable = problem
        if not retryable:
            raise PermanentError(reason)
        return reason

    def close(self) -> None:
        self._statuses.close()
