"""Impact inventory: which cloud flows (and connections) each mapped variable feeds.

What a maker needs before a rotation, and what the near-expiry card names: "if this secret
expires, these flows in these environments break". Reads only: per environment one bulk
definitions read, one cloud-flow listing, one connection-reference listing, and one read per
distinct flow owner. The shaping (`impacts`) is pure; `Inventory` does the reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from sync.adapters.dataverse import DataverseClient
from sync.adapters.flows import Flow, FlowsClient
from sync.errors import LockstepError
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
    def __init__(self, dataverse: DataverseClient, flows: FlowsClient) -> None:
        self._dataverse = dataverse
        self._flows = flows

    async def collect(self, targets: Sequence[Target]) -> list[VariableImpact]:
        """Every environment of `targets` concurrently; an unreadable one is rows in state error."""
        by_environment: dict[str, list[Target]] = {}
        for target in targets:
            by_environment.setdefault(target.environment.name, []).append(target)
        per_environment = await asyncio.gather(
            *(self._environment(group[0].environment, group) for group in by_environment.values())
        )
        return [row for rows in per_environment for row in rows]

    async def flows_by_target(self, targets: Sequence[Target]) -> dict[str, list[str]]:
        """'environment/env_var' -> names of the flows that use it (for the near-expiry card)."""
        return {
            f"{row.environment}/{row.env_var}": [flow.name for flow in row.flows]
            for row in await self.collect(targets)
        }

    async def _environment(self, environment: Environment, targets: list[Target]) -> list[VariableImpact]:
        org = environment.url
        try:
            names = list(dict.fromkeys(target.env_var for target in targets))
            definitions, flows, references = await asyncio.gather(
                self._dataverse.get_definitions(org, names),
                self._flows.cloud_flows(org),
                self._flows.connection_references(org),
            )
            owner_ids = sorted({flow.owner_id for flow in flows if flow.owner_id})
            names_of_owners = await asyncio.gather(
                *(self._flows.user_name(org, owner) for owner in owner_ids)
            )
        except LockstepError as error:
            reason = scrub(str(error))
            return [
                VariableImpact(
                    environment=environment.name,
                    stage=environment.stage,
                    env_var=target.env_var,
                    secrets=(target.secret,),
                    state="error",
                    reason=reason,
                )
                for target in targets
            ]
        owners = dict(zip(owner_ids, names_of_owners, strict=True))
        return impacts(environment, targets, definitions, flows, references, owners)
