"""Dataverse's `dependency` rows on environment variable definitions, two ways to read them.

The emulator records a dependency of a cloud flow (component type 29) on every definition (380)
its parameters name, and of a bot component (BOTCOMPONENT_COMPONENT_TYPE) on every variable it
was added with ``dependency=True``. Both reads answer from those same rows:

- ``RetrieveDependentComponents(ObjectId=@p1,ComponentType=@p2)``: the rows whose required
  component is one definition.
- the ``dependencies`` entity set (RetrieveMultiple): ``$filter`` of ``eq`` comparisons joined by
  ``and`` that must constrain ``requiredcomponenttype`` (also ``requiredcomponentobjectid``,
  ``dependentcomponenttype``, ``dependentcomponentobjectid``), ``$select`` and server-side paging
  (``Prefer: odata.maxpagesize=N``, ``@odata.nextLink`` with a ``$skiptoken``, 5,000 rows when the
  client states no size). Anything else is a 400 naming what was not understood.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ._agents import BOTCOMPONENT_COMPONENT_TYPE
from ._flows import COMPONENT_DEFINITION, COMPONENT_WORKFLOW, schema_names_used
from ._odata import (
    CODE_QUERY,
    GUID,
    ODataError,
    _guid,
    _page,
    _query_options,
    _require_method,
    _response,
    _select,
)
from ._state import EnvironmentState

DEPENDENTS = re.compile(r"^RetrieveDependentComponents\(ObjectId=@p1,ComponentType=@p2\)$")
COLUMNS = (
    "dependencyid",
    "dependencytype",
    "dependentcomponentobjectid",
    "dependentcomponenttype",
    "requiredcomponentobjectid",
    "requiredcomponenttype",
)
CLAUSE = re.compile(
    rf"^\s*(?:(?P<number>requiredcomponenttype|dependentcomponenttype)\s+eq\s+(?P<n>\d+)"
    rf"|(?P<id>requiredcomponentobjectid|dependentcomponentobjectid)\s+eq\s+(?P<g>{GUID}))\s*$"
)
AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def route(env: EnvironmentState, request: web.Request, segment: str, base: str) -> web.Response | None:
    """Answers ``dependencies`` and ``RetrieveDependentComponents``; None for anything else."""
    if segment == "dependencies":
        _require_method(request.method, "GET")
        return _list(env, request, base)
    if DEPENDENTS.match(segment):
        _require_method(request.method, "GET")
        return _dependents(env, request, base)
    return None


def dependency_rows(env: EnvironmentState) -> list[dict[str, Any]]:
    """Every recorded dependency on a definition, in ``dependencyid`` order (stable pages)."""
    rows = []
    for definition in env.definitions.values():
        schema = definition.schema_name.lower()
        dependents = [
            (flow.id, COMPONENT_WORKFLOW)
            for flow in env.workflows.values()
            if schema in schema_names_used(flow.clientdata)
        ]
        dependents += [
            (component.id, BOTCOMPONENT_COMPONENT_TYPE)
            for component in env.agents.components.values()
            if schema in component.depends_on
        ]
        rows += [
            {
                "dependencyid": dependent[:24] + definition.id[24:],
                "dependencytype": 2,  # Published
                "dependentcomponentobjectid": dependent,
                "dependentcomponenttype": component_type,
                "requiredcomponentobjectid": definition.id,
                "requiredcomponenttype": COMPONENT_DEFINITION,
            }
            for dependent, component_type in dependents
        ]
    return sorted(rows, key=lambda row: (row["dependencyid"], row["requiredcomponentobjectid"]))


def _dependents(env: EnvironmentState, request: web.Request, base: str) -> web.Response:
    options = _query_options(request, {"@p1", "@p2"})
    object_id = _guid(options.get("@p1", "").strip("'"))
    if options.get("@p2") != str(COMPONENT_DEFINITION):
        raise ODataError(400, "0x80040203", "The emulator answers dependencies of component type 380 only.")
    rows = [row for row in dependency_rows(env) if row["requiredcomponentobjectid"] == object_id]
    return _response(200, {"@odata.context": f"{base}$metadata#dependencies", "value": rows})


def _conditions(raw: str | None) -> dict[str, Any]:
    """``column eq literal`` clauses joined by ``and``; requiredcomponenttype must be one of them."""
    if raw is None:
        raise ODataError(400, CODE_QUERY, "Filter dependencies by 'requiredcomponenttype eq <type>'.")
    conditions: dict[str, Any] = {}
    for clause in AND.split(raw.strip()):
        match = CLAUSE.match(clause)
        if match is None:
            raise ODataError(
                400,
                CODE_QUERY,
                f"The emulator filters dependencies with 'eq' on component types and object ids "
                f"joined by 'and' only, not '{clause.strip()}'.",
            )
        if match.group("number"):
            conditions[match.group("number")] = int(match.group("n"))
        else:
            conditions[match.group("id")] = match.group("g").lower()
    if "requiredcomponenttype" not in conditions:
        raise ODataError(400, CODE_QUERY, "Filter dependencies by 'requiredcomponenttype eq <type>'.")
    return conditions


def _list(env: EnvironmentState, request: web.Request, base: str) -> web.Response:
    """The matching rows, projected and paged as Dataverse pages them."""
    options = _query_options(request, {"$filter", "$select", "$skiptoken"})
    conditions = _conditions(options.get("$filter"))
    selected = _select(options.get("$select"), COLUMNS, "Microsoft.Dynamics.CRM.dependency")
    matching = [
        row
        for row in dependency_rows(env)
        if all(row[column] == value for column, value in conditions.items())
    ]

    def project(row: dict[str, Any]) -> dict[str, Any]:
        return {"dependencyid": row["dependencyid"], **{column: row[column] for column in selected}}

    context = f"dependencies({','.join(selected)})"
    return _page(request, options, base, "dependencies", context, matching, project)
