"""The inventory names, per environment, the agents whose topics use each mapped variable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sync.adapters.flows import Flow
from sync.agent_rules import Agent
from sync.inventory import Inventory, breaks
from sync.mapping import Environment
from sync.models import Definition, Target

DEV = Environment(
    name="dev", id="11111111-1111-4111-8111-111111111111", url="https://a.crm.dynamics.com", stage=1
)


class FakeDataverse:
    async def get_definitions(self, org: str, names: Sequence[str]) -> dict[str, Definition]:
        return {
            "contoso_sql": Definition(id="d1", schema_name="contoso_Sql", type=100000000, value_row=None),
            "contoso_graph": Definition(id="d2", schema_name="contoso_Graph", type=100000000, value_row=None),
        }


class FakeFlows:
    async def cloud_flows(self, org: str) -> list[Flow]:
        return []

    async def connection_references(self, org: str) -> dict[str, dict[str, str]]:
        return {}


class FakeAgents:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str | None]] = []

    async def agents_using(self, org: str, schema_name: str, definition_id: str | None) -> list[Agent]:
        self.asked.append((org, schema_name, definition_id))
        if schema_name == "contoso_Sql":
            return [Agent(id="b1", name="Help desk", schema_name="cr1_help", published_on=None)]
        return []


async def test_agents_per_variable_make_it_in_use() -> None:
    agents = FakeAgents()
    inventory = Inventory(FakeDataverse(), FakeFlows(), agents)  # type: ignore[arg-type]
    targets = [
        Target(environment=DEV, env_var="contoso_Sql", secret="sql"),
        Target(environment=DEV, env_var="contoso_Graph", secret="graph"),
    ]
    collected = await inventory.collect(targets)
    rows: dict[str, Any] = {row.env_var: row for row in collected}
    assert rows["contoso_Sql"].agents == ("Help desk",) and rows["contoso_Sql"].state == "in_use"
    assert rows["contoso_Graph"].agents == () and rows["contoso_Graph"].state == "unused"
    assert ("https://a.crm.dynamics.com", "contoso_Sql", "d1") in agents.asked
    assert breaks(collected, [])[1] == {  # what the near-expiry card names
        "dev/contoso_Sql": ["Help desk"],
        "dev/contoso_Graph": [],
    }
