"""`doctor` for connection targets: each mapped connection checked without changing it (GETs only).

Per environment with connection rows: the connection listing (a discovering row's connections are
those of its connector signing in as its client id; how many were found), then each connection:
readable, a service principal of the mapped client id, editable by Lockstep (its object id, as
the organisation's WhoAmI knows its application user, holds CanEdit or Owner among the
connection's permissions) and its status (Connected, or Error with the service's code). Every
finding says what to do: share as Can edit, register as a management application, pin or fix
the id, or let the next sync write the current secret.
"""

from __future__ import annotations

from typing import Any

from sync.adapters.connection_model import Connection
from sync.adapters.connections import REGISTER_HINT
from sync.adapters.flows import FlowsClient
from sync.cli.doctor_checks import Check, attempt, make_check
from sync.inventory_connections import matches
from sync.mapping import Environment
from sync.models import Target
from sync.runtime import Runtime

EDIT_ROLES = frozenset({"canedit", "owner"})
SHARE_FIX = "share the connection with Lockstep's identity as Can edit (or make it an owner)"
REGISTER_FIX = f"{REGISTER_HINT}; then share its connections with it as Can edit"
ERROR_FIX = (
    "`sync SECRET` or the reconcile writes the current secret version; if it stays in Error, the "
    "secret in Key Vault is not a valid client secret of the app registration"
)


class ConnectionDoctor:
    """Checks one environment's connection targets; every call a GET."""

    def __init__(self, runtime: Runtime) -> None:
        self._api = runtime.connectivity
        self._flows = FlowsClient(runtime.dataverse)

    async def environment(
        self, environment: Environment, targets: list[Target]
    ) -> tuple[list[Check], list[dict[str, Any]]]:
        """(checks, target rows) for the connection targets of one environment."""
        scope = f"environment {environment.name}"
        checks: list[Check] = []
        rows: list[dict[str, Any]] = []
        me, problem = await attempt(self._flows.caller_object_id(environment.url))
        whose = None if problem else me
        listing: list[Connection] | None = None
        if any(t.connection is not None and t.connection.id is None for t in targets):
            listing, problem = await attempt(self._api.list_connections(environment.id))
            fix = (
                REGISTER_FIX
                if "HTTP 401" in (problem or "") or "HTTP 403" in (problem or "")
                else "see the detail"
            )
            checks.append(make_check(scope, "connections API", problem, "connections listed", fix))
        for target in targets:
            spec = target.connection
            assert spec is not None
            if spec.id is not None:
                found, problem = await attempt(
                    self._api.get_connection(environment.id, spec.connector, spec.id)
                )
                if problem is not None:
                    checks.append(make_check(scope, f"connection {spec.id}", problem, "", _read_fix(problem)))
                    rows.append(_row(target, spec.id, "", "error", problem))
                    continue
                connections = [found]
            else:
                if listing is None:
                    rows.append(
                        _row(target, None, "", "error", "the environment's connections could not be listed")
                    )
                    continue
                connections = matches(listing, spec)
                name = f"connections of {spec.connector} for client id {spec.client_id}"
                none = "none found (or none shared with Lockstep's identity)" if not connections else None
                checks.append(
                    make_check(
                        scope,
                        name,
                        none,
                        f"{len(connections)} found",
                        f"create one, or {SHARE_FIX.removeprefix('share the connection')}; or pin its id",
                    )
                )
                if none:
                    rows.append(_row(target, None, "", "not_found", none))
            for connection in connections:
                check, row = await self._one(scope, target, connection, whose)
                checks.append(check)
                rows.append(row)
        return checks, rows

    async def _one(
        self, scope: str, target: Target, connection: Connection, me: str | None
    ) -> tuple[Check, dict[str, Any]]:
        spec = target.connection
        assert spec is not None
        problems: list[tuple[str, str]] = []
        if not connection.service_principal:
            problems.append(("signs in as a user, not a service principal", "remove it from the mapping"))
        elif connection.client_id is not None and connection.client_id != spec.client_id:
            problems.append((f"signs in as client id {connection.client_id}", "fix client_id in the mapping"))
        not_editable = await self._editable(connection, me)
        if not_editable is not None:
            problems.append((not_editable, SHARE_FIX))
        if connection.status == "Error":
            problems.append((f"reports Error ({connection.error_code or 'no code'})", ERROR_FIX))
        elif connection.status != "Connected":
            problems.append((f"reports status {connection.status or 'none'}", ERROR_FIX))
        detail = "readable, editable, Connected"
        problem = "; ".join(p for p, _ in problems) or None
        fix = "; ".join(dict.fromkeys(f for _, f in problems))
        name = f"connection {connection.display_name or connection.id}"
        state = "ok" if problem is None else ("needs_action" if not_editable else "error")
        return (
            make_check(scope, name, problem, detail, fix),
            _row(target, connection.id, connection.display_name, state, problem or ""),
        )

    async def _editable(self, connection: Connection, me: str | None) -> str | None:
        """Why Lockstep may not edit the connection, or None (also when that cannot be told)."""
        if me is None:
            return None  # WhoAmI failed: the environment's own check says so
        permissions, problem = await attempt(
            self._api.permissions(connection.environment_id, connection.connector, connection.id)
        )
        if problem is not None:
            return f"its permissions could not be read ({problem})"
        roles = {p.role.lower() for p in permissions if p.principal_id == me}
        if roles & EDIT_ROLES:
            return None
        held = ", ".join(sorted(roles)) or "no role"
        return f"not editable by Lockstep (it holds {held})"


def _read_fix(problem: str) -> str:
    if "does not exist" in problem:
        return "check the connection id in the mapping (the connection may have been deleted)"
    if "HTTP 401" in problem:
        return REGISTER_FIX
    if "HTTP 403" in problem:
        return SHARE_FIX
    return "see the detail"


def _row(
    target: Target, connection_id: str | None, display_name: str, state: str, reason: str
) -> dict[str, Any]:
    return {
        "secret": target.secret,
        "environment": target.environment.name,
        "stage": target.environment.stage,
        "connection": {"id": connection_id, "display_name": display_name},
        "state": state,
        "reason": reason,
    }
