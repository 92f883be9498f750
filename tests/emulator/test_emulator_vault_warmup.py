"""A cold Key Vault read overlaps its token fetch with the vault's authentication challenge.

Through the production adapter (sync.adapters.keyvault) and the real SDK, as the engine's warm-up
drives it: `prepare()` started alongside the first `get_current`. The order of the emulator's
recorded requests shows the overlap, their count shows the SDK's own token request was answered
from the credential's cache rather than fetched again.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from emulator import Emulator
from sync.adapters.keyvault import KeyVaultReader, OneFetchPerScope, vault_scope


@pytest.fixture
def sdk_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in emu.client_environment().items():
        monkeypatch.setenv(key, value)
    emu.add_ca_to_aiohttp_default_context()


async def cold_read(emu: Emulator) -> list[str]:
    """A first read with the token prefetched alongside it; the services the emulator saw, in order."""
    # The SDK caches challenges per host for the whole process: a fresh vault sees the full flow.
    vault = emu.key_vault(f"kv-{uuid.uuid4().hex[:12]}")
    vault.set_secret("sql-conn-password", "p@ss-1")
    emu.reset_requests()
    async with ManagedIdentityCredential() as credential:
        tokens = OneFetchPerScope(credential)
        async with SecretClient(vault.url, tokens) as client:
            reader = KeyVaultReader(client, tokens)
            _, snapshot = await asyncio.gather(reader.prepare(), reader.get_current("sql-conn-password"))
    assert snapshot.value.get_secret_value() == "p@ss-1"
    return [f"{r.service} {r.status}" for r in emu.requests if r.service != "proxy"]


async def test_the_token_arrives_while_the_challenge_is_in_flight(
    emu: Emulator, sdk_environment: None
) -> None:
    emu.set_latency(0.2, "identity")
    emu.set_latency(0.6, "keyvault")
    # Serial, the token request would come after the 401; here it is answered before it, and the
    # SDK's own request after the challenge finds the token cached: one token request in all.
    assert await cold_read(emu) == ["identity 200", "keyvault 401", "keyvault 200"]


async def test_the_sdks_token_request_waits_for_the_prefetch_instead_of_repeating_it(
    emu: Emulator, sdk_environment: None
) -> None:
    emu.set_latency(0.6, "identity")
    emu.set_latency(0.1, "keyvault")
    # The challenge comes back while the prefetch is still in flight: the SDK's token request
    # waits for it (one fetch per scope) rather than asking the identity endpoint a second time.
    assert await cold_read(emu) == ["keyvault 401", "identity 200", "keyvault 200"]


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://contoso.vault.azure.net/", "https://vault.azure.net/.default"),
        ("https://contoso.vault.azure.cn", "https://vault.azure.cn/.default"),
        ("https://contoso.vault.usgovcloudapi.net/", "https://vault.usgovcloudapi.net/.default"),
        ("https://kv-1.vault.lockstep.test/", "https://vault.lockstep.test/.default"),
        # A private-link name does not say which resource the challenge will name: no prefetch.
        ("https://contoso.privatelink.vaultcore.azure.net/", None),
        ("https://vault.azure.net/", None),
    ],
)
def test_the_prefetched_scope_is_the_one_the_challenge_names(url: str, scope: str | None) -> None:
    assert vault_scope(url) == scope
