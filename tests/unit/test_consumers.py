"""Consumers (flows, agents) after a stage keeps a value: side by side, their records merged."""

from __future__ import annotations

import asyncio
from typing import Any

from sync.mapping import Environment
from sync.models import (
    AgentOutcome,
    AgentResult,
    FlowOutcome,
    FlowResult,
    Outcome,
    Target,
    TargetResult,
)
from sync.steps.consumers import refresh_consumers
from sync.targets.base import Change


async def test_consumers_run_concurrently_and_their_records_are_merged() -> None:
    """Flows and agents are refreshed side by side (the slower one sets the pace, not their sum),
    and what each records lands on the one result, reasons added up."""
    from sync.models import Target, TargetResult
    from sync.targets.base import Change

    dev = Environment(
        name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url="https://dev.crm.dynamics.com", stage=1
    )
    target = Target(environment=dev, env_var="contoso_Secret", secret="s")
    started: list[str] = []

    class Slow:
        def __init__(self, name: str, update: dict[str, Any]) -> None:
            self.name, self.update = name, update

        async def refresh(self, target: Target, change: Change, result: TargetResult) -> TargetResult:
            started.append(self.name)
            await asyncio.sleep(0.2)
            return result.model_copy(update=self.update)

    flows = (FlowResult(id="f", name="Invoice export", outcome=FlowOutcome.REFRESHED),)
    agents = (AgentResult(id="a", name="Help desk", outcome=AgentOutcome.PUBLISHED),)
    consumers = [
        Slow("flows", {"flows": flows, "reason": "flow refresh failed: listing"}),
        Slow("agents", {"agents": agents, "reason": "written; agent refresh failed: search"}),
    ]
    result = TargetResult.of(target, Outcome.UPDATED, "written")
    loop = asyncio.get_running_loop()
    began = loop.time()
    [refreshed] = await refresh_consumers(consumers, [(result, Change(Outcome.UPDATED, "def"))], [target])
    assert loop.time() - began < 0.35  # side by side: one 0.2 s wait, not two
    assert sorted(started) == ["agents", "flows"]
    assert refreshed.flows == flows and refreshed.agents == agents
    assert refreshed.reason == "written; flow refresh failed: listing; agent refresh failed: search"
