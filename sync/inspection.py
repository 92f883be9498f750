"""Read-only inspection of every mapped target: what a sync would do, without doing it.

The CLI's `plan`, `status` and `reconcile --dry-run` stand on this. It uses the same adapters
and the same planning function (`sync.plan.plan_write`) as the engine, so a plan can never
disagree with what a sync then does, and it reads exactly like the reconcile: each secret once,
definitions in bulk per environment, environments concurrently, each environment bounded in time.
Nothing here writes, and no value leaves memory: a target's state is a word, not a diff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from sync.deadline import time_budget, within_budget
from sync.errors import LockstepError, PermanentError
from sync.mapping import Environment, Mapping
from sync.models import Definition, EnvironmentStatus, SecretSnapshot, Target
from sync.plan import Create, NoChange, Refuse, Update, plan_write, readiness_problem, targets_for
from sync.redact import scrub

SECRET_READS_AT_ONCE = 16


class TargetState(StrEnum):
    """Where one target stands against its secret's current version."""

    IN_SYNC = "in_sync"
    DIFFERS = "differs"  # a value row holds something else: a sync would update it
    MISSING_VALUE = "missing_value"  # the definition has no value row: a sync would create one
    MISSING_DEFINITION = "missing_definition"  # nothing to write to: a maker must add it
    REFUSED = "refused"  # a sync would refuse to write here (type, length, readiness, URL)
    ERROR = "error"  # could not be inspected (unreachable, access denied, secret unreadable)


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


class DefinitionReader(Protocol):
    async def get_definitions(self, org_url: str, schema_names: Sequence[str]) -> dict[str, Definition]: ...


class EnvironmentReader(Protocol):
    async def get_environment(self, environment_id: str) -> EnvironmentStatus: ...


def classify(
    definition: Definition | None, env_var: str, snapshot: SecretSnapshot
) -> tuple[TargetState, str]:
    """The state of one target, decided by the same planner the engine writes with."""
    action = plan_write(definition, env_var, snapshot.value)
    match action:
        case NoChange():
            return TargetState.IN_SYNC, ""
        case Update():
            return TargetState.DIFFERS, "holds a value other than the secret's current version"
        case Create():
            return TargetState.MISSING_VALUE, "the definition has no value row yet"
        case Refuse(reason=reason) if definition is None:
            return TargetState.MISSING_DEFINITION, reason
        case Refuse(reason=reason):
            return TargetState.REFUSED, reason
    raise AssertionError(f"unplanned action {action!r}")  # pragma: no cover


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
        definitions: DefinitionReader,
        directory: EnvironmentReader,
        *,
        timeout: float = 60.0,
    ) -> None:
        self._secrets = secrets
        self._definitions = definitions
        self._directory = directory
        self._timeout = timeout

    async def inspect(self, targets: Sequence[Target]) -> Inspection:
        names = list(dict.fromkeys(target.secret for target in targets))
        snapshots = await self._read_secrets(names)
        by_environment: dict[str, list[Target]] = {}
        environments: dict[str, Environment] = {}
        for target in targets:
            by_environment.setdefault(target.environment.name, []).append(target)
            environments[target.environment.name] = target.environment
        inspected = await asyncio.gather(
            *(
                self._inspect_environment(environments[name], group, snapshots)
                for name, group in by_environment.items()
            )
        )
        order = {id(target): index for index, target in enumerate(targets)}
        flat = sorted((pair for group in inspected for pair in group), key=lambda pair: order[id(pair[0])])
        return Inspection(
            secrets=tuple(_secret_inspection(name, snapshots[name]) for name in names),
            targets=tuple(result for _, result in flat),
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
    ) -> list[tuple[Target, TargetInspection]]:
        try:
            with time_budget(self._timeout):
                definitions = await within_budget(self._read_environment(environment, targets))
        except LockstepError as error:
            state = TargetState.REFUSED if isinstance(error, _NotReady) else TargetState.ERROR
            return [(target, _result(target, state, scrub(str(error)))) for target in targets]
        results = []
        for target in targets:
            snapshot = snapshots[target.secret]
            if isinstance(snapshot, LockstepError):
                state, reason = TargetState.ERROR, f"secret not readable: {scrub(str(snapshot))}"
            else:
                state, reason = classify(definitions.get(target.env_var.lower()), target.env_var, snapshot)
            results.append((target, _result(target, state, reason)))
        return results

    async def _read_environment(
        self, environment: Environment, targets: list[Target]
    ) -> dict[str, Definition]:
        status = await self._directory.get_environment(environment.id)
        problem = readiness_problem(status, environment)
        if problem is not None:
            raise _NotReady(problem[0])
        names = list(dict.fromkeys(target.env_var for target in targets))
        return await self._definitions.get_definitions(environment.url, names)


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
