"""The connection half of the mapping: which service-principal connections a secret feeds.

A row that names a `connection` instead of an `env_var` feeds the client secret of one app
registration to its connections: the ones it pins by id, or every connection of the connector
whose service-principal parameter set names the client id. Everything here ends up in a URL
(connector and connection ids in a path, the client id in a comparison), hence the strict shapes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
GUID_ONLY = re.compile(rf"^{GUID}$")
# Connector names as the connectivity API spells them (shared_commondataserviceforapps, shared_sql,
# custom connectors shared_contoso-5fapi-5f…); they go into a URL path, so safe characters only.
CONNECTOR_NAME = re.compile(r"^shared_[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# Connection ids as the service gives them: a GUID, 32 hex characters, or a name such as
# shared-commondataser-4b7e…; letters, digits, '-' and '_' only (they go into a URL path).
CONNECTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def _connection_id(value: str) -> str:
    if not CONNECTION_ID.match(value):
        raise ValueError(
            "must be a connection id as the service gives it (a GUID, 32 hex characters or a name "
            "like shared-commondataser-…): letters, digits, '-' and '_' only"
        )
    return value


ConnectionId = Annotated[str, AfterValidator(_connection_id)]


class ConnectionSpec(BaseModel):
    """The service-principal connections a row's secret feeds: the client secret of one app
    registration. Without `ids`, every connection of `connector` whose service-principal parameter
    set names `client_id` is found in each mapped environment at run time."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    connector: str
    client_id: str
    tenant_id: str
    ids: list[ConnectionId] | None = None

    @field_validator("connector")
    @classmethod
    def _connector(cls, value: str) -> str:
        if not CONNECTOR_NAME.match(value):
            raise ValueError(
                "must be a connector name as Power Platform spells it: shared_<name> "
                "(e.g. shared_commondataserviceforapps), letters, digits, '-' and '_' only"
            )
        return value

    @field_validator("client_id", "tenant_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        if not GUID_ONLY.match(value):
            raise ValueError("must be a GUID (the app registration's application / directory id)")
        return value.lower()

    @field_validator("ids")
    @classmethod
    def _ids(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must name at least one connection id, or be omitted to discover them")
        return value


class ConnectionRow(Protocol):
    """What the overlap check reads from a mapping row."""

    @property
    def connection(self) -> ConnectionSpec | None: ...

    @property
    def environments(self) -> list[str] | None: ...


def connection_overlaps(rows: Sequence[ConnectionRow], known: set[str]) -> list[str]:
    """Connections claimed by two rows: each connection holds one client secret, so one row each.

    A pinned id may appear in one row only per environment; a discovering row (no ids) claims every
    connection of its connector with its client id, so a second row naming that client id in the
    same environment, discovering or pinned, overlaps it.
    """
    problems: dict[str, list[str]] = {}
    pinned: dict[tuple[str, str, str], int] = {}
    discovering: dict[tuple[str, str, str], int] = {}
    by_client: dict[tuple[str, str, str], int] = {}
    for index, row in enumerate(rows):
        spec = row.connection
        if spec is None:
            continue
        for position, item in enumerate(spec.ids or []):
            if [i.lower() for i in spec.ids or []].index(item.lower()) != position:
                problems.setdefault(
                    f"secrets[{index}].connection.ids[{position}]: {item!r} is listed twice", []
                )
        names = row.environments if row.environments is not None else sorted(known)
        for environment in (name for name in names if name in known):
            client = (environment, spec.connector.lower(), spec.client_id)
            if spec.ids is None:
                other = discovering.get(client, by_client.get(client))
                if other is not None:
                    message = (
                        f"secrets[{index}].connection: the connections of {spec.connector} with client id "
                        f"{spec.client_id} are already mapped by secrets[{other}]"
                    )
                    problems.setdefault(message, []).append(environment)
                discovering.setdefault(client, index)
                by_client.setdefault(client, index)
                continue
            if client in discovering and discovering[client] != index:
                message = (
                    f"secrets[{index}].connection: secrets[{discovering[client]}] already discovers every "
                    f"connection of {spec.connector} with client id {spec.client_id}; pin ids in both "
                    "rows or drop one"
                )
                problems.setdefault(message, []).append(environment)
            by_client.setdefault(client, index)
            for position, item in enumerate(spec.ids):
                key = (environment, spec.connector.lower(), item.lower())
                if key in pinned and pinned[key] != index:
                    message = (
                        f"secrets[{index}].connection.ids[{position}]: connection {item!r} is already "
                        f"mapped by secrets[{pinned[key]}]"
                    )
                    problems.setdefault(message, []).append(environment)
                pinned.setdefault(key, index)
    return [
        f"{message} (in {', '.join(repr(e) for e in environments)})" if environments else message
        for message, environments in problems.items()
    ]
