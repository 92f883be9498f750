"""Key Vault version listing: raw pages as the service answers them, and the real SDK following them."""

from __future__ import annotations

import uuid

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from emulator import Emulator

from .test_emulator_keyvault import API


@pytest.fixture
def sdk_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emu.client_environment().items():
        monkeypatch.setenv(key, value)
    emu.add_ca_to_aiohttp_default_context()


def auth(emu: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.issue_token('https://vault.lockstep.test/.default')}"}


async def test_versions_are_listed_in_pages_without_values(emu: Emulator, client: httpx.AsyncClient) -> None:
    vault = emu.key_vault("lockstep-demo")
    versions = [vault.set_secret("s", f"value-number-{i}", content_type="text/plain") for i in range(3)]
    vault.disable_secret("s")
    url = f"{vault.url}secrets/s/versions"
    first = await client.get(url, params={**API, "maxresults": "2"}, headers=auth(emu))
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"value", "nextLink"}
    assert "value-number" not in first.text
    assert [item["id"] for item in body["value"]] == [
        f"https://lockstep-demo.vault.lockstep.test/secrets/s/{v}" for v in versions[:2]
    ]
    item = body["value"][0]
    assert set(item) == {"id", "attributes", "contentType"}
    assert set(item["attributes"]) == {"enabled", "created", "updated", "recoveryLevel"}
    assert body["nextLink"].startswith("https://lockstep-demo.vault.lockstep.test:443/secrets/s/versions?")
    second = await client.get(body["nextLink"], headers=auth(emu))
    rest = second.json()
    assert [item["id"].rsplit("/", 1)[1] for item in rest["value"]] == versions[2:]
    assert rest["value"][0]["attributes"]["enabled"] is False  # disabled versions are listed too
    assert rest["nextLink"] is None


async def test_versions_listing_errors(emu: Emulator, client: httpx.AsyncClient) -> None:
    vault = emu.key_vault("lockstep-demo")
    vault.set_secret("s", "v")
    url = f"{vault.url}secrets/s/versions"
    missing = await client.get(f"{vault.url}secrets/nope/versions", params=API, headers=auth(emu))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "SecretNotFound")
    for query in ({"maxresults": "26"}, {"maxresults": "0"}, {"$skiptoken": "garbage!"}):
        refused = await client.get(url, params={**API, **query}, headers=auth(emu))
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "BadParameter"), query
    assert (await client.get(url, params=API)).status_code == 401  # the challenge, as for a get


@pytest.mark.usefixtures("sdk_environment")
async def test_the_sdk_follows_every_page(emu: Emulator) -> None:
    vault = emu.key_vault(f"kv-{uuid.uuid4().hex[:12]}")
    made = [vault.set_secret("spn", f"v{i}") for i in range(30)]
    emu.reset_requests()
    async with ManagedIdentityCredential() as credential, SecretClient(vault.url, credential) as secrets:
        listed = [p async for p in secrets.list_properties_of_secret_versions("spn")]
    assert [p.version for p in listed] == made
    assert all(p.enabled and p.created_on is not None for p in listed)
    pages = [r for r in emu.requests if r.service == "keyvault" and r.status == 200]
    assert [r.path for r in pages] == ["/secrets/spn/versions"] * 2  # 25, then 5
