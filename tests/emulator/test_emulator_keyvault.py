"""Managed identity and Key Vault: raw HTTP and the real azure-identity / azure-keyvault-secrets clients."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from emulator import Emulator, RecordedRequest

KV_AUDIENCE = "https://vault.lockstep.test"
CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", '
    'resource="https://vault.lockstep.test"'
)
API = {"api-version": "7.5"}


def unique_vault(emu: Emulator) -> str:
    # azure-keyvault-secrets caches challenges per host for the whole process: a fresh host per test
    # makes every test see the full challenge flow.
    return emu.key_vault(f"kv-{uuid.uuid4().hex[:12]}").name


@pytest.fixture
def sdk_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emu.client_environment().items():
        monkeypatch.setenv(key, value)
    emu.add_ca_to_aiohttp_default_context()


# --- managed identity ---


async def test_identity_endpoint_issues_token_in_app_service_shape(
    emu: Emulator, loopback: httpx.AsyncClient
) -> None:
    before = int(time.time())
    response = await loopback.get(
        emu.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": KV_AUDIENCE, "client_id": "my-client"},
        headers={"X-IDENTITY-HEADER": emu.identity_header},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["resource"] == KV_AUDIENCE
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == "my-client"
    assert isinstance(body["expires_on"], str)
    assert before + 3590 <= int(body["expires_on"]) <= int(time.time()) + 3600
    assert emu.requests == [RecordedRequest("identity", "GET", "127.0.0.1", "/msi/token", 200)]


@pytest.mark.parametrize("header", [None, "wrong"])
async def test_identity_endpoint_requires_the_identity_header(
    emu: Emulator, loopback: httpx.AsyncClient, header: str | None
) -> None:
    headers = {} if header is None else {"X-IDENTITY-HEADER": header}
    response = await loopback.get(
        emu.identity_endpoint, params={"api-version": "2019-08-01", "resource": KV_AUDIENCE}, headers=headers
    )
    assert response.status_code == 401
    assert "access_token" not in response.json()


async def test_identity_endpoint_rejects_missing_resource_and_bad_api_version(
    emu: Emulator, loopback: httpx.AsyncClient
) -> None:
    headers = {"X-IDENTITY-HEADER": emu.identity_header}
    missing = await loopback.get(emu.identity_endpoint, params={"api-version": "2019-08-01"}, headers=headers)
    assert missing.status_code == 400
    old = await loopback.get(
        emu.identity_endpoint, params={"api-version": "2017-09-01", "resource": KV_AUDIENCE}, headers=headers
    )
    assert old.status_code == 400


async def test_managed_identity_credential_token_has_the_scope_as_audience(
    emu: Emulator, client: httpx.AsyncClient, sdk_environment: None
) -> None:
    env = emu.environment("dev", org="contoso-dev")
    async with ManagedIdentityCredential() as credential:
        token = await credential.get_token(f"{env.url}/.default")
    assert token.expires_on > time.time() + 3000
    who = await client.get(
        f"{env.url}/api/data/v9.2/WhoAmI",
        headers={
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "Accept": "application/json",
            "Authorization": f"Bearer {token.token}",
        },
    )
    assert who.status_code == 200
    assert [r.service for r in emu.requests if r.service != "proxy"] == ["identity", "dataverse"]


# --- Key Vault through the real SDK ---


async def test_secret_client_reads_through_the_challenge_flow(emu: Emulator, sdk_environment: None) -> None:
    vault = emu.key_vault(unique_vault(emu))
    version = vault.set_secret("sql-conn-password", "p@ss-1", content_type="text/plain")
    emu.reset_requests()
    async with ManagedIdentityCredential() as credential, SecretClient(vault.url, credential) as secrets:
        secret = await secrets.get_secret("sql-conn-password")
    assert secret.value == "p@ss-1"
    assert secret.properties.version == version
    assert secret.properties.content_type == "text/plain"
    assert secret.properties.enabled is True
    host = f"{vault.name}.vault.lockstep.test"
    assert emu.requests == [
        RecordedRequest("proxy", "CONNECT", host, "", 200),
        RecordedRequest("keyvault", "GET", host, "/secrets/sql-conn-password/", 401),
        RecordedRequest("identity", "GET", "127.0.0.1", "/msi/token", 200),
        RecordedRequest("keyvault", "GET", host, "/secrets/sql-conn-password/", 200),
    ]


async def test_secret_client_rotates_and_sees_disabled_and_missing_secrets(
    emu: Emulator, sdk_environment: None
) -> None:
    vault = emu.key_vault(unique_vault(emu))
    first = vault.set_secret("graph-client-secret", "v1")
    async with ManagedIdentityCredential() as credential, SecretClient(vault.url, credential) as secrets:
        rotated = await secrets.set_secret("graph-client-secret", "v2")
        assert vault.current_version("graph-client-secret") == rotated.properties.version != first
        assert (await secrets.get_secret("graph-client-secret")).value == "v2"
        assert (await secrets.get_secret("graph-client-secret", first)).value == "v1"
        vault.disable_secret("graph-client-secret")
        with pytest.raises(HttpResponseError) as disabled:
            await secrets.get_secret("graph-client-secret")
        assert disabled.value.status_code == 403
        with pytest.raises(ResourceNotFoundError):
            await secrets.get_secret("no-such-secret")


async def test_secret_client_honours_an_injected_retry_after(emu: Emulator, sdk_environment: None) -> None:
    vault = emu.key_vault(unique_vault(emu))
    vault.set_secret("s", "value")
    emu.inject_fault("keyvault", 429, retry_after=0)
    async with ManagedIdentityCredential() as credential, SecretClient(vault.url, credential) as secrets:
        assert (await secrets.get_secret("s")).value == "value"
    assert [r.status for r in emu.requests if r.service == "keyvault"] == [401, 429, 200]


# --- Key Vault, raw HTTP ---


async def test_key_vault_challenge_without_authorization(emu: Emulator, client: httpx.AsyncClient) -> None:
    vault = emu.key_vault("lockstep-demo")
    vault.set_secret("s", "top-secret-value")
    response = await client.get(f"{vault.url}secrets/s", params=API)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert "top-secret-value" not in response.text


async def test_key_vault_rejects_wrong_audience_unknown_and_expired_tokens(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    vault = emu.key_vault("lockstep-demo")
    vault.set_secret("s", "top-secret-value")
    url = f"{vault.url}secrets/s"

    wrong = emu.issue_token("https://contoso-dev.crm.lockstep.test/.default")
    response = await client.get(url, params=API, headers={"Authorization": f"Bearer {wrong}"})
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "expected 'https://vault.lockstep.test'" in message
    assert "got 'https://contoso-dev.crm.lockstep.test'" in message
    assert response.headers["WWW-Authenticate"] == CHALLENGE

    unknown = await client.get(url, params=API, headers={"Authorization": "Bearer made-up"})
    assert unknown.status_code == 401
    assert "not issued" in unknown.json()["error"]["message"]

    good = emu.issue_token("https://vault.lockstep.test/")
    assert (await client.get(url, params=API, headers={"Authorization": f"Bearer {good}"})).status_code == 200
    emu.expire_tokens()
    expired = await client.get(url, params=API, headers={"Authorization": f"Bearer {good}"})
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


async def test_key_vault_get_shapes_and_errors(emu: Emulator, client: httpx.AsyncClient) -> None:
    vault = emu.key_vault("lockstep-demo")
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    first = vault.set_secret("s", "old-value")
    second = vault.set_secret("s", "new-value", expires=expires)
    auth = {"Authorization": f"Bearer {emu.issue_token(KV_AUDIENCE)}"}

    for path in ("secrets/s", "secrets/s/", f"secrets/s/{second}"):
        body = (await client.get(vault.url + path, params=API, headers=auth)).json()
        assert body["value"] == "new-value"
        assert body["id"] == f"https://lockstep-demo.vault.lockstep.test/secrets/s/{second}"
        attributes = body["attributes"]
        assert attributes["enabled"] is True
        assert attributes["exp"] == int(expires.timestamp())
        assert "nbf" not in attributes
        assert attributes["recoveryLevel"] == "Recoverable+Purgeable"
        assert isinstance(attributes["created"], int)
        assert body["tags"] == {}
    old = await client.get(f"{vault.url}secrets/s/{first}", params=API, headers=auth)
    assert old.json()["value"] == "old-value"

    # api-version is required; SDKs send both "7.x" and date-style versions.
    assert (await client.get(f"{vault.url}secrets/s", headers=auth)).status_code == 400
    dated = await client.get(f"{vault.url}secrets/s", params={"api-version": "2026-04-01"}, headers=auth)
    assert dated.status_code == 200

    missing = await client.get(f"{vault.url}secrets/nope", params=API, headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SecretNotFound"
    assert "(name/id) nope was not found" in missing.json()["error"]["message"]
    bad_version = await client.get(f"{vault.url}secrets/s/{'0' * 32}", params=API, headers=auth)
    assert bad_version.status_code == 404

    vault.disable_secret("s")
    disabled = await client.get(f"{vault.url}secrets/s", params=API, headers=auth)
    assert disabled.status_code == 403
    assert disabled.json() == {
        "error": {
            "code": "Forbidden",
            "message": "Operation get is not allowed on a disabled secret.",
            "innererror": {"code": "SecretDisabled"},
        }
    }
    # The older version is still enabled.
    assert (await client.get(f"{vault.url}secrets/s/{first}", params=API, headers=auth)).status_code == 200

    vault.delete_secret("s")
    assert vault.current_version("s") is None
    assert (await client.get(f"{vault.url}secrets/s", params=API, headers=auth)).status_code == 404


async def test_key_vault_put_creates_a_new_version(emu: Emulator, client: httpx.AsyncClient) -> None:
    vault = emu.key_vault("lockstep-demo")
    auth = {"Authorization": f"Bearer {emu.issue_token(KV_AUDIENCE)}"}
    response = await client.put(
        f"{vault.url}secrets/fresh",
        params=API,
        headers=auth,
        json={"value": "v1", "attributes": {"enabled": True, "exp": 1900000000}},
    )
    assert response.status_code == 200
    version = response.json()["id"].rsplit("/", 1)[1]
    assert vault.current_version("fresh") == version
    assert len(version) == 32
    assert version == version.lower()
    bad = await client.put(f"{vault.url}secrets/fresh", params=API, headers=auth, json={"valu": "x"})
    assert bad.status_code == 400
    assert vault.current_version("fresh") == version


def test_secret_event_has_the_event_grid_shape(emu: Emulator) -> None:
    vault = emu.key_vault("lockstep-demo")
    not_before = datetime(2025, 1, 1, tzinfo=UTC)
    version = vault.set_secret("sql-conn-password", "x", not_before=not_before)
    event = vault.secret_event("sql-conn-password")
    uuid.UUID(event["id"])
    assert event["topic"] == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/lockstep-demo"
        "/providers/Microsoft.KeyVault/vaults/lockstep-demo"
    )
    assert event["subject"] == "sql-conn-password"
    assert event["eventType"] == "Microsoft.KeyVault.SecretNewVersionCreated"
    assert event["eventTime"].endswith("Z")
    datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
    assert event["dataVersion"] == "1"
    assert event["metadataVersion"] == "1"
    assert event["data"] == {
        "Id": f"https://lockstep-demo.vault.lockstep.test/secrets/sql-conn-password/{version}",
        "VaultName": "lockstep-demo",
        "ObjectType": "Secret",
        "ObjectName": "sql-conn-password",
        "Version": version,
        "NBF": int(not_before.timestamp()),
        "EXP": None,
    }
    newer = vault.set_secret("sql-conn-password", "y")
    assert vault.secret_event("sql-conn-password", version)["data"]["Version"] == version
    expiring = vault.secret_event("sql-conn-password", event_type="Microsoft.KeyVault.SecretNearExpiry")
    assert expiring["eventType"] == "Microsoft.KeyVault.SecretNearExpiry"
    assert expiring["data"]["Version"] == newer
    with pytest.raises(KeyError):
        vault.secret_event("nope")
