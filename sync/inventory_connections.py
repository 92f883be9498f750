"""Impact inventory for connections: what breaks when a service-principal connection does.

Per environment, each mapped connection (a discovering row: every connection of its connector
signing in as its client id) with its status, the Dataverse connection references bound to it
(`connectionreferences.connectionid`) and the cloud flows whose clientdata names those
references. `connection_uses` is pure; `find_connections` does the connectivity reads: one
listing per environment for discovering rows, one read per pinned connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from sync.adapters.connection_model import Connection
from sync.adapters.flows import Flow
from sync.errors import LockstepError
from sync.mapping import Environment
from sync.models import ConnectionTarget, Target
from sync.redact import scrub


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class FlowOnConnection(_Frozen):
    id: str
    name: str
    state: str  # "on" or "off"
    owner: str


class ConnectionUse(_Frozen):
    environment: str
    stage: int
    secrets: tuple[str, ...]
    connector: str
    connection: dict[str, str | None]  # {"id", "display_name"}; id None: none found
    status: str = ""  # Connected, Error, … as the service reports it
    error_code: str = ""
    state: str  # "in_use", "unused", "not_found" or "error"
    reason: str = ""
    connection_references: tuple[str, ...] = ()
    flows: tuple[FlowOnConnection, ...] = ()

    @property
    def name(self) -> str:
        return str(self.connection["display_name"] or self.connection["id"] or self.connector)


# A mapped row's connections in one environment, or why they could not be read.
Found = list[Connection] | str


def matches(listing: Sequence[Connection], spec: ConnectionTarget) -> list[Connection]:
    """The connections a discovering row stands for: its connector, a service principal, its client id."""
    return sorted(
        (
            c
            for c in listing
            if c.connector.lower() == spec.connector.lower()
            and c.service_principal
            and c.client_id == spec.client_id
        ),
        key=lambda c: (c.display_name.lower(), c.id),
    )


def _spec(target: Target) -> ConnectionTarget:
    if target.connection is None:
        raise ValueError("not a connection target")
    return target.connection


def connection_uses(
    environment: Environment,
    targets: Sequence[Target],
    found: Sequence[Found],
    flows: Sequence[Flow],
    references: dict[str, dict[str, str]],
    owners: dict[str, str],
) -> list[ConnectionUse]:
    """One row per connection each target stands for (found[i] belongs to targets[i])."""
    rows: list[ConnectionUse] = []
    for target, connections in zip(targets, found, strict=True):
        spec = _spec(target)
        base = {
            "environment": environment.name,
            "stage": environment.stage,
            "secrets": (target.secret,),
            "connector": spec.connector,
        }
        if isinstance(connections, str) or not connections:
            state = "error" if isinstance(connections, str) else "not_found"
            reason = connections if isinstance(connections, str) else "no connection of this client id found"
            empty = {"id": spec.id, "display_name": ""}
            rows.append(ConnectionUse(**base, connection=empty, state=state, reason=reason))
            continue
        for connection in connections:
            bound = sorted(
                name
                for name, reference in references.items()
                if reference.get("connection", "").lower() == connection.id.lower()
            )
            using = sorted(
                (flow for flow in flows if set(flow.connection_references) & set(bound)), key=lambda f: f.name
            )
            rows.append(
                ConnectionUse(
                    **base,
                    connection={"id": connection.id, "display_name": connection.display_name},
                    status=connection.status,
                    error_code=connection.error_code,
                    state="in_use" if bound else "unused",
                    connection_references=tuple(bound),
                    flows=tuple(
                        FlowOnConnection(
                            id=flow.id,
                            name=flow.name,
                            state="on" if flow.on else "off",
                            owner=owners.get(flow.owner_id, flow.owner_id),
                        )
                        for flow in using
                    ),
                )
            )
    return _merged(rows)


def _merged(rows: list[ConnectionUse]) -> list[ConnectionUse]:
    """One row per connection when several mapped rows find the same one (their secrets joined)."""
    merged: dict[tuple[str, str], ConnectionUse] = {}
    unfound: list[ConnectionUse] = []
    for row in rows:
        connection_id = row.connection["id"]
        if connection_id is None or row.state in ("not_found", "error"):
            unfound.append(row)
            continue
        key = (row.environment, connection_id.lower())
        if key in merged:
            secrets = tuple(dict.fromkeys((*merged[key].secrets, *row.secrets)))
            merged[key] = merged[key].model_copy(update={"secrets": secrets})
        else:
            merged[key] = row
    return [*merged.values(), *unfound]


class ConnectionReader(Protocol):
    """What the connectivity client offers the inventory (sync.adapters.connections)."""

    async def list_connections(self, environment_id: str) -> list[Connection]: ...
    async def get_connection(self, environment_id: str, connector: str, connection_id: str) -> Connection: ...


async def find_connections(
    api: ConnectionReader, environment: Environment, targets: Sequence[Target]
) -> list[Found]:
    """Each target's connections in the environment (one listing shared by discovering rows)."""
    listing: asyncio.Future[list[Connection]] | None = None

    async def one(target: Target) -> Found:
        nonlocal listing
        spec = _spec(target)
        try:
            if spec.id is not None:
                return [await api.get_connection(environment.id, spec.connector, spec.id)]
            if listing is None:
                listing = asyncio.ensure_future(api.list_connections(environment.id))
            return matches(await asyncio.shield(listing), spec)
        except LockstepError as error:
            return scrub(str(error))

    try:
        return list(await asyncio.gather(*(one(target) for target in targets)))
    finally:
        if listing is not None and listing.done() and not listing.cancelled():
            listing.exception()  # retrieved: no "never retrieved" warning
