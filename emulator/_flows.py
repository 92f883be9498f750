"""Dataverse Web API for cloud flows: workflows, owners and connection references.

Faithful to what flow refresh relies on:
- `workflows` rows of category 5 (cloud flows) with `clientdata` (the flow definition as a JSON
  string), listed in pages (`Prefer: odata.maxpagesize=N`, `@odata.nextLink` with a `$skiptoken`,
  5,000 rows when the client states no size), and the only state pairs Dataverse accepts for
  them: 0/1 (Draft, off) and 1/2 (Activated, on), set with `PATCH workflows(<id>)`.
- Turning a flow on is refused with `ConnectionAuthorizationFailed` (wrapped in Dataverse's
  "Flow client error" message) unless its connections are shared with the caller or the request
  impersonates the flow's owner (`CallerObjectId: <owner's Entra object id>`).
- A flow (component type 29) depends on the environment variable definitions (380) its
  parameters use: `schema_names_used` is what _dependencies records for it.
- `systemusers(<id>)` (owner's `azureactivedirectoryobjectid`) and `connectionreferences`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from ._connections import Connection
from ._odata import (
    CALLER,
    GUID,
    ODataError,
    _guid,
    _page,
    _query_options,
    _require_method,
    _response,
)
from ._state import EnvironmentState, Workflow

CODE_FLOW_CLIENT = "0x80060467"
CODE_BAD_STATE = "0x80040203"
COMPONENT_DEFINITION = 380
COMPONENT_WORKFLOW = 29
ALLOWED_STATES = {(0, 1), (1, 2)}
WORKFLOW_KEY = re.compile(rf"^workflows\(({GUID})\)$")
USER_KEY = re.compile(rf"^systemusers\(({GUID})\)$")
CATEGORY_FILTER = re.compile(r"^\s*category\s+eq\s+(\d+)\s*$")


def schema_names_used(clientdata: str) -> set[str]:
    """The environment variables a flow's parameters name (lower case)."""
    try:
        parameters = json.loads(clientdata)["properties"]["definition"]["parameters"]
    except (ValueError, KeyError, TypeError):
        return set()
    names = set()
    for parameter in parameters.values() if isinstance(parameters, dict) else ():
        schema = (parameter.get("metadata") or {}).get("schemaName") if isinstance(parameter, dict) else None
        if isinstance(schema, str):
            names.add(schema.lower())
    return names


def bound_connections(env: EnvironmentState, flow: Workflow) -> list[Connection]:
    """The connectivity connections the flow's connection references point at (via `connectionid`)."""
    try:
        references = json.loads(flow.clientdata)["properties"]["connectionReferences"]
    except (ValueError, KeyError, TypeError):
        return []
    logical_names = {
        str((ref.get("connection") or {}).get("connectionReferenceLogicalName", "")).lower()
        for ref in (references.values() if isinstance(references, dict) else ())
        if isinstance(ref, dict)
    }
    return [
        env.connections[ref.connection_id]
        for ref in env.connection_references.values()
        if ref.logical_name.lower() in logical_names and ref.connection_id in env.connections
    ]


def route(
    env: EnvironmentState, request: web.Request, segment: str, base: str, body: dict[str, Any] | None
) -> web.Response | None:
    """Answers the flow-related segments; None for anything else."""
    if segment == "workflows":
        _require_method(request.method, "GET")
        return _list_workflows(env, request, base)
    if match := WORKFLOW_KEY.match(segment):
        flow = env.workflows.get(_guid(match.group(1)))
        if flow is None:
            raise ODataError(404, "0x80040217", f"workflow With Id = {match.group(1).lower()} Does Not Exist")
        if request.method == "GET":
            _query_options(request, {"$select"})
            return _response(
                200, {"@odata.context": f"{base}$metadata#workflows/$entity", **_workflow_json(flow)}
            )
        _require_method(request.method, "PATCH")
        assert body is not None
        return _set_state(env, flow, request, body)
    if match := USER_KEY.match(segment):
        _require_method(request.method, "GET")
        _query_options(request, {"$select"})
        user = env.systemusers.get(_guid(match.group(1)))
        if user is None:
            raise ODataError(
                404, "0x80040217", f"systemuser With Id = {match.group(1).lower()} Does Not Exist"
            )
        return _response(
            200,
            {
                "@odata.context": f"{base}$metadata#systemusers/$entity",
                "systemuserid": user.id,
                "fullname": user.fullname,
                "azureactivedirectoryobjectid": user.azure_object_id,
            },
        )
    if segment == "connectionreferences":
        _require_method(request.method, "GET")
        _query_options(request, {"$select", "$filter"})
        rows = [
            {
                "connectionreferenceid": ref.id,
                "connectionreferencelogicalname": ref.logical_name,
                "connectorid": ref.connector_id,
                "connectionid": ref.connection_id,
            }
            for ref in env.connection_references.values()
        ]
        return _response(200, {"@odata.context": f"{base}$metadata#connectionreferences", "value": rows})
    return None


def _workflow_json(flow: Workflow) -> dict[str, Any]:
    return {
        "workflowid": flow.id,
        "name": flow.name,
        "category": flow.category,
        "modernflowtype": flow.modernflowtype,
        "statecode": flow.statecode,
        "statuscode": flow.statuscode,
        "clientdata": flow.clientdata,
        "_ownerid_value": flow.owner_id,
    }


def _list_workflows(env: EnvironmentState, request: web.Request, base: str) -> web.Response:
    """Lists workflows in id order, one page at a time, like Dataverse's server-side paging."""
    options = _query_options(request, {"$filter", "$select", "$skiptoken"})
    category: int | None = None
    if "$filter" in options:
        match = CATEGORY_FILTER.match(options["$filter"])
        if match is None:
            raise ODataError(400, "0x80060888", "The emulator filters workflows by 'category eq <n>' only.")
        category = int(match.group(1))
    matching = [
        flow
        for flow in sorted(env.workflows.values(), key=lambda f: f.id)
        if category is None or flow.category == category
    ]
    return _page(request, options, base, "workflows", "workflows", matching, _workflow_json)


def _set_state(
    env: EnvironmentState, flow: Workflow, request: web.Request, body: dict[str, Any]
) -> web.Response:
    _query_options(request, set())
    if set(body) != {"statecode", "statuscode"}:
        raise ODataError(
            400, CODE_BAD_STATE, "Send exactly statecode and statuscode to change a flow's state."
        )
    pair = (body["statecode"], body["statuscode"])
    if pair not in ALLOWED_STATES:
        raise ODataError(
            400, CODE_BAD_STATE, f"{pair[1]} is not a valid status code for state code {pair[0]} on workflow."
        )
    if (
        pair == (1, 2)
        and (flow.statecode, flow.statuscode) != (1, 2)
        and not _may_activate(env, flow, request)
    ):
        raise ODataError(
            400,
            CODE_FLOW_CLIENT,
            'Flow client error returned with status code "BadRequest" and details "{"error":{"code":'
            '"ConnectionAuthorizationFailed","message":"The caller object id does not have permission '
            'for a connection used by this flow."}}".',
        )
    flow.statecode, flow.statuscode = pair
    flow.history.append("on" if pair == (1, 2) else "off")
    return web.Response(status=204, headers={"OData-Version": "4.0"})


def _may_activate(env: EnvironmentState, flow: Workflow, request: web.Request) -> bool:
    """The caller may use every connection the flow's references bind to, or impersonates the owner.

    Where the references bind to connectivity connections the emulator holds, their owners and
    shares decide; otherwise the flow's `connections_shared` knob does.
    """
    bound = bound_connections(env, flow)
    if bound:
        known_as = request.get(CALLER) or frozenset()
        if all(connection.role_of(known_as) is not None for connection in bound):
            return True
    elif flow.connections_shared:
        return True
    owner = env.systemusers.get(flow.owner_id)
    caller = request.headers.get("CallerObjectId", "").strip().lower()
    return owner is not None and caller == owner.azure_object_id.lower()
