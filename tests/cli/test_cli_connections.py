"""Connection targets in the CLI: `--json` targets carry `connection: {id, display_name}` where
variable targets carry `env_var`; tables name a connection by its display name, printed plain."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from demo.scenario import SQL_VAR, Scenario, canary
from emulator import Emulator
from tests.cli.conftest import Cli

SECRET = "flows-spn-secret"
CONNECTOR = "shared_commondataserviceforapps"
HOSTILE = "[link=https://evil.example]Prod SPN[/link]\x1b[2J"


@dataclass
class Mapped:
    cli: Cli
    ids: dict[str, str]
    secret: str
    app_id: str


@pytest.fixture
async def mapped(scenario: Scenario, emulator: Emulator) -> Mapped:
    secret = canary("cli-spn-")
    app = emulator.add_app_registration(secret=secret)
    scenario.vault.set_secret(SECRET, secret)
    await asyncio.sleep(1.1)  # Key Vault keeps whole seconds: the connections change after the version
    names = {"dev": "Flows SPN dev", "test": "Flows SPN test", "prod": HOSTILE}
    ids = {
        name: env.add_connection(
            CONNECTOR,
            "ServicePrincipalOauth",
            client_id=app.client_id,
            display_name=names[name],
            shared_with_lockstep="CanEdit",
        )
        for name, env in scenario.environments.items()
    }
    scenario.environments["dev"].set_connection_status(ids["dev"], "Error")
    scenario.mapping["secrets"].append(
        {
            "secret": SECRET,
            "connection": {"connector": CONNECTOR, "client_id": app.client_id, "tenant_id": app.tenant_id},
        }
    )
    return Mapped(Cli(scenario.app_settings()), ids, secret, app.client_id)


def connection_rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["environment"]: t for t in document["targets"] if t["secret"] == SECRET}


async def test_plan_status_and_sync_show_connection_targets(mapped: Mapped, scenario: Scenario) -> None:
    plan = await asyncio.to_thread(mapped.cli, "plan", "--json")
    assert plan.code == 1, plan.text
    rows = connection_rows(plan.document)
    assert {env: row["state"] for env, row in rows.items()} == {
        "dev": "differs",
        "test": "in_sync",
        "prod": "in_sync",
    }
    assert rows["dev"]["connection"] == {"id": mapped.ids["dev"], "display_name": "Flows SPN dev"}
    assert rows["prod"]["connection"] == {"id": mapped.ids["prod"], "display_name": HOSTILE}
    assert all("env_var" not in row for row in rows.values())
    variables = [t for t in plan.document["targets"] if t["secret"] != SECRET]
    assert variables and all(t["env_var"] == SQL_VAR or "connection" not in t for t in variables)

    human = await asyncio.to_thread(mapped.cli, "plan")
    assert "env_var / connection" in human.stdout and "Flows SPN dev" in human.stdout
    assert "[link=https://evil.example]Prod SPN[/link]" in human.stdout  # literally, no markup
    assert "\x1b" not in human.stdout

    status = await asyncio.to_thread(mapped.cli, "status", "--json")
    assert connection_rows(status.document)["test"]["connection"]["display_name"] == "Flows SPN test"

    synced = await asyncio.to_thread(mapped.cli, "sync", SECRET, "--json")
    assert synced.code == 0, synced.text
    outcomes = {
        env: (row["state"], row["connection"]["id"]) for env, row in connection_rows(synced.document).items()
    }
    assert outcomes == {
        "dev": ("updated", mapped.ids["dev"]),
        "test": ("unchanged", mapped.ids["test"]),
        "prod": ("unchanged", mapped.ids["prod"]),
    }
    assert scenario.environments["dev"].connection(mapped.ids["dev"])["status"] == "Connected"
    reconciled = await asyncio.to_thread(mapped.cli, "reconcile")
    assert reconciled.code == 0 and "Flows SPN dev" in reconciled.stdout and "unchanged" in reconciled.stdout
    assert mapped.secret not in "".join(mapped.cli.outputs)


async def test_doctor_checks_each_connection_without_changing_it(
    mapped: Mapped, scenario: Scenario, emulator: Emulator
) -> None:
    scenario.environments["test"].share_connection(mapped.ids["test"], "CanView")  # may read, not edit
    emulator.reset_requests()
    result = await asyncio.to_thread(mapped.cli, "doctor", "--json")
    assert result.code == 2, result.text
    assert [r.method for r in emulator.requests if r.service == "connectivity"] and all(
        r.method == "GET" for r in emulator.requests if r.service == "connectivity"
    )
    checks = {(c["scope"], c["check"]): c for c in result.document["checks"]}
    for env in ("dev", "test", "prod"):
        found = checks[(f"environment {env}", f"connections of {CONNECTOR} for client id {mapped.app_id}")]
        assert found["ok"] and found["detail"] == "1 found"
    dev = checks[("environment dev", "connection Flows SPN dev")]
    assert not dev["ok"] and dev["detail"] == "reports Error (Unauthenticated)"
    assert "writes the current secret version" in dev["fix"]
    test = checks[("environment test", "connection Flows SPN test")]
    assert not test["ok"] and "not editable by Lockstep (it holds canview)" in test["detail"]
    assert "Can edit" in test["fix"]
    prod = checks[("environment prod", f"connection {HOSTILE}")]
    assert prod["ok"] and prod["detail"] == "readable, editable, Connected"
    rows = connection_rows(result.document)
    assert {env: row["state"] for env, row in rows.items()} == {
        "dev": "error",
        "test": "needs_action",
        "prod": "ok",
    }
    assert rows["test"]["connection"] == {"id": mapped.ids["test"], "display_name": "Flows SPN test"}

    human = await asyncio.to_thread(mapped.cli, "doctor")
    assert "to fix (environment test, connection Flows SPN test): share the connection" in human.stdout


async def test_doctor_names_a_pinned_connection_that_does_not_exist_and_an_unregistered_identity(
    mapped: Mapped, scenario: Scenario, emulator: Emulator
) -> None:
    row = scenario.mapping["secrets"][-1]
    row["connection"]["ids"] = ["0123456789abcdef0123456789abcdef"]
    row["environments"] = ["dev"]
    gone = await asyncio.to_thread(mapped.cli, "doctor", "--json", settings=scenario.app_settings())
    [check] = [c for c in gone.document["checks"] if c["check"].startswith("connection 0123")]
    assert "does not exist" in check["detail"] and "check the connection id in the mapping" in check["fix"]

    del row["connection"]["ids"]
    emulator.register_management_app(registered=False)
    refused = await asyncio.to_thread(mapped.cli, "doctor", "--json", settings=scenario.app_settings())
    api = next(c for c in refused.document["checks"] if c["check"] == "connections API")
    assert not api["ok"] and "management application" in api["fix"]


async def test_inventory_lists_connections_with_their_references_and_flows(
    mapped: Mapped, scenario: Scenario
) -> None:
    dev = scenario.environments["dev"]
    dev.add_connection_reference("contoso_FlowsDv", CONNECTOR, connection_id=mapped.ids["dev"])
    owner = dev.add_user("Maker One")
    dev.add_flow("Invoice approval", uses=[], owner=owner, connection_references=["contoso_FlowsDv"])
    result = await asyncio.to_thread(mapped.cli, "inventory", "--json")
    assert result.code == 0, result.text
    rows = connection_rows(result.document)
    assert rows["dev"]["connection"] == {"id": mapped.ids["dev"], "display_name": "Flows SPN dev"}
    assert (rows["dev"]["status"], rows["dev"]["error_code"]) == ("Error", "Unauthenticated")
    assert rows["dev"]["connection_references"] == ["contoso_FlowsDv"]
    assert [(f["name"], f["state"], f["owner"]) for f in rows["dev"]["flows"]] == [
        ("Invoice approval", "on", "Maker One")
    ]
    assert (rows["test"]["state"], rows["test"]["status"], rows["test"]["flows"]) == (
        "unused",
        "Connected",
        [],
    )
    human = await asyncio.to_thread(mapped.cli, "inventory", "--env", "dev")
    assert "dev: connections" in human.stdout and "Invoice approval (on, Maker One)" in human.stdout
