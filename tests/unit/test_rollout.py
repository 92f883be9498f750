"""Staged rollout per mapping row: the gate after each stage, rollback, held-back stages."""

from __future__ import annotations

from typing import Any

import pytest

from sync.engine import SyncEngine
from sync.mapping import Mapping, parse_mapping
from sync.models import Outcome, TargetResult, Trigger
from sync.rollout import Gate, judge_stage
from sync.telemetry import correlation

from .test_engine import NEW, Directory, Secrets, Store, Teams

DEV, TEST, UAT, PROD = (
    "https://contoso-dev.crm.dynamics.com",
    "https://contoso-test.crm.dynamics.com",
    "https://contoso-uat.crm.dynamics.com",
    "https://contoso.crm.dynamics.com",
)


def mapping(rollout: str = "staged") -> Mapping:
    return parse_mapping(
        {
            "environments": [
                {"name": "dev", "id": "6a1b2c3d-0000-4000-8000-000000000001", "url": DEV, "stage": 1},
                {"name": "test", "id": "9c2d3e4f-0000-4000-8000-000000000002", "url": TEST, "stage": 2},
                {"name": "uat", "id": "9c2d3e4f-0000-4000-8000-000000000004", "url": UAT, "stage": 2},
                {"name": "prod", "id": "0e3f4a5b-0000-4000-8000-000000000003", "url": PROD, "stage": 3},
            ],
            "secrets": [
                {
                    "secret": "sql-conn-password",
                    "env_var": "contoso_SqlConnectionPassword",
                    "rollout": rollout,
                },
                {"secret": "sql-conn-password", "env_var": "contoso_GraphSecret"},
            ],
        },
        "M",
    )


async def sync(mapping_: Mapping, store: Store, teams: Teams | None = None) -> Any:
    engine = SyncEngine(mapping_, Secrets(), store, Directory(mapping_), teams)
    with correlation("cid"):
        return await engine.sync_secrets(["sql-conn-password"], Trigger.EVENT)


def by_target(report: Any) -> dict[tuple[str, str], TargetResult]:
    return {(r.environment, r.env_var): r for r in report.results}


async def test_refused_write_in_stage_two_rolls_the_stage_back_and_holds_prod() -> None:
    plan = mapping()
    store = Store(plan)
    store.refuse = {UAT}
    teams = Teams()
    report = await sync(plan, store, teams)
    results = by_target(report)
    sql = "contoso_SqlConnectionPassword"
    assert results[("dev", sql)].outcome is Outcome.UPDATED  # stage 1 keeps the new value
    assert store.rows[DEV][sql][1] == NEW
    assert results[("uat", sql)].outcome is Outcome.FAILED and not results[("uat", sql)].retryable
    assert results[("test", sql)].outcome is Outcome.ROLLED_BACK  # changed by this run, restored
    assert "previous value was restored" in results[("test", sql)].reason
    assert store.rows[TEST][sql][1] == "old"
    assert results[("prod", sql)].outcome is Outcome.HELD_BACK  # never touched
    assert store.rows[PROD][sql][1] == "old"
    assert not report.retryable  # acknowledged: a redelivery cannot fix a refused write
    # The other row of the same secret is independent: it fails in uat too (refused), but its own
    # rollback and hold are its own business; dev keeps the value.
    assert results[("dev", "contoso_GraphSecret")].outcome is Outcome.UPDATED
    [card] = teams.cards
    text = str(card)
    assert "rolled_back" in text and "held_back" in text and NEW not in text


async def test_rollout_all_writes_every_stage_whatever_fails() -> None:
    plan = mapping("all")
    store = Store(plan)
    store.refuse = {UAT}
    report = await sync(plan, store)
    results = by_target(report)
    sql = "contoso_SqlConnectionPassword"
    assert results[("test", sql)].outcome is Outcome.UPDATED
    assert results[("uat", sql)].outcome is Outcome.FAILED
    assert results[("prod", sql)].outcome is Outcome.UPDATED
    assert store.rows[PROD][sql][1] == NEW


async def test_created_row_is_removed_on_rollback() -> None:
    plan = mapping()
    store = Store(plan)
    store.rows[TEST]["contoso_SqlConnectionPassword"][1] = None  # no value row yet: this run creates it
    store.refuse = {UAT}
    report = await sync(plan, store)
    result = by_target(report)[("test", "contoso_SqlConnectionPassword")]
    assert result.outcome is Outcome.ROLLED_BACK and "removed" in result.reason
    assert (TEST, "delete") in store.writes
    assert store.rows[TEST]["contoso_SqlConnectionPassword"][1] is None


async def test_transient_failure_holds_later_stages_without_rollback_and_is_retryable() -> None:
    plan = mapping()
    store = Store(plan)
    directory = Directory(plan)
    uat = plan.environment("uat")
    directory.states[uat.id] = ("Ready", "AdminMode", UAT + "/")
    engine = SyncEngine(plan, Secrets(), store, directory, None)
    with correlation("cid"):
        report = await engine.sync_secrets(["sql-conn-password"], Trigger.EVENT)
    results = by_target(report)
    sql = "contoso_SqlConnectionPassword"
    assert results[("test", sql)].outcome is Outcome.UPDATED  # no rollback for a transient failure
    assert results[("uat", sql)].outcome is Outcome.SKIPPED
    assert results[("prod", sql)].outcome is Outcome.HELD_BACK and results[("prod", sql)].retryable
    assert report.retryable  # raised to Event Grid: the redelivery continues from stage 2


def result(environment: str, outcome: Outcome, retryable: bool = False) -> TargetResult:
    return TargetResult(environment=environment, stage=2, env_var="x_Y", outcome=outcome, retryable=retryable)


@pytest.mark.parametrize(
    ("results", "gate"),
    [
        ([result("a", Outcome.UPDATED), result("b", Outcome.UNCHANGED)], Gate.PROCEED),
        ([result("a", Outcome.UPDATED), result("b", Outcome.FAILED)], Gate.ROLL_BACK),
        ([result("a", Outcome.UPDATED), result("b", Outcome.FAILED, retryable=True)], Gate.HOLD),
        ([result("a", Outcome.SKIPPED, retryable=True)], Gate.HOLD),
    ],
)
def test_gate(results: list[TargetResult], gate: Gate) -> None:
    assert judge_stage("staged", 2, results).gate is gate
    assert judge_stage("all", 2, results).gate is Gate.PROCEED
