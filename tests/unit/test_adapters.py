"""Adapters against respx: the exact requests they send and how they read the answers."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import respx
from azure.core.credentials import AccessToken
from pydantic import SecretStr

from sync import deadline
from sync.adapters.admin import PowerPlatformAdmin
from sync.adapters.dataverse import DataverseClient, WriteConflict, value_row_id
from sync.adapters.http import RetryPolicy
from sync.adapters.teams import NotificationError, TeamsNotifier
from sync.errors import PermanentError, TransientError

ORG = "https://contoso-dev.crm.dynamics.com"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
CANARY = "CANARY-7f3e-do-not-leak"


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("token-" + scopes[0], int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def definition_body(value: str | None = "old", with_row: bool = True) -> dict[str, Any]:
    rows = (
        [{"@odata.etag": 'W/"11"', "environmentvariablevalueid": "row-1", "value": value}] if with_row else []
    )
    return {
        "value": [
            {
                "@odata.etag": 'W/"5"',
                "environmentvariabledefinitionid": "def-1",
                "schemaname": "contoso_Secret",
                "type": 100000000,
                "environmentvariabledefinition_environmentvariablevalue": rows,
            }
        ]
    }


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


@respx.mock
async def test_get_definition_sends_one_odata_query(http: httpx.AsyncClient) -> None:
    route = respx.get(f"{ORG}/api/data/v9.2/environmentvariabledefinitions").respond(json=definition_body())
    credential = FakeCredential()
    found = await DataverseClient(http, credential, FAST).get_definition(ORG, "contoso_Secret")  # type: ignore[arg-type]
    assert found is not None and found.id == "def-1" and found.value_row is not None
    assert found.value_row.etag == 'W/"11"' and found.value_row.value == SecretStr("old")
    request = route.calls.last.request
    assert request.url.params["$filter"] == "schemaname eq 'contoso_Secret'"
    assert request.url.params["$expand"] == (
        "environmentvariabledefinition_environmentvariablevalue($select=environmentvariablevalueid,value)"
    )
    assert request.headers["OData-MaxVersion"] == "4.0" and request.headers["OData-Version"] == "4.0"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer token-{ORG}/.default"
    assert credential.scopes == [f"{ORG}/.default"]


@respx.mock
async def test_get_definition_absent_and_invalid_name(http: httpx.AsyncClient) -> None:
    respx.get(f"{ORG}/api/data/v9.2/environmentvariabledefinitions").respond(json={"value": []})
    client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
    assert await client.get_definition(ORG, "contoso_Secret") is None
    with pytest.raises(PermanentError, match="not a valid environment variable schema name"):
        await client.get_definition(ORG, "x' or 1 eq 1")


@respx.mock
async def test_update_sends_if_match_and_maps_412(http: httpx.AsyncClient) -> None:
    route = respx.patch(f"{ORG}/api/data/v9.2/environmentvariablevalues(row-1)").mock(
        side_effect=[
            httpx.Response(204),
            httpx.Response(412, json={"error": {"code": "0x80060882", "message": "x"}}),
        ]
    )
    client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
    await client.update_value(ORG, "row-1", 'W/"11"', SecretStr(CANARY))
    request = route.calls.last.request
    assert request.headers["If-Match"] == 'W/"11"'
    assert json.loads(request.content) == {"value": CANARY}
    with pytest.raises(WriteConflict):
        await client.update_value(ORG, "row-1", 'W/"10"', SecretStr(CANARY))


@respx.mock
async def test_create_is_an_upsert_that_never_overwrites_with_a_stable_id(http: httpx.AsyncClient) -> None:
    row = value_row_id("def-1")
    assert row == value_row_id("DEF-1")  # the same on every attempt and every instance
    route = respx.patch(f"{ORG}/api/data/v9.2/environmentvariablevalues({row})").respond(204)
    client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
    await client.create_value(ORG, "def-1", "contoso_Secret", SecretStr(CANARY))
    request = route.calls.last.request
    assert request.headers["If-None-Match"] == "*"
    assert json.loads(request.content) == {
        "value": CANARY,
        "schemaname": "contoso_Secret",
        "EnvironmentVariableDefinitionId@odata.bind": "/environmentvariabledefinitions(def-1)",
    }
    route.respond(412, json={"error": {"code": "0x80040237", "message": "exists"}})
    with pytest.raises(WriteConflict):
        await client.create_value(ORG, "def-1", "contoso_Secret", SecretStr(CANARY))


@respx.mock
async def test_error_bodies_echoing_the_value_are_scrubbed(http: httpx.AsyncClient) -> None:
    respx.patch(f"{ORG}/api/data/v9.2/environmentvariablevalues({value_row_id('def-1')})").respond(
        400, json={"error": {"code": "0x80040203", "message": f"Invalid value '{CANARY}' for column"}}
    )
    client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
    with pytest.raises(PermanentError) as caught:
        await client.create_value(ORG, "def-1", "contoso_Secret", SecretStr(CANARY))
    assert CANARY not in str(caught.value)
    assert "HTTP 400 0x80040203 Invalid value '…' for column" in str(caught.value)  # quoted text dropped


@respx.mock
async def test_throttling_honours_retry_after_then_succeeds(http: httpx.AsyncClient) -> None:
    route = respx.get(f"{ORG}/api/data/v9.2/environmentvariabledefinitions").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.01"}),
            httpx.Response(503),
            httpx.Response(200, json={"value": []}),
        ]
    )
    client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
    assert await client.get_definition(ORG, "contoso_Secret") is None
    assert route.call_count == 3


@respx.mock
async def test_retries_exhausted_is_transient(http: httpx.AsyncClient) -> None:
    route = respx.get(f"{ORG}/api/data/v9.2/environmentvariabledefinitions").respond(503)
    client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
    with pytest.raises(TransientError, match="HTTP 503 after retries"):
        await client.get_definition(ORG, "contoso_Secret")
    assert route.call_count == 3


@respx.mock
async def test_retry_stops_at_the_deadline(http: httpx.AsyncClient) -> None:
    route = respx.get(f"{ORG}/api/data/v9.2/environmentvariabledefinitions").respond(
        429, headers={"Retry-After": "5"}
    )
    policy = RetryPolicy(attempts=5, max_retry_after=5)
    client = DataverseClient(http, FakeCredential(), policy)  # type: ignore[arg-type]
    started = time.monotonic()
    with deadline.time_budget(1.0), pytest.raises(TransientError):
        await client.get_definition(ORG, "contoso_Secret")
    assert time.monotonic() - started < 1.0
    assert route.call_count == 1


@respx.mock
async def test_connection_errors_are_transient(http: httpx.AsyncClient) -> None:
    respx.get(f"{ORG}/api/data/v9.2/environmentvariabledefinitions").mock(
        side_effect=httpx.ConnectError("refused")
    )
    client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
    with pytest.raises(TransientError, match="unreachable: ConnectError"):
        await client.get_definition(ORG, "contoso_Secret")


ADMIN = "https://api.bap.microsoft.com"
ENV_ID = "6a1b2c3d-0000-4000-8000-000000000001"


@respx.mock
async def test_admin_reads_states_and_instance_url(http: httpx.AsyncClient) -> None:
    route = respx.get(
        f"{ADMIN}/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments/{ENV_ID}"
    ).respond(
        json={
            "properties": {
                "states": {"management": {"id": "Ready"}, "runtime": {"id": "Enabled"}},
                "linkedEnvironmentMetadata": {"instanceUrl": f"{ORG}/"},
            }
        }
    )
    credential = FakeCredential()
    status = await PowerPlatformAdmin(http, credential, ADMIN, FAST).get_environment(ENV_ID)  # type: ignore[arg-type]
    assert (status.management_state, status.runtime_state, status.instance_url) == (
        "Ready",
        "Enabled",
        f"{ORG}/",
    )
    assert route.calls.last.request.url.params["api-version"] == "2020-10-01"
    assert credential.scopes == ["https://service.powerapps.com/.default"]


@respx.mock
async def test_admin_forbidden_explains_registration(http: httpx.AsyncClient) -> None:
    respx.get(url__startswith=ADMIN).respond(403, json={"error": {"code": "Forbidden", "message": "no"}})
    with pytest.raises(PermanentError, match="pac admin application register"):
        await PowerPlatformAdmin(http, FakeCredential(), ADMIN, FAST).get_environment(ENV_ID)  # type: ignore[arg-type]


WEBHOOK = (
    "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=TOPSECRETSIG"
)


@respx.mock
async def test_teams_posts_message_envelope(http: httpx.AsyncClient) -> None:
    route = respx.post(url__startswith="https://prod-01.westeurope.logic.azure.com/").respond(202)
    await TeamsNotifier(http, SecretStr(WEBHOOK), FAST).post_card(
        {"type": "AdaptiveCard", "version": "1.4", "body": []}
    )
    body = json.loads(route.calls.last.request.content)
    assert body["type"] == "message"
    assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert body["attachments"][0]["contentUrl"] is None
    assert body["attachments"][0]["content"]["type"] == "AdaptiveCard"


@respx.mock
async def test_teams_errors_never_mention_the_url(http: httpx.AsyncClient) -> None:
    respx.post(url__startswith="https://prod-01.westeurope.logic.azure.com/").mock(
        side_effect=[httpx.Response(400), httpx.ConnectError(f"cannot reach {WEBHOOK}")] * 3
    )
    notifier = TeamsNotifier(http, SecretStr(WEBHOOK), FAST)
    for _ in range(2):
        with pytest.raises(NotificationError) as caught:
            await notifier.post_card({})
        assert "TOPSECRETSIG" not in str(caught.value) and "logic.azure.com" not in str(caught.value)
