"""The connectivity adapter against respx: hosts, paging, the PUT body, and how refusals read."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from sync.adapters.connection_model import connection_from, credential_set
from sync.adapters.connections import (
    ConnectionNotFound,
    ConnectivityClient,
    NotEditable,
    environment_host,
)
from sync.errors import PermanentError, TransientError
from tests.unit.test_adapters import CANARY, FAST, FakeCredential

ENV = "6a1b2c3d-0000-4000-8000-000000000001"
HOST = "https://6a1b2c3d0000400080000000000000.01.environment.api.powerplatform.com"
CONNECTOR = "shared_commondataserviceforapps"
CLIENT = "11111111-2222-4333-8444-555555555555"
TENANT = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
ONE = f"{HOST}/connectivity/connectors/{CONNECTOR}/connections/conn-1"


def connection_body(
    name: str = "conn-1",
    *,
    parameter_set: str | None = "ServicePrincipalOauth",
    values: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    connector: str = CONNECTOR,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiId": f"/providers/Microsoft.PowerApps/apis/{connector}",
        "displayName": "Flows SPN",
        "statuses": [status or {"status": "Connected"}],
        "createdBy": {"id": "F99F844B-CE3B-49AE-86F3-E374ECAE789C", "type": "User"},
        "lastModifiedTime": "2024-07-28T13:57:06.3545891Z",
        "environment": {"id": f"/providers/Microsoft.PowerApps/environments/{ENV}", "name": ENV},
        "connectionParameters": {"sku": "Enterprise"},
    }
    if parameter_set is not None:
        properties["connectionParametersSet"] = {
            "name": parameter_set,
            "values": values if values is not None else {"token:clientId": {"value": CLIENT.upper()}},
        }
    return {
        "name": name,
        "id": f"/providers/Microsoft.PowerApps/apis/{connector}/connections/{name}",
        "type": "Microsoft.PowerApps/apis/connections",
        "properties": properties,
    }


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as http:
        yield ConnectivityClient(http, FakeCredential(), policy=FAST)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("environment_id", "base", "host"),
    [
        (ENV, "https://api.powerplatform.com", HOST.removeprefix("https://")),
        (  # the default environment: lower case, dashes removed, same split
            "Default-AAAAAAAA-bbbb-4ccc-8ddd-eeeeeeeeeeee",
            "https://api.powerplatform.com",
            "defaultaaaaaaaabbbb4ccc8dddeeeeeeeeee.ee.environment.api.powerplatform.com",
        ),
        (  # sovereign clouds split one character off, as Microsoft's own clients do
            ENV,
            "https://api.high.powerplatform.microsoft.us",
            "6a1b2c3d00004000800000000000000.1.environment.api.high.powerplatform.microsoft.us",
        ),
        (ENV, "https://api.powerplatform.lockstep.test/", HOST[8:].replace(".com", ".lockstep.test")),
    ],
)
def test_environment_host(environment_id: str, base: str, host: str) -> None:
    assert environment_host(environment_id, base) == host


def test_environment_host_refuses_what_is_not_an_id() -> None:
    with pytest.raises(PermanentError):
        environment_host("../evil", "https://api.powerplatform.com")


@respx.mock
async def test_list_follows_next_links_and_stops_at_a_repeat(client: ConnectivityClient) -> None:
    first = f"{HOST}/connectivity/connections"
    second = f"{HOST}/connectivity/connections?api-version=1&$skiptoken=2"
    route = respx.get(url__startswith=first).mock(
        side_effect=[
            httpx.Response(200, json={"value": [connection_body("a")], "nextLink": second}),
            httpx.Response(200, json={"value": [connection_body("b"), "junk"], "nextLink": second}),
        ]
    )
    listed = await client.list_connections(ENV)
    assert [c.id for c in listed] == ["a", "b"]
    assert route.call_count == 2  # the repeated link is not fetched again
    assert route.calls[0].request.url.params["api-version"] == "1"
    assert (
        route.calls[0].request.headers["Authorization"]
        == "Bearer token-https://api.powerplatform.com/.default"
    )


@respx.mock
async def test_a_next_link_to_another_host_is_not_followed(client: ConnectivityClient) -> None:
    respx.get(url__startswith=f"{HOST}/connectivity/connections").respond(
        json={"value": [], "nextLink": "https://attacker.example/steal"}
    )
    with pytest.raises(TransientError, match="another host"):
        await client.list_connections(ENV)


@respx.mock
async def test_get_parses_a_service_principal_connection(client: ConnectivityClient) -> None:
    route = respx.get(url__startswith=ONE).respond(json=connection_body())
    connection = await client.get_connection(ENV, CONNECTOR, "conn-1")
    assert route.calls.last.request.url.params["$filter"] == f"environment eq '{ENV}'"
    assert connection.service_principal and connection.client_id == CLIENT
    assert connection.status == "Connected" and connection.display_name == "Flows SPN"
    assert (
        connection.connector == CONNECTOR and connection.created_by == "f99f844b-ce3b-49ae-86f3-e374ecae789c"
    )
    assert connection.last_modified is not None and connection.last_modified.microsecond == 354589


def test_an_error_status_is_read_with_its_code() -> None:
    body = connection_body(
        status={
            "status": "Error",
            "target": "token",
            "error": {"code": "Unauthenticated", "message": "AADSTS7000215"},
        }
    )
    connection = connection_from(body, ENV)
    assert connection is not None and (connection.status, connection.error_code) == (
        "Error",
        "Unauthenticated",
    )


@respx.mock
async def test_put_sends_the_object_back_with_the_complete_set(client: ConnectivityClient) -> None:
    values = {
        "token:clientId": {"value": CLIENT},
        "token:resourceUri": {"value": "https://x.crm.dynamics.com"},
    }
    body = connection_body(values=values)
    connection = connection_from(body, ENV)
    assert connection is not None
    route = respx.put(url__startswith=ONE).respond(json=body)
    await client.put_credentials(connection, CLIENT, TENANT, SecretStr(CANARY))
    request = route.calls.last.request
    assert request.url.params["$filter"] == f"environment eq '{ENV}'"
    sent = json.loads(request.content)
    expected = copy.deepcopy(body)
    del expected["properties"]["connectionParameters"]
    expected["properties"]["connectionParametersSet"] = {
        "name": "ServicePrincipalOauth",  # the set the connection has, kept
        "values": {
            "token:clientId": {"value": CLIENT},
            "token:resourceUri": {"value": "https://x.crm.dynamics.com"},  # kept as the GET showed it
            "token:TenantId": {"value": TENANT},
            "token:grantType": {"value": "client_credentials"},
            "token:clientSecret": {"value": CANARY},
        },
    }
    assert sent == expected


def test_the_set_keeps_the_names_the_connection_uses() -> None:
    values = {
        "TOKEN:CLIENTID": {"value": CLIENT},
        "token:tenantId": {"value": TENANT},
        "token:clientSecret": {},
    }
    connection = connection_from(connection_body(parameter_set="oauthSP", values=values), ENV)
    assert connection is not None
    built = credential_set(connection, CLIENT, TENANT, SecretStr(CANARY))
    assert built["name"] == "oauthSP"
    assert built["values"] == {
        "TOKEN:CLIENTID": {"value": CLIENT},
        "token:tenantId": {"value": TENANT},
        "TOKEN:grantType": {"value": "client_credentials"},
        "TOKEN:clientSecret": {"value": CANARY},
    }


@pytest.mark.parametrize("parameter_set", ["Oauth", None, "firstParty"])
def test_a_user_sign_in_is_never_switched_to_a_service_principal(parameter_set: str | None) -> None:
    connection = connection_from(connection_body(parameter_set=parameter_set), ENV)
    assert connection is not None and not connection.service_principal
    with pytest.raises(PermanentError, match="does not use a service principal"):
        credential_set(connection, CLIENT, TENANT, SecretStr(CANARY))


@pytest.mark.parametrize(("status", "hint"), [(403, "Can edit"), (401, "management application")])
@respx.mock
async def test_a_refused_put_is_not_editable_and_never_carries_the_message(
    client: ConnectivityClient, status: int, hint: str
) -> None:
    connection = connection_from(connection_body(), ENV)
    assert connection is not None
    error = {"error": {"code": "Forbidden", "message": f"you sent {CANARY}"}}
    respx.put(url__startswith=ONE).respond(status, json=error)
    with pytest.raises(NotEditable) as caught:
        await client.put_credentials(connection, CLIENT, TENANT, SecretStr(CANARY))
    assert hint in str(caught.value) and "'Flows SPN' (conn-1)" in str(caught.value)
    assert CANARY not in str(caught.value) and "you sent" not in str(caught.value)


@respx.mock
async def test_a_missing_connection_is_permanent(client: ConnectivityClient) -> None:
    respx.get(url__startswith=ONE).respond(
        404, json={"error": {"code": "ConnectionNotFound", "message": "x"}}
    )
    with pytest.raises(ConnectionNotFound, match="HTTP 404 ConnectionNotFound"):
        await client.get_connection(ENV, CONNECTOR, "conn-1")


@respx.mock
async def test_a_rejected_credential_names_the_code_only(client: ConnectivityClient) -> None:
    connection = connection_from(connection_body(), ENV)
    assert connection is not None
    error = {"error": {"code": "InvalidClientSecret", "message": f"secret {CANARY[:12]} is wrong"}}
    respx.put(url__startswith=ONE).respond(400, json=error)
    with pytest.raises(PermanentError) as caught:
        await client.put_credentials(connection, CLIENT, TENANT, SecretStr(CANARY))
    assert "HTTP 400 InvalidClientSecret" in str(caught.value)
    assert CANARY[:12] not in str(caught.value)


@respx.mock
async def test_throttling_is_retried_then_transient(client: ConnectivityClient) -> None:
    route = respx.get(url__startswith=ONE).respond(429, headers={"Retry-After": "0"})
    with pytest.raises(TransientError, match="Power Platform API answered HTTP 429"):
        await client.get_connection(ENV, CONNECTOR, "conn-1")
    assert route.call_count == FAST.attempts


@respx.mock
async def test_permissions_are_read_with_principal_ids(client: ConnectivityClient) -> None:
    rows = [
        {"properties": {"roleName": "CanEdit", "principal": {"id": "ABC", "type": "ServicePrincipal"}}},
        {"properties": {"roleName": "Owner", "principal": {"id": "def", "type": "User"}}},
        "junk",
    ]
    respx.get(url__startswith=f"{ONE}/permissions").respond(json={"value": rows})
    found = await client.permissions(ENV, CONNECTOR, "conn-1")
    assert [(p.role, p.principal_id) for p in found[:2]] == [("CanEdit", "abc"), ("Owner", "def")]


async def test_ids_that_would_change_the_url_are_refused(client: ConnectivityClient) -> None:
    with pytest.raises(PermanentError):
        await client.get_connection(ENV, CONNECTOR, "../other")
