"""Dataverse Web API v9.2: routing, WhoAmI and the definitions listing (filters, expand, paging).

Value rows live in _values, flows in _flows, dependency rows in _dependencies, the shared OData
plumbing in _odata.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from . import _bots, _secret_values
from ._http import (
    JSON,
    check_bearer,
    error_response,
    fault_response,
    hang_up,
    media_type,
    parse_json_object,
    take_fault,
)
from ._odata import (
    CALLER,
    CODE_BAD_REQUEST,
    CODE_NOT_FOUND,
    CODE_QUERY,
    CODE_UNAUTHORIZED,
    ODataError,
    _check_headers,
    _error,
    _guid,
    _page,
    _query_options,
    _require_method,
    _response,
    _select,
    etag,
)
from ._principals import aliases, application_user
from ._state import (
    CRM_SUFFIX,
    Definition,
    EnvironmentState,
    State,
    dataverse_audience,
)
from ._values import (
    VALUE_COLUMNS,
    VALUE_TYPE,
    _create_value,
    _delete_value,
    _get_value,
    _update_value,
    _value_json,
)

SERVICE = "dataverse"
API_PREFIX = "/api/data/v9.2/"


DEFINITION_TYPE = "Microsoft.Dynamics.CRM.environmentvariabledefinition"
NAV_PROPERTY = "environmentvariabledefinition_environmentvariablevalue"

DEFINITION_COLUMNS = (
    "environmentvariabledefinitionid",
    "schemaname",
    "displayname",
    "type",
    "defaultvalue",
    "statecode",
    "statuscode",
)

LITERAL = r"'((?:[^']|'')*)'"
FILTER = re.compile(rf"^\s*schemaname\s+eq\s+{LITERAL}\s*$")
IN_FILTER = re.compile(
    r"^\s*Microsoft\.Dynamics\.CRM\.In\(\s*PropertyName\s*=\s*'schemaname'\s*,"
    r"\s*PropertyValues\s*=\s*\[((?:\s*'(?:[^']|'')*'\s*,)*\s*'(?:[^']|'')*'\s*)\]\s*\)\s*$"
)
IN_LITERAL = re.compile(LITERAL)
MAX_URL_LENGTH = 32768
VALUE_KEY = re.compile(r"^environmentvariablevalues\((.*)\)$")
EXPAND = re.compile(r"^([A-Za-z_]\w*)(?:\((.*)\))?$")


def _expand(raw: str | None) -> list[str] | None:
    """The value columns to expand, or None when nothing is expanded."""
    if raw is None:
        return None
    match = EXPAND.match(raw.strip())
    if match is None:
        raise ODataError(400, CODE_QUERY, "The $expand option is not well formed.")
    navigation, options = match.group(1), match.group(2)
    if navigation != NAV_PROPERTY:
        raise ODataError(
            400,
            CODE_BAD_REQUEST,
            f"Could not find a property named '{navigation}' on type '{DEFINITION_TYPE}'.",
        )
    if options is None or not options.strip():
        return list(VALUE_COLUMNS)
    name, sep, value = options.partition("=")
    if not sep or name.strip() != "$select":
        raise ODataError(400, CODE_QUERY, "Only $select is supported inside $expand(...).")
    return _select(value, VALUE_COLUMNS, VALUE_TYPE)


def _schema_filter(raw: str | None) -> set[str] | None:
    """The lower-case schema names a `$filter` asks for, or None when it asks for every row."""
    if raw is None:
        return None
    match = FILTER.match(raw)
    if match is not None:
        return {match.group(1).replace("''", "'").lower()}
    in_match = IN_FILTER.match(raw)
    if in_match is not None:
        return {literal.replace("''", "'").lower() for literal in IN_LITERAL.findall(in_match.group(1))}
    raise ODataError(
        400,
        CODE_QUERY,
        "Syntax error in $filter: the emulator accepts schemaname eq '<literal>' and "
        "Microsoft.Dynamics.CRM.In(PropertyName='schemaname',PropertyValues=['<literal>',...]), "
        "with any quote inside a literal doubled ('').",
    )


def _definition_json(definition: Definition, columns: list[str]) -> dict[str, Any]:
    all_values: dict[str, Any] = {
        "environmentvariabledefinitionid": definition.id,
        "schemaname": definition.schema_name,
        "displayname": definition.schema_name,
        "type": definition.type,
        "defaultvalue": None,
        "statecode": 0,
        "statuscode": 1,
    }
    return {"@odata.etag": etag(definition.row_version), **{c: all_values[c] for c in columns}}


async def handle(state: State, request: web.Request, host: str) -> web.Response:
    org = host[: -len(CRM_SUFFIX)]
    problem = check_bearer(state, request, dataverse_audience(org))
    if problem is not None:
        return error_response(401, CODE_UNAUTHORIZED, problem.message, headers={"WWW-Authenticate": "Bearer"})
    fault = take_fault(state, SERVICE, request)
    if fault is not None and fault.kind != "drop_after":
        return fault_response(fault, request)
    try:
        if not request.path.startswith(API_PREFIX):
            raise ODataError(404, CODE_QUERY, "Resource not found: the Web API lives under /api/data/v9.2/.")
        _check_headers(request)
        if len(str(request.rel_url)) > MAX_URL_LENGTH:
            raise ODataError(414, CODE_QUERY, f"The request URL is longer than {MAX_URL_LENGTH} characters.")
        base = f"https://{host}{API_PREFIX}"
        segment = request.path[len(API_PREFIX) :]
        body: dict[str, Any] | None = None
        if request.method in ("POST", "PATCH"):
            if media_type(request) != JSON:
                raise ODataError(415, CODE_BAD_REQUEST, "The request Content-Type must be application/json.")
            body = parse_json_object(await request.read())
            if body is None:
                raise ODataError(400, CODE_BAD_REQUEST, "The request body is not a JSON object.")
        with state.lock:
            request[CALLER] = aliases(state, state.caller_of(request.headers.get("Authorization")))
            env = state.environment_by_org(org)
            if env is None:
                raise ODataError(404, CODE_NOT_FOUND, f"No organization is hosted at {host}.")
            response = _route(state, env, request, segment, base, body)
    except ODataError as error:
        response = _error(error)
    if fault is not None:  # drop_after: the request was applied; its answer is lost
        return hang_up(request)
    return response


def _route(
    state: State,
    env: EnvironmentState,
    request: web.Request,
    segment: str,
    base: str,
    body: dict[str, Any] | None,
) -> web.Response:
    method = request.method
    if segment in ("WhoAmI", "WhoAmI()"):
        _require_method(method, "GET")
        _query_options(request, set())
        return _response(
            200,
            {
                "@odata.context": f"{base}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                "BusinessUnitId": env.business_unit_id,
                "UserId": application_user(state, env, state.caller_of(request.headers.get("Authorization"))),
                "OrganizationId": env.organization_id,
            },
        )
    if segment == _secret_values.SEGMENT:
        _require_method(method, "POST")
        return _secret_values.retrieve(state, env, request, body, base)
    if segment == "environmentvariabledefinitions":
        _require_method(method, "GET")
        return _list_definitions(env, request, base)
    if segment == "environmentvariablevalues":
        _require_method(method, "POST")
        assert body is not None
        return _create_value(env, request, body, base)
    key_match = VALUE_KEY.match(segment)
    if key_match is not None:
        row_id = _guid(key_match.group(1))
        if method == "GET":
            return _get_value(env, request, row_id, base)
        if method == "DELETE":
            return _delete_value(env, request, row_id)
        _require_method(method, "PATCH")
        assert body is not None
        return _update_value(env, request, row_id, body, base)
    answer = _bots.route(env, request, segment, base, body)
    if answer is not None:
        return answer
    from . import _dependencies, _flows  # lazily: flows may build on this module's helpers

    answer = _flows.route(env, request, segment, base, body)
    if answer is None:
        answer = _dependencies.route(env, request, segment, base)
    if answer is not None:
        return answer
    raise ODataError(404, CODE_QUERY, f"Resource not found for the segment '{segment.split('(', 1)[0]}'.")


def _list_definitions(env: EnvironmentState, request: web.Request, base: str) -> web.Response:
    """Lists definitions in id order, one page at a time, like Dataverse's server-side paging."""
    options = _query_options(request, {"$filter", "$select", "$expand", "$skiptoken"})
    wanted = _schema_filter(options.get("$filter"))
    columns = _select(options.get("$select"), DEFINITION_COLUMNS, DEFINITION_TYPE)
    expand_columns = _expand(options.get("$expand"))
    matching = [
        definition
        for definition in sorted(env.definitions.values(), key=lambda d: d.id)
        if wanted is None or definition.schema_name.lower() in wanted
    ]

    def project(definition: Definition) -> dict[str, Any]:
        row = _definition_json(definition, columns)
        if expand_columns is not None:
            row[NAV_PROPERTY] = [_value_json(v, expand_columns) for v in env.rows_of(definition.id)]
        return row

    context_columns = ",".join(columns)
    if expand_columns is not None:
        context_columns += f",{NAV_PROPERTY}({','.join(expand_columns)})"
    entity_set = "environmentvariabledefinitions"
    return _page(request, options, base, entity_set, f"{entity_set}({context_columns})", matching, project)
