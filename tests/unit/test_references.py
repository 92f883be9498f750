"""Secret-type variables: reference parsing and matching, digests, the resolution action."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from azure.core.credentials import AccessToken
from pydantic import SecretStr

from sync.adapters.dataverse import DataverseClient
from sync.adapters.http import RetryPolicy
from sync.adapters.references import NotVerifiable, Resolved, Unchecked, VaultUnreadable, digest, resolve
from sync.mapping import Environment
from sync.models import Definition, DefinitionType, SecretSnapshot, Target, ValueRow
from sync.targets.base import InSync, Refuse, TargetState
from sync.targets.references import ReferenceKind, check_reference, parse_reference

CANARY = "CANARY-ref-7f3e-do-not-leak"
ORG = "https://contoso-dev.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2"
DEV = Environment(name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url=ORG, stage=1)
TARGET = Target(environment=DEV, env_var="contoso_ApiKey", secret="api-key")
GOOD = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-lockstep"
    "/providers/Microsoft.KeyVault/vaults/contoso-lockstep/secrets/api-key"
)
NOW = datetime(2024, 5, 1, tzinfo=UTC)
SNAPSHOT = SecretSnapshot(
    name="api-key", version="v2", value=SecretStr(CANARY), expires=NOW + timedelta(days=30)
)
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def definition(value: str | None = GOOD, kind: int = DefinitionType.SECRET) -> Definition:
    row = None if value is None else ValueRow(id="row-1", value=SecretStr(value), etag='W/"1"')
    return Definition(id="def-1", schema_name="contoso_ApiKey", type=kind, value_row=row)


def check(found: Definition | None, **kwargs: Any) -> Any:
    return check_reference(
        TARGET, found, kwargs.pop("snapshot", SNAPSHOT), vault="contoso-lockstep", now=NOW, **kwargs
    )


def test_parse_reference_is_case_insensitive_and_refuses_versions() -> None:
    parsed = parse_reference(GOOD.upper())
    assert parsed is not None and parsed.vault == "CONTOSO-LOCKSTEP" and parsed.secret == "API-KEY"
    assert parse_reference(GOOD + "/0123456789abcdef") is None
    assert parse_reference("https://contoso-lockstep.vault.azure.net/secrets/api-key") is None
    assert parse_reference(CANARY) is None


def test_a_reference_to_the_rows_secret_is_a_reference_state() -> None:
    decision = check(definition(GOOD.replace("contoso-lockstep", "CONTOSO-Lockstep")))
    assert isinstance(decision, InSync) and decision.state is TargetState.REFERENCE
    assert "resolution not checked" in decision.reason


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (
            GOOD.replace("/secrets/api-key", "/secrets/other-key"),
            "points at secret 'other-key' in vault 'contoso-lockstep'",
        ),
        (
            GOOD.replace("vaults/contoso-lockstep", "vaults/elsewhere"),
            "points at secret 'api-key' in vault 'elsewhere'",
        ),
        (CANARY, "not a Key Vault secret reference"),
        ("   ", "has no value: set it to the Key Vault reference"),
    ],
)
def test_a_reference_elsewhere_fails_saying_where_it_points(value: str, says: str) -> None:
    decision = check(definition(value))
    assert isinstance(decision, Refuse) and says in decision.reason
    assert CANARY not in decision.reason


def test_missing_definition_and_other_types() -> None:
    missing = check(None)
    assert isinstance(missing, Refuse) and missing.state is TargetState.MISSING_DEFINITION
    assert isinstance(check(definition(kind=DefinitionType.STRING)), Refuse)
    assert isinstance(check(definition(None)), Refuse)


def test_disabled_or_expired_current_version_fails() -> None:
    disabled = check(definition(), snapshot=SNAPSHOT.model_copy(update={"enabled": False}))
    expired = check(
        definition(), snapshot=SNAPSHOT.model_copy(update={"expires": NOW - timedelta(seconds=1)})
    )
    assert isinstance(disabled, Refuse) and "disabled" in disabled.reason
    assert isinstance(expired, Refuse) and "expired on 2024-04-30" in expired.reason


def test_resolution_is_compared_by_digest() -> None:
    same = check(definition(), resolution=Resolved(digest(CANARY)))
    other = check(definition(), resolution=Resolved(digest(CANARY + "-old")))
    assert isinstance(same, InSync) and same.state is TargetState.REFERENCE and "resolves it" in same.reason
    assert isinstance(other, Refuse) and "another value" in other.reason
    assert CANARY not in repr(Resolved(digest(CANARY))) and digest(CANARY).hex() not in repr(
        Resolved(digest(CANARY))
    )


def test_refusal_is_not_a_failure_and_unreadable_vault_says_what_to_grant() -> None:
    refused = check(definition(), resolution=NotVerifiable(f"HTTP 403 limited to flows {CANARY}"))
    assert isinstance(refused, InSync) and refused.state is TargetState.REFERENCE
    assert "resolution not verifiable from outside a flow" in refused.reason and CANARY not in refused.reason
    unreadable = check(definition(), resolution=VaultUnreadable("HTTP 400 Key Vault access denied"))
    assert isinstance(unreadable, Refuse) and "Key Vault Secrets User" in unreadable.reason


class FakeCredential:
    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


@pytest.fixture
async def dataverse() -> Any:
    async with httpx.AsyncClient() as http:
        yield DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]


ACTION = f"{API}/RetrieveEnvironmentVariableSecretValue"


@respx.mock
async def test_resolve_posts_the_unbound_action_and_keeps_a_digest(dataverse: DataverseClient) -> None:
    route = respx.post(ACTION).respond(json={"EnvironmentVariableSecretValue": CANARY})
    resolution = await resolve(dataverse, ORG, "contoso_ApiKey")
    assert resolution == Resolved(digest(CANARY))
    assert json.loads(route.calls.last.request.content) == {"EnvironmentVariableName": "contoso_ApiKey"}


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (403, "This API is limited to being called within a Power Automate Flow", NotVerifiable),
        (400, "Key Vault access denied: the caller does not have secrets get permission", VaultUnreadable),
        (503, "unavailable", Unchecked),
    ],
)
@respx.mock
async def test_resolve_classifies_answers(
    dataverse: DataverseClient, status: int, message: str, kind: type
) -> None:
    respx.post(ACTION).respond(status, json={"error": {"code": "0x80040220", "message": message}})
    assert isinstance(await resolve(dataverse, ORG, "contoso_ApiKey"), kind)


@respx.mock
async def test_the_kind_asks_each_environment_once_per_run_after_a_refusal(
    dataverse: DataverseClient,
) -> None:
    route = respx.post(ACTION).respond(403, json={"error": {"code": "0x1", "message": "only within a flow"}})
    kind = ReferenceKind(dataverse, "contoso-lockstep")
    first = await kind.observe(TARGET, definition())
    second = await kind.observe(TARGET.model_copy(update={"env_var": "contoso_Other"}), definition())
    assert isinstance(first.resolution, NotVerifiable) and second.resolution == first.resolution
    assert route.call_count == 1
    elsewhere = await kind.observe(TARGET, definition(GOOD.replace("api-key", "other")))
    assert isinstance(elsewhere.resolution, Unchecked) and route.call_count == 1
    decision = kind.decide(TARGET, first, SNAPSHOT.model_copy(update={"expires": None}))
    assert isinstance(decision, InSync) and decision.state is TargetState.REFERENCE
