"""The Functions surface: indexing, and the outcome mapping of each trigger without I/O."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

import function_app
from sync.errors import ConfigurationError, InvalidEventError
from sync.runtime import close_runtime
from tests.functions import FUNCTIONS
from tests.unit.conftest import mapping_document

TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.KeyVault/vaults/{vault}"
)


def event(
    vault: str = "contoso-lockstep", secret: str = "sql-conn-password", **data: Any
) -> func.EventGridEvent:
    payload = {
        "Id": f"https://{vault}.vault.azure.net/secrets/{secret}/0123456789abcdef0123456789abcdef",
        "VaultName": vault,
        "ObjectType": "Secret",
        "ObjectName": secret,
        "Version": "0123456789abcdef0123456789abcdef",
        "NBF": None,
        "EXP": None,
        **data,
    }
    return func.EventGridEvent(
        id="8b5fe3ab-0000-4000-8000-000000000000",
        data=payload,
        topic=TOPIC.format(vault=vault),
        subject=secret,
        event_type="Microsoft.KeyVault.SecretNewVersionCreated",
        event_time=None,
        data_version="1",
    )


@pytest.fixture(autouse=True)
async def settings(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.setenv("KEY_VAULT_URI", "https://contoso-lockstep.vault.azure.net/")
    monkeypatch.setenv("LOCKSTEP_MAPPING", json.dumps(mapping_document()))
    monkeypatch.delenv("LOCKSTEP_MAPPING_FILE", raising=False)
    monkeypatch.delenv("TEAMS_WEBHOOK_URL", raising=False)
    yield
    await close_runtime()


def test_indexing_finds_both_triggers() -> None:
    assert set(FUNCTIONS) == {"on_secret_event", "reconcile_nightly"}
    event_binding = json.loads(FUNCTIONS["on_secret_event"].get_function_json())["bindings"]
    assert event_binding == [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}]
    timer_binding = json.loads(FUNCTIONS["reconcile_nightly"].get_function_json())["bindings"][0]
    assert timer_binding["type"] == "timerTrigger"
    assert timer_binding["schedule"] == "%RECONCILE_SCHEDULE%"
    assert timer_binding["useMonitor"] is True


def test_import_reads_no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.delenv("KEY_VAULT_URI")
    monkeypatch.delenv("LOCKSTEP_MAPPING")
    importlib.reload(function_app)  # must not raise without any setting


async def test_event_from_another_vault_is_acknowledged() -> None:
    handler = FUNCTIONS["on_secret_event"].get_user_function()
    assert await handler(event(vault="someone-elses-vault")) is None


async def test_unmapped_secret_is_acknowledged() -> None:
    handler = FUNCTIONS["on_secret_event"].get_user_function()
    assert await handler(event(secret="not-in-the-mapping")) is None


async def test_other_key_vault_event_types_are_acknowledged() -> None:
    handler = FUNCTIONS["on_secret_event"].get_user_function()
    key_event = event()
    key_event = func.EventGridEvent(
        id=key_event.id,
        data=key_event.get_json(),
        topic=key_event.topic,
        subject=key_event.subject,
        event_type="Microsoft.KeyVault.KeyNewVersionCreated",
        event_time=None,
        data_version="1",
    )
    assert await handler(key_event) is None


async def test_malformed_event_raises_naming_the_field() -> None:
    handler = FUNCTIONS["on_secret_event"].get_user_function()
    with pytest.raises(InvalidEventError, match=r"data\.ObjectType"):
        await handler(event(ObjectType="Key"))


async def test_invalid_configuration_raises_every_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKSTEP_MAPPING", "{}")
    handler = FUNCTIONS["on_secret_event"].get_user_function()
    for _ in range(2):
        with pytest.raises(ConfigurationError, match=r"LOCKSTEP_MAPPING.environments: Field required"):
            await handler(event())
    with pytest.raises(ConfigurationError):
        await FUNCTIONS["reconcile_nightly"].get_user_function()(TimerRequest(past_due=False))
