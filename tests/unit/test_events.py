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
