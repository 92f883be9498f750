"""Secret-type (Key Vault-backed) variables and RetrieveEnvironmentVariableSecretValue."""

from __future__ import annotations

import logging

import httpx
import pytest

from emulator import Emulator, Environment

SCHEMA = "contoso_SqlPasswordRef"
CANARY = "CANARY-kv-value-91c2"
ACTION = "RetrieveEnvironmentVariableSecretValue"


async def retrieve(
    client: httpx.AsyncClient, dv_base: str, headers: dict[str, str], name: str
) -> httpx.Response:
    return await client.post(f"{dv_base}{ACTION}", headers=headers, json={"EnvironmentVariableName": name})


async def test_reference_row_and_resolution_of_the_current_version(
    emu: Emulator,
    client: httpx.AsyncClient,
    dev: Environment,
    dv_base: str,
    dv_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="emulator")
    vault = emu.key_vault("lockstep-demo")
    vault.set_secret("sql-conn-password", "old-value")
    vault.set_secret("sql-conn-password", CANARY)
    definition = dev.add_secret_reference(SCHEMA, "lockstep-demo", "sql-conn-password")
    assert dev.value_of(SCHEMA) == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/lockstep-demo"
        "/providers/Microsoft.KeyVault/vaults/lockstep-demo/secrets/sql-conn-password"
    )
    listed = await client.get(
        f"{dv_base}environmentvariabledefinitions",
        params={"$filter": f"schemaname eq '{SCHEMA}'", "$select": "environmentvariabledefinitionid,type"},
        headers=dv_headers,
    )
    [row] = listed.json()["value"]
    assert (row["environmentvariabledefinitionid"], row["type"]) == (definition, 100000005)

    response = await retrieve(client, dv_base, dv_headers, SCHEMA)
    assert response.status_code == 200
    body = response.json()
    assert body["EnvironmentVariableSecretValue"] == CANARY
    assert body["@odata.context"].endswith(
        "#Microsoft.Dynamics.CRM.RetrieveEnvironmentVariableSecretValueResponse"
    )
    # The value is in the answer only: not in the log, not in the recorded requests.
    assert CANARY not in caplog.text
    assert all(CANARY not in str(request) for request in emu.requests)

    vault.disable_secret("sql-conn-password")
    disabled = await retrieve(client, dv_base, dv_headers, SCHEMA)
    assert disabled.status_code == 400
    assert "disabled" in disabled.json()["error"]["message"]
    assert CANARY not in disabled.text


async def test_refusals_and_vault_access(
    emu: Emulator, client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    emu.key_vault("lockstep-demo").set_secret("sql-conn-password", CANARY)
    dev.add_secret_reference(SCHEMA, "lockstep-demo", "sql-conn-password")
    dev.add_definition("contoso_Plain", value="text")
    dev.add_secret_reference("contoso_Elsewhere", "other-vault", "sql-conn-password")

    dev.refuse_secret_retrieval()
    refused = await retrieve(client, dv_base, dv_headers, SCHEMA)
    assert refused.status_code == 403
    assert "flows" in refused.json()["error"]["message"]
    dev.refuse_secret_retrieval(False)

    dev.set_vault_unreadable()
    unreadable = await retrieve(client, dv_base, dv_headers, SCHEMA)
    assert unreadable.status_code == 403
    message = unreadable.json()["error"]["message"]
    assert "Key Vault" in message and "Key Vault Secrets User" in message
    assert CANARY not in unreadable.text
    dev.set_vault_unreadable(False)

    assert (await retrieve(client, dv_base, dv_headers, "contoso_Missing")).status_code == 404
    plain = await retrieve(client, dv_base, dv_headers, "contoso_Plain")
    assert plain.status_code == 400
    assert "not of type Secret" in plain.json()["error"]["message"]
    elsewhere = await retrieve(client, dv_base, dv_headers, "contoso_Elsewhere")
    assert elsewhere.status_code == 400
    assert "other-vault" in elsewhere.json()["error"]["message"]
    malformed = await client.post(f"{dv_base}{ACTION}", headers=dv_headers, json={"Name": SCHEMA})
    assert malformed.status_code == 400
    wrong_method = await client.get(f"{dv_base}{ACTION}", headers=dv_headers)
    assert wrong_method.status_code == 405
    # With both knobs off again, the reference resolves.
    assert (await retrieve(client, dv_base, dv_headers, SCHEMA)).json()[
        "EnvironmentVariableSecretValue"
    ] == CANARY
