"""Service-principal connections end to end: the real entry point, over HTTPS, against the emulator.

A mapping row feeds the client secret of one app registration to its Dataverse connections in
dev, test and prod (found by client id). Each test rotates (or reconciles) and checks what the
connections hold, what the report says, and how many PUTs it took.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from demo.scenario import SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import AppRegistration, Emulator

from .conftest import deliver, haystacks, last_report, run_timer

SECRET = "flows-spn-secret"
CONNECTOR = "shared_commondataserviceforapps"


@dataclass
class Connections:
    app: AppRegistration
    old: str
    ids: dict[str, str]  # environment name -> connection id
    user_sign_in: str  # a dev connection signing in as a user: never touched

    def puts(self, emulator: Emulator) -> list[str]:
        return [
            f"{r.host}{r.path}"
            for r in emulator.requests
            if r.service == "connectivity" and r.method == "PUT"
        ]


@pytest.fixture
async def connections(scenario: Scenario, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Connections:
    old = canary("spn-old-")
    app = emulator.add_app_registration(secret=old)
    scenario.vault.set_secret(SECRET, old)
    ids = {}
    for name, env in scenario.environments.items():
        ids[name] = env.add_connection(
            CONNECTOR, "ServicePrincipalOauth", client_id=app.client_id, display_name=f"Flows SPN {name}"
        )
        env.share_connection(ids[name], "CanEdit")
    user = scenario.environments["dev"].add_connection(CONNECTOR, "Oauth", display_name="Maker's own")
    scenario.environments["dev"].share_connection(user, "CanEdit")
    scenario.mapping["secrets"].append(
        {
            "secret": SECRET,
            "connection": {"connector": CONNECTOR, "client_id": app.client_id, "tenant_id": app.tenant_id},
        }
    )
    for name, value in scenario.app_settings().items():
        monkeypatch.setenv(name, value)
    emulator.reset_requests()
    await next_second()
    return Connections(app=app, old=old, ids=ids, user_sign_in=user)


async def next_second() -> None:
    """Key Vault keeps whole seconds: a connection changed in the second a version is created counts
    as changed with it (the documented edge), so a rotation after a change starts in the next second."""
    await asyncio.sleep(1.1 - datetime.now(UTC).microsecond / 1e6)


def connection_outcomes(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """environment -> (outcome, reason) of the connection targets."""
    return {
        result["environment"]: (result["outcome"], result["reason"])
        for secret in report["secrets"]
        for result in secret["results"]
        if result.get("kind") == "connection"
    }


async def rotate(scenario: Scenario, connections: Connections, *, valid: bool = True) -> str:
    new = canary("spn-new-")
    if valid:
        connections.app.add_secret(new)
    await deliver(scenario.rotate(SECRET, new))
    return new


async def test_rotation_updates_every_stage_and_verifies_connected(
    scenario: Scenario, emulator: Emulator, connections: Connections, logs: pytest.LogCaptureFixture
) -> None:
    new = await rotate(scenario, connections)
    for name, env in scenario.environments.items():
        assert env.connection_holds(connections.ids[name], new), name
        assert env.connection(connections.ids[name])["status"] == "Connected"
    assert scenario.environments["dev"].connection(connections.user_sign_in)["puts"] == 0
    report = last_report(logs)
    assert {env: outcome for env, (outcome, _) in connection_outcomes(report).items()} == dict.fromkeys(
        ("dev", "test", "prod"), "updated"
    )
    (dev,) = [
        r for s in report["secrets"] for r in s["results"] if r["environment"] == "dev" and r["connection"]
    ]
    assert (
        dev["connection"]["id"] == connections.ids["dev"]
        and dev["connection"]["display_name"] == "Flows SPN dev"
    )
    assert len(connections.puts(emulator)) == 3


async def test_duplicate_event_and_in_sync_reconcile_write_nothing(
    scenario: Scenario, emulator: Emulator, connections: Connections, logs: pytest.LogCaptureFixture
) -> None:
    await rotate(scenario, connections)
    emulator.reset_requests()
    await deliver(scenario.vault.secret_event(SECRET))
    await run_timer()
    assert connections.puts(emulator) == []
    assert {o for o, _ in connection_outcomes(last_report(logs)).values()} == {"unchanged"}


async def test_a_connection_in_error_is_repaired_by_the_reconcile(
    scenario: Scenario, emulator: Emulator, connections: Connections, logs: pytest.LogCaptureFixture
) -> None:
    new = await rotate(scenario, connections)
    test = scenario.environments["test"]
    test.set_connection_status(connections.ids["test"], "Error")
    emulator.reset_requests()
    await run_timer()
    assert len(connections.puts(emulator)) == 1 and connections.ids["test"] in connections.puts(emulator)[0]
    assert test.connection(connections.ids["test"])["status"] == "Connected"
    assert test.connection_holds(connections.ids["test"], new)
    assert connection_outcomes(last_report(logs))["test"][0] == "updated"


async def test_a_secret_the_app_does_not_accept_is_rolled_back_and_later_stages_held(
    scenario: Scenario, emulator: Emulator, connections: Connections, logs: pytest.LogCaptureFixture
) -> None:
    await rotate(scenario, connections, valid=False)  # Key Vault has it, Entra does not
    dev = scenario.environments["dev"]
    assert dev.connection_holds(connections.ids["dev"], connections.old)  # the previous version is back
    assert dev.connection(connections.ids["dev"])["status"] == "Connected"
    outcomes = connection_outcomes(last_report(logs))
    assert outcomes["dev"][0] == "failed"
    assert "reports Error (Unauthenticated)" in outcomes["dev"][1]
    assert "rolled back to the secret's previous version" in outcomes["dev"][1]
    assert outcomes["test"][0] == outcomes["prod"][0] == "held_back"
    for name in ("test", "prod"):
        assert scenario.environments[name].connection(connections.ids[name])["puts"] == 0


async def test_a_failed_stage_restores_its_updated_connections(
    scenario: Scenario, emulator: Emulator, connections: Connections, logs: pytest.LogCaptureFixture
) -> None:
    test = scenario.environments["test"]
    second = test.add_connection(CONNECTOR, "ServicePrincipalOauth", client_id=connections.app.client_id)
    test.share_connection(second, "CanEdit")
    emulator.inject_fault("connectivity", 400, times=1, path_contains=second, method="PUT")
    await next_second()
    await rotate(scenario, connections)
    report = last_report(logs)
    results = {
        r["connection"]["id"]: (r["outcome"], r["reason"])
        for s in report["secrets"]
        for r in s["results"]
        if r["connection"]
    }
    assert results[connections.ids["dev"]][0] == "updated"
    assert results[second][0] == "failed"
    assert results[connections.ids["test"]] == (
        "rolled_back",
        results[connections.ids["test"]][1],
    ) and results[connections.ids["test"]][1].startswith("rolled back to the secret's previous version")
    assert test.connection_holds(connections.ids["test"], connections.old)
    # A held-back stage is not even listed: its row stands for whatever connections it would find.
    assert connection_outcomes(report)["prod"][0] == "held_back"
    assert scenario.environments["prod"].connection(connections.ids["prod"])["puts"] == 0


async def test_a_connection_not_shared_needs_action_and_the_run_goes_on(
    scenario: Scenario, emulator: Emulator, connections: Connections, logs: pytest.LogCaptureFixture
) -> None:
    test = scenario.environments["test"]
    test.share_connection(connections.ids["test"], "CanView")  # may read, not edit
    new = await rotate(scenario, connections)
    outcomes = connection_outcomes(last_report(logs))
    assert outcomes["test"][0] == "needs_action" and "Can edit" in outcomes["test"][1]
    assert outcomes["dev"][0] == outcomes["prod"][0] == "updated"  # prod is not held back
    assert scenario.environments["prod"].connection_holds(connections.ids["prod"], new)
    assert test.connection_holds(connections.ids["test"], connections.old)


async def test_the_secret_never_leaves(
    scenario: Scenario,
    emulator: Emulator,
    connections: Connections,
    logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new = await rotate(scenario, connections)  # updated everywhere
    assert scenario.environments["prod"].connection_holds(connections.ids["prod"], new)  # the path ran
    scenario.environments["prod"].set_connection_status(connections.ids["prod"], "Error")
    await run_timer()  # repaired
    assert scenario.environments["prod"].connection(connections.ids["prod"])["status"] == "Connected"
    scenario.environments["test"].share_connection(connections.ids["test"], "CanView")
    latest = await rotate(scenario, connections, valid=False)  # Error in dev, rollback attempted
    assert scenario.environments["test"].connection_holds(connections.ids["test"], new)  # held back
    captured = capsys.readouterr()
    places = haystacks(logs, emulator, captured.out + captured.err)
    for value in (connections.old, new, latest):
        for where, haystack in places.items():
            assert value not in haystack, f"a client secret leaked into {where}"
            assert value[-12:] not in haystack, f"a fragment of a client secret leaked into {where}"


async def test_flow_refresh_cycles_a_flow_whose_connection_is_shared_and_leaves_the_other_on(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    """Before turning a flow off, Lockstep finds its own object id (WhoAmI, then its application
    user's azureactivedirectoryobjectid) among the permissions of every connection the flow's
    references are bound to; a flow it could not turn on again is left on and needs action."""
    dev = scenario.environments["dev"]
    shared = dev.add_connection(
        "shared_sql", "Oauth", display_name="Shared SQL", shared_with_lockstep="CanView"
    )
    private = dev.add_connection("shared_sql", "Oauth", display_name="Maker's own SQL")
    dev.add_connection_reference("contoso_SharedSql", "shared_sql", connection_id=shared)
    dev.add_connection_reference("contoso_PrivateSql", "shared_sql", connection_id=private)
    cycled = dev.add_flow("Invoice export", uses=[SQL_VAR], connection_references=["contoso_SharedSql"])
    kept = dev.add_flow("Payroll push", uses=[SQL_VAR], connection_references=["contoso_PrivateSql"])
    await deliver(scenario.rotate(SQL_SECRET, canary("sql-")))
    assert dev.flow_history(cycled) == ["off", "on"] and dev.flow_is_on(cycled)
    assert dev.flow_history(kept) == [] and dev.flow_is_on(kept)
    [dev_result] = [
        r
        for s in last_report(logs)["secrets"]
        for r in s["results"]
        if r["environment"] == "dev" and r["env_var"] == SQL_VAR
    ]
    flows = {f["name"]: (f["outcome"], f["reason"]) for f in dev_result["flows"]}
    assert flows["Invoice export"] == ("refreshed", "")
    outcome, reason = flows["Payroll push"]
    assert outcome == "needs_action"
    assert "contoso_PrivateSql" in reason and "not shared with Lockstep" in reason and "left ON" in reason


async def test_near_expiry_card_names_the_connections_references_and_flows_that_will_break(
    scenario: Scenario, emulator: Emulator, connections: Connections
) -> None:
    dev = scenario.environments["dev"]
    dev.add_connection_reference("contoso_FlowsDv", CONNECTOR, connection_id=connections.ids["dev"])
    dev.add_flow("Invoice approval", uses=[], connection_references=["contoso_FlowsDv"])
    dev.add_flow("Unrelated", uses=[SQL_VAR])
    emulator.reset_requests()
    await deliver(scenario.vault.secret_event(SECRET, event_type="Microsoft.KeyVault.SecretNearExpiry"))
    assert connections.puts(emulator) == []
    [post] = emulator.teams_posts
    card = json.dumps(post, ensure_ascii=False)
    assert "Connections that will break" in card
    assert "dev/Flows SPN dev (Connected)" in card and "prod/Flows SPN prod (Connected)" in card
    assert "references: contoso\\\\_FlowsDv" in card and "flows: Invoice approval" in card
    assert "Unrelated" not in card
