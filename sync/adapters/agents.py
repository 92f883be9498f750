"""Dataverse calls for Copilot Studio agents: which agents use a variable, their drafts, publishing.

An agent (`bots`) reads an environment variable in its topics (`botcomponents`, YAML in `data`)
as Power Fx `Env.<schema name>`, with the value it was *published* with. Finding the agents:
components recorded as depending on the definition (the environment's dependency listing,
sync.adapters.dependencies; a bot component's component type is its table's ObjectTypeCode,
which differs between organisations, so it is read from the metadata) together with components
whose `data` contains the schema name (server-side `contains`). Every candidate is confirmed by
finding `Env.<schema name>` as a whole identifier, so an agent is only ever published when it
really uses the variable. Component data is dropped as soon as it is confirmed: memory stays
bounded by one page.

Publishing (`PvaPublish`) ships the agent's current draft and is throttled under bursts in three
ways (429, a 400 wrapping a 429, a bare 401 with a valid token): all three are retried here with
backoff, within the run's time budget.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from functools import partial
from typing import Any

from sync import deadline
from sync.adapters.agent_throttle import is_throttled
from sync.adapters.dataverse import API_PATH, DataverseClient, raise_for_error
from sync.adapters.dataverse_bulk import page
from sync.adapters.dependencies import Dependencies
from sync.adapters.http import json_object
from sync.adapters.shared import SharedAnswers
from sync.agent_rules import Agent, Draft, env_reference, names_in, names_pattern
from sync.errors import PermanentError, TransientError
from sync.mapping import GUID, SCHEMA_NAME

BOT_COLUMNS = "botid,name,schemaname,publishedon"
PAGE_SIZE = 500
MAX_PAGES = 200  # 100,000 components: beyond that the listing is not ours to follow
AGENTS_SHARED_SECONDS = 30.0
PUBLISH = "Microsoft.Dynamics.CRM.PvaPublish"
PUBLISH_ATTEMPTS = 6
PUBLISH_BACKOFF = 1.0
CONFIRM_SECONDS = 60.0  # how long publishedon may take to move when no run budget is tighter
_GUID = re.compile(rf"^{GUID}$")


def parse_time(raw: Any) -> datetime | None:
    """A Dataverse timestamp (`2024-05-01T12:00:00Z`), None when absent or unreadable."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def agent_from_row(row: dict[str, Any]) -> Agent:
    try:
        botid = str(row["botid"])
        return Agent(
            id=botid,
            name=str(row.get("name") or botid),
            schema_name=str(row.get("schemaname") or ""),
            published_on=parse_time(row.get("publishedon")),
        )
    except (KeyError, TypeError):
        raise TransientError("Dataverse returned an agent of an unexpected shape") from None


def _confirmed_parent(row: dict[str, Any], uses: re.Pattern[str]) -> set[str]:
    """The component's agent when its YAML really uses the variable; the data is not kept."""
    data, parent = row.get("data"), row.get("_parentbotid_value")
    if isinstance(data, str) and parent and uses.search(data):
        return {_check_id(str(parent)).lower()}
    return set()


def _check_id(value: str) -> str:
    if not _GUID.match(value):
        raise TransientError("Dataverse returned an id that is not a GUID")
    return value


class AgentsClient:
    def __init__(self, dataverse: DataverseClient, dependencies: Dependencies | None = None) -> None:
        self._dataverse = dataverse
        self._dependencies = dependencies or Dependencies(dataverse)
        self._component_types: dict[str, int | None] = {}
        self._any_agents: SharedAnswers[bool] = SharedAnswers(AGENTS_SHARED_SECONDS)

    async def has_agents(self, org: str) -> bool:
        """Whether the environment has any agent at all, asked once per AGENTS_SHARED_SECONDS and
        shared by every variable of a run: most environments have none, and then there is nothing
        to search or publish (one request per environment instead of one per changed variable)."""
        return await self._any_agents.get(org, partial(self._first_agent, org))

    def prefetch(self, org: str) -> None:
        """Starts the "any agent at all" check, then (when there is one) the dependency listing,
        while a value is being written; never raises (`agents_using` asks again on a failure)."""
        self._any_agents.get(org, partial(self._first_agent, org)).add_done_callback(
            partial(self._then_dependencies, org)
        )

    def _then_dependencies(self, org: str, any_agents: asyncio.Future[bool]) -> None:
        if not any_agents.cancelled() and any_agents.exception() is None and any_agents.result():
            self._dependencies.prefetch(org)

    async def _first_agent(self, org: str) -> bool:
        async for _ in self._pages(org, "bots", {"$select": "botid", "$top": "1"}):
            return True
        return False

    async def _pages(self, org: str, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Every row of a listing, page by page; a missing table (404) is an empty listing."""
        base = f"{org}{API_PATH}/"
        link: str | None = path
        query: dict[str, str] | None = params
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            assert link is not None
            response = await self._dataverse.request(
                org, "GET", link, params=query, headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
            )
            if response.status_code == 404 and link == path:
                return  # no Copilot Studio in this environment: no such table
            raise_for_error(response, f"listing {path}")
            rows, next_link = page(response)
            for row in rows:
                yield row
            if next_link is None or next_link in seen:
                return
            if not next_link.startswith(base):
                # The token goes wherever we send the request: follow links into this org only.
                raise PermanentError("Dataverse's @odata.nextLink points outside the organisation")
            seen.add(next_link)
            link, query = next_link.removeprefix(base), None
        raise TransientError(f"the {path} listing did not end after {MAX_PAGES} pages")

    async def agents_using(self, org: str, schema_name: str, definition_id: str | None) -> list[Agent]:
        """The agents whose components use `Env.<schema name>`: dependents and text matches, confirmed."""
        if not SCHEMA_NAME.match(schema_name):
            raise PermanentError(f"{schema_name!r} is not a valid environment variable schema name")
        if not await self.has_agents(org):
            return []
        uses = env_reference(schema_name)
        bot_ids: set[str] = set()
        literal = schema_name.replace("'", "''")
        async for row in self._pages(
            org,
            "botcomponents",
            {"$filter": f"contains(data,'{literal}')", "$select": "botcomponentid,_parentbotid_value,data"},
        ):
            if (
                isinstance(row.get("data"), str)
                and uses.search(row["data"])
                and row.get("_parentbotid_value")
            ):
                bot_ids.add(_check_id(str(row["_parentbotid_value"])).lower())
        for component_id in await self._dependent_components(org, definition_id) if definition_id else []:
            response = await self._dataverse.request(
                org,
                "GET",
                f"botcomponents({component_id})",
                params={"$select": "botcomponentid,_parentbotid_value,data"},
            )
            if response.status_code == 404:
                continue  # deleted since the dependency was recorded
            raise_for_error(response, "reading an agent component")
            bot_ids |= _confirmed_parent(json_object(response, "Dataverse"), uses)
        agents = [await self.get_agent(org, bot_id) for bot_id in sorted(bot_ids)]
        return sorted((agent for agent in agents if agent is not None), key=lambda a: a.name)

    async def _component_type(self, org: str) -> int | None:
        """The solution component type of bot components in this organisation (None: no agents).

        Dependencies name components by type code, and the codes of solution-aware tables such as
        botcomponent are given per organisation (10000 and up) by `solutioncomponentdefinitions`.
        """
        if org not in self._component_types:
            response = await self._dataverse.request(
                org,
                "GET",
                "solutioncomponentdefinitions",
                params={"$filter": "name eq 'botcomponent'", "$select": "name,solutioncomponenttype"},
            )
            if response.status_code == 404:
                self._component_types[org] = None
            else:
                raise_for_error(response, "reading the bot component's solution component type")
                rows = json_object(response, "Dataverse").get("value")
                if not isinstance(rows, list):
                    raise TransientError(
                        "Dataverse answered solutioncomponentdefinitions without a 'value' list"
                    )
                codes = [row.get("solutioncomponenttype") for row in rows if isinstance(row, dict)]
                code = codes[0] if codes else None
                if code is not None and not isinstance(code, int):
                    raise TransientError("Dataverse answered a solution component type that is not a number")
                self._component_types[org] = code
        return self._component_types[org]

    async def _dependent_components(self, org: str, definition_id: str) -> list[str]:
        """Bot components recorded as depending on the definition."""
        component_type = await self._component_type(org)
        if component_type is None:
            return []
        dependents = await self._dependencies.of_definition(org, definition_id)
        return sorted(
            {_check_id(object_id).lower() for kind, object_id in dependents if kind == component_type}
        )

    async def get_agent(self, org: str, bot_id: str) -> Agent | None:
        response = await self._dataverse.request(
            org, "GET", f"bots({_check_id(bot_id)})", params={"$select": BOT_COLUMNS}
        )
        if response.status_code == 404:
            return None
        raise_for_error(response, "reading an agent")
        return agent_from_row(json_object(response, "Dataverse"))

    async def draft(self, org: str, agent: Agent, others: Collection[str]) -> Draft:
        """The newest `modifiedon` of the agent's components, and which of `others` they name."""
        newest: datetime | None = None
        named: set[str] = set()
        wanted = names_pattern(
            [name for name in others if name and name.lower() != agent.schema_name.lower()]
        )
        async for row in self._pages(
            org,
            "botcomponents",
            {
                "$filter": f"_parentbotid_value eq {_check_id(agent.id)}",
                "$select": "botcomponentid,modifiedon,data",
            },
        ):
            modified = parse_time(row.get("modifiedon"))
            if modified is not None and (newest is None or modified > newest):
                newest = modified
            if wanted and isinstance(row.get("data"), str):
                named |= names_in(row["data"], wanted)
        return Draft(last_modified=newest, names=frozenset(named))

    async def publish(self, org: str, agent: Agent) -> datetime:
        """Publishes the agent and returns its new `publishedon`, confirmed to have moved forward."""
        await self._send_publish(org, agent.id)
        return await self._confirm(org, agent)

    async def _send_publish(self, org: str, bot_id: str) -> None:
        status = "429"
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                response = await self._dataverse.request(
                    org,
                    "POST",
                    f"bots({_check_id(bot_id)})/{PUBLISH}",
                    json={},
                    headers={"Content-Type": "application/json"},
                )
            except TransientError as error:
                # 429s outlasting the shared policy's retries: wait longer here, then try again.
                if "HTTP 429" not in str(error) or attempt == PUBLISH_ATTEMPTS:
                    raise
                response = None
            if response is not None and not is_throttled(response):
                raise_for_error(response, "publishing the agent")
                return
            status = "429" if response is None else str(response.status_code)
            delay = PUBLISH_BACKOFF * 2 ** (attempt - 1) * (0.5 + random.random() / 2)  # noqa: S311
            left = deadline.remaining()
            if attempt == PUBLISH_ATTEMPTS or (left is not None and left <= delay + 0.5):
                break
            await asyncio.sleep(delay)
        raise TransientError(f"publishing was throttled (HTTP {status}) after {attempt} attempt(s)")

    async def _confirm(self, org: str, agent: Agent) -> datetime:
        waited, interval = 0.0, 0.25
        while True:
            current = await self.get_agent(org, agent.id)
            moved = current.published_on if current is not None else None
            if moved is not None and (agent.published_on is None or moved > agent.published_on):
                return moved
            left = deadline.remaining()
            budget = CONFIRM_SECONDS - waited if left is None else min(CONFIRM_SECONDS - waited, left - 0.5)
            if budget <= 0:
                raise TransientError(f"published, but publishedon did not move forward within {waited:.0f} s")
            pause = min(interval, budget)
            await asyncio.sleep(pause)
            waited += pause
            interval = min(interval * 2, 2.0)
