"""Dataverse calls for cloud flows: which flows use a variable, their state, owners, connections.

A cloud flow reads an environment variable's value when it is turned on, so after a change it
must be turned off and on again. Finding the flows: the components recorded as depending on the
definition (solution-aware flows record a dependency, component type 29 on type 380; read from
the environment's dependency listing, sync.adapters.dependencies) together
with the cloud flows (`workflows`, category 5) whose definition parameters name the variable's
schema name in `metadata.schemaName`. Every candidate is confirmed by parsing its parameters, so
a flow is only ever touched when it really uses the variable.

The listing reads every cloud flow's definition, which can be hundreds of megabytes in a large
environment. It is read a page of FLOW_PAGE_SIZE flows at a time, each page's body bounded by
FLOW_PAGE_MAX_BYTES, and each page is reduced to small `Flow` records before the next is
requested, so memory stays flat in the number and size of flows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import httpx

from sync.adapters.dataverse import API_PATH, DataverseClient, raise_for_error
from sync.adapters.dataverse_bulk import next_page_path
from sync.adapters.dependencies import Dependencies
from sync.adapters.http import json_object
from sync.errors import PermanentError, TransientError

CLOUD_FLOW = 5
COMPONENT_WORKFLOW = 29
FLOW_COLUMNS = "workflowid,name,category,statecode,statuscode,clientdata,_ownerid_value"
ON = (1, 2)  # statecode Activated, statuscode Activated
OFF = (0, 1)  # statecode Draft, statuscode Draft
CONNECTION_REFUSED = "ConnectionAuthorizationFailed"
# Flows per listing page (`Prefer: odata.maxpagesize`), and the most one page's body may weigh:
# 20 definitions of up to ~3 MB each. A page over the limit is refused, never read.
FLOW_PAGE_SIZE = 20
FLOW_PAGE_MAX_BYTES = 64 * 1024 * 1024
# A flow listing that pages more than this is not ours to follow (100,000 flows).
MAX_FLOW_PAGES = 5000


class ActivationRefused(PermanentError):
    """Dataverse would not turn the flow on: its connections are not usable by the caller."""


@dataclass(frozen=True)
class Flow:
    id: str
    name: str
    on: bool
    owner_id: str
    schema_names: frozenset[str]  # lower case
    connection_references: tuple[str, ...] = field(default=())


def parse_clientdata(raw: Any) -> tuple[frozenset[str], tuple[str, ...]]:
    """(schema names its parameters use, connection reference logical names); empty when unreadable."""
    try:
        properties = json.loads(raw)["properties"]
        parameters = properties["definition"].get("parameters") or {}
        references = properties.get("connectionReferences") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return frozenset(), ()
    names = set()
    for parameter in parameters.values() if isinstance(parameters, dict) else ():
        metadata = parameter.get("metadata") if isinstance(parameter, dict) else None
        schema = metadata.get("schemaName") if isinstance(metadata, dict) else None
        if isinstance(schema, str):
            names.add(schema.lower())
    logical = []
    for reference in references.values() if isinstance(references, dict) else ():
        connection = reference.get("connection") if isinstance(reference, dict) else None
        name = connection.get("connectionReferenceLogicalName") if isinstance(connection, dict) else None
        if isinstance(name, str):
            logical.append(name)
    return frozenset(names), tuple(logical)


def flow_from_row(row: dict[str, Any]) -> Flow:
    try:
        names, references = parse_clientdata(row.get("clientdata"))
        return Flow(
            id=str(row["workflowid"]),
            name=str(row.get("name") or row["workflowid"]),
            on=(row.get("statecode"), row.get("statuscode")) == ON,
            owner_id=str(row.get("_ownerid_value") or ""),
            schema_names=names,
            connection_references=references,
        )
    except (KeyError, TypeError) as error:
        raise TransientError(
            f"Dataverse returned a workflow of an unexpected shape ({type(error).__name__})"
        ) from None


async def _no_dependents() -> set[str]:
    return set()


class FlowsClient:
    def __init__(self, dataverse: DataverseClient, dependencies: Dependencies | None = None) -> None:
        self._dataverse = dataverse
        self._dependencies = dependencies or Dependencies(dataverse)

    async def cloud_flows(self, org_url: str) -> list[Flow]:
        """Every cloud flow of the organisation with what its definition uses, page by page."""
        flows: list[Flow] = []
        path = "workflows"
        params: dict[str, str] | None = {"$filter": f"category eq {CLOUD_FLOW}", "$select": FLOW_COLUMNS}
        seen = {str(httpx.URL(f"{org_url}{API_PATH}/{path}", params=params))}
        for _ in range(MAX_FLOW_PAGES):
            page, next_link = await self._flow_page(org_url, path, params)
            flows.extend(page)
            if next_link is None:
                return flows
            path, params = next_page_path(f"{org_url}{API_PATH}/", next_link, seen, "flows listing"), None
        raise TransientError(f"the cloud-flow listing did not end after {MAX_FLOW_PAGES} pages")

    async def _flow_page(
        self, org_url: str, path: str, params: dict[str, str] | None
    ) -> tuple[list[Flow], str | None]:
        """One listing page reduced to Flow records; its body is dropped when this returns."""
        response = await self._dataverse.request(
            org_url,
            "GET",
            path,
            params=params,
            headers={"Prefer": f"odata.maxpagesize={FLOW_PAGE_SIZE}"},
            max_body=FLOW_PAGE_MAX_BYTES,
        )
        raise_for_error(response, "listing cloud flows")
        body = json_object(response, "Dataverse")
        rows = body.get("value")
        if not isinstance(rows, list):
            raise TransientError("Dataverse answered the flow list without a 'value' list")
        next_link = body.get("@odata.nextLink")
        if next_link is not None and not isinstance(next_link, str):
            raise TransientError("Dataverse answered an @odata.nextLink that is not a string")
        return [flow_from_row(row) for row in rows if isinstance(row, dict)], next_link

    def prefetch_dependencies(self, org_url: str) -> None:
        """Starts the environment's dependency listing that `dependent_flow_ids` answers from."""
        self._dependencies.prefetch(org_url)

    async def dependent_flow_ids(self, org_url: str, definition_id: str) -> set[str]:
        """Workflows recorded as depending on the definition (solution-aware flows)."""
        dependents = await self._dependencies.of_definition(org_url, definition_id)
        return {object_id for kind, object_id in dependents if kind == COMPONENT_WORKFLOW}

    async def flows_using(
        self,
        org_url: str,
        schema_name: str,
        definition_id: str | None,
        listing: Awaitable[list[Flow]] | None = None,
    ) -> list[Flow]:
        """The cloud flows that use the variable: dependents and parameter matches, confirmed.

        `listing` lets the caller share one cloud-flow listing among the targets of an
        environment (see sync.steps.flow_refresh); without it the flows are listed here.
        """
        listed, dependents = await asyncio.gather(
            listing if listing is not None else self.cloud_flows(org_url),
            self.dependent_flow_ids(org_url, definition_id) if definition_id else _no_dependents(),
        )
        flows = {flow.id: flow for flow in listed}
        for flow_id in sorted(dependents - flows.keys()):  # e.g. beyond the listing's first page
            flows[flow_id] = await self.get_flow(org_url, flow_id)
        wanted = schema_name.lower()
        return sorted((flow for flow in flows.values() if wanted in flow.schema_names), key=lambda f: f.name)

    async def get_flow(self, org_url: str, flow_id: str) -> Flow:
        response = await self._dataverse.request(
            org_url, "GET", f"workflows({flow_id})", params={"$select": FLOW_COLUMNS}
        )
        raise_for_error(response, f"reading flow {flow_id}")
        return flow_from_row(json_object(response, "Dataverse"))

    async def set_state(
        self, org_url: str, flow_id: str, state: tuple[int, int], caller_object_id: str | None = None
    ) -> None:
        """Turns a flow off (0/1) or on (1/2), as its owner when `caller_object_id` is given."""
        headers = {"Content-Type": "application/json"}
        if caller_object_id:
            headers["CallerObjectId"] = caller_object_id
        response = await self._dataverse.request(
            org_url,
            "PATCH",
            f"workflows({flow_id})",
            headers=headers,
            json={"statecode": state[0], "statuscode": state[1]},
        )
        if not response.is_success and CONNECTION_REFUSED in response.text:
            raise ActivationRefused("Dataverse refused to turn the flow on: ConnectionAuthorizationFailed")
        raise_for_error(response, "changing the flow's state")

    async def owner_object_id(self, org_url: str, user_id: str) -> str:
        """The Entra object id of a systemuser (to impersonate a flow's owner)."""
        response = await self._dataverse.request(
            org_url,
            "GET",
            f"systemusers({user_id})",
            params={"$select": "azureactivedirectoryobjectid,fullname"},
        )
        raise_for_error(response, "reading the flow owner")
        object_id = json_object(response, "Dataverse").get("azureactivedirectoryobjectid")
        if not isinstance(object_id, str) or not object_id:
            raise PermanentError(
                "the flow's owner has no Entra object id (an application user or a disabled user?)"
            )
        return object_id

    async def caller_object_id(self, org_url: str) -> str:
        """Lockstep's own Entra object id, as the organisation knows its application user (WhoAmI,
        then the user's azureactivedirectoryobjectid): what connection shares name."""
        user_id = (await self._dataverse.who_am_i(org_url))["UserId"]
        return (await self.owner_object_id(org_url, user_id)).lower()

    async def user_name(self, org_url: str, user_id: str) -> str:
        response = await self._dataverse.request(
            org_url, "GET", f"systemusers({user_id})", params={"$select": "fullname"}
        )
        raise_for_error(response, "reading a user")
        name = json_object(response, "Dataverse").get("fullname")
        return name if isinstance(name, str) else user_id

    async def connection_references(self, org_url: str) -> dict[str, dict[str, str]]:
        """Connection references by logical name: connector and connection ids."""
        response = await self._dataverse.request(
            org_url,
            "GET",
            "connectionreferences",
            params={
                "$select": "connectionreferenceid,connectionreferencelogicalname,connectorid,connectionid"
            },
        )
        raise_for_error(response, "listing connection references")
        rows = json_object(response, "Dataverse").get("value") or []
        return {
            str(row["connectionreferencelogicalname"]): {
                "connector": str(row.get("connectorid") or ""),
                "connection": str(row.get("connectionid") or ""),
            }
            for row in rows
            if isinstance(row, dict) and row.get("connectionreferencelogicalname")
        }
