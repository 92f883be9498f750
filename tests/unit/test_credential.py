"""In Azure the app authenticates as its managed identity and nothing else; locally the developer
chain (environment, CLI sign-in, the emulator's identity endpoint) stays available."""

from __future__ import annotations

import asyncio

import pytest
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

from emulator import Emulator
from sync.runtime import build_runtime, in_azure, make_credential
from sync.settings import load_settings

CLIENT_ID = "11111111-1111-1111-1111-111111111111"
# A service principal's secret left in the app settings: DefaultAzureCredential would prefer it.
STRAY_PRINCIPAL = {
    "AZURE_TENANT_ID": "22222222-2222-2222-2222-222222222222",
    "AZURE_CLIENT_ID": "33333333-3333-3333-3333-333333333333",
    "AZURE_CLIENT_SECRET": "not-the-managed-identity",
}


@pytest.mark.parametrize(
    ("environ", "azure"),
    [
        ({"WEBSITE_INSTANCE_ID": "a1b2c3"}, True),
        (
            {
                "WEBSITE_SITE_NAME": "func-lockstep",
                "IDENTITY_ENDPOINT": "http://169.254.129.7:8081/msi/token",
            },
            True,
        ),
        ({"WEBSITE_SKU": "FlexConsumption"}, True),
        ({}, False),
        (
            {"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h"},
            False,
        ),  # the emulator
        ({"WEBSITE_SITE_NAME": "func-lockstep"}, False),  # a name alone: a copied settings file
        ({"WEBSITE_INSTANCE_ID": ""}, False),
    ],
)
def test_azure_is_recognised_by_what_the_host_sets(environ: dict[str, str], azure: bool) -> None:
    assert in_azure(environ) is azure


async def test_each_environment_gets_its_credential() -> None:
    in_cloud = make_credential(CLIENT_ID, {"WEBSITE_INSTANCE_ID": "a1b2c3", **STRAY_PRINCIPAL})
    local = make_credential(CLIENT_ID, {})
    try:
        assert type(in_cloud) is ManagedIdentityCredential
        assert type(local) is DefaultAzureCredential
    finally:
        await in_cloud.close()
        await local.close()


async def test_the_runtime_uses_the_managed_identity_in_azure(environ: dict[str, str]) -> None:
    settings = load_settings(environ)
    loop = asyncio.get_running_loop()
    cloud = build_runtime(settings, loop, {"WEBSITE_INSTANCE_ID": "a1b2c3"})
    local = build_runtime(settings, loop, {})
    try:
        assert type(cloud.credential) is ManagedIdentityCredential
        assert type(local.credential) is DefaultAzureCredential
    finally:
        await cloud.aclose()
        await local.aclose()


async def test_the_vault_token_is_fetched_ahead_only_where_the_credential_caches_it(
    environ: dict[str, str],
) -> None:
    """The managed identity caches its tokens; the developer tools the local chain may end at (Azure
    CLI, azd, PowerShell) do not, so there a prefetch would be one more tool run, not a cache fill."""
    settings = load_settings(environ)
    loop = asyncio.get_running_loop()
    emulated = {"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h"}
    runtimes = {
        "azure": build_runtime(settings, loop, {"WEBSITE_INSTANCE_ID": "a1b2c3"}),
        "identity endpoint": build_runtime(settings, loop, emulated),
        "developer chain": build_runtime(settings, loop, {}),
    }
    try:
        prefetches = {name: runtime.secrets.prefetches for name, runtime in runtimes.items()}
        assert prefetches == {"azure": True, "identity endpoint": True, "developer chain": False}
    finally:
        for runtime in runtimes.values():
            await runtime.aclose()


async def test_in_azure_a_stray_principal_secret_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the emulator's App Service identity endpoint: the managed identity answers, although
    the environment also names a service principal (which DefaultAzureCredential would try first)."""
    with Emulator() as emu:
        for key, value in {**emu.client_environment(), **STRAY_PRINCIPAL}.items():
            monkeypatch.setenv(key, value)
        resource = "https://contoso-dev.crm.lockstep.test"
        credential = make_credential(CLIENT_ID, {"WEBSITE_INSTANCE_ID": "a1b2c3"})
        async with credential:
            token = await credential.get_token(f"{resource}/.default")
        assert token.token
        assert any(r.service == "identity" for r in emu.requests)
