"""The ``Environment`` handle's connectivity part: connections, their owners and shares, for tests.

``add_connection`` creates what a maker would (a connection with a parameter set, an owner, maybe a
share with Lockstep's identity); ``connection`` snapshots one for assertions, never with its secret.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from ._connections import (
    MANAGED_IDENTITY,
    REQUIRED_KEYS,
    ROLES,
    SERVICE_PRINCIPAL_SETS,
    Connection,
    Permission,
    statuses,
)
from ._connectivity import environment_host
from ._principals import resolve
from ._state import FAKE_TENANT_ID, EnvironmentState, State, SystemUser

CONNECTOR = re.compile(r"^shared_[a-z0-9]+$")
CONNECTION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class ConnectionsMixin:
    _state: State
    _env: EnvironmentState

    @property
    def connectivity_host(self) -> str:
        """``<id without dashes but the last two>.<last two>.environment.api.powerplatform.lockstep.test``."""
        return environment_host(self._env.id)

    def add_connection(
        self,
        connector: str,
        parameter_set: str,
        *,
        client_id: str | None = None,
        tenant_id: str | None = None,
        client_secret: str | None = None,
        display_name: str | None = None,
        owner: str | None = None,
        shared_with_lockstep: str | None = None,
        status: str | None = None,
        connection_id: str | None = None,
    ) -> str:
        """A connection as a maker creates it; returns its id (32 hex digits unless given).

        Service-principal sets (``ServicePrincipalOauth``, ``oauthSP``) need ``client_id``; the
        secret defaults to the app registration's newest valid one (so the connection is Connected).
        ``owner`` is a systemuser id of this environment (a new user when omitted);
        ``shared_with_lockstep`` gives Lockstep's managed identity a role (CanView, CanViewWithShare,
        CanEdit, Owner), whatever client id it asks tokens for; ``status`` ("Connected" / "Error") is
        forced until the next PUT.
        """
        if not CONNECTOR.match(connector):
            raise ValueError(f"invalid connector {connector!r}: shared_<name>")
        if parameter_set not in REQUIRED_KEYS:
            raise ValueError(f"unknown parameter set {parameter_set!r}; one of {', '.join(REQUIRED_KEYS)}")
        if shared_with_lockstep is not None and shared_with_lockstep not in ROLES:
            raise ValueError(f"unknown role {shared_with_lockstep!r}; one of {', '.join(ROLES)}")
        if status not in (None, "Connected", "Error"):
            raise ValueError("status must be 'Connected', 'Error' or None")
        connection_id = (connection_id or uuid.uuid4().hex).lower()
        if not CONNECTION_ID.match(connection_id):
            raise ValueError(f"invalid connection id {connection_id!r}")
        with self._state.lock:
            if owner is None:
                owner = self._env.add_systemuser(f"Owner of {display_name or connector}").id
            if connection_id in self._env.connections:
                raise ValueError(f"connection {connection_id!r} already exists in {self._env.name!r}")
            values = self._values(parameter_set, client_id, tenant_id, client_secret)
            user: SystemUser = self._env.systemusers[owner]
            now = datetime.now(UTC)
            connection = Connection(
                id=connection_id,
                connector=connector,
                display_name=display_name or f"{connector} connection",
                parameter_set=parameter_set,
                values=values,
                owner=Permission(
                    user.azure_object_id, user.azure_object_id, "User", user.fullname, "Owner", FAKE_TENANT_ID
                ),
                shares=[],
                created=now,
                modified=now,
                forced_status=status,
            )
            if shared_with_lockstep is not None:
                connection.shares.append(_lockstep_share(shared_with_lockstep))
            self._env.connections[connection_id] = connection
            return connection_id

    def _values(
        self, parameter_set: str, client_id: str | None, tenant_id: str | None, client_secret: str | None
    ) -> dict[str, str]:
        if parameter_set not in SERVICE_PRINCIPAL_SETS:
            return {"token:grantType": "code"}
        if client_id is None:
            raise ValueError(f"parameter set {parameter_set!r} needs client_id")
        app = self._state.app_registrations.get(client_id.lower())
        if client_secret is None:
            client_secret = app.valid_secrets[-1] if app is not None and app.valid_secrets else "no-secret"
        tenant = tenant_id or (app.tenant_id if app is not None else FAKE_TENANT_ID)
        return {
            "token:clientId": client_id,
            "token:clientSecret": client_secret,
            "token:TenantId": tenant,
            "token:grantType": "client_credentials",
        }

    def _connection(self, connection_id: str) -> Connection:
        found = self._env.connections.get(connection_id.lower())
        if found is None:
            raise KeyError(f"no connection {connection_id!r} in {self._env.name!r}")
        return found

    def share_connection(self, connection_id: str, role: str, principal_id: str | None = None) -> None:
        """Share with ``principal_id`` (Lockstep's managed identity when omitted), replacing its role."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        with self._state.lock:
            connection = self._connection(connection_id)
            principal = (principal_id or MANAGED_IDENTITY).lower()
            connection.shares = [s for s in connection.shares if s.principal_id.lower() != principal]
            share = _lockstep_share(role)
            share.principal_id = principal
            connection.shares.append(share)

    def unshare_connection(self, connection_id: str, principal_id: str | None = None) -> None:
        with self._state.lock:
            connection = self._connection(connection_id)
            principal = (principal_id or MANAGED_IDENTITY).lower()
            connection.shares = [s for s in connection.shares if s.principal_id.lower() != principal]

    def set_connection_status(self, connection_id: str, status: str | None) -> None:
        """Force ``Connected`` / ``Error`` until the next PUT (None: derive it from the secret again)."""
        if status not in (None, "Connected", "Error"):
            raise ValueError("status must be 'Connected', 'Error' or None")
        with self._state.lock:
            self._connection(connection_id).forced_status = status

    def hide_unshared_connections(self, hide: bool = True) -> None:
        """The listing omits, and a read answers 403 for, connections the caller holds no role on."""
        with self._state.lock:
            self._env.hide_unshared_connections = hide

    def connection(self, connection_id: str) -> dict[str, Any]:
        """A snapshot for assertions (no secret): status, parameter set, client id, times, PUT count."""
        with self._state.lock:
            c = self._connection(connection_id)
            return {
                "id": c.id,
                "connector": c.connector,
                "display_name": c.display_name,
                "parameter_set": c.parameter_set,
                "status": statuses(c, self._state.app_registrations)[0]["status"],
                "client_id": c.values.get("token:clientId"),
                "tenant_id": c.values.get("token:TenantId"),
                "created": c.created,
                "last_modified": c.modified,
                "puts": len(c.history),
                "owner": c.owner.principal_id,
                "shares": {resolve(self._state, s.principal_id): s.role for s in c.shares},
            }

    def connection_holds(self, connection_id: str, secret: str) -> bool:
        """Whether the connection's stored client secret is ``secret`` (compared, never returned)."""
        with self._state.lock:
            return self._connection(connection_id).values.get("token:clientSecret") == secret


def _lockstep_share(role: str) -> Permission:
    return Permission(
        str(uuid.uuid4()),
        MANAGED_IDENTITY,
        "ServicePrincipal",
        "Lockstep (managed identity)",
        role,
        FAKE_TENANT_ID,
    )
