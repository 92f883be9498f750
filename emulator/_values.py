"""environmentvariablevalues: read, create (POST or upsert PATCH), update (etag-guarded), delete.

Faithful to what makes writes safe or unsafe: a POST always adds a row (Dataverse has no key that
stops a second value row), `If-Match` guards updates and deletes, `If-None-Match: *` makes an upsert
create-only. Scripted refusals and reverts (per environment) let tests reach every branch.

A write that carries `Prefer: return=representation` is answered like Dataverse answers it: the
row as stored after the write (a scripted revert shows the reverted value), `200 OK` for an update
and `201 Created` for a create, with `Preference-Applied` and the columns `$select` names. Without
the preference a write answers `204 No Content`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

from ._http import empty_response
from ._odata import (
    CODE_BAD_REQUEST,
    CODE_DUPLICATE,
    CODE_ETAG,
    CODE_LENGTH,
    CODE_PRIVILEGE,
    GUID,
    ODataError,
    _query_options,
    _response,
    _row_not_found,
    _select,
    etag,
)
from ._state import TYPE_SECRET, VALUE_MAX_LENGTH, Definition, EnvironmentState, ValueRow

VALUE_TYPE = "Microsoft.Dynamics.CRM.environmentvariablevalue"
BIND_PROPERTY = "EnvironmentVariableDefinitionId@odata.bind"
VALUE_COLUMNS = (
    "environmentvariablevalueid",
    "value",
    "schemaname",
    "_environmentvariabledefinitionid_value",
    "statecode",
    "statuscode",
)
WRITABLE_VALUE_COLUMNS = {"value", "schemaname"}
SECRET_REFERENCE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/[^/]+/secrets/[^/]+$",
    re.IGNORECASE,
)


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


def _wants_representation(request: web.Request) -> bool:
    """Whether the Prefer header (comma-separated preferences) asks for the written row back."""
    preferences = request.headers.get("Prefer", "").split(",")
    return any(part.strip().lower() == "return=representation" for part in preferences)


def _written(request: web.Request, row: ValueRow, columns: list[str], base: str, status: int) -> web.Response:
    """A write's answer: the row as stored when asked for (`status`), else 204 with its id."""
    if not _wants_representation(request):
        return empty_response(204, headers={"OData-Version": "4.0", **_entity_id(base, row.id)})
    context = f"{base}$metadata#environmentvariablevalues({','.join(columns)})/$entity"
    return _response(
        status,
        {"@odata.context": context, **_value_json(row, columns)},
        headers={"Preference-Applied": "return=representation"},
    )


def _write_columns(request: web.Request) -> list[str]:
    """The columns a write's representation carries (`$select`; every column without it)."""
    options = _query_options(request, {"$select"})
    return _select(options.get("$select"), VALUE_COLUMNS, VALUE_TYPE)


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
    env: EnvironmentState,
    request: web.Request,
    body: dict[str, Any],
    base: str,
    row_id: str | None = None,
) -> web.Response:
    """POST (a new id) or an upsert PATCH to a key that does not exist (that id).

    Like Dataverse, nothing stops a second value row for the same definition: a client that
    creates twice (a retried POST whose answer was lost, two racing instances) leaves two rows.
    """
    columns = _write_columns(request)
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
    return _written(request, row, columns, base, 201)


def _update_value(
    env: EnvironmentState, request: web.Request, row_id: str, body: dict[str, Any], base: str
) -> web.Response:
    columns = _write_columns(request)
    row = env.values.get(row_id)
    if row is None:
        if request.headers.get("If-Match") is not None:  # update only: never create
            raise _row_not_found("environmentvariablevalue", row_id)
        return _create_value(env, request, body, base, row_id)  # upsert: PATCH to a new key creates it
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
    return _written(request, row, columns, base, 200)
