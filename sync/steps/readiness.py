"""Step 1: may we write to this environment now? One admin-API call per environment per run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Protocol, TypeVar, runtime_checkable

from sync.errors import PermanentError
from sync.mapping import Environment
from sync.models import EnvironmentStatus
from sync.plan import readiness_problem

K = TypeVar("K")
V = TypeVar("V")


class EnvironmentDirectory(Protocol):
    async def get_environment(self, environment_id: str) -> EnvironmentStatus: ...


@runtime_checkable
class Preparable(Protocol):
    """A client that can fetch an organisation's token before its first request."""

    async def prepare(self, org_url: str) -> None: ...


@runtime_checkable
class PreparableVault(Protocol):
    """A secret source that can fetch its token before its first read (sync.adapters.keyvault)."""

    async def prepare(self) -> None: ...


class OncePerRun(Generic[K, V]):
    """Runs one lookup per key per run and shares the answer (or the error) with every caller.

    Concurrent targets in the same environment must not each ask: that would multiply requests
    by the number of mapped variables. The first caller starts the lookup; the rest await it.
    """

    def __init__(self, lookup: Callable[[K], Awaitable[V]]) -> None:
        self._lookup = lookup
        self._pending: dict[K, asyncio.Future[V]] = {}

    def start(self, key: K) -> asyncio.Future[V]:
        """Starts the lookup (once) without waiting for it."""
        if key not in self._pending:
            self._pending[key] = asyncio.ensure_future(self._lookup(key))
        return self._pending[key]

    async def get(self, key: K) -> V:
        return await asyncio.shield(self.start(key))

    def close(self) -> None:
        for future in self._pending.values():
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved: each caller already reported it
            else:
                future.cancel()


class ReadinessChecks:
    """Answers 'ready', 'not yet' (retryable) or raises PermanentError, per environment per run.

    `warm` starts the admin check (and, given `prepare`, the Dataverse token) of every environment
    a secret will reach while its value is still being read, so stage 2 and 3 do not each pay a
    round trip before their first write: a rotation's time stays close to its critical path.
    Given `prepare_vault`, the first `warm` of a run also starts the vault's token fetch, which
    then overlaps Key Vault's authentication challenge (sync.adapters.keyvault).
    """

    def __init__(
        self,
        directory: EnvironmentDirectory,
        prepare: Callable[[str], Awaitable[None]] | None = None,
        prepare_vault: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._statuses: OncePerRun[str, EnvironmentStatus] = OncePerRun(directory.get_environment)
        self._prepared: OncePerRun[str, None] | None = OncePerRun(prepare) if prepare else None
        self._vault: OncePerRun[None, None] | None = (
            OncePerRun(lambda _: prepare_vault()) if prepare_vault else None
        )

    @classmethod
    def for_run(cls, directory: EnvironmentDirectory, values: object, secrets: object) -> ReadinessChecks:
        """Checks that also warm what `values` (Dataverse) and `secrets` (Key Vault) can prepare."""
        return cls(
            directory,
            values.prepare if isinstance(values, Preparable) else None,
            secrets.prepare if isinstance(secrets, PreparableVault) else None,
        )

    def warm(self, environments: Iterable[Environment]) -> None:
        if self._vault is not None:
            self._vault.start(None)
        for environment in environments:
            self._statuses.start(environment.id)
            if self._prepared is not None:
                self._prepared.start(environment.url)

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
        for warming in (self._prepared, self._vault):
            if warming is not None:
                warming.close()
