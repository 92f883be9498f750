"""Read-only inspection of every mapped target: what a sync would do, without doing it.

The CLI's `plan`, `status` and `reconcile --dry-run` stand on this. It asks each target's kind
(sync.targets) the same `read` and `decide` the engine writes with, so a plan can never disagree
with what a sync then does, and it reads exactly like the reconcile: each secret once, each kind
opened for bulk reads (definitions in bulk per environment), environments concurrently, each
environment bounded in time.
Nothing here writes, and no value leaves memory: a target's state is a word, not a diff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from collections.abc import Mapping as KeyedBy
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from sync.deadline import time_budget, within_budget
from sync.errors import LockstepError, PermanentError
from sync.mapping import Environment, Mapping
from sync.models import (
    ConnectionTarget,
    Definition,
    EnvironmentStatus,
    SecretSnapshot,
    Target,
    TargetKindName,
)
from sync.plan import readiness_problem, targets_for
from sync.redact import scrub
from sync.targets import env_vars
from sync.targets.base import Decision, TargetKind, TargetKinds, TargetState

SECRET_READS_AT_ONCE = 16


PENDING = frozenset({TargetState.DIFFERS, TargetState.MISSING_VALUE})
PROBLEMS = frozenset({TargetState.MISSING_DEFINITION, TargetState.REFUSED, TargetState.ERROR})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TargetInspection(_Frozen):
    secret: str
    environment: str
    stage: int
    env_var: str
    state: TargetState
    reason: str = ""
    kind: TargetKindName = TargetKindName.ENV_VAR
    connection: ConnectionTarget | None = None


class SecretInspection(_Frozen):
    """The secret's current version as Key Vault reports it (never its value)."""

    secret: str
    version: str | None = None
    updated: datetime | None = None
    expires: datetime | None = None
    enabled: bool | None = None
    error: str = ""


class Inspection(_Frozen):
    secrets: tuple[SecretInspection, ...]
    targets: tuple[TargetInspection, ...]

    @property
    def pending(self) -> bool:
        return any(target.state in PENDING for target in self.targets)

    @property
    def problems(self) -> bool:
        return any(target.state in PROBLEMS for target in self.targets)


class SecretReader(Protocol):
    async def get_current(self, name: str) -> SecretSnapshot: ...


class EnvironmentReader(Protocol):
    async def get_environment(self, environment_id: str) -> EnvironmentStatus: ...


def classify(
    definition: Definition | None, env_var: str, snapshot: SecretSnapshot
) -> tuple[TargetState, str]:
    """An environment variable's state, decided by the same planner the engine writes with."""
    return state_of(env_vars.decide(definition, env_var, snapshot))


def state_of(decision: Decision) -> tuple[TargetState, str]:
    """What a kind's decision means for `plan` and `status`."""
    return decision.state, decision.reason


def select_targets(
    mapping: Mapping, secrets: Collection[str] | None = None, environments: Collection[str] | None = None
) -> list[Target]:
    """The mapped targets, narrowed to some secrets and/or environments (stage order kept)."""
    names = mapping.secret_names() if secrets is None else [s for s in mapping.secret_names() if s in secrets]
    return [
        target
        for name in names
        for target in targets_for(mapping, name)
        if environments is None or target.environment.name in environments
    ]


class Inspector:
    """Reads what the mapped targets hold now; `timeout` bounds each environment's reads."""

    def __init__(
        self,
        secrets: SecretReader,
        kinds: KeyedBy[TargetKindName, TargetKinds],
        directory: EnvironmentReader,
        *,
        timeout: float = 60.0,
    ) -> None:
        self._secrets = secrets
        self._kinds = kinds
        self._directory = directory
        self._timeout = timeout

    async def inspect(self, targets: Sequence[Target]) -> Inspection:
        names = list(dict.fromkeys(target.secret for target in targets))
        snapshots = await self._read_secrets(names)
        opened = {
            kind: factory.open([t for t in targets if t.kind is kind], bulk=True)
            for kind, factory in self._kinds.items()
        }
        try:
            return await self._inspect(targets, snapshots, opened)
        finally:
            for kind in opened.values():
                kind.close()

    async def _inspect(
        self,
        targets: Sequence[Target],
        snapshots: dict[str, SecretSnapshot | LockstepError],
        kinds: KeyedBy[TargetKindName, TargetKind],
    ) -> Inspection:
        names = list(dict.fromkeys(target.secret for target in targets))
        by_environment: dict[str, list[Target]] = {}
        environments: dict[str, Environment] = {}
        for target in targets:
            by_environment.setdefault(target.environment.name, []).append(target)
            environments[target.environment.name] = target.environment
        inspected = await asyncio.gather(
            *(
                self._inspect_environment(environments[name], group, snapshots, kinds)
                for name, group in by_environment.items()
            )
        )
        order = {id(target): index for index, target in enumerate(targets)}
        flat = sorted((pair for group in inspected for pair in group), key=lambda pair: order[id(pair[0])])
        return Inspection(
            secrets=tuple(_secret_inspection(name, snapshots[name]) for name in names),
            targets=tuple(result for _, results in flat for result in results),
        )

    async def _read_secrets(self, names: list[str]) -> dict[str, SecretSnapshot | LockstepError]:
        limit = asyncio.Semaphore(SECRET_READS_AT_ONCE)

        async def read(name: str) -> SecretSnapshot | LockstepError:
            async with limit:
                try:
                    with time_budget(self._timeout):
                        return await within_budget(self._secrets.get_current(name))
                except LockstepError as error:
                    return error

        results = await asyncio.gather(*(read(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _inspect_environment(
        self,
        environment: Environment,
        targets: list[Target],
        snapshots: dict[str, SecretSnapshot | LockstepError],
        kinds: KeyedBy[TargetKindName, TargetKind],
    ) -> list[tuple[Target, list[TargetInspection]]]:
        try:
            with time_budget(self._timeout):
                return await within_budget(self._read_environment(environment, targets, snapshots, kinds))
        except LockstepError as error:
            state = TargetState.REFUSED if isinstance(error, _NotReady) else TargetState.ERROR
            return [(target, [_result(target, state, scrub(str(error)))]) for target in targets]

    async def _read_environment(
        self,
        environment: Environment,
        targets: list[Target],
        snapshots: dict[str, SecretSnapshot | LockstepError],
        kinds: KeyedBy[TargetKindName, TargetKind],
    ) -> list[tuple[Target, list[TargetInspection]]]:
        status = await self._directory.get_environment(environment.id)
        problem = readiness_problem(status, environment)
        if problem is not None:
            raise _NotReady(problem[0])
        inspected = await asyncio.gather(
            *(
                self._inspect_target(target, snapshots[target.secret], kinds[target.kind])
                for target in targets
            )
        )
        return list(zip(targets, inspected, strict=True))

    async def _inspect_target(
        self, target: Target, snapshot: SecretSnapshot | LockstepError, kind: TargetKind
    ) -> list[TargetInspection]:
        """One mapped target's state; a target its kind expands (connections) gives one each."""
        if isinstance(snapshot, LockstepError):
            return [_result(target, TargetState.ERROR, f"secret not readable: {scrub(str(snapshot))}")]
        try:
            concrete = await kind.expand(target)
        except LockstepError as error:
            return [_result(target, TargetState.ERROR, scrub(str(error), snapshot.value))]

        async def one(each: Target) -> TargetInspection:
            try:
                state, reason = state_of(kind.decide(each, await kind.read(each), snapshot))
            except LockstepError as error:
                state, reason = TargetState.ERROR, str(error)
            return _result(each, state, scrub(reason, snapshot.value))

        return list(await asyncio.gather(*(one(each) for each in concrete)))


class _NotReady(PermanentError):
    """The environment is not one a sync would write to now (readiness or URL mismatch)."""


def _result(target: Target, state: TargetState, reason: str) -> TargetInspection:
    return TargetInspection(
        secret=target.secret,
        environment=target.environment.name,
        stage=target.environment.stage,
        env_var=target.env_var,
        state=state,
        reason=reason,
        kind=target.kind,
        connection=target.connection,
    )


def _secret_inspection(name: str, snapshot: SecretSnapshot | LockstepError) -> SecretInspection:
    if isinstance(snapshot, LockstepError):
        return SecretInspection(secret=name, error=scrub(str(snapshot)))
    return SecretInspection(
        secret=name,
        version=snapshot.version,
        updated=snapshot.updated,
        expires=snapshot.expires,
        enabled=snapshot.enabled,
    )
