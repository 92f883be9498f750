"""Lockstep's identity follows the client id the managed-identity endpoint issues tokens to: shares,
the management-application registration and Dataverse's application user hold for it, not for others."""

from __future__ import annotations

import httpx

from emulator import Emulator, Environment

from .conftest import ODATA_HEADERS

CONFIGURED = "11111111-2222-4333-8444-555555555555"  # what AZURE_CLIENT_ID says
STRANGER = "22222222-2222-2222-2222-222222222222"
DATAVERSE = "shared_commondataserviceforapps"
POWER_PLATFORM = "https://api.powerplatform.lockstep.test"


async def msi_token(emu: Emulator, loopback: httpx.AsyncClient, resource: str, client_id: str) -> str:
    response = await loopback.get(
        emu.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": resource, "client_id": client_id},
        headers={"X-IDENTITY-HEADER": emu.identity_header},
    )
    assert response.status_code == 200
    return str(response.json()["access_token"])


async def test_shares_and_registration_made_before_the_token_hold_for_its_client_id(
    emu: Emulator, client: httpx.AsyncClient, loopback: httpx.AsyncClient, dev: Environment
) -> None:
    app = emu.add_app_registration(secret="s1")
    shared = dev.add_connection(DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id)
    dev.share_connection(shared, "CanEdit")  # Lockstep's identity, client id not yet known
    viewed = dev.add_connection(DATAVERSE, "ServicePrincipalOauth", client_id=app.client_id)
    dev.share_connection(viewed, "CanView")
    token = await msi_token(emu, loopback, POWER_PLATFORM, CONFIGURED)
    assert emu.identity_object_id == CONFIGURED
    headers = {"Authorization": f"Bearer {token}"}
    base = f"https://{dev.connectivity_host}/connectivity/connectors/{DATAVERSE}/connections"
    query = {"api-version": "1", "$filter": f"environment eq '{dev.id}'"}

    listed = await client.get(
        f"https://{dev.connectivity_host}/connectivity/connections",
        params={"api-version": "1"},
        headers=headers,
    )
    assert listed.status_code == 200  # registered as a management application without being named
    permissions = await client.get(f"{base}/{shared}/permissions", params=query, headers=headers)
    principals = {
        p["properties"]["roleName"]: p["properties"]["principal"]["id"] for p in permissions.json()["value"]
    }
    assert principals["CanEdit"] == CONFIGURED
    assert dev.connection(shared)["shares"] == {CONFIGURED: "CanEdit"}

    body = (await client.get(f"{base}/{shared}", params=query, headers=headers)).json()
    body["properties"]["connectionParametersSet"] = {
        "name": "ServicePrincipalOauth",
        "values": {
            "token:clientId": {"value": app.client_id},
            "token:clientSecret": {"value": "s1"},
            "token:TenantId": {"value": app.tenant_id},
        },
    }
    assert (await client.put(f"{base}/{shared}", params=query, headers=headers, json=body)).status_code == 200
    body["name"] = viewed
    refused = await client.put(f"{base}/{viewed}", params=query, headers=headers, json=body)
    assert refused.status_code == 403  # CanView may read, not edit

    stranger = {"Authorization": f"Bearer {emu.issue_token(POWER_PLATFORM, STRANGER)}"}
    assert (await client.get(f"{base}/{shared}", params=query, headers=stranger)).status_code == 403
    emu.register_management_app(STRANGER)
    stranger_put = await client.put(f"{base}/{shared}", params=query, headers=stranger, json=body)
    assert stranger_put.status_code == 403  # registered, but the share is Lockstep's, not its


async def test_who_am_i_is_the_application_user_with_the_callers_object_id(
    emu: Emulator, client: httpx.AsyncClient, loopback: httpx.AsyncClient, dev: Environment
) -> None:
    base = f"{dev.url}/api/data/v9.2/"
    token = await msi_token(emu, loopback, dev.url, CONFIGURED)
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
    who = (await client.get(f"{base}WhoAmI", headers=headers)).json()
    user = await client.get(
        f"{base}systemusers({who['UserId']})",
        params={"$select": "azureactivedirectoryobjectid"},
        headers=headers,
    )
    assert user.status_code == 200
    assert user.json()["azureactivedirectoryobjectid"] == CONFIGURED

    other = {**ODATA_HEADERS, "Authorization": f"Bearer {emu.issue_token(dev.url, STRANGER)}"}
    theirs = (await client.get(f"{base}WhoAmI", headers=other)).json()["UserId"]
    assert theirs != who["UserId"]
    assert dev.user_object_id(theirs) == STRANGER
    again = (await client.get(f"{base}WhoAmI", headers=other)).json()["UserId"]
    assert again == theirs  # one application user per caller
