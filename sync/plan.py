"""Pure planning: which targets a secret feeds, in what order, and what to write to each.

No I/O here. The engine asks these functions what to do and the adapters do it, so the
decisions (and their edge cases) are tested without a network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import groupby

from pydantic import SecretStr

from sync.mapping import Environment, Mapping, SecretRow
from sync.models import (
    ConnectionTarget,
    Definition,
    DefinitionType,
    EnvironmentStatus,
    Target,
    TargetKindName,
)

MAX_VALUE_LENGTH = 2000
# JSON nested deeper than this is refused before parsing: Python's parser recurses per level and
# would raise RecursionError (an unexpected, retryable crash) long before the length limit bites.
MAX_JSON_DEPTH = 100


def targets_for(mapping: Mapping, secret: str) -> list[Target]:
    """Every target a secret feeds, ordered by rollout stage, then mapping order.

    A connection row gives one target per pinned connection id, or one target with no id that the
    connection kind expands at run time into the connections it finds (sync.targets.connections).
    """
    targets = [
        target
        for index, row in mapping.rows_of(secret)
        for environment in mapping.environments_of(row)
        for target in _row_targets(row, index, environment)
    ]
    return sorted(targets, key=lambda target: target.environment.stage)


def _row_targets(row: SecretRow, index: int, environment: Environment) -> list[Target]:
    common = {
        "environment": environment,
        "secret": row.secret,
        "row": index,
        "rollout": row.rollout,
        "refresh_flows": row.refresh_flows,
        "refresh_agents": row.refresh_agents,
    }
    spec = row.connection
    if spec is None:
        return [Target(env_var=row.env_var or "", **common)]
    connection = ConnectionTarget(
        connector=spec.connector, client_id=spec.client_id, tenant_id=spec.tenant_id
    )
    pins: list[str | None] = list(spec.ids) if spec.ids else [None]
    return [
        Target(
            kind=TargetKindName.CONNECTION,
            connection=connection if pinned is None else connection.model_copy(update={"id": pinned}),
            **common,
        )
        for pinned in pins
    ]


def by_stage(targets: list[Target]) -> list[tuple[int, list[Target]]]:
    """Groups stage-ordered targets: dev (1) lands before test (2) before prod (3)."""
    ordered = sorted(targets, key=lambda target: target.environment.stage)
    return [(stage, list(group)) for stage, group in groupby(ordered, key=lambda t: t.environment.stage)]


@dataclass(frozen=True)
class Refuse:
    """Nothing may be written; `reason` says why and is safe to show."""

    reason: str


@dataclass(frozen=True)
class NoChange:
    """The stored value already equals the secret: a duplicate event costs no write."""


@dataclass(frozen=True)
class Update:
    """Overwrite the existing value row, guarded by its etag."""

    row_id: str
    etag: str


@dataclass(frozen=True)
class Create:
    """Create the value row, bound to its definition."""

    definition_id: str
    schema_name: str


WriteAction = Refuse | NoChange | Update | Create


def value_problem(definition_type: int, value: str) -> str | None:
    """Why a value cannot go into a definition of this type, or None; never quotes the value."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"the secret is {len(value)} characters; Dataverse values hold at most {MAX_VALUE_LENGTH}"
    match definition_type:
        case DefinitionType.STRING:
            return None
        case DefinitionType.NUMBER:
            try:
                Decimal(value.strip())
            except InvalidOperation:
                return "the definition is of type Number and the secret is not a number"
            return None
        case DefinitionType.BOOLEAN:
            if value not in ("yes", "no"):
                return "the definition is of type Boolean and the secret is not 'yes' or 'no'"
            return None
        case DefinitionType.JSON:
            return json_problem(value)
        case DefinitionType.SECRET:
            return (
                "the definition is of type Secret: it holds a Key Vault reference resolved at run time, "
                "so there is nothing to copy (map a String definition instead, or drop this row)"
            )
        case DefinitionType.DATA_SOURCE:
            return "the definition is of type Data source, which cannot hold a secret value"
        case _:
            return f"the definition has an unknown type {definition_type}"


def json_depth(value: str) -> int:
    """The deepest nesting of arrays and objects in `value`, outside string literals."""
    depth = deepest = 0
    in_string = escaped = False
    for char in value:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_problem(value: str) -> str | None:
    """Why a value is not acceptable JSON for a JSON definition, or None; never quotes it."""
    if json_depth(value) > MAX_JSON_DEPTH:
        return (
            f"the definition is of type JSON and the secret nests arrays or objects more than "
            f"{MAX_JSON_DEPTH} levels deep, which Lockstep does not parse"
        )
    try:
        json.loads(value)
    except (ValueError, RecursionError):
        return "the definition is of type JSON and the secret is not valid JSON"
    return None


def plan_write(definition: Definition | None, env_var: str, desired: SecretStr) -> WriteAction:
    """Decides the one write (or none) that makes the environment hold the desired value."""
    if definition is None:
        return Refuse(f"no environment variable definition named {env_var!r} in this environment")
    value = desired.get_secret_value()
    problem = value_problem(definition.type, value)
    if problem:
        return Refuse(problem)
    row = definition.value_row
    if row is None:
        return Create(definition_id=definition.id, schema_name=definition.schema_name)
    if row.value is not None and row.value.get_secret_value() == value:
        return NoChange()
    return Update(row_id=row.id, etag=row.etag)


def readiness_problem(status: EnvironmentStatus, environment: Environment) -> tuple[str, bool] | None:
    """Why an environment must not be written to now, and whether waiting could fix it."""
    if status.instance_url is None:
        return (
            f"environment {environment.name!r} has no Dataverse database according to the admin API",
            False,
        )
    if status.instance_url.rstrip("/").lower() != environment.url:
        return (
            f"the admin API says environment {environment.id} lives at {status.instance_url.rstrip('/')}, "
            f"but the mapping says {environment.url}: fix the mapping",
            False,
        )
    if status.management_state != "Ready" or status.runtime_state != "Enabled":
        return (
            f"environment {environment.name!r} is not ready (management {status.management_state}, "
            f"runtime {status.runtime_state})",
            True,
        )
    return None
