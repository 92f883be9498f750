"""Key Vault events as Event Grid delivers them, including the documented quirks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sync.errors import InvalidEventError
from sync.events import SecretEventType, parse_secret_event

TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.KeyVault/vaults/contoso-lockstep"
)

# The shape of Microsoft's documented sample (camelCase keys, a stray space in a key and a
# value, NBF/EXP as numeric strings).
DOCUMENTED = {
    "id": "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
    "topic": TOPIC,
    "subject": "newsecret",
    "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
    "data": {
        "Id": "https://contoso-lockstep.vault.azure.net/secrets/newsecret/ee059b2bb5bc48398a53b168c6cdcb10",
        "vaultName": "contoso-lockstep",
        "objectType": "Secret",
        "objectName ": "newsecret",
        "version": " ee059b2bb5bc48398a53b168c6cdcb10",
        "nbf": "1559081980",
        "exp": "1559082102",
    },
}


def parse(event: dict[str, Any]) -> Any:
    return parse_secret_event(
        event_id=event["id"],
        event_type=event["eventType"],
        subject=event.get("subject"),
        topic=event.get("topic"),
        data=event.get("data"),
    )


def test_documented_sample() -> None:
    event = parse(DOCUMENTED)
    assert event.event_type is SecretEventType.NEW_VERSION
    assert event.secret_name == "newsecret"
    assert event.vault_name == "contoso-lockstep"
    assert event.version == "ee059b2bb5bc48398a53b168c6cdcb10"
    assert event.not_before == datetime(2019, 5, 28, 22, 19, 40, tzinfo=UTC)
    assert event.expires == datetime.fromtimestamp(1559082102, tz=UTC)


def test_pascal_case_and_int_and_null_times() -> None:
    event = copy.deepcopy(DOCUMENTED)
    event["data"] = {
        "Id": event["data"]["Id"],
        "VaultName": "contoso-lockstep",
        "ObjectType": "Secret",
        "ObjectName": "newsecret",
        "Version": "ee059b2bb5bc48398a53b168c6cdcb10",
        "NBF": 1559081980,
        "EXP": None,
    }
    parsed = parse(event)
    assert parsed.expires is None
    assert parsed.not_before is not None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(eventType="Microsoft.Storage.BlobCreated"), "eventType"),
        (lambda e: e.update(data="not json"), "data"),
        (lambda e: e.update(data=[1, 2]), "data"),
        (lambda e: e["data"].pop("objectName "), "data.ObjectName"),
        (lambda e: e["data"].update({"objectName ": 42}), "data.ObjectName"),
        (lambda e: e["data"].update({"objectName ": "bad/name"}), "data.ObjectName"),
        (lambda e: e["data"].update(objectType="Key"), "data.ObjectType"),
        (lambda e: e["data"].pop("vaultName"), "data.VaultName"),
        (lambda e: e["data"].pop("version"), "data.Version"),
        (lambda e: e["data"].update(exp="tomorrow"), "data.EXP"),
        (lambda e: e["data"].update(nbf=True), "data.NBF"),
        (lambda e: e.update(subject="othersecret"), "subject"),
        (
            lambda e: e.update(
                topic="/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/other"
            ),
            "topic",
        ),
        (lambda e: e.update(topic="garbage"), "topic"),
        (
            lambda e: e["data"].update(Id="https://contoso-lockstep.vault.azure.net/secrets/other/1"),
            "data.Id",
        ),
        (lambda e: e["data"].update(Id="https://elsewhere.vault.azure.net/secrets/newsecret/1"), "data.Id"),
    ],
)
def test_malformed_events_name_the_field(mutate: Any, field: str) -> None:
    event = copy.deepcopy(DOCUMENTED)
    mutate(event)
    with pytest.raises(InvalidEventError) as caught:
        parse(event)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"invalid Key Vault event: {field}:")


def test_near_expiry_and_expired_are_secret_events() -> None:
    for event_type in ("Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired"):
        event = copy.deepcopy(DOCUMENTED)
        event["eventType"] = event_type
        assert parse(event).event_type.value == event_type


def test_sample_event_file_for_core_tools_parses() -> None:
    import json
    from pathlib import Path

    [sample] = json.loads((Path(__file__).resolve().parents[2] / "demo" / "event.sample.json").read_text())
    event = parse(sample)
    assert (event.vault_name, event.secret_name) == ("lockstep-demo", "sql-conn-password")


# Event fields are logged before they are validated: bounded and sanitised (security review).
async def _deliver(**envelope: Any) -> InvalidEventError:
    from sync.entrypoints import handle_event_grid_event

    fields = {
        "event_id": "id-1",
        "event_type": "Microsoft.Storage.BlobCreated",
        "subject": None,
        "topic": None,
    }
    fields.update(envelope)
    with pytest.raises(InvalidEventError) as caught:
        await handle_event_grid_event(**fields, data={})
    return caught.value


@pytest.mark.parametrize("event_type", ["Microsoft.KeyVault." + "x" * 1_000_000, "y" * 1_000_000])
async def test_a_huge_event_type_makes_neither_a_huge_exception_nor_a_huge_log(
    event_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    error = await _deliver(event_type=event_type)
    assert error.field == "eventType" and len(str(error)) < 500
    assert all(len(record.getMessage()) < 1000 for record in caplog.records)
    assert sum(len(record.getMessage()) for record in caplog.records) < 2000


@pytest.mark.parametrize(
    "envelope",
    [
        {"event_id": "id-1\r\n[cid] forged: reconcile finished, 0 failed"},
        {"event_type": "Microsoft.KeyVault.SecretNewVersionCreated\n[cid] forged"},
        {"event_type": "Other.Type\r\n[cid] forged"},
    ],
)
async def test_cr_lf_in_an_event_cannot_forge_a_log_line(
    envelope: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    error = await _deliver(**envelope)
    assert "\n" not in str(error) and "\r" not in str(error)
    for record in caplog.records:
        assert "\n" not in record.getMessage() and "\r" not in record.getMessage()


def test_loggable_bounds_and_escapes() -> None:
    from sync.events import MAX_LOGGED, loggable

    assert loggable("a\r\nb\x1b[2J") == "a\\r\\nb\\x1b[2J"
    shown = loggable("z" * 1_000_000)
    assert shown.startswith("z" * MAX_LOGGED) and len(shown) < MAX_LOGGED + 40
    assert loggable(None) == "NoneType"


def test_data_object_type_is_bounded_in_the_error() -> None:
    event = copy.deepcopy(DOCUMENTED)
    event["data"]["objectType"] = "Key\n" + "k" * 100_000
    with pytest.raises(InvalidEventError) as caught:
        parse(event)
    assert len(str(caught.value)) < 500 and "\n" not in str(caught.value)
