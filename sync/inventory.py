"""Impact inventory: which cloud flows (and connections) and agents each mapped variable feeds,
and what each mapped connection carries (sync.inventory_connections).

What a maker needs before a rotation, and what the near-expiry card names: "if this secret
expires, these flows in these environments break". Reads only: per environment one bulk
definitions read, one cloud-flow listing, one connection-reference listing, and one read per
distinct flow owner, plus (with an agents client) one agent search per variable. The shaping
(`impacts`) is pure; `Inventory` does the reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from sync.adapters.agents import AgentsClient
from sync.adapters.dataverse import DataverseClient
from sync.adapters.flows import Flow, FlowsClient
from sync.agent_rules import Agent
from sync.errors import LockstepError
from sync.inventory_connections import (
    ConnectionReader,
    ConnectionUse,
    Found,
    connection_uses,
    find_connections,
)
from sync.mapping import Environment
from sync.models import Definition, Target
from sync.redact import scrub


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class FlowUse(_Frozen):
    id: str
    name: str
    state: str  # "on" or "off"
    owner: str
    connection_references: tuple[str, ...] = ()


class VariableImpact(_Frozen):
    environment: str
    stage: int
    env_var: str
    secrets: tuple[str, ...]
    state: str  # "in_use", "unused", "missing_definition" or "error"
    reason: str = ""
    flows: tuple[FlowUse, ...] = ()
    connection_references: tuple[dict[str, str], ...] = ()
    agents: tuple[str, ...] = ()  # Copilot Studio agents whose topics use it, by name


def impacts(
    environment: Environment,
    targets: Sequence[Target],
    definitions: dict[str, Definition],
    flows: Sequence[Flow],
    references: dict[str, dict[str, str]],
    owners: dict[str, str],
) -> list[VariableImpact]:
    """One row per mapped variable of the environment, with the flows whose parameters use it."""
    secrets_of: dict[str, list[str]] = {}
    for target in targets:
        secrets_of.setdefault(target.env_var, []).append(target.secret)
    rows = []
    for env_var, secrets in secrets_of.items():
        using = [flow for flow in flows if env_var.lower() in flow.schema_names]
        logical = sorted({name for flow in using for name in flow.connection_references})
        if env_var.lower() not in definitions:
            state = "missing_definition"
        else:
            state = "in_use" if using else "unused"
        rows.append(
            VariableImpact(
                environment=environment.name,
                stage=environment.stage,
                env_var=env_var,
                secrets=tuple(dict.fromkeys(secrets)),
                state=state,
                flows=tuple(
                    FlowUse(
                        id=flow.id,
                        name=flow.name,
                        state="on" if flow.on else "off",
                        owner=owners.get(flow.owner_id, flow.owner_id),
                        connection_references=flow.connection_references,
                    )
                    for flow in using
                ),
                connection_references=tuple(
                    {"logical_name": name, **references.get(name, {"connector": "", "connection": ""})}
                    for name in logical
                ),
            )
        )
    return rows


class Inventory:
    def __init__(
        self,
        dataverse: DataverseClient,
        flows: FlowsClient,
        agents: AgentsClient | None = None,
        connections: ConnectionReader | None = None,
    ) -> None:
        self._dataverse = dataverse
        self._flows = flows
        self._agents = agents
        self._connections = connections

    async def collect(self, targets: Sequence[Target]) -> list[VariableImpact]:
        """The variable targets' rows (every environment concurrently; an unreadable one: state error)."""
        return (await self.collect_all(targets))[0]

    async def collect_all(
        self, targets: Sequence[Target]
    ) -> tuple[list[VariableImpact], list[ConnectionUse]]:
        """Variables and connections, each environment's flows and references read once for both."""
        by_environment: dict[str, list[Target]] = {}
        for target in targets:
            if target.connection is None or self._connections is not None:
                by_environment.setdefault(target.environment.name, []).append(target)
        per_environment = await asyncio.gather(
            *(self._environment(group[0].environment, group) for group in by_environment.values())
        )
        return (
            [row for rows, _ in per_environment for row in rows],
            [row for _, rows in per_environment for row in rows],
        )

    async def _agents_of(self, org: str, definitions: dict[str, Definition]) -> dict[str, tuple[str, ...]]:
        if self._agents is None:
            return {}
        client = self._agents
        names = sorted(definitions)

        async def using(name: str) -> list[Agent]:
            definition = definitions[name]
            return await client.agents_using(org, definition.schema_name, definition.id)

        found = await asyncio.gather(*(using(name) for name in names))
        return {
            name: tuple(agent.name for agent in agents) for name, agents in zip(names, found, strict=True)
        }

    async def _environment(
        self, environment: Environment, targets: list[Target]
    ) -> tuple[list[VariableImpact], list[ConnectionUse]]:
        org = environment.url
        variables = [target for target in targets if target.connection is None]
        connection_targets = [target for target in targets if target.connection is not None]
        try:
            names = list(dict.fromkeys(target.env_var for target in variables))
            definitions, flows, references, found = await asyncio.gather(
                self._dataverse.get_definitions(org, names) if names else _nothing(),
                self._flows.cloud_flows(org),
                self._flows.connection_references(org),
                self._find(environment, connection_targets),
            )
            owner_ids = sorted({flow.owner_id for flow in flows if flow.owner_id})
            names_of_owners = await asyncio.gather(
                *(self._flows.user_name(org, owner) for owner in owner_ids)
            )
            agents = await self._agents_of(org, definitions)
        except LockstepError as error:
            reason = scrub(str(error))
            found = [reason] * len(connection_targets)
            unreadable = [
                VariableImpact(
                    environment=environment.name,
                    stage=environment.stage,
                    env_var=target.env_var,
                    secrets=(target.secret,),
                    state="error",
                    reason=reason,
                )
                for target in variables
            ]
            return unreadable, connection_uses(environment, connection_targets, found, [], {}, {})
        owners = dict(zip(owner_ids, names_of_owners, strict=True))
        rows = impacts(environment, variables, definitions, flows, references, owners)
        uses = connection_uses(environment, connection_targets, found, flows, references, owners)
        return [
            row.model_copy(
                update={
                    "agents": agents.get(row.env_var.lower(), ()),
                    "state": "in_use"
                    if row.state == "unused" and agents.get(row.env_var.lower())
                    else row.state,
                }
            )
            for row in rows
        ], uses

    async def _find(self, environment: Environment, targets: list[Target]) -> list[Found]:
        if not targets or self._connections is None:
            return []
        return await find_connections(self._connections, environment, targets)


async def _nothing() -> dict[str, Definition]:
    return {}


def breaks(
    rows: Sequence[VariableImpact], uses: Sequence[ConnectionUse]
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]:
    """What the near-expiry card names, from one inventory read: the flows and agents using each
    variable ('environment/env_var'), and each connection with its references and flows."""
    flows = {f"{row.environment}/{row.env_var}": [flow.name for flow in row.flows] for row in rows}
    agents = {f"{row.environment}/{row.env_var}": list(row.agents) for row in rows}
    connections = {}
    for use in uses:
        if use.connection["id"] is None:
            continue
        status = f"{use.status} {use.error_code}".strip() or "status unknown"
        connections[f"{use.environment}/{use.name} ({status})"] = [
            f"references: {', '.join(use.connection_references) or 'none'}",
            f"flows: {', '.join(flow.name for flow in use.flows) or 'none'}",
        ]
    return flows, agents, connections
