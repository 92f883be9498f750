"""Copilot Studio agents and Key Vault-backed variables, end to end through the function app.

Two environments (dev, stage 1; prod, stage 2) over the emulator. One secret feeds a String
variable that agents read (`Env.contoso_ApiKey`) and, on a row of its own, a Secret-type
variable whose value row is a Key Vault reference. Everything goes through the real entry
points (the Event Grid function, the runtime's inspection) and the emulator's HTTPS listeners.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from demo.scenario import canary
from emulator import Emulator, Environment, KeyVault
from sync.cli.commands import inspect
from sync.runtime import close_runtime, get_runtime

from .conftest import SPANS, deliver, haystacks, last_report

SECRET = "api-key"
VAR = "contoso_ApiKey"
REF = "contoso_ApiRef"
STAGES = (("dev", 1), ("prod", 2))


@dataclass
class Site:
    emulator: Emulator
    vault: KeyVault
    envs: dict[str, Environment]
    old: str

    def rotate(self, value: str) -> dict[str, Any]:
        return self.vault.secret_event(SECRET, self.vault.set_secret(SECRET, value))


@pytest.fixture
async def site(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    vault = emulator.key_vault("lockstep-agents")
    old = canary("old-")
    vault.set_secret(SECRET, old)
    envs = {}
    for name, _ in STAGES:
        env = emulator.environment(name, org=f"agents-{name}")
        env.add_definition(VAR, value=old)
        envs[name] = env
    mapping = {
        "environments": [
            {"name": name, "id": envs[name].id, "url": envs[name].url, "stage": stage}
            for name, stage in STAGES
        ],
        "secrets": [{"secret": SECRET, "env_var": VAR}, {"secret": SECRET, "env_var": REF}],
    }
    for key, value in emulator.client_environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KEY_VAULT_URI", vault.url)
    monkeypatch.setenv("LOCKSTEP_MAPPING", json.dumps(mapping))
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", emulator.teams_webhook_url())
    monkeypatch.delenv("LOCKSTEP_MAPPING_FILE", raising=False)
    emulator.add_ca_to_aiohttp_default_context()
    await close_runtime()
    SPANS.clear()
    yield Site(emulator, vault, envs, old)
    await close_runtime()


def reference_everywhere(site: Site, *, secret: str = SECRET, vault: str | None = None) -> None:
    for env in site.envs.values():
        env.add_secret_reference(REF, vault or site.vault.name, secret)


def results(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (result["environment"], result["env_var"]): result
        for secret in report["secrets"]
        for result in secret["results"]
    }


def agents_of(result: dict[str, Any]) -> dict[str, str]:
    return {agent["name"]: agent["outcome"] for agent in result["agents"]}


def published_on(env: Environment, bot: str) -> datetime:
    moment = env.bot(bot)["published_on"]
    assert isinstance(moment, datetime)
    return moment


# Agents


async def test_rotation_republishes_the_agents_using_the_variable(
    site: Site, logs: pytest.LogCaptureFixture
) -> None:
    reference_everywhere(site)
    dev = site.envs["dev"]
    bot = dev.add_bot("Help Desk")
    dev.add_bot_component(bot, "Reset password", uses=[VAR])
    idle = dev.add_bot("Idle")
    dev.add_bot_component(idle, "Hello", uses=[])
    before = published_on(dev, bot)

    await deliver(site.rotate(canary("new-")))

    assert published_on(dev, bot) > before
    assert dev.publishes() == [bot]  # the agent that does not use the variable is not published
    dev_result = results(last_report(logs))[("dev", VAR)]
    assert dev_result["outcome"] == "updated"
    assert agents_of(dev_result) == {"Help Desk": "published"}


async def test_an_agent_with_unpublished_changes_needs_action_and_is_not_published(
    site: Site, logs: pytest.LogCaptureFixture, emulator: Emulator
) -> None:
    reference_everywhere(site)
    dev = site.envs["dev"]
    bot = dev.add_bot("Draft Desk")
    topic = dev.add_bot_component(bot, "Reset password", uses=[VAR])
    dev.edit_bot_component(topic)
    before = published_on(dev, bot)

    await deliver(site.rotate(canary("new-")))

    assert dev.publish_attempts() == [] and published_on(dev, bot) == before
    assert dev.bot(bot)["unpublished_changes"]
    result = results(last_report(logs))[("dev", VAR)]
    assert result["outcome"] == "updated"  # the variable itself is fine
    assert agents_of(result) == {"Draft Desk": "needs_action"}
    assert "unpublished changes" in result["agents"][0]["reason"]
    card = json.dumps(emulator.teams_posts[-1])
    assert "Draft Desk" in card


async def test_a_duplicate_event_publishes_nothing(site: Site) -> None:
    reference_everywhere(site)
    dev = site.envs["dev"]
    bot = dev.add_bot("Help Desk")
    dev.add_bot_component(bot, "Reset password", uses=[VAR])
    event = site.rotate(canary("new-"))
    await deliver(event)
    assert dev.publishes() == [bot]

    await deliver(event)

    assert dev.publishes() == [bot]


@pytest.mark.parametrize("shape", ["429", "400", "401"])
async def test_a_throttled_publish_is_retried_and_succeeds(
    site: Site, logs: pytest.LogCaptureFixture, shape: str
) -> None:
    reference_everywhere(site)
    dev = site.envs["dev"]
    bot = dev.add_bot("Help Desk")
    dev.add_bot_component(bot, "Reset password", uses=[VAR])
    dev.throttle_publishes(shape, times=1, retry_after=0.1)
    before = published_on(dev, bot)

    await deliver(site.rotate(canary("new-")))

    assert dev.publish_attempts() == [(bot, int(shape)), (bot, 204)]
    assert published_on(dev, bot) > before
    assert agents_of(results(last_report(logs))[("dev", VAR)]) == {"Help Desk": "published"}


async def test_an_agent_another_uses_is_published_first(site: Site) -> None:
    reference_everywhere(site)
    dev = site.envs["dev"]
    # "Alpha" sorts first by name but calls "Zulu", so Zulu must be published before it.
    zulu = dev.add_bot("Zulu", schema_name="cr_zulu")
    dev.add_bot_component(zulu, "Lookup", uses=[VAR])
    alpha = dev.add_bot("Alpha", schema_name="cr_alpha")
    dev.add_bot_component(
        alpha,
        "Hand over",
        data=f"kind: AdaptiveDialog\nactions:\n  - kind: InvokeConnectedAgent\n    botSchemaName: cr_zulu\n"
        f"  - kind: SetVariable\n    value: =Env.{VAR}\n",
    )

    await deliver(site.rotate(canary("new-")))

    assert dev.publishes() == [zulu, alpha]


# Key Vault-backed (Secret-type) variables


async def reference_state(site: Site) -> dict[tuple[str, str], tuple[str, str]]:
    """plan / status: the runtime's inspection, as the CLI runs it."""
    inspection = await inspect(await get_runtime(), 30.0, None, None)
    return {(t.environment, t.env_var): (t.state.value, t.reason) for t in inspection.targets}


async def test_a_reference_to_the_right_secret_is_verified_and_never_written(
    site: Site, logs: pytest.LogCaptureFixture, emulator: Emulator
) -> None:
    reference_everywhere(site)
    dev = site.envs["dev"]
    bot = dev.add_bot("Vault Desk")
    dev.add_bot_component(bot, "Lookup", uses=[REF])  # reads the Secret-type variable at run time
    stored = {name: env.value_etag(REF) for name, env in site.envs.items()}

    await deliver(site.rotate(canary("new-")))

    for name in ("dev", "prod"):
        result = results(last_report(logs))[(name, REF)]
        assert result["outcome"] == "unchanged"
        assert "Power Platform resolves it to the current version" in result["reason"]
    assert {name: env.value_etag(REF) for name, env in site.envs.items()} == stored  # nothing written
    assert dev.publish_attempts() == []  # Secret-type variables are read at run time
    resolutions = [r for r in emulator.requests if r.path.endswith("RetrieveEnvironmentVariableSecretValue")]
    assert len(resolutions) == 2  # once per environment
    states = await reference_state(site)
    assert states[("dev", REF)][0] == "reference" and states[("prod", REF)][0] == "reference"
    assert "resolves it to the current version" in states[("dev", REF)][1]


async def test_a_reference_to_another_secret_fails_naming_what_it_points_at(
    site: Site, logs: pytest.LogCaptureFixture
) -> None:
    reference_everywhere(site, secret="other-key")

    await deliver(site.rotate(canary("new-")))

    result = results(last_report(logs))[("dev", REF)]
    assert result["outcome"] == "failed"
    assert f"points at secret 'other-key' in vault '{site.vault.name}'" in result["reason"]
    assert results(last_report(logs))[("dev", VAR)]["outcome"] == "updated"  # its own row is unharmed
    state, reason = (await reference_state(site))[("prod", REF)]
    assert state == "refused" and "other-key" in reason


async def test_a_refused_resolution_is_not_verifiable_from_outside_a_flow_not_a_failure(
    site: Site, logs: pytest.LogCaptureFixture
) -> None:
    reference_everywhere(site)
    for env in site.envs.values():
        env.refuse_secret_retrieval()

    await deliver(site.rotate(canary("new-")))

    for name in ("dev", "prod"):
        result = results(last_report(logs))[(name, REF)]
        assert result["outcome"] == "unchanged"
        assert "resolution not verifiable from outside a flow" in result["reason"]
    state, reason = (await reference_state(site))[("dev", REF)]
    assert state == "reference" and "not verifiable from outside a flow" in reason


async def test_an_unreadable_vault_is_a_finding_saying_what_to_grant(
    site: Site, logs: pytest.LogCaptureFixture
) -> None:
    reference_everywhere(site)
    site.envs["prod"].set_vault_unreadable()

    await deliver(site.rotate(canary("new-")))

    result = results(last_report(logs))[("prod", REF)]
    assert result["outcome"] == "failed"
    assert "Power Platform cannot read the secret from the vault" in result["reason"]
    assert "Key Vault Secrets User" in result["reason"]
    assert results(last_report(logs))[("dev", REF)]["outcome"] == "unchanged"


async def test_the_canary_never_leaves_through_agents_or_references(
    site: Site, logs: pytest.LogCaptureFixture, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    reference_everywhere(site)
    dev, prod = site.envs["dev"], site.envs["prod"]
    bot = dev.add_bot("Help Desk")
    dev.add_bot_component(bot, "Reset password", uses=[VAR])
    draft = prod.add_bot("Draft Desk")
    prod.edit_bot_component(prod.add_bot_component(draft, "Topic", uses=[VAR]))
    dev.throttle_publishes("400", times=1, retry_after=0.1)
    prod.set_vault_unreadable()
    new = canary("agents-")

    await deliver(site.rotate(new))  # published, needs_action, verified, unreadable vault
    dev.refuse_secret_retrieval()
    await deliver(site.vault.secret_event(SECRET))  # duplicate; not verifiable from outside a flow
    await reference_state(site)

    assert dev.publishes() == [bot] and dev.value_of(VAR) == new  # the paths really ran
    places = haystacks(logs, emulator, "".join(capsys.readouterr()))
    for value in (new, site.old):
        for where, text in places.items():
            assert value not in text, f"secret value leaked into {where}"


async def test_the_near_expiry_card_names_the_agents_that_will_break(
    site: Site, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    reference_everywhere(site)
    prod = site.envs["prod"]
    prod.add_bot_component(prod.add_bot("Help Desk"), "Reset password", uses=[VAR])
    prod.add_bot_component(prod.add_bot("Vault Desk"), "Lookup", uses=[REF])

    await deliver(site.vault.secret_event(SECRET, event_type="Microsoft.KeyVault.SecretNearExpiry"))

    card = json.dumps(emulator.teams_posts[-1])
    assert "Agents that will break" in card and "Help Desk" in card and "Vault Desk" in card
    assert prod.publish_attempts() == []  # a heads-up writes and publishes nothing
    assert "agents using it: prod/contoso_ApiKey: Help Desk" in logs.text
