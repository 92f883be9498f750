"""Flow refresh establishes that it can turn a flow on again before it turns it off (issue 15):
a flow whose connections are not given to Lockstep's identity stays ON and needs a person."""

from __future__ import annotations

from typing import Any

import pytest

from sync.adapters.connection_model import Permission
from sync.adapters.connections import NotEditable
from sync.adapters.flows import OFF, ON, Flow
from sync.errors import TransientError
from sync.mapping import Environment
from sync.models import FlowOutcome, Target
from sync.steps.flow_refresh import FlowRefresh

ORG = "https://contoso-dev.crm.dynamics.com"
DEV = Environment(name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url=ORG, stage=1)
TARGET = Target(environment=DEV, env_var="contoso_Sql", secret="sql")
ME = "0d6b6c9e-0000-4000-8000-00000000beef"


def flow(name: str, *references: str, on: bool = True) -> Flow:
    return Flow(
        id=f"id-{name}",
        name=name,
        on=on,
        owner_id="owner-1",
        schema_names=frozenset({"contoso_sql"}),
        connection_references=references,
    )


class FakeFlows:
    def __init__(self, *flows: Flow) -> None:
        self.flows = list(flows)
        self.states: list[tuple[str, tuple[int, int], str | None]] = []
        self.identity_reads = 0

    async def cloud_flows(self, org: str) -> list[Flow]:
        return self.flows

    async def flows_using(self, org: str, schema: str, definition_id: str | None, listing: Any) -> list[Flow]:
        return list(await listing)

    async def set_state(
        self, org: str, flow_id: str, state: tuple[int, int], caller_object_id: str | None = None
    ) -> None:
        self.states.append((flow_id, state, caller_object_id))

    async def get_flow(self, org: str, flow_id: str) -> Flow:
        return next(f for f in self.flows if f.id == flow_id)

    async def owner_object_id(self, org: str, user_id: str) -> str:
        return "owner-object-id"

    async def caller_object_id(self, org: str) -> str:
        self.identity_reads += 1
        return ME

    async def connection_references(self, org: str) -> dict[str, dict[str, str]]:
        shared = "/providers/Microsoft.PowerApps/apis/shared_sql"
        return {
            "contoso_sql_shared": {"connector": shared, "connection": "conn-shared"},
            "contoso_sql_private": {"connector": shared, "connection": "conn-private"},
            "contoso_sql_hidden": {"connector": shared, "connection": "conn-hidden"},
            "contoso_unbound": {"connector": shared, "connection": ""},
        }


class FakeConnections:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def permissions(self, environment_id: str, connector: str, connection_id: str) -> list[Permission]:
        self.asked.append(connection_id)
        if connection_id == "conn-hidden":
            raise NotEditable("HTTP 403")
        if connection_id == "conn-shared":
            return [Permission("Owner", "someone", "User"), Permission("CanView", ME, "ServicePrincipal")]
        return [Permission("Owner", "someone", "User")]


async def refresh(flows: FakeFlows, connections: Any, *, as_owner: bool = False) -> dict[str, Any]:
    refresher = FlowRefresh(flows, connections=connections, as_owner=as_owner)  # type: ignore[arg-type]
    return {result.name: result for result in await refresher.refresh(TARGET, "def-1")}


@pytest.mark.parametrize("reference", ["contoso_sql_private", "contoso_sql_hidden", "contoso_unbound"])
async def test_a_flow_whose_connections_are_not_given_is_left_on(reference: str) -> None:
    flows = FakeFlows(flow("Invoice export", "contoso_sql_shared", reference))
    results = await refresh(flows, FakeConnections())
    result = results["Invoice export"]
    assert result.outcome is FlowOutcome.NEEDS_ACTION
    assert "left ON: the value is written; the flow keeps the old value" in result.reason
    assert flows.states == []  # never turned off


async def test_a_flow_whose_connections_are_shared_is_cycled_and_checks_are_shared() -> None:
    flows = FakeFlows(flow("A", "contoso_sql_shared"), flow("B", "contoso_sql_shared"), flow("C"))
    connections = FakeConnections()
    results = await refresh(flows, connections)
    assert {name: r.outcome for name, r in results.items()} == dict.fromkeys("ABC", FlowOutcome.REFRESHED)
    assert [(f, s) for f, s, _ in flows.states].count(("id-A", OFF)) == 1
    assert connections.asked == ["conn-shared"] and flows.identity_reads == 1  # asked once per run


async def test_impersonating_the_owner_needs_no_share() -> None:
    flows = FakeFlows(flow("Invoice export", "contoso_sql_private"))
    results = await refresh(flows, FakeConnections(), as_owner=True)
    assert results["Invoice export"].outcome is FlowOutcome.REFRESHED
    assert flows.states[-1] == ("id-Invoice export", ON, "owner-object-id")


async def test_when_the_check_cannot_be_made_the_flow_is_left_on() -> None:
    class Down(FakeConnections):
        async def permissions(self, *_: str) -> list[Permission]:
            raise TransientError("Power Platform API answered HTTP 503 after retries")

    flows = FakeFlows(flow("Invoice export", "contoso_sql_shared"))
    results = await refresh(flows, Down())
    assert results["Invoice export"].outcome is FlowOutcome.FAILED
    assert results["Invoice export"].reason.endswith("left on") and flows.states == []
