"""Staged rollout with rollback, and flow refresh, end to end against the emulator.

Four environments: dev (stage 1), test and uat (stage 2), prod (stage 3). One secret feeds one
variable everywhere; flows in each environment use it (or not).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from demo.scenario import canary
from emulator import Emulator, Environment, KeyVault
from sync.runtime import close_runtime

from .conftest import SPANS, deliver, last_report, outcomes, run_timer

SECRET = "api-key"
VAR = "contoso_ApiKey"
OTHER_VAR = "contoso_Other"
STAGES = (("dev", 1), ("test", 2), ("uat", 2), ("prod", 3))


@dataclass
class Fleet:
    emulator: Emulator
    vault: KeyVault
    envs: dict[str, Environment]
    old: str

    def values(self) -> dict[str, str | None]:
        return {name: env.value_of(VAR) for name, env in self.envs.items()}

    def rotate(self, value: str) -> dict[str, Any]:
        return self.vault.secret_event(SECRET, self.vault.set_secret(SECRET, value))


async def configure(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, *, rollout: str = "staged", as_owner: bool = False
) -> None:
    mapping = {
        "environments": [
            {"name": name, "id": fleet.envs[name].id, "url": fleet.envs[name].url, "stage": stage}
            for name, stage in STAGES
        ],
        "secrets": [{"secret": SECRET, "env_var": VAR, "rollout": rollout}],
    }
    for key, value in fleet.emulator.client_environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KEY_VAULT_URI", fleet.vault.url)
    monkeypatch.setenv("LOCKSTEP_MAPPING", json.dumps(mapping))
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", fleet.emulator.teams_webhook_url())
    monkeypatch.setenv("FLOW_ACTIVATION_AS_OWNER", "true" if as_owner else "false")
    monkeypatch.delenv("LOCKSTEP_MAPPING_FILE", raising=False)
    await close_runtime()  # settings changed: build the runtime again


@pytest.fixture
async def fleet(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    vault = emulator.key_vault("lockstep-rollout")
    old = canary("old-")
    vault.set_secret(SECRET, old)
    envs = {}
    for name, _ in STAGES:
        env = emulator.environment(name, org=f"rollout-{name}")
        env.add_definition(VAR, value=old)
        env.add_definition(OTHER_VAR, value="unrelated")
        envs[name] = env
    built = Fleet(emulator, vault, envs, old)
    emulator.add_ca_to_aiohttp_default_context()
    await configure(built, monkeypatch)
    SPANS.clear()
    yield built
    await close_runtime()


def card_text(emulator: Emulator) -> str:
    return json.dumps(emulator.teams_posts[-1])


async def test_stage_2_refusing_writes_is_rolled_back_and_stage_3_held_back(
    fleet: Fleet, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    fleet.envs["uat"].refuse_writes()
    new = canary("new-")
    await deliver(fleet.rotate(new))  # a permanent failure: acknowledged, not raised

    assert fleet.values() == {"dev": new, "test": fleet.old, "uat": fleet.old, "prod": fleet.old}
    found = outcomes(last_report(logs))
    assert found == {
        ("dev", VAR): "updated",
        ("test", VAR): "rolled_back",
        ("uat", VAR): "failed",
        ("prod", VAR): "held_back",
    }
    card = card_text(emulator)
    assert "rolled_back" in card.lower().replace(" ", "_") or "rolled back" in card.lower()
    assert "held" in card.lower() and "uat" in card
    assert new not in card and fleet.old not in card


async def test_rollout_all_writes_everywhere_whatever_fails(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    await configure(fleet, monkeypatch, rollout="all")
    fleet.envs["uat"].refuse_writes()
    new = canary("all-")
    await deliver(fleet.rotate(new))
    assert fleet.values() == {"dev": new, "test": new, "uat": fleet.old, "prod": new}
    found = outcomes(last_report(logs))
    assert found[("uat", VAR)] == "failed" and found[("prod", VAR)] == "updated"


async def test_read_back_mismatch_in_stage_2_is_a_gate_failure(
    fleet: Fleet, logs: pytest.LogCaptureFixture
) -> None:
    fleet.envs["test"].revert_writes()
    new = canary("mismatch-")
    await deliver(fleet.rotate(new))
    found = outcomes(last_report(logs))
    assert found[("dev", VAR)] == "updated"
    assert found[("test", VAR)] == "failed"
    assert found[("uat", VAR)] == "rolled_back"
    assert found[("prod", VAR)] == "held_back"
    assert fleet.values() == {"dev": new, "test": fleet.old, "uat": fleet.old, "prod": fleet.old}


async def test_reverted_write_is_caught_from_the_writes_own_answer(
    fleet: Fleet, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    """The PATCH's answer (`Prefer: return=representation`) is the row as stored: the reverted
    value in it fails verify and rolls the stage back, with no read-back GET at all."""
    fleet.envs["test"].revert_writes()
    emulator.reset_requests()
    await deliver(fleet.rotate(canary("answer-")))
    found = outcomes(last_report(logs))
    assert (found[("test", VAR)], found[("uat", VAR)]) == ("failed", "rolled_back")
    host = urlsplit(fleet.envs["test"].url).hostname
    seen = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in emulator.requests if r.host == host]
    assert [s for m, _, s in seen if m == "PATCH"] == [200]  # answered with the (reverted) row
    assert sum(1 for m, path, _ in seen if m == "GET" and path == "environmentvariabledefinitions") == 1


async def test_active_flows_are_cycled_and_confirmed_others_untouched(
    fleet: Fleet, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    dev = fleet.envs["dev"]
    active = dev.add_flow("Nightly invoice export", uses=[VAR])
    disabled = dev.add_flow("Retired sync", uses=[VAR], on=False)
    unrelated = dev.add_flow("Other thing", uses=[OTHER_VAR])
    prod_flow = fleet.envs["prod"].add_flow("Prod export", uses=[VAR])

    await deliver(fleet.rotate(canary("flows-")))

    assert dev.flow_history(active) == ["off", "on"] and dev.flow_is_on(active)
    assert dev.flow_history(disabled) == [] and not dev.flow_is_on(disabled)
    assert dev.flow_history(unrelated) == []
    assert fleet.envs["prod"].flow_history(prod_flow) == ["off", "on"]
    report = last_report(logs)
    dev_result = next(r for s in report["secrets"] for r in s["results"] if r["environment"] == "dev")
    assert {(f["name"], f["outcome"]) for f in dev_result["flows"]} == {
        ("Nightly invoice export", "refreshed"),
        ("Retired sync", "left_off"),
    }
    assert "flow" in card_text(emulator).lower()


async def test_duplicate_event_refreshes_no_flow(fleet: Fleet) -> None:
    dev = fleet.envs["dev"]
    flow = dev.add_flow("Nightly invoice export", uses=[VAR])
    event = fleet.rotate(canary("dup-"))
    await deliver(event)
    await deliver(event)
    await run_timer()
    assert dev.flow_history(flow) == ["off", "on"]


async def test_refused_activation_is_reported_with_the_flow_name(
    fleet: Fleet, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    dev = fleet.envs["dev"]
    flow = dev.add_flow("Payroll push", uses=[VAR], connections_shared=False)
    await deliver(fleet.rotate(canary("refused-")))
    assert dev.flow_history(flow) == ["off"] and not dev.flow_is_on(flow)
    report = last_report(logs)
    [dev_flow] = next(
        r["flows"] for s in report["secrets"] for r in s["results"] if r["environment"] == "dev"
    )
    assert dev_flow["outcome"] == "needs_action"
    assert "FLOW_ACTIVATION_AS_OWNER" in dev_flow["reason"] and "OFF" in dev_flow["reason"]
    # The value itself is not rolled back: a flow is not a reason to undo a rotation.
    assert outcomes(report)[("prod", VAR)] == "updated"
    card = card_text(emulator)
    assert "Payroll push" in card


async def test_impersonating_the_owner_turns_the_flow_back_on(
    fleet: Fleet, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    await configure(fleet, monkeypatch, as_owner=True)
    dev = fleet.envs["dev"]
    owner = dev.add_user("Maker One")
    flow = dev.add_flow("Payroll push", uses=[VAR], owner=owner, connections_shared=False)
    emulator.reset_requests()
    await deliver(fleet.rotate(canary("owner-")))
    assert dev.flow_history(flow) == ["off", "on"] and dev.flow_is_on(flow)
    assert any("systemusers(" in r.path for r in emulator.requests)


async def test_no_value_in_any_output_across_rollback_and_flows(
    fleet: Fleet, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    fleet.envs["dev"].add_flow("Nightly invoice export", uses=[VAR])
    fleet.envs["uat"].refuse_writes()
    new = canary("radioactive-")
    await deliver(fleet.rotate(new))
    everything = "\n".join(record.getMessage() for record in logs.records)
    everything += json.dumps(emulator.teams_posts)
    everything += json.dumps([dict(span.attributes or {}) for span in SPANS.get_finished_spans()])
    assert new not in everything and fleet.old not in everything
    assert new in json.dumps(fleet.values())  # the search works: dev holds it
