"""Storms, races, interrupted runs and awkward values, end to end against the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from demo.scenario import GRAPH_SECRET, GRAPH_VAR, SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import Emulator
from sync.errors import SyncIncompleteError

from .conftest import deliver, last_report, outcomes, run_timer, writes


def writes_per_target(emulator: Emulator) -> dict[str, int]:
    """Value writes Dataverse applied, per organisation (a write refused with 412 changed nothing)."""
    counts: dict[str, int] = {}
    for r in emulator.requests:
        applied = r.service == "dataverse" and r.method in ("PATCH", "POST") and r.status < 400
        if applied and "environmentvariablevalues" in r.path:
            counts[r.host] = counts.get(r.host, 0) + 1
    return counts


async def test_storm_of_duplicated_shuffled_stale_events_ends_at_the_latest_value(
    scenario: Scenario, emulator: Emulator
) -> None:
    rng = random.Random(11)
    events = []
    latest = {}
    for secret in (SQL_SECRET, GRAPH_SECRET):
        for round_ in range(4):  # four rotations: the first three events are stale by the end
            latest[secret] = canary(f"storm-{round_}-")
            events.append(scenario.rotate(secret, latest[secret]))
    storm = [event for event in events for _ in range(3)]  # every event delivered three times
    rng.shuffle(storm)
    emulator.reset_requests()
    for batch in range(0, len(storm), 6):  # six at a time, as concurrent deliveries would arrive
        await asyncio.gather(*(deliver(event) for event in storm[batch : batch + 6]))

    assert set(scenario.values(SQL_VAR).values()) == {latest[SQL_SECRET]}
    graph = scenario.values(GRAPH_VAR)
    assert graph["dev"] == graph["test"] == latest[GRAPH_SECRET]
    for env in scenario.environments.values():
        assert env.value_row_count(SQL_VAR) == 1
    # Each secret read its latest version from the first delivery on: one write per target.
    per_host = writes_per_target(emulator)
    assert per_host == {
        "contoso-dev.crm.lockstep.test": 2,  # sql + graph
        "contoso-test.crm.lockstep.test": 2,
        "contoso.crm.lockstep.test": 1,
    }


async def test_two_deliveries_of_the_same_event_at_once_make_one_row(
    scenario: Scenario, emulator: Emulator
) -> None:
    new = canary("race-")
    event = scenario.rotate(SQL_SECRET, new)
    emulator.set_latency(0.05, "dataverse")  # keep both deliveries in flight together
    results = await asyncio.gather(deliver(event), deliver(event), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, SyncIncompleteError), result  # a redelivery would finish
    with contextlib.suppress(SyncIncompleteError):
        await deliver(event)
    test = scenario.environments["test"]
    assert test.value_row_count(SQL_VAR) == 1  # test had no row: both tried to create it
    assert scenario.values(SQL_VAR) == {"dev": new, "test": new, "prod": new}


async def test_run_killed_mid_rotation_is_completed_by_the_reconcile(
    scenario: Scenario, emulator: Emulator
) -> None:
    new = canary("killed-")
    event = scenario.rotate(SQL_SECRET, new)
    emulator.set_latency(0.15, "dataverse")
    delivery = asyncio.create_task(deliver(event))
    while scenario.values(SQL_VAR)["dev"] != new:  # noqa: ASYNC110 - polling the emulator's state
        await asyncio.sleep(0.01)  # stage 1 is written; stage 2 is not yet
    delivery.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await delivery
    assert scenario.values(SQL_VAR)["prod"] != new  # the process died before prod
    emulator.set_latency(0.0)
    await run_timer()
    assert scenario.values(SQL_VAR) == {"dev": new, "test": new, "prod": new}
    assert scenario.environments["test"].value_row_count(SQL_VAR) == 1


AWKWARD = [
    'quote " and apostrophe \' and {"json": true}',
    "back\\slash \\n not a newline \\\\",
    "line one\nline two\r\nline three\ttab",
    "emoji 🔐🚀 and accents éàü and CJK 秘密",
    "x" * 2000,
    " leading and trailing spaces ",
]


@pytest.mark.parametrize(
    "value", AWKWARD, ids=["quotes", "backslashes", "newlines", "emoji", "2000", "spaces"]
)
async def test_awkward_values_round_trip_byte_for_byte(scenario: Scenario, value: str) -> None:
    await deliver(scenario.rotate(SQL_SECRET, value))
    assert scenario.values(SQL_VAR) == {"dev": value, "test": value, "prod": value}


async def test_longer_than_2000_is_refused_with_the_reason_and_nothing_written(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    before = scenario.values(SQL_VAR)
    too_long = "y" * 2001
    emulator.reset_requests()
    await deliver(scenario.rotate(SQL_SECRET, too_long))
    assert scenario.values(SQL_VAR) == before
    assert writes(emulator) == []
    report = last_report(logs)
    assert outcomes(report)[("dev", SQL_VAR)] == "failed"
    reason = next(r["reason"] for s in report["secrets"] for r in s["results"] if r["environment"] == "dev")
    assert "2001 characters" in reason and "at most 2000" in reason
    assert too_long not in "\n".join(record.getMessage() for record in logs.records)
