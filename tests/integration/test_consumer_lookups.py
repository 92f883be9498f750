"""What the consumers look up after a write: one dependency listing per environment, started with the write.

Flow refresh and agent refresh need what reads a changed variable (the environment's dependency
listing, its cloud flows, whether it has agents at all). Those look-ups start when a target is
about to be written, so they are answered while the write is still going, not after it, and a
run that writes nothing looks nothing up.
"""

from __future__ import annotations

import pytest

from demo.scenario import GRAPH_VAR, SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import Emulator

from .conftest import deliver, last_report, outcomes, run_timer

LOOKUPS = ("/api/data/v9.2/dependencies", "/api/data/v9.2/workflows", "/api/data/v9.2/bots")
DEFINITIONS = "/api/data/v9.2/environmentvariabledefinitions"
VALUES = "/api/data/v9.2/environmentvariablevalues("


def dataverse(emulator: Emulator) -> list[tuple[str, str, str]]:
    """(host, method, path) of every answered Dataverse request, in the order they were answered."""
    return [
        (r.host, r.method, r.path) for r in emulator.requests if r.service == "dataverse" and r.status < 400
    ]


def lookups(emulator: Emulator) -> list[tuple[str, str, str]]:
    return [request for request in dataverse(emulator) if request[2] in LOOKUPS]


async def test_look_ups_are_answered_before_the_write_they_follow(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    """Every environment's look-ups start with its value write, not after it: each write is
    first refused with 503 and Retry-After, so it succeeds only on its retry, a second later,
    and the look-ups, sent beside the first attempt, are answered before that retry is.

    Without the head start they are sent only once the stage kept the value, after the write.
    """
    prod = scenario.environments["prod"]
    flow = prod.add_flow("Month-end close", uses=[SQL_VAR])
    for env in scenario.environments.values():
        host = env.url.removeprefix("https://")
        emulator.inject_fault(
            "dataverse",
            503,
            retry_after=1.0,
            path_contains=f"{host}/api/data/v9.2/environmentvariablevalues(",
            method="PATCH",
        )
    emulator.reset_requests()
    await deliver(scenario.rotate(SQL_SECRET, canary("early-")))
    assert set(outcomes(last_report(logs)).values()) <= {"updated", "created"}
    assert prod.flow_history(flow) == ["off", "on"]  # still refreshed, exactly as before
    answered = dataverse(emulator)
    for name, env in scenario.environments.items():
        host = env.url.removeprefix("https://")
        mine = [(method, path) for h, method, path in answered if h == host]
        written = next(i for i, (method, path) in enumerate(mine) if path.startswith(VALUES))
        looked_up = [i for i, (method, path) in enumerate(mine) if method == "GET" and path in LOOKUPS]
        assert len(looked_up) == 3, (name, mine)  # dependencies, flows, any agent: once each
        assert max(looked_up) < written, (name, mine)
    assert len(emulator.teams_posts) == 1


async def test_a_run_that_writes_nothing_looks_nothing_up(scenario: Scenario, emulator: Emulator) -> None:
    event = scenario.rotate(SQL_SECRET, canary("once-"))
    await deliver(event)
    assert len(lookups(emulator)) == 9  # the first delivery writes three environments
    emulator.reset_requests()
    await deliver(event)  # a duplicate delivery: everything is in sync
    assert lookups(emulator) == []
    await run_timer()  # an in-sync reconcile
    assert lookups(emulator) == []
    assert all(path == DEFINITIONS for _, _, path in dataverse(emulator)), dataverse(emulator)


async def test_a_reconcile_lists_each_environments_dependencies_once(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    """Two variables repaired in dev, two in test (one created): one dependency listing per
    environment, where it was one RetrieveDependentComponents per repaired variable."""
    dev, test = scenario.environments["dev"], scenario.environments["test"]
    dev_flow = dev.add_flow("Uses both", uses=[SQL_VAR, GRAPH_VAR])
    graph_flow = test.add_flow("Graph sync", uses=[GRAPH_VAR])
    dev.set_value(SQL_VAR, canary("drift-"))
    dev.set_value(GRAPH_VAR, canary("drift-"))
    test.set_value(GRAPH_VAR, canary("drift-"))
    emulator.reset_requests()
    await run_timer()
    assert outcomes(last_report(logs)) == {
        ("dev", SQL_VAR): "updated",
        ("test", SQL_VAR): "created",
        ("prod", SQL_VAR): "unchanged",
        ("dev", GRAPH_VAR): "updated",
        ("test", GRAPH_VAR): "updated",
    }
    listings = [host for host, _, path in lookups(emulator) if path.endswith("/dependencies")]
    assert sorted(listings) == sorted(env.url.removeprefix("https://") for env in (dev, test))
    assert not [r for r in emulator.requests if "RetrieveDependentComponents" in r.path]
    # Flows are refreshed as before: once for each variable that changed under them (side by side).
    assert sorted(dev.flow_history(dev_flow)) == ["off", "off", "on", "on"] and dev.flow_is_on(dev_flow)
    assert test.flow_history(graph_flow) == ["off", "on"]
