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
    return Mapped(Cli(scenario.app_settings()), ids, secret)


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
