"""Power Platform API, connectivity: an environment's connections, read, updated and their permissions.

Host per environment: the id without dashes, split before its last two characters, under
``environment.api.powerplatform.lockstep.test``. Faithful to what credential rotation relies on:
a bearer token for ``https://api.powerplatform.lockstep.test``, a caller registered as a management
application (else 403), GET never returning a secret (or the hidden grant type), a PUT that needs
the complete parameter set, keeps the set's name, needs the Owner or CanEdit role, and reports
``Connected`` only when Entra would accept the client secret now.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ._connections import (
    EDIT_ROLES,
    Connection,
    connection_json,
    parameter_set_problem,
    permission_json,
    secret_problem,
)
from ._http import (
    JSON,
    check_bearer,
    error_response,
    fault_response,
    json_response,
    media_type,
    parse_json_object,
    take_fault,
)
from ._principals import aliases, identity_as_seen_by
from ._state import (
    ENVIRONMENT_API_SUFFIX,
    FAKE_TENANT_ID,
    POWER_PLATFORM_API_AUDIENCE,
    EnvironmentState,
    State,
)

SERVICE = "connectivity"
API_VERSION = re.compile(r"^(1|\d{4}-\d{2}-\d{2}(-preview)?)$")
LIST_PATH = "/connectivity/connections"
ONE_PATH = re.compile(
    r"^/connectivity/connectors/([A-Za-z0-9_.-]+)/connections/([A-Za-z0-9_.-]+)(/permissions)?$"
)
ENVIRONMENT_FILTER = re.compile(r"^\s*environment\s+eq\s+'([^']*)'\s*$")


class ConnectivityError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def compact_id(host: str) -> str | None:
    """``<a>.<bc>.environment.api…`` → ``a + bc``: the environment id without dashes, or None."""
    if not host.endswith(ENVIRONMENT_API_SUFFIX):
        return None
    head, _, tail = host[: -len(ENVIRONMENT_API_SUFFIX)].rpartition(".")
    if not head or "." in head or len(tail) != 2:
        return None
    return head + tail


def environment_host(environment_id: str) -> str:
    compact = environment_id.replace("-", "").lower()
    return f"{compact[:-2]}.{compact[-2:]}{ENVIRONMENT_API_SUFFIX}"


async def handle(state: State, request: web.Request, host: str) -> web.Response:
    problem = check_bearer(state, request, POWER_PLATFORM_API_AUDIENCE)
    if problem is not None:
        return error_response(
            401, "InvalidAuthenticationToken", problem.message, headers={"WWW-Authenticate": "Bearer"}
        )
    with state.lock:
        caller = state.caller_of(request.headers.get("Authorization"))
        registered = bool(aliases(state, caller) & {app.lower() for app in state.management_apps})
    if not registered:
        return error_response(
            403,
            "Forbidden",
            f"The service principal with id '{caller}' for application {caller} does not have permission to "
            f"access the path '{request.path}' in tenant {FAKE_TENANT_ID}. Register the application as a "
            "Power Platform management application.",
        )
    fault = take_fault(state, SERVICE, request)
    if fault is not None:
        return fault_response(fault, request)
    try:
        body = None
        if request.method == "PUT":
            if media_type(request) != JSON:
                raise ConnectivityError(
                    415, "UnsupportedMediaType", "The request Content-Type must be application/json."
                )
            body = parse_json_object(await request.read())
            if body is None:
                raise ConnectivityError(
                    400, "InvalidRequestContent", "The request body must be a JSON object."
                )
        with state.lock:
            return _route(state, request, host, caller, body)
    except ConnectivityError as error:
        return error_response(error.status, error.code, error.message)


def _route(
    state: State, request: web.Request, host: str, caller: str | None, body: dict[str, Any] | None
) -> web.Response:
    compact = compact_id(host)
    env = None if compact is None else state.environment_by_compact_id(compact)
    if env is None:
        raise ConnectivityError(404, "EnvironmentNotFound", f"No environment is served at {host}.")
    _check_query(request, env)
    known_as, identity = aliases(state, caller), identity_as_seen_by(state, caller)
    if request.path == LIST_PATH:
        _require(request, "GET")
        rows = [
            connection_json(c, env.id, state.app_registrations, identity=identity, with_permissions=True)
            for c in sorted(env.connections.values(), key=lambda c: c.id)
            if not env.hide_unshared_connections or c.role_of(known_as) is not None
        ]
        return json_response(200, {"value": rows})
    match = ONE_PATH.match(request.path)
    if match is None:
        raise ConnectivityError(404, "NotFound", "The requested resource does not exist.")
    connector, connection_id, permissions = match.groups()
    connection = env.connections.get(connection_id.lower())
    if connection is None or connection.connector.lower() != connector.lower():
        raise ConnectivityError(
            404, "ConnectionNotFound", f"Could not find connection '{connection_id}' for API '{connector}'."
        )
    role = connection.role_of(known_as)
    if env.hide_unshared_connections and role is None:
        raise _forbidden(caller, connection)
    if permissions:
        _require(request, "GET")
        return json_response(
            200, {"value": [permission_json(connection, p, identity) for p in connection.permissions()]}
        )
    if request.method == "GET":
        return json_response(
            200, connection_json(connection, env.id, state.app_registrations, identity=identity)
        )
    _require(request, "PUT")
    if role not in EDIT_ROLES:
        raise _forbidden(caller, connection)
    assert body is not None
    return _update(state, env, connection, body, identity)


def _check_query(request: web.Request, env: EnvironmentState) -> None:
    version = request.query.get("api-version")
    if version is None:
        raise ConnectivityError(
            400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required."
        )
    if not API_VERSION.match(version):
        raise ConnectivityError(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid.")
    unknown = sorted(set(request.query) - {"api-version", "$filter"})
    if unknown:
        raise ConnectivityError(
            400, "InvalidQueryParameter", f"The query parameter '{unknown[0]}' is not supported."
        )
    raw = request.query.get("$filter")
    if raw is not None:
        match = ENVIRONMENT_FILTER.match(raw)
        if match is None:
            raise ConnectivityError(
                400, "InvalidFilter", "The $filter must be environment eq '<environment id>'."
            )
        if match.group(1).lower() != env.id.lower():
            raise ConnectivityError(
                400, "InvalidFilter", "The $filter names another environment than the host serves."
            )


def _require(request: web.Request, method: str) -> None:
    if request.method != method:
        raise ConnectivityError(405, "MethodNotAllowed", f"The method {request.method} is not allowed here.")


def _forbidden(caller: str | None, connection: Connection) -> ConnectivityError:
    return ConnectivityError(
        403,
        "Forbidden",
        f"The caller with object id '{caller}' does not have permission to edit connection "
        f"'{connection.id}' of API '{connection.connector}'. Share the connection with it (Can edit) "
        "or make it an owner.",
    )


def _update(
    state: State, env: EnvironmentState, connection: Connection, body: dict[str, Any], identity: str
) -> web.Response:
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise ConnectivityError(400, "InvalidRequestContent", "The request body must have 'properties'.")
    parameter_set = properties.get("connectionParametersSet")
    problem = parameter_set_problem(connection.parameter_set, parameter_set)
    if problem is not None:
        raise ConnectivityError(400, "InvalidConnectionParameters", problem)
    assert isinstance(parameter_set, dict)
    values = {key: entry["value"] for key, entry in parameter_set["values"].items()}
    display_name = properties.get("displayName", connection.display_name)
    if not isinstance(display_name, str) or not display_name.strip():
        raise ConnectivityError(
            400, "InvalidRequestContent", "The property 'displayName' must be a non-empty string."
        )
    if state.invalid_secret_answer == "refuse" and connection.parameter_set != "Oauth":
        refusal = secret_problem(values, state.app_registrations)
        if refusal is not None:
            raise ConnectivityError(400, "Unauthenticated", refusal)
    connection.values = values
    connection.display_name = display_name
    connection.modified = datetime.now(UTC)
    connection.forced_status = None
    connection.history.append("put")
    return json_response(200, connection_json(connection, env.id, state.app_registrations, identity=identity))
