"""Service-principal connections as a target kind: the client secret of an app registration.

expand: a mapped row without ids stands for every connection of its connector, in that
environment, whose service-principal parameter set names its client id (one listing per
environment per run); pinned ids are read directly. User sign-in connections are never touched.

decide (pure, also what `plan` shows): a connection is **in sync** when it is Connected and its
`lastModifiedTime` is at or after the creation of the secret's current version. No secret is
stored or compared, so a duplicate event and an in-sync reconcile write nothing, and a
connection in Error is written again. The edge: a connection changed after the version was
created, but not with it, counts as in sync while it stays Connected: changed by hand with an
older secret (or another valid one), or written by Lockstep with the previous version within
the same second the current one was created (Key Vault keeps whole seconds). It is caught
once that credential stops working: the connection turns to Error and the next reconcile (or
rotation) writes the current secret.

write / verify: the PUT, then a read back: Connected is `updated`; Error is a permanent failure
naming the connection and the error code, and that connection gets the previous secret version
back at once (the new one does not work there). A 401/403 on the PUT needs a person (share the
connection or register the identity): `needs_action`, which neither rolls back nor holds back.

restore (a failed stage): the previous **enabled** version of the secret, read from Key Vault's
versions, unless someone changed the connection after this run did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from sync.adapters.connection_model import Connection
from sync.adapters.connections import NotEditable
from sync.errors import LockstepError, NeedsActionError, PermanentError, TransientError
from sync.models import ConnectionTarget, Outcome, SecretSnapshot, Target
from sync.targets.base import Change, Decision, InSync, NeedsAction, Refuse, Write


class Connectivity(Protocol):
    async def list_connections(self, environment_id: str) -> list[Connection]: ...
    async def get_connection(self, environment_id: str, connector: str, connection_id: str) -> Connection: ...
    async def put_credentials(
        self, connection: Connection, client_id: str, tenant_id: str, secret: SecretStr
    ) -> None: ...


class PreviousVersions(Protocol):
    async def get_previous(self, name: str, before_version: str) -> SecretSnapshot | None: ...


@dataclass(frozen=True)
class Unreadable:
    """The identity may not read the connection (not shared with it)."""

    reason: str


@dataclass(frozen=True)
class NoneFound:
    """A discovering row found no connection of its connector and client id in the environment."""

    reason: str


Observed = Connection | Unreadable | NoneFound


@dataclass(frozen=True)
class Written:
    """The memento: the connection before this run's PUT and as read back after it."""

    before: Connection
    after: Connection


def _spec(target: Target) -> ConnectionTarget:
    if target.connection is None:
        raise ValueError("not a connection target")
    return target.connection


def decide(target: Target, observed: Observed, snapshot: SecretSnapshot) -> Decision:
    """Pure: what a connection needs to hold the secret's current version (see the module doc)."""
    if isinstance(observed, Unreadable | NoneFound):
        return NeedsAction(observed.reason)
    spec = _spec(target)
    if not observed.service_principal:
        how = observed.parameter_set or "no parameter set"
        return Refuse(
            f"connection {observed.label} signs in as a user ({how}), not as a service principal: "
            "Lockstep leaves it alone; remove it from the mapping"
        )
    if observed.client_id is not None and observed.client_id != spec.client_id:
        return Refuse(
            f"connection {observed.label} signs in as client id {observed.client_id}, "
            f"not {spec.client_id} as the mapping says: not changed"
        )
    if observed.status == "Error":
        return Write(Outcome.UPDATED, reason=f"in Error ({observed.error_code or 'no code'})")
    if observed.status != "Connected":
        return Write(Outcome.UPDATED, reason=f"status {observed.status or 'unknown'}, not Connected")
    created = snapshot.created or snapshot.updated
    if created is None or observed.last_modified is None:
        return Write(Outcome.UPDATED, reason="cannot tell when the connection was last changed")
    if observed.last_modified >= created:
        return InSync(reason="Connected, and changed after the secret's current version was created")
    return Write(Outcome.UPDATED, reason="last changed before the secret's current version was created")


class ConnectionKinds:
    """Opens the connection kind for one run (TargetKinds)."""

    def __init__(self, connectivity: Connectivity, secrets: PreviousVersions) -> None:
        self._connectivity = connectivity
        self._secrets = secrets

    def open(self, targets: Sequence[Target], *, bulk: bool) -> ConnectionKind:
        return ConnectionKind(self._connectivity, self._secrets)


class ConnectionKind:
    """One run's connections: listings shared per environment, reads from expand used once."""

    def __init__(self, connectivity: Connectivity, secrets: PreviousVersions) -> None:
        self._api = connectivity
        self._secrets = secrets
        self._listings: dict[str, asyncio.Future[list[Connection]]] = {}
        self._fresh: dict[tuple[str, str, str], Connection] = {}
        self._expand_errors: dict[tuple[str, str, str], LockstepError] = {}
        self._previous: dict[tuple[str, str], asyncio.Future[SecretSnapshot | None]] = {}

    async def expand(self, target: Target) -> list[Target]:
        spec = _spec(target)
        environment_id = target.environment.id
        if spec.id is not None:
            try:
                found = await self._api.get_connection(environment_id, spec.connector, spec.id)
            except LockstepError:
                return [target]  # `read` meets the same answer and reports it
            self._fresh[(environment_id, spec.connector.lower(), spec.id.lower())] = found
            return [_named(target, found)]
        key = (environment_id, spec.connector.lower(), spec.client_id)
        if environment_id not in self._listings:
            self._listings[environment_id] = asyncio.ensure_future(self._api.list_connections(environment_id))
        try:
            listed = await asyncio.shield(self._listings[environment_id])
        except LockstepError as error:
            self._expand_errors[key] = error
            return [target]
        matches = sorted(
            (
                c
                for c in listed
                if c.connector.lower() == spec.connector.lower()
                and c.service_principal
                and c.client_id == spec.client_id
            ),
            key=lambda c: (c.display_name.lower(), c.id),
        )
        for found in matches:
            self._fresh[(environment_id, spec.connector.lower(), found.id.lower())] = found
        return [_named(target, found) for found in matches] or [target]

    async def read(self, target: Target) -> Observed:
        spec = _spec(target)
        environment_id = target.environment.id
        if spec.id is None:
            error = self._expand_errors.get((environment_id, spec.connector.lower(), spec.client_id))
            if isinstance(error, NotEditable):
                return Unreadable(f"cannot list the environment's connections: {error}")
            if error is not None:
                raise error
            return NoneFound(
                f"no connection of {spec.connector} signs in as client id {spec.client_id} here "
                "(or none is shared with Lockstep's identity): create or share one, or pin its id"
            )
        fresh = self._fresh.pop((environment_id, spec.connector.lower(), spec.id.lower()), None)
        if fresh is not None:
            return fresh
        try:
            return await self._api.get_connection(environment_id, spec.connector, spec.id)
        except NotEditable as error:
            return Unreadable(str(error))

    def decide(self, target: Target, observed: Any, snapshot: SecretSnapshot) -> Decision:
        return decide(target, observed, snapshot)

    async def write(self, target: Target, observed: Any, decision: Write, snapshot: SecretSnapshot) -> None:
        spec = _spec(target)
        if not isinstance(observed, Connection):
            raise PermanentError("nothing to write: the connection was not read")
        try:
            await self._api.put_credentials(observed, spec.client_id, spec.tenant_id, snapshot.value)
        except NotEditable as error:
            raise NeedsActionError(str(error)) from None

    async def verify(
        self, target: Target, observed: Any, decision: Write, snapshot: SecretSnapshot
    ) -> Change:
        if not isinstance(observed, Connection):
            raise PermanentError("nothing to verify: the connection was not read")
        after = await self._api.get_connection(observed.environment_id, observed.connector, observed.id)
        if after.status == "Connected":
            return Change(Outcome.UPDATED, memento=Written(before=observed, after=after))
        if after.status == "Error":
            _, undone = await self._put_previous(target, after, snapshot)
            raise PermanentError(
                f"connection {after.label} reports Error ({after.error_code or 'no code'}) with the new "
                f"secret version {snapshot.version}: {undone}"
            )
        raise TransientError(
            f"connection {after.label} reports status {after.status or 'unknown'}: not confirmed"
        )

    async def restore(self, target: Target, change: Change, snapshot: SecretSnapshot) -> tuple[Outcome, str]:
        written = change.memento
        if not isinstance(written, Written):
            raise ValueError("only a connection this run wrote can be rolled back")
        try:
            now = await self._api.get_connection(
                written.after.environment_id, written.after.connector, written.after.id
            )
        except LockstepError as error:
            return Outcome.FAILED, f"rollback failed, the new secret is still in place: {error}"
        if now.last_modified != written.after.last_modified:
            return (
                Outcome.FAILED,
                "rollback skipped: someone changed the connection after this run updated it; "
                "their change stays",
            )
        restored, undone = await self._put_previous(target, now, snapshot)
        return (Outcome.ROLLED_BACK if restored else Outcome.FAILED), undone

    async def _put_previous(
        self, target: Target, connection: Connection, snapshot: SecretSnapshot
    ) -> tuple[bool, str]:
        """Puts the previous enabled version back: (done, what happened), never a value."""
        spec = _spec(target)
        try:
            previous = await self._previous_version(snapshot)
            if previous is None:
                return False, "rollback failed: the secret has no earlier enabled version in Key Vault"
            await self._api.put_credentials(connection, spec.client_id, spec.tenant_id, previous.value)
            check = await self._api.get_connection(
                connection.environment_id, connection.connector, connection.id
            )
        except LockstepError as error:
            return False, f"rollback failed, the new secret is still in place: {error}"
        status = (
            ""
            if check.status == "Connected"
            else f" (it reports {check.status or 'no status'} {check.error_code})"
        )
        return True, f"rolled back to the secret's previous version {previous.version}{status.rstrip()}"

    async def _previous_version(self, snapshot: SecretSnapshot) -> SecretSnapshot | None:
        key = (snapshot.name, snapshot.version)
        if key not in self._previous or (self._previous[key].done() and self._previous[key].exception()):
            self._previous[key] = asyncio.ensure_future(
                self._secrets.get_previous(snapshot.name, snapshot.version)
            )
        return await asyncio.shield(self._previous[key])

    def close(self) -> None:
        futures: list[asyncio.Future[Any]] = [*self._listings.values(), *self._previous.values()]
        for future in futures:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning for a failed listing


def _named(target: Target, found: Connection) -> Target:
    spec = _spec(target).model_copy(update={"id": found.id, "display_name": found.display_name})
    return target.model_copy(update={"connection": spec})
