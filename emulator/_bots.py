"""Dataverse Web API for Copilot Studio agents: ``bots``, ``botcomponents``, ``PvaPublish``.

Faithful to what agent republishing relies on: OData reads with ``$filter`` (eq / contains / In
and friends, see _filter), ``$select``, ``$top`` and server-side paging; ``POST
bots(<id>)/Microsoft.Dynamics.CRM.PvaPublish`` with ``{}`` that moves ``publishedon`` forward (at
once or after a delay), throttled as scripted; and ``solutioncomponentdefinitions`` so that a client
can learn this organization's component type number for bot components in dependency rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._agents import (
    BOT_COLUMNS,
    BOTCOMPONENT_COMPONENT_TYPE,
    COMPONENT_COLUMNS,
    AgentsState,
    Throttle,
    bot_row,
    component_row,
)
from ._filter import FilterError, compile_filter
from ._http import error_response
from ._odata import (
    CODE_BAD_REQUEST,
    CODE_QUERY,
    GUID,
    ODataError,
    _guid,
    _page,
    _query_options,
    _require_method,
    _response,
    _row_not_found,
    _select,
)
from ._state import EnvironmentState

BOT_KEY = re.compile(rf"^bots\(({GUID})\)$")
PUBLISH = re.compile(rf"^bots\(({GUID})\)/Microsoft\.Dynamics\.CRM\.PvaPublish$")
COMPONENT_KEY = re.compile(rf"^botcomponents\(({GUID})\)$")
DEFINITION_COLUMNS = ("solutioncomponentdefinitionid", "name", "primaryentityname", "solutioncomponenttype")
DEFINITIONS = (
    ("bot", BOTCOMPONENT_COMPONENT_TYPE - 1),
    ("botcomponent", BOTCOMPONENT_COMPONENT_TYPE),
)
CODE_THROTTLED = "0x80072322"
CODE_WRAPPED = "0x80040216"


def route(
    env: EnvironmentState, request: web.Request, segment: str, base: str, body: dict[str, Any] | None
) -> web.Response | None:
    """Answers the agent segments; None for anything else."""
    agents: AgentsState = env.agents
    agents.settle()
    method = request.method
    if segment == "bots":
        _require_method(method, "GET")
        rows = [bot_row(b) for b in sorted(agents.bots.values(), key=lambda b: b.id)]
        return _list(request, base, "bots", rows, BOT_COLUMNS, "botid")
    if segment == "botcomponents":
        _require_method(method, "GET")
        rows = [component_row(c) for c in sorted(agents.components.values(), key=lambda c: c.id)]
        return _list(request, base, "botcomponents", rows, COMPONENT_COLUMNS, "botcomponentid")
    if segment == "solutioncomponentdefinitions":
        _require_method(method, "GET")
        rows = [
            {
                "solutioncomponentdefinitionid": f"00000000-0000-4000-8000-{number:012d}",
                "name": name,
                "primaryentityname": name,
                "solutioncomponenttype": number,
            }
            for name, number in DEFINITIONS
        ]
        return _list(request, base, "solutioncomponentdefinitions", rows, DEFINITION_COLUMNS, "name")
    if match := BOT_KEY.match(segment):
        _require_method(method, "GET")
        bot = agents.bots.get(_guid(match.group(1)))
        if bot is None:
            raise _row_not_found("bot", match.group(1).lower())
        return _one(request, base, "bots", bot_row(bot), BOT_COLUMNS, "botid")
    if match := COMPONENT_KEY.match(segment):
        _require_method(method, "GET")
        component = agents.components.get(_guid(match.group(1)))
        if component is None:
            raise _row_not_found("botcomponent", match.group(1).lower())
        return _one(
            request, base, "botcomponents", component_row(component), COMPONENT_COLUMNS, "botcomponentid"
        )
    if match := PUBLISH.match(segment):
        _require_method(method, "POST")
        return _publish(agents, request, _guid(match.group(1)), body)
    return None


def _entity(entity_set: str) -> str:
    return f"Microsoft.Dynamics.CRM.{entity_set.removesuffix('s')}"


def _project(row: dict[str, Any], columns: list[str], key: str) -> dict[str, Any]:
    projected = {column: row[column] for column in columns}
    projected.setdefault(key, row[key])  # Dataverse always returns the primary key
    return projected


def _one(
    request: web.Request, base: str, entity_set: str, row: dict[str, Any], columns: tuple[str, ...], key: str
) -> web.Response:
    options = _query_options(request, {"$select"})
    selected = _select(options.get("$select"), columns, _entity(entity_set))
    body = {"@odata.context": f"{base}$metadata#{entity_set}({','.join(selected)})/$entity"}
    return _response(200, {**body, **_project(row, selected, key)})


def _list(
    request: web.Request,
    base: str,
    entity_set: str,
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    key: str,
) -> web.Response:
    """Rows in key order, filtered, projected and paged as Dataverse pages (``$skiptoken``, maxpagesize)."""
    options = _query_options(request, {"$filter", "$select", "$top", "$skiptoken"})
    selected = _select(options.get("$select"), columns, _entity(entity_set))
    keep: Callable[[dict[str, Any]], bool] = lambda row: True  # noqa: E731
    if "$filter" in options:
        try:
            keep = compile_filter(options["$filter"], columns, _entity(entity_set))
        except FilterError as error:
            raise ODataError(400, CODE_QUERY, str(error)) from None
    matching = [row for row in rows if keep(row)]
    if "$top" in options:
        if not options["$top"].isdigit():
            raise ODataError(400, CODE_QUERY, "The $top query option must be a non-negative integer.")
        matching = matching[: int(options["$top"])]
    context = f"{entity_set}({','.join(selected)})"
    return _page(
        request, options, base, entity_set, context, matching, lambda row: _project(row, selected, key)
    )


def _publish(
    agents: AgentsState, request: web.Request, bot_id: str, body: dict[str, Any] | None
) -> web.Response:
    _query_options(request, set())
    bot = agents.bots.get(bot_id)
    if bot is None:
        raise _row_not_found("bot", bot_id)
    if body:
        raise ODataError(400, CODE_BAD_REQUEST, f"PvaPublish takes no parameters; got '{sorted(body)[0]}'.")
    throttle = agents.take_throttle()
    if throttle is not None:
        response = _throttled(throttle)
        agents.attempts.append((bot_id, response.status))
        return response
    agents.publish(bot)
    agents.attempts.append((bot_id, 204))
    return web.Response(status=204, headers={"OData-Version": "4.0"})


def _throttled(throttle: Throttle) -> web.Response:
    seconds = max(1, round(throttle.retry_after))
    if throttle.kind == "429":
        return error_response(
            429,
            CODE_THROTTLED,
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            headers={"Retry-After": str(seconds), "OData-Version": "4.0"},
        )
    if throttle.kind == "400":
        return error_response(
            400,
            CODE_WRAPPED,
            "PvaPublish failed: the bot service answered 429 (TooManyRequests): Rate limit is exceeded. "
            f"Try again in {seconds} seconds.",
            headers={"OData-Version": "4.0"},
        )
    return web.Response(status=401)  # bare: no body, no challenge, although the token is valid
