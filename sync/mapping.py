"""The mapping: which secret feeds which environment variables and connections, where, in which stage.

Validation is exhaustive by design: an operator fixing a mapping wants every problem in one pass,
each with its JSON path, not a fix-rerun loop. Field rules run through pydantic; rules that span
rows (unknown environment names, duplicates, conflicting sources) run in :func:`cross_check`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from sync.errors import ConfigurationError
from sync.mapping_connections import GUID as GUID  # re-exported: settings validates client ids with it
from sync.mapping_connections import ConnectionSpec, connection_overlaps

# Key Vault secret names: 1-127 alphanumerics and dashes.
SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
# Dataverse schema names: a publisher prefix (2-8 alphanumerics, leading letter), "_", then a name.
# The name later goes into an OData $filter, so this is also the injection guard.
SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,7}_[A-Za-z0-9_]{1,90}$")
ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Power Platform environment ids are GUIDs, or "Default-<tenant guid>"; they go into a URL path.
ENVIRONMENT_ID = re.compile(rf"^(Default-)?{GUID}$")
ORG_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Environment(_Strict):
    """One Power Platform environment with its Dataverse organisation URL and rollout stage."""

    name: str
    id: str
    url: str
    stage: Annotated[int, Field(ge=1, le=99, strict=True)]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENVIRONMENT_NAME.match(value):
            raise ValueError("must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ENVIRONMENT_ID.match(value):
            raise ValueError("must be a Power Platform environment id (a GUID, or Default-<tenant GUID>)")
        return value.lower() if not value.startswith("Default-") else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        normalised = value.rstrip("/")
        if not ORG_URL.match(normalised):
            raise ValueError(
                "must be the environment's Dataverse URL, https://<org>.crm<n>.dynamics.com (no path)"
            )
        return normalised.lower()


class SecretRow(_Strict):
    """One row: a Key Vault secret feeds one environment variable, or the service-principal
    connections of one app registration, in some or all environments. Exactly one of `env_var`
    and `connection`."""

    secret: str
    # Declared before env_var so env_var's check can see whether a connection was given.
    connection: ConnectionSpec | None = None
    env_var: Annotated[str | None, Field(validate_default=True)] = None
    environments: list[str] | None = None
    # staged: stage N+1 only after every stage-N target is written and verified; a stage that
    # fails permanently is rolled back. all: every environment gets the value regardless.
    rollout: Literal["staged", "all"] = "staged"
    # Cloud flows keep an environment variable's old value until turned off and on: after a
    # verified change, cycle the active flows that use this variable.
    refresh_flows: bool = True
    # Copilot Studio agents use the value they were published with: after a verified change,
    # republish the agents that use this variable (never one with unpublished changes).
    refresh_agents: bool = True

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if not SECRET_NAME.match(value):
            raise ValueError("must be a Key Vault secret name: 1-127 letters, digits and '-'")
        return value

    @field_validator("env_var")
    @classmethod
    def _env_var(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "connection" not in info.data:
            return value  # the connection itself is invalid: that is the problem to report
        if value is None:
            if info.data["connection"] is None:
                raise ValueError("Field required (a row names an env_var or a connection)")
            return None
        if info.data["connection"] is not None:
            raise ValueError("a row names exactly one of env_var and connection; this one names both")
        if not SCHEMA_NAME.match(value):
            raise ValueError(
                "must be an environment variable schema name: <publisher prefix>_<name>, "
                "letters, digits and '_' only (e.g. contoso_SqlPassword)"
            )
        return value

    @field_validator("environments")
    @classmethod
    def _environments(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must name at least one environment, or be omitted to mean all environments")
        return value


class Mapping(_Strict):
    """The whole mapping document: environments with their stages, and secret-to-variable rows."""

    environments: Annotated[list[Environment], Field(min_length=1)]
    secrets: Annotated[list[SecretRow], Field(min_length=1)]

    def environment(self, name: str) -> Environment:
        """Looks an environment up by name; names were proven unique and known at validation."""
        for environment in self.environments:
            if environment.name == name:
                return environment
        raise KeyError(name)

    def environments_of(self, row: SecretRow) -> list[Environment]:
        """The environments a row targets: the ones it names, or all of them."""
        if row.environments is None:
            return list(self.environments)
        return [self.environment(name) for name in row.environments]

    @cached_property
    def _rows_by_secret(self) -> dict[str, list[tuple[int, SecretRow]]]:
        found: dict[str, list[tuple[int, SecretRow]]] = {}
        for index, row in enumerate(self.secrets):
            found.setdefault(row.secret, []).append((index, row))
        return found

    def rows_of(self, secret: str) -> list[tuple[int, SecretRow]]:
        """The rows (with their index) a secret feeds, in mapping order; indexed once, because a
        reconcile asks for every secret and a scan per secret is quadratic in the mapping's size."""
        return self._rows_by_secret.get(secret, [])

    def secret_names(self) -> list[str]:
        """Every mapped secret, once each, in mapping order."""
        return list(dict.fromkeys(row.secret for row in self.secrets))


def cross_check(mapping: Mapping) -> list[str]:
    """Finds the problems that span rows; returns one message per problem, each with its path."""
    problems: list[str] = []
    for field in ("name", "id", "url"):
        first_seen: dict[str, int] = {}
        for index, environment in enumerate(mapping.environments):
            value = getattr(environment, field)
            key = value.lower()
            if key in first_seen:
                problems.append(
                    f"environments[{index}].{field}: duplicate of environments[{first_seen[key]}].{field}"
                )
            else:
                first_seen[key] = index

    known = {environment.name for environment in mapping.environments}
    seen_rows: dict[tuple[str, str], int] = {}
    sources: dict[tuple[str, str], set[str]] = defaultdict(set)
    for index, row in enumerate(mapping.secrets):
        for position, name in enumerate(row.environments or []):
            if name not in known:
                problems.append(
                    f"secrets[{index}].environments[{position}]: unknown environment {name!r} "
                    f"(known: {', '.join(sorted(known))})"
                )
            elif (row.environments or []).index(name) != position:
                problems.append(f"secrets[{index}].environments[{position}]: {name!r} is listed twice")
        if row.env_var is None:
            continue
        key = (row.secret, row.env_var.lower())
        if key in seen_rows:
            problems.append(f"secrets[{index}]: duplicate of secrets[{seen_rows[key]}]")
        else:
            seen_rows[key] = index
        for target in row.environments if row.environments is not None else sorted(known):
            sources[(target, row.env_var.lower())].add(row.secret)

    for (environment_name, env_var), secrets in sorted(sources.items()):
        if len(secrets) > 1 and environment_name in known:
            problems.append(
                f"secrets: environment variable {env_var!r} in environment {environment_name!r} is fed by "
                f"more than one secret ({', '.join(sorted(secrets))}); each value needs exactly one source"
            )
    return problems + connection_overlaps(mapping.secrets, known)


def format_validation_error(error: ValidationError, prefix: str) -> list[str]:
    """Turns pydantic's errors into 'path: message' lines, never echoing the rejected input."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        path = prefix
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return lines


def parse_mapping(document: Any, source: str) -> Mapping:
    """Validates a decoded mapping document; raises ConfigurationError listing every problem."""
    try:
        mapping = Mapping.model_validate(document)
    except ValidationError as error:
        raise ConfigurationError(format_validation_error(error, source)) from None
    problems = cross_check(mapping)
    if problems:
        raise ConfigurationError([f"{source}.{problem}" for problem in problems])
    return mapping
