"""Telemetry reaches Application Insights: a real function invocation, exported by the Azure
Monitor distro over HTTPS to the emulator's ingestion endpoint, authenticated with an Entra token
for the monitor audience from the managed identity, and without the canary."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.scenario import CLIENT_ID, SQL_SECRET, Scenario, canary, seed
from emulator import Emulator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def run_probe(settings: dict[str, str], event: dict[str, object]) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCKSTEP_", "APPLICATIONINSIGHTS_", "OTEL_"))
    }
    env.update(settings)
    return subprocess.run(  # noqa: S603 - our interpreter, our probe
        [sys.executable, "-m", "tests.telemetry.export_probe", json.dumps(event)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_rotation_is_exported_with_entra_auth_and_no_value(emulator: Emulator) -> None:
    scenario: Scenario = seed(emulator, sql_value=canary("old-"), graph_value=canary("graph-"))
    new = canary("exported-")
    event = scenario.rotate(SQL_SECRET, new)
    settings = {
        **scenario.app_settings(),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": emulator.monitor_connection_string(),
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"Authorization=AAD;ClientId={CLIENT_ID}",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    }
    done = run_probe(settings, event)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "configured: Azure Monitor, 100 % sampling" in done.stdout

    items = emulator.telemetry_items()
    kinds = {item.get("name", "").rsplit(".", 1)[-1] for item in items}
    assert {"RemoteDependency", "Message"} <= kinds or {"Request", "Message"} <= kinds, kinds
    names = {item["data"]["baseData"].get("name") for item in items if "baseData" in item.get("data", {})}
    assert {"lockstep.event", "lockstep.run", "lockstep.stage", "lockstep.target"} <= names, names
    # The ingestion endpoint accepted only bearer tokens for the monitor audience.
    accepted = [r for r in emulator.requests if r.service == "monitor" and r.status == 200]
    assert accepted and all(r.status in (200,) for r in emulator.requests if r.service == "monitor")
    everything = json.dumps(items)
    assert new not in everything and "LOCKSTEP-CANARY" not in everything
    webhook_sig = emulator.teams_webhook_url().split("sig=", 1)[1]
    assert "Bearer" not in everything and webhook_sig not in everything  # tokens and the webhook's credential
    assert scenario.values("contoso_SqlConnectionPassword")["prod"] == new  # the run really synced


def kql_names(readme: str) -> tuple[set[str], set[str]]:
    """(customDimensions keys, telemetry item names) the README's KQL relies on."""
    section = readme.split("## Operating Lockstep", 1)[1].split("\n## ", 1)[0]
    blocks = "\n".join(re.findall(r"```kql\n(.*?)```", section, re.S))
    return set(re.findall(r'customDimensions\["([^"]+)"\]', blocks)), set(
        re.findall(r'name == "([^"]+)"', blocks)
    )


def test_the_readme_queries_use_names_the_exporter_sends(emulator: Emulator) -> None:
    scenario = seed(emulator, sql_value=canary("old-"), graph_value=canary("graph-"))
    emulator.inject_fault("dataverse", 429, retry_after=0, path_contains="contoso-dev.crm", method="GET")
    event = scenario.rotate(SQL_SECRET, canary("kql-"))
    done = run_probe(
        {
            **scenario.app_settings(),
            "APPLICATIONINSIGHTS_CONNECTION_STRING": emulator.monitor_connection_string(),
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"Authorization=AAD;ClientId={CLIENT_ID}",
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        },
        event,
    )
    assert done.returncode == 0, done.stderr
    dimensions: set[str] = set()
    names: set[str] = set()
    for item in emulator.telemetry_items():
        base = item["data"]["baseData"]
        dimensions |= set(base.get("properties") or {})
        names.add(base.get("name", ""))
        names |= {metric["name"] for metric in base.get("metrics", [])}
    keys, item_names = kql_names((REPO / "README.md").read_text())
    assert keys and item_names
    assert keys <= dimensions, keys - dimensions
    assert item_names <= names, item_names - names
