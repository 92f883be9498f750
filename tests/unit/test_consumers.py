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
from sync.steps.consumers import refresh_consumers, start_refresh
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


class Preparing:
    """Records when it is prepared (how many writes the store had seen by then) and refreshed."""

    def __init__(self, store: Any, fail: bool = False) -> None:
        self.store, self.fail = store, fail
        self.prepared: list[tuple[str, int]] = []
        self.refreshed: list[str] = []

    def prepare(self, target: Target) -> None:
        self.prepared.append((target.environment.name, len(self.store.writes)))
        if self.fail:
            raise RuntimeError("a look-up could not even start")

    async def refresh(self, target: Target, change: Change, result: TargetResult) -> TargetResult:
        self.refreshed.append(target.environment.name)
        return result


async def test_consumers_are_prepared_before_each_write_and_never_for_a_target_not_written() -> None:
    from sync.engine import SyncEngine
    from sync.mapping import parse_mapping
    from sync.models import Trigger
    from sync.telemetry import correlation

    from .conftest import mapping_document
    from .test_engine import Directory, Secrets, Store

    mapping = parse_mapping(mapping_document(), "M")
    store = Store(mapping)
    store.conflicts = 1  # dev's first write loses a race: re-read, write again, prepared once
    broken, recorder = Preparing(store, fail=True), Preparing(store)
    engine = SyncEngine(mapping, Secrets(), store, Directory(mapping), None, consumers=[broken, recorder])
    with correlation("cid-prepare"):
        report = await engine.sync_secrets(["sql-conn-password"], Trigger.EVENT)
    assert {result.outcome for result in report.results} == {Outcome.UPDATED}
    # Before each environment's write (stage order), once; a consumer failing to prepare spares the rest.
    assert recorder.prepared == broken.prepared == [("dev", 0), ("test", 1), ("prod", 2)]
    assert sorted(recorder.refreshed) == sorted(broken.refreshed) == ["dev", "prod", "test"]
    with correlation("cid-again"):
        again = await engine.sync_secrets(["sql-conn-password"], Trigger.EVENT)
    assert {result.outcome for result in again.results} == {Outcome.UNCHANGED}
    assert len(recorder.prepared) == 3  # nothing written, nothing prepared


async def test_a_stage_that_wrote_nothing_refreshes_nothing_and_starts_no_task() -> None:
    """An in-sync stage (most of a reconcile) comes back as a finished future, its results as
    they were; a stage that wrote refreshes only the targets it wrote."""
    dev = Environment(
        name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url="https://dev.crm.dynamics.com", stage=1
    )
    targets = [Target(environment=dev, env_var=f"contoso_Secret{i}", secret="s") for i in range(3)]
    refreshed: list[str] = []

    class Recording:
        async def refresh(self, target: Target, change: Change, result: TargetResult) -> TargetResult:
            refreshed.append(target.env_var)
            return result.model_copy(update={"reason": "refreshed"})

    unchanged = [
        (TargetResult.of(t, Outcome.UNCHANGED, "in sync"), Change(Outcome.UNCHANGED)) for t in targets
    ]
    tasks_before = len(asyncio.all_tasks())
    future = start_refresh([Recording()], unchanged, targets)
    assert future.done() and len(asyncio.all_tasks()) == tasks_before
    assert await future == [result for result, _ in unchanged]
    assert refreshed == []

    mixed = [
        unchanged[0],
        (TargetResult.of(targets[1], Outcome.UPDATED, "w"), Change(Outcome.UPDATED, "d")),
        unchanged[2],
    ]
    results = await start_refresh([Recording()], mixed, targets)
    assert refreshed == ["contoso_Secret1"]
    assert [r.reason for r in results] == ["in sync", "w; refreshed", "in sync"]
