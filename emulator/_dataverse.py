"""Dataverse Web API v9.2, limited to environment-variable definitions/values and WhoAmI."""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web
from yarl import URL

from ._http import (
    JSON,
    check_bearer,
    empty_response,
    error_response,
    fault_response,
    hang_up,
    json_response,
    media_type,
    parse_json_object,
    take_fault,
)
from ._state import (
    CRM_SUFFIX,
    TYPE_SECRET,
    VALUE_MAX_LENGTH,
    Definition,
    EnvironmentState,
    State,
    ValueRow,
    dataverse_audience,
)

SERVICE = "dataverse"
API_PREFIX = "/api/data/v9.2/"

CODE_BAD_REQUEST = "0x80048d19"
CODE_QUERY = "0x80060888"
CODE_HEADER = "0x80048d1a"
CODE_NOT_FOUND = "0x80040217"
CODE_ETAG = "0x80060882"
CODE_DUPLICATE = "0x80040237"
CODE_LENGTH = "0x80044331"
CODE_UNAUTHORIZED = "0x80072560"
CODE_METHOD = "0x80060889"
CODE_PRIVILEGE = "0x80040220"

DEFINITION_TYPE = "Microsoft.Dynamics.CRM.environmentvariabledefinition"
VALUE_TYPE = "Microsoft.Dynamics.CRM.environmentvariablevalue"
NAV_PROPERTY = "environmentvariabledefinition_environmentvariablevalue"
BIND_PROPERTY = "EnvironmentVariableDefinitionId@odata.bind"

DEFINITION_COLUMNS = (
    "environmentvariabledefinitionid",
    "schemaname",
    "displayname",
    "type",
    "defaultvalue",
    "statecode",
    "statuscode",
)
VALUE_COLUMNS = (
    "environmentvariablevalueid",
    "value",
    "schemaname",
    "_environmentvariabledefinitionid_value",
    "statecode",
    "statuscode",
)
WRITABLE_VALUE_COLUMNS = {"value", "schemaname"}

GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
LITERAL = r"'((?:[^']|'')*)'"
FILTER = re.compile(rf"^\s*schemaname\s+eq\s+{LITERAL}\s*$")
IN_FILTER = re.compile(
    r"^\s*Microsoft\.Dynamics\.CRM\.In\(\s*PropertyName\s*=\s*'schemaname'\s*,"
    r"\s*PropertyValues\s*=\s*\[((?:\s*'(?:[^']|'')*'\s*,)*\s*'(?:[^']|'')*'\s*)\]\s*\)\s*$"
)
IN_LITERAL = re.compile(LITERAL)
MAX_PAGE_SIZE = 5000
MAX_URL_LENGTH = 32768
MAX_PAGE_SIZE_PREFERENCE = re.compile(r"(?:^|[,;]\s*)odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)
VALUE_KEY = re.compile(r"^environmentvariablevalues\((.*)\)$")
EXPAND = re.compile(r"^([A-Za-z_]\w*)(?:\((.*)\))?$")
SECRET_REFERENCE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/[^/]+/secrets/[^/]+$",
    re.IGNORECASE,
)


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _response(status: int, body: Any, *, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(
        status,
        body,
        headers={"OData-Version": "4.0", **(headers or {})},
        content_type="application/json; odata.metadata=minimal",
    )


def _error(error: ODataError) -> web.Response:
    return error_response(error.status, error.code, error.message, headers={"OData-Version": "4.0"})


def etag(row_version: int) -> str:
    return f'W/"{row_version}"'


def _check_headers(request: web.Request) -> None:
    for header in ("OData-MaxVersion", "OData-Version"):
        got = request.headers.get(header)
        if got is None:
            raise ODataError(400, CODE_HEADER, f"The request has no {header} header; it must be 4.0.")
        if got.strip() != "4.0":
            raise ODataError(400, CODE_HEADER, f"The {header} header must be 4.0, got '{got.strip()}'.")
    accept = request.headers.get("Accept")
    if accept is None:
        raise ODataError(400, CODE_HEADER, "The request has no Accept header; it must be application/json.")
    types = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    if JSON not in types:
        raise ODataError(400, CODE_HEADER, f"The Accept header must be application/json, got '{accept}'.")


def _query_options(request: web.Request, allowed: set[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in request.query.items():
        if key in options:
            raise ODataError(400, CODE_QUERY, f"The query option {key} is specified more than once.")
        if key not in allowed:
            raise ODataError(400, CODE_QUERY, f"The query option '{key}' is not supported here.")
        options[key] = value
    return options


def _select(raw: str | None, columns: tuple[str, ...], entity_type: str) -> list[str]:
    if raw is None:
        return list(columns)
    selected = [part.strip() for part in raw.split(",")]
    for column in selected:
        if not column:
            raise ODataError(400, CODE_QUERY, "The $select option has an empty column name.")
        if column not in columns:
            raise ODataError(
                400, CODE_BAD_REQUEST, f"Could not find a property named '{column}' on type '{entity_type}'."
            )
    return selected


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


def _page_size(request: web.Request) -> tuple[int, bool]:
    """The page size and whether the client asked for it (`Prefer: odata.maxpagesize=N`)."""
    match = MAX_PAGE_SIZE_PREFERENCE.search(request.headers.get("Prefer", ""))
    if match is None:
        return MAX_PAGE_SIZE, False
    return max(1, min(int(match.group(1)), MAX_PAGE_SIZE)), True


def _skip(raw: str | None) -> int:
    if raw is None:
        return 0
    if not raw.isdigit():
        raise ODataError(400, CODE_QUERY, "The $skiptoken is not one this server issued.")
    return int(raw)


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


def _value_json(row: ValueRow, columns: list[str]) -> dict[str, Any]:
    all_values: dict[str, Any] = {
        "environmentvariablevalueid": row.id,
        "value": row.value,
        "schemaname": row.schema_name,
        "_environmentvariabledefinitionid_value": row.definition_id,
        "statecode": 0,
        "statuscode": 1,
    }
    body: dict[str, Any] = {"@odata.etag": etag(row.row_version)}
    for column in columns:
        body[column] = all_values[column]
    body.setdefault("environmentvariablevalueid", row.id)  # Dataverse always returns the primary key
    return body


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
            env = state.environment_by_org(org)
            if env is None:
                raise ODataError(404, CODE_NOT_FOUND, f"No organization is hosted at {host}.")
            response = _route(env, request, segment, base, body)
    except ODataError as error:
        response = _error(error)
    if fault is not None:  # drop_after: the request was applied; its answer is lost
        return hang_up(request)
    return response


def _route(
    env: EnvironmentState, request: web.Request, segment: str, base: str, body: dict[str, Any] | None
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
                "UserId": env.user_id,
                "OrganizationId": env.organization_id,
            },
        )
    if segment == "environmentvariabledefinitions":
        _require_method(method, "GET")
        return _list_definitions(env, request, base)
    if segment == "environmentvariablevalues":
        _require_method(method, "POST")
        assert body is not None
        return _create_value(env, body, base)
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
    from . import _flows  # flows build on this module's helpers

    answer = _flows.route(env, request, segment, base, body)
    if answer is not None:
        return answer
    raise ODataError(404, CODE_QUERY, f"Resource not found for the segment '{segment.split('(', 1)[0]}'.")


def _require_method(method: str, allowed: str) -> None:
    if method != allowed:
        raise ODataError(405, CODE_METHOD, f"The HTTP method {method} is not allowed for this resource.")


def _guid(raw: str) -> str:
    if not re.fullmatch(GUID, raw):
        raise ODataError(400, CODE_QUERY, "The key in the request URL is not a valid GUID.")
    return raw.lower()


def _list_definitions(env: EnvironmentState, request: web.Request, base: str) -> web.Response:
    """Lists definitions in id order, one page at a time, like Dataverse's server-side paging."""
    options = _query_options(request, {"$filter", "$select", "$expand", "$skiptoken"})
    wanted = _schema_filter(options.get("$filter"))
    columns = _select(options.get("$select"), DEFINITION_COLUMNS, DEFINITION_TYPE)
    expand_columns = _expand(options.get("$expand"))
    page_size, preferred = _page_size(request)
    skip = _skip(options.get("$skiptoken"))
    matching = [
        definition
        for definition in sorted(env.definitions.values(), key=lambda d: d.id)
        if wanted is None or definition.schema_name.lower() in wanted
    ]
    rows = []
    for definition in matching[skip : skip + page_size]:
        row = _definition_json(definition, columns)
        if expand_columns is not None:
            row[NAV_PROPERTY] = [_value_json(v, expand_columns) for v in env.rows_of(definition.id)]
        rows.append(row)
    context_columns = ",".join(columns)
    if expand_columns is not None:
        context_columns += f",{NAV_PROPERTY}({','.join(expand_columns)})"
    body: dict[str, Any] = {
        "@odata.context": f"{base}$metadata#environmentvariabledefinitions({context_columns})",
        "value": rows,
    }
    if skip + page_size < len(matching):
        query = {key: value for key, value in options.items() if key != "$skiptoken"}
        query["$skiptoken"] = str(skip + page_size)
        body["@odata.nextLink"] = str(URL(f"{base}environmentvariabledefinitions").with_query(query))
    headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if preferred else None
    return _response(200, body, headers=headers)


def _get_value(env: EnvironmentState, request: web.Request, row_id: str, base: str) -> web.Response:
    options = _query_options(request, {"$select"})
    columns = _select(options.get("$select"), VALUE_COLUMNS, VALUE_TYPE)
    row = env.values.get(row_id)
    if row is None:
        raise _row_not_found("environmentvariablevalue", row_id)
    body = _value_json(row, columns)
    return _response(
        200,
        {"@odata.context": f"{base}$metadata#environmentvariablevalues({','.join(columns)})/$entity", **body},
    )


def _row_not_found(entity: str, row_id: str) -> ODataError:
    return ODataError(404, CODE_NOT_FOUND, f"{entity} With Id = {row_id} Does Not Exist")


def _check_properties(body: dict[str, Any], allow_bind: bool) -> None:
    for key in body:
        if key.endswith("@odata.bind"):
            if allow_bind and key == BIND_PROPERTY:
                continue
            name = key[: -len("@odata.bind")]
            raise ODataError(
                400,
                CODE_BAD_REQUEST,
                f"An undeclared property '{name}' which only has property annotations in the payload but no "
                "property value was found in the payload. In OData, only declared navigation properties and "
                "declared named streams can be represented as properties without values.",
            )
        if key not in WRITABLE_VALUE_COLUMNS:
            raise ODataError(
                400,
                CODE_BAD_REQUEST,
                f"The property '{key}' does not exist on type '{VALUE_TYPE}'. Make sure to only use property "
                "names that are defined by the type or mark the type as open type.",
            )


def _check_value(definition: Definition | None, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ODataError(400, CODE_BAD_REQUEST, "The property 'value' must be a string or null.")
    if len(value) > VALUE_MAX_LENGTH:
        raise ODataError(
            400,
            CODE_LENGTH,
            "A validation error occurred. The length of the 'value' attribute of the "
            f"'environmentvariablevalue' entity exceeded the maximum allowed length of '{VALUE_MAX_LENGTH}'.",
        )
    if definition is not None and definition.type == TYPE_SECRET and not SECRET_REFERENCE.match(value):
        raise ODataError(
            400,
            CODE_BAD_REQUEST,
            "The value of a Secret-type environment variable must be a Key Vault secret reference "
            "(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<vault>/secrets/<name>).",
        )


def _check_writable(env: EnvironmentState) -> None:
    """A scripted refusal, worded as Dataverse words a missing privilege (permanent: 403)."""
    if env.refuse_writes:
        raise ODataError(
            403,
            CODE_PRIVILEGE,
            f"Principal user (Id={env.user_id}, type=8) is missing prvWriteenvironmentvariablevalue"
            " privilege.",
        )


def _etag_matches(request: web.Request, row: ValueRow) -> bool:
    if_match = request.headers.get("If-Match")
    return if_match is None or if_match.strip() == "*" or if_match.strip() == etag(row.row_version)


def _delete_value(env: EnvironmentState, request: web.Request, row_id: str) -> web.Response:
    _query_options(request, set())
    row = env.values.get(row_id)
    if row is None:
        raise _row_not_found("environmentvariablevalue", row_id)
    if not _etag_matches(request, row):
        raise ODataError(
            412,
            CODE_ETAG,
            "The version of the existing record doesn't match the RowVersion property provided.",
        )
    del env.values[row_id]
    return empty_response(204, headers={"OData-Version": "4.0"})


def _entity_id(base: str, row_id: str) -> dict[str, str]:
    return {"OData-EntityId": f"{base}environmentvariablevalues({row_id})"}


def _create_value(
    env: EnvironmentState, body: dict[str, Any], base: str, row_id: str | None = None
) -> web.Response:
    """POST (a new id) or an upsert PATCH to a key that does not exist (that id).

    Like Dataverse, nothing stops a second value row for the same definition: a client that
    creates twice (a retried POST whose answer was lost, two racing instances) leaves two rows.
    """
    _check_properties(body, allow_bind=True)
    for required in ("value", "schemaname", BIND_PROPERTY):
        if required not in body:
            raise ODataError(
                400, CODE_BAD_REQUEST, f"The property '{required}' is required to create the row."
            )
    bind = body[BIND_PROPERTY]
    pattern = rf"^(?:{re.escape(base[:-1])})?/environmentvariabledefinitions\(({GUID})\)$"
    bind_match = re.match(pattern, bind) if isinstance(bind, str) else None
    if bind_match is None:
        raise ODataError(
            400,
            CODE_BAD_REQUEST,
            f"The value of '{BIND_PROPERTY}' must be /environmentvariabledefinitions(<guid>).",
        )
    definition = env.definitions.get(bind_match.group(1).lower())
    if definition is None:
        raise _row_not_found("environmentvariabledefinition", bind_match.group(1).lower())
    schema_name = body["schemaname"]
    if not isinstance(schema_name, str) or schema_name.lower() != definition.schema_name.lower():
        raise ODataError(
            400,
            CODE_BAD_REQUEST,
            "The property 'schemaname' must be the schema name of the bound environmentvariabledefinition.",
        )
    _check_value(definition, body["value"])
    _check_writable(env)
    row = ValueRow(
        id=row_id or str(uuid.uuid4()),
        definition_id=definition.id,
        schema_name=definition.schema_name,
        value=None if env.revert_writes else body["value"],
        row_version=env.next_version(),
    )
    env.values[row.id] = row
    return empty_response(204, headers={"OData-Version": "4.0", **_entity_id(base, row.id)})


def _update_value(
    env: EnvironmentState, request: web.Request, row_id: str, body: dict[str, Any], base: str
) -> web.Response:
    _query_options(request, set())
    row = env.values.get(row_id)
    if row is None:
        if request.headers.get("If-Match") is not None:  # update only: never create
            raise _row_not_found("environmentvariablevalue", row_id)
        return _create_value(env, body, base, row_id)  # upsert: PATCH to a new key creates it
    if request.headers.get("If-None-Match", "").strip() == "*":  # create only: never overwrite
        raise ODataError(412, CODE_DUPLICATE, "A record with matching key values already exists.")
    _check_properties(body, allow_bind=False)
    if not _etag_matches(request, row):
        raise ODataError(
            412,
            CODE_ETAG,
            "The version of the existing record doesn't match the RowVersion property provided.",
        )
    if "value" in body:
        _check_value(env.definitions.get(row.definition_id), body["value"])
    if "schemaname" in body and not isinstance(body["schemaname"], str):
        raise ODataError(400, CODE_BAD_REQUEST, "The property 'schemaname' must be a string.")
    _check_writable(env)
    if "value" in body and not env.revert_writes:
        row.value = body["value"]
    if "schemaname" in body:
        row.schema_name = body["schemaname"]
    row.row_version = env.next_version()
    return empty_response(204, headers={"OData-Version": "4.0", **_entity_id(base, row.id)})
