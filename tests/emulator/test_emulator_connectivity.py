"""Power Platform API connectivity: per-environment hosts, connections, PUT rules, shares, flows."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from emulator import Emulator, Environment

from .conftest import ODATA_HEADERS

ENV_ID = "6a1b2c3d-0000-4000-8000-0000000000fe"
HOST = "6a1b2c3d0000400080000000000000.fe.environment.api.powerplatform.lockstep.test"
API = {"api-version": "1"}
DATAVERSE = "shared_commondataserviceforapps"
CANARY = "CANARY-spn-secret-7f3a"


def auth(emu: Emulator, client_id: str | None = None) -> dict[str, str]:
    token = emu.issue_token("https://api.powerplatform.lockstep.test/.default", client_id)
    return {"Authorization": f"Bearer {token}"}


def one(env: Environment, connection_id: str, connector: str = DATAVERSE) -> str:
    return f"https://{env.connectivity_host}/connectivity/connectors/{connector}/connections/{connection_id}"


def filtered(env: Environment) -> dict[str, str]:
    return {**API, "$filter": f"environment eq '{env.id}'"}


def parameter_set(
    client_id: str, secret: str, tenant: str, name: str = "ServicePrincipalOauth"
) -> dict[str, Any]:
    return {
        "name": name,
        "values": {
            "token:clientId": {"value": client_id},
            "token:clientSecret": {"value": secret},
            "token:TenantId": {"value": tenant},
            "token:grantType": {"value": "client_credentials"},
        },
    }


@pytest.fixture
def env(emu: Emulator) -> Environment:
    return emu.environment("dev", org="contoso-dev", environment_id=ENV_ID)


async def put(
    client: httpx.AsyncClient,
    emu: Emulator,
    env: Environment,
    connection_id: str,
    new_set: dict[str, Any],
    connector: str = DATAVERSE,
) -> httpx.Response:
    """What Microsoft's Terraform provider does: read, replace the parameter set, PUT the object back."""
    url = one(env, connection_id, connector)
    current = (await client.get(url, params=filtered(env), headers=auth(emu))).json()
    body = copy.deepcopy(current)
    body["properties"]["connectionParametersSet"] = new_set
    return await client.put(url, params=filtered(env), headers=auth(emu), json=body)


async def test_host_per_environment_lists_connections_without_secrets(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    assert env.connectivity_host == HOST
    assert emu.power_platform_api_url == "https://api.powerplatform.lockstep.test"
    app = emu.add_app_registration(secret=CANARY)
    connection_id = env.add_connection(
        DATAVERSE,
        "ServicePrincipalOauth",
        client_id=app.client_id,
        display_name="Flows SPN",
        shared_with_lockstep="CanEdit",
    )
    env.add_connection("shared_office365", "Oauth", display_name="Maker's mailbox")
    response = await client.get(f"https://{HOST}/connectivity/connections", params=API, headers=auth(emu))
    assert response.status_code == 200
    assert CANARY not in response.text
    rows = {row["name"]: row for row in response.json()["value"]}
    assert len(rows) == 2
    row = rows[connection_id]
    assert row["id"] == f"/providers/Microsoft.PowerApps/apis/{DATAVERSE}/connections/{connection_id}"
    assert row["type"] == "Microsoft.PowerApps/apis/connections"
    properties = row["properties"]
    assert properties["apiId"] == f"/providers/Microsoft.PowerApps/apis/{DATAVERSE}"
    assert properties["displayName"] == "Flows SPN"
    assert properties["environment"] == {
        "id": f"/providers/Microsoft.PowerApps/environments/{ENV_ID}",
        "name": ENV_ID,
    }
    assert properties["statuses"] == [{"status": "Connected"}]
    assert properties["connectionParametersSet"] == {
        "name": "ServicePrincipalOauth",
        "values": {"token:clientId": {"value": app.client_id}, "token:TenantId": {"value": app.tenant_id}},
    }
    datetime.fromisoformat(properties["lastModifiedTime"])
    assert properties["createdBy"]["type"] == "User"
    roles = {p["properties"]["roleName"] for p in properties["permissions"]}
    assert roles == {"Owner", "CanEdit"}

    # A different environment's host serves only its own connections; an unknown one is 404.
    other = emu.environment("test", environment_id="9c2d0000-0000-4000-8000-0000000000ab")
    listed = await client.get(
        f"https://{other.connectivity_host}/connectivity/connections", params=API, headers=auth(emu)
    )
    assert listed.json() == {"value": []}
    unknown = await client.get(
        "https://ffff.ff.environment.api.powerplatform.lockstep.test/connectivity/connections",
        params=API,
        headers=auth(emu),
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "EnvironmentNotFound"


async def test_read_one_and_the_errors_around_it(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    app = emu.add_app_registration(secret=CANARY)
    connection_id = env.add_connection(DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id)
    got = await client.get(one(env, connection_id), params=filtered(env), headers=auth(emu))
    assert got.status_code == 200
    assert got.json()["name"] == connection_id
    assert "permissions" not in got.json()["properties"]
    assert CANARY not in got.text

    missing = await client.get(one(env, "0" * 32), params=filtered(env), headers=auth(emu))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ConnectionNotFound"
    wrong_connector = await client.get(
        one(env, connection_id, "shared_sql"), params=filtered(env), headers=auth(emu)
    )
    assert wrong_connector.json()["error"]["code"] == "ConnectionNotFound"
    no_version = await client.get(one(env, connection_id), headers=auth(emu))
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    other_env = await client.get(
        one(env, connection_id), params={**API, "$filter": "environment eq 'elsewhere'"}, headers=auth(emu)
    )
    assert other_env.status_code == 400


async def test_bearer_audience_and_management_registration(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    url = f"https://{HOST}/connectivity/connections"
    assert (await client.get(url, params=API)).status_code == 401
    dataverse_token = {"Authorization": f"Bearer {emu.issue_token(env.url + '/.default')}"}
    wrong = await client.get(url, params=API, headers=dataverse_token)
    assert wrong.status_code == 401
    assert "https://api.powerplatform.lockstep.test" in wrong.json()["error"]["message"]

    emu.register_management_app(registered=False)
    refused = await client.get(url, params=API, headers=auth(emu))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Forbidden"
    assert "management application" in refused.json()["error"]["message"]
    emu.register_management_app()
    assert (await client.get(url, params=API, headers=auth(emu))).status_code == 200
    # Another identity is not registered unless said so.
    stranger = "22222222-2222-2222-2222-222222222222"
    assert (await client.get(url, params=API, headers=auth(emu, stranger))).status_code == 403


async def test_put_with_a_valid_secret_connects_and_moves_last_modified(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    app = emu.add_app_registration(secret="old-secret")
    connection_id = env.add_connection(
        DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id, shared_with_lockstep="CanEdit"
    )
    before = env.connection(connection_id)
    new_secret = app.rotate_secret(CANARY, revoke_previous=True)
    assert env.connection(connection_id)["status"] == "Error"  # the old secret no longer works

    response = await put(
        client, emu, env, connection_id, parameter_set(app.client_id, new_secret, app.tenant_id)
    )
    assert response.status_code == 200
    assert CANARY not in response.text
    assert response.json()["properties"]["statuses"] == [{"status": "Connected"}]
    after = env.connection(connection_id)
    assert after["status"] == "Connected"
    assert after["puts"] == 1
    assert after["last_modified"] > before["last_modified"]
    assert env.connection_holds(connection_id, CANARY)
    recorded = [r for r in emu.requests if r.service == "connectivity"]
    assert [r.method for r in recorded][-1] == "PUT"
    assert all("?" not in r.path for r in recorded)


async def test_put_with_an_invalid_secret_reports_unauthenticated_or_is_refused(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    app = emu.add_app_registration(secret="good")
    connection_id = env.add_connection(
        DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id, shared_with_lockstep="Owner"
    )
    response = await put(client, emu, env, connection_id, parameter_set(app.client_id, CANARY, app.tenant_id))
    assert response.status_code == 200
    [status] = response.json()["properties"]["statuses"]
    assert status["status"] == "Error"
    assert status["target"] == "token"
    assert status["error"]["code"] == "Unauthenticated"
    assert "AADSTS7000215" in status["error"]["message"]
    assert CANARY not in response.text

    emu.set_invalid_secret_answer("refuse")
    env.set_connection_status(connection_id, "Connected")
    refused = await put(
        client, emu, env, connection_id, parameter_set(app.client_id, "also-wrong", app.tenant_id)
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Unauthenticated"
    assert env.connection(connection_id)["puts"] == 1  # nothing saved


async def test_put_rules_complete_set_same_set_and_edit_rights(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    app = emu.add_app_registration(secret="good")
    connection_id = env.add_connection(
        DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id, shared_with_lockstep="CanEdit"
    )
    incomplete = parameter_set(app.client_id, "good", app.tenant_id)
    del incomplete["values"]["token:clientSecret"]
    missing = await put(client, emu, env, connection_id, incomplete)
    assert missing.status_code == 400
    assert "token:clientSecret" in missing.json()["error"]["message"]

    user_sign_in = env.add_connection(DATAVERSE, "Oauth", shared_with_lockstep="Owner")
    switched = await put(client, emu, env, user_sign_in, parameter_set(app.client_id, "good", app.tenant_id))
    assert switched.status_code == 400
    assert "user sign-in" in switched.json()["error"]["message"]
    assert env.connection(user_sign_in)["parameter_set"] == "Oauth"

    for role in (None, "CanView", "CanViewWithShare"):
        viewer = env.add_connection(
            DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id, shared_with_lockstep=role
        )
        denied = await put(client, emu, env, viewer, parameter_set(app.client_id, "good", app.tenant_id))
        assert denied.status_code == 403, role
        assert denied.json()["error"]["code"] == "Forbidden"
        assert env.connection(viewer)["puts"] == 0
    env.share_connection(viewer, "CanEdit")
    allowed = await put(client, emu, env, viewer, parameter_set(app.client_id, "good", app.tenant_id))
    assert allowed.status_code == 200

    sql = env.add_connection("shared_sql", "oauthSP", client_id=app.client_id, shared_with_lockstep="CanEdit")
    sql_put = await put(
        client, emu, env, sql, parameter_set(app.client_id, "good", app.tenant_id, "oauthSP"), "shared_sql"
    )
    assert sql_put.status_code == 200


async def test_permissions_list_and_hidden_connections(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    owner = env.add_user("Maker One")
    connection_id = env.add_connection(
        DATAVERSE, "Oauth", owner=owner, shared_with_lockstep="CanViewWithShare"
    )
    response = await client.get(
        f"{one(env, connection_id)}/permissions", params=filtered(env), headers=auth(emu)
    )
    assert response.status_code == 200
    shares = {p["properties"]["roleName"]: p for p in response.json()["value"]}
    assert shares["Owner"]["properties"]["principal"]["id"] == env.user_object_id(owner)
    assert shares["CanViewWithShare"]["properties"]["principal"] == {
        "id": emu.identity_object_id,
        "displayName": "Lockstep (managed identity)",
        "type": "ServicePrincipal",
        "tenantId": "00000000-0000-0000-0000-000000000000",
    }
    assert shares["Owner"]["type"] == "Microsoft.PowerApps/apis/connections/permissions"

    hidden = env.add_connection(DATAVERSE, "Oauth")
    env.hide_unshared_connections()
    listed = await client.get(f"https://{HOST}/connectivity/connections", params=API, headers=auth(emu))
    assert [row["name"] for row in listed.json()["value"]] == [connection_id]
    assert (await client.get(one(env, hidden), params=filtered(env), headers=auth(emu))).status_code == 403


async def test_faults_and_latency_apply_to_connectivity(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    emu.inject_fault("connectivity", 429, retry_after=2, path_contains=HOST)
    throttled = await client.get(f"https://{HOST}/connectivity/connections", params=API, headers=auth(emu))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert (
        await client.get(f"https://{HOST}/connectivity/connections", params=API, headers=auth(emu))
    ).status_code == 200
    assert emu.requests[-1].service == "connectivity"
    assert emu.requests[-1].host == HOST


async def activate(client: httpx.AsyncClient, emu: Emulator, env: Environment, flow: str) -> httpx.Response:
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {emu.issue_token(env.url + '/.default')}"}
    url = f"{env.url}/api/data/v9.2/workflows({flow})"
    off = await client.patch(url, headers=headers, json={"statecode": 0, "statuscode": 1})
    assert off.status_code == 204
    return await client.patch(url, headers=headers, json={"statecode": 1, "statuscode": 2})


async def test_flow_activation_follows_the_bound_connections_shares(
    emu: Emulator, client: httpx.AsyncClient, env: Environment
) -> None:
    app = emu.add_app_registration(secret="good")
    connection_id = env.add_connection(DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id)
    env.add_connection_reference("contoso_dataverse", DATAVERSE, connection_id=connection_id)
    # The knob says shared, but the bound connection is not shared with the caller: refused.
    flow = env.add_flow(
        "Sync accounts", [], connections_shared=True, connection_references=["contoso_dataverse"]
    )
    refused = await activate(client, emu, env, flow)
    assert refused.status_code == 400
    assert "ConnectionAuthorizationFailed" in json.dumps(refused.json())
    env.share_connection(connection_id, "CanView")
    assert (await activate(client, emu, env, flow)).status_code == 204
    assert env.flow_history(flow) == ["off", "off", "on"]
    # Without bound connectivity connections the knob still decides.
    env.add_connection_reference("contoso_other")
    legacy = env.add_flow("Legacy", [], connections_shared=False, connection_references=["contoso_other"])
    assert (await activate(client, emu, env, legacy)).status_code == 400
