"""Dataverse Web API emulation: strict OData headers, $filter/$select/$expand, etags, create rules."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from emulator import Emulator, Environment

SCHEMA = "contoso_SqlConnectionPassword"
SELECT = "environmentvariabledefinitionid,schemaname,type"
EXPAND = "environmentvariabledefinition_environmentvariablevalue($select=environmentvariablevalueid,value)"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def definition_query(literal: str) -> dict[str, str]:
    return {"$filter": f"schemaname eq '{literal}'", "$select": SELECT, "$expand": EXPAND}


def odata_error(response: httpx.Response) -> dict[str, Any]:
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["code"].startswith("0x")
    return dict(error)


async def test_definition_query_returns_definition_and_value_with_etags(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definition_id = dev.add_definition(SCHEMA, value="old")
    response = await client.get(
        f"{dv_base}environmentvariabledefinitions", params=definition_query(SCHEMA), headers=dv_headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].startswith(f"{dv_base}$metadata#environmentvariabledefinitions(")
    [row] = body["value"]
    assert set(row) == {
        "@odata.etag",
        "environmentvariabledefinitionid",
        "schemaname",
        "type",
        "environmentvariabledefinition_environmentvariablevalue",
    }
    assert row["environmentvariabledefinitionid"] == definition_id
    assert row["schemaname"] == SCHEMA
    assert row["type"] == 100000000
    assert re.fullmatch(r'W/"\d+"', row["@odata.etag"])
    [value] = row["environmentvariabledefinition_environmentvariablevalue"]
    assert set(value) == {"@odata.etag", "environmentvariablevalueid", "value"}
    assert value["value"] == "old"
    assert GUID.match(value["environmentvariablevalueid"])
    assert value["@odata.etag"] == dev.value_etag(SCHEMA)

    # Dataverse compares strings case-insensitively; an unknown name gives an empty list.
    lower = await client.get(
        f"{dv_base}environmentvariabledefinitions",
        params=definition_query(SCHEMA.lower()),
        headers=dv_headers,
    )
    assert len(lower.json()["value"]) == 1
    none = await client.get(
        f"{dv_base}environmentvariabledefinitions",
        params=definition_query("contoso_Nope"),
        headers=dv_headers,
    )
    assert none.status_code == 200
    assert none.json()["value"] == []


async def test_definition_without_value_row_expands_to_empty_list(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA)
    response = await client.get(
        f"{dv_base}environmentvariabledefinitions", params=definition_query(SCHEMA), headers=dv_headers
    )
    [row] = response.json()["value"]
    assert row["environmentvariabledefinition_environmentvariablevalue"] == []
    assert dev.value_of(SCHEMA) is None
    assert dev.value_row_count(SCHEMA) == 0


@pytest.mark.parametrize(
    ("missing", "replacement"),
    [
        ("OData-MaxVersion", None),
        ("OData-Version", None),
        ("Accept", None),
        ("OData-Version", "3.0"),
        ("Accept", "application/xml"),
    ],
)
async def test_odata_headers_are_strict(
    client: httpx.AsyncClient,
    dv_base: str,
    dv_headers: dict[str, str],
    missing: str,
    replacement: str | None,
) -> None:
    headers = {k: v for k, v in dv_headers.items() if k != missing}
    if replacement is None:
        # httpx adds "Accept: */*" by default; a missing Accept must not become that silently.
        headers.setdefault("Accept", "*/*")
    else:
        headers[missing] = replacement
    response = await client.get(f"{dv_base}WhoAmI", headers=headers)
    assert response.status_code == 400
    assert missing in odata_error(response)["message"]


async def test_who_am_i_and_unknown_paths(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    who = await client.get(f"{dv_base}WhoAmI", headers=dv_headers)
    assert who.status_code == 200
    assert {"BusinessUnitId", "UserId", "OrganizationId"} <= set(who.json())
    assert GUID.match(who.json()["UserId"])
    for path in (f"{dv_base}accounts", f"{dev.url}/api/data/v9.1/WhoAmI", f"{dev.url}/"):
        response = await client.get(path, headers=dv_headers)
        assert response.status_code == 404, path
        odata_error(response)


async def test_dataverse_token_must_be_for_this_org(
    emu: Emulator, client: httpx.AsyncClient, dv_base: str, dv_headers: dict[str, str]
) -> None:
    emu.environment("test", org="contoso-test")
    other = emu.issue_token("https://contoso-test.crm.lockstep.test/.default")
    headers = {**dv_headers, "Authorization": f"Bearer {other}"}
    response = await client.get(f"{dv_base}WhoAmI", headers=headers)
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "expected 'https://contoso-dev.crm.lockstep.test'" in message
    assert "got 'https://contoso-test.crm.lockstep.test'" in message
    no_auth = {k: v for k, v in dv_headers.items() if k != "Authorization"}
    assert (await client.get(f"{dv_base}WhoAmI", headers=no_auth)).status_code == 401


async def test_filter_quote_escaping_is_parsed_strictly(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition("contoso_O'Brien", value="x")
    url = f"{dv_base}environmentvariabledefinitions"
    escaped = await client.get(url, params=definition_query("contoso_O''Brien"), headers=dv_headers)
    assert escaped.status_code == 200
    assert [row["schemaname"] for row in escaped.json()["value"]] == ["contoso_O'Brien"]

    for bad_filter in (
        "schemaname eq 'contoso_O'Brien'",  # unescaped quote
        "schemaname eq contoso_X",
        "schemaname eq 'a' or schemaname eq 'b'",
        "type eq 100000000",
        "contains(schemaname,'x')",
    ):
        params = {**definition_query("x"), "$filter": bad_filter}
        response = await client.get(url, params=params, headers=dv_headers)
        assert response.status_code == 400, bad_filter
        odata_error(response)


@pytest.mark.parametrize(
    "params",
    [
        {"$select": "environmentvariabledefinitionid,schemaname,nosuchcolumn"},
        {"$expand": "environmentvariabledefinition_environmentvariablevalue($select=value,nosuchcolumn)"},
        {"$expand": "nosuchnavigation($select=value)"},
        {"$top": "1"},
    ],
)
async def test_select_and_expand_reject_unknown_names(
    client: httpx.AsyncClient, dv_base: str, dv_headers: dict[str, str], params: dict[str, str]
) -> None:
    response = await client.get(
        f"{dv_base}environmentvariabledefinitions",
        params={**definition_query(SCHEMA), **params},
        headers=dv_headers,
    )
    assert response.status_code == 400
    odata_error(response)


async def test_patch_with_current_etag_updates_and_bumps_the_etag(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA, value="old")
    row = await _value_row(client, dv_base, dv_headers)
    etag = row["@odata.etag"]
    url = f"{dv_base}environmentvariablevalues({row['environmentvariablevalueid']})"

    response = await client.patch(url, json={"value": "new"}, headers={**dv_headers, "If-Match": etag})
    assert response.status_code == 204
    assert response.content == b""
    assert dev.value_of(SCHEMA) == "new"
    new_etag = dev.value_etag(SCHEMA)
    assert new_etag is not None
    assert _etag_number(new_etag) > _etag_number(etag)

    read = await client.get(url, params={"$select": "value"}, headers=dv_headers)
    assert read.status_code == 200
    assert read.json()["value"] == "new"
    assert read.json()["@odata.etag"] == new_etag
    assert read.json()["environmentvariablevalueid"] == row["environmentvariablevalueid"]

    star = await client.patch(url, json={"value": "newer"}, headers={**dv_headers, "If-Match": "*"})
    assert star.status_code == 204
    assert dev.value_of(SCHEMA) == "newer"


async def test_patch_with_stale_etag_is_412_and_changes_nothing(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA, value="old")
    row = await _value_row(client, dv_base, dv_headers)
    dev.set_value(SCHEMA, "tampered")  # someone else wrote in between
    tampered_etag = dev.value_etag(SCHEMA)
    assert tampered_etag != row["@odata.etag"]
    url = f"{dv_base}environmentvariablevalues({row['environmentvariablevalueid']})"
    response = await client.patch(
        url, json={"value": "mine"}, headers={**dv_headers, "If-Match": row["@odata.etag"]}
    )
    assert response.status_code == 412
    assert response.json() == {
        "error": {
            "code": "0x80060882",
            "message": "The version of the existing record doesn't match the RowVersion property provided.",
        }
    }
    assert dev.value_of(SCHEMA) == "tampered"
    assert dev.value_etag(SCHEMA) == tampered_etag


async def test_patch_validation(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA, value="old")
    row = await _value_row(client, dv_base, dv_headers)
    url = f"{dv_base}environmentvariablevalues({row['environmentvariablevalueid']})"
    headers = {**dv_headers, "If-Match": "*"}

    unknown_property = await client.patch(url, json={"value": "x", "valeu": "y"}, headers=headers)
    assert unknown_property.status_code == 400
    assert "'valeu' does not exist" in odata_error(unknown_property)["message"]

    long_value = "S" * 2001
    too_long = await client.patch(url, json={"value": long_value}, headers=headers)
    assert too_long.status_code == 400
    assert long_value not in too_long.text
    assert "2000" in odata_error(too_long)["message"]
    assert (await client.patch(url, json={"value": "S" * 2000}, headers=headers)).status_code == 204

    not_json = await client.patch(url, content=b"value=x", headers={**headers, "Content-Type": "text/plain"})
    assert not_json.status_code == 415

    missing = f"{dv_base}environmentvariablevalues(00000000-0000-4000-8000-000000000000)"
    assert (await client.patch(missing, json={"value": "x"}, headers=headers)).status_code == 404
    assert (await client.get(missing, headers=dv_headers)).status_code == 404

    # Without If-Match (an upsert in real Dataverse) an existing row is simply updated.
    assert (await client.patch(url, json={"value": "plain"}, headers=dv_headers)).status_code == 204
    assert dev.value_of(SCHEMA) == "plain"
    assert dev.value_row_count(SCHEMA) == 1


async def test_secret_type_definition_accepts_only_key_vault_references(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    reference = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
        "/providers/Microsoft.KeyVault/vaults/lockstep-demo/secrets/sql-conn-password"
    )
    dev.add_definition("contoso_SecretRef", type=100000005, value=reference)
    response = await client.get(
        f"{dv_base}environmentvariabledefinitions",
        params=definition_query("contoso_SecretRef"),
        headers=dv_headers,
    )
    [row] = response.json()["value"]
    assert row["type"] == 100000005
    value_id = row["environmentvariabledefinition_environmentvariablevalue"][0]["environmentvariablevalueid"]
    url = f"{dv_base}environmentvariablevalues({value_id})"
    plain = await client.patch(url, json={"value": "plain-secret"}, headers={**dv_headers, "If-Match": "*"})
    assert plain.status_code == 400
    assert "plain-secret" not in plain.text
    assert dev.value_of("contoso_SecretRef") == reference


async def test_post_creates_a_value_row(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definition_id = dev.add_definition(SCHEMA)
    response = await client.post(
        f"{dv_base}environmentvariablevalues",
        json={
            "value": "first",
            "schemaname": SCHEMA,
            "EnvironmentVariableDefinitionId@odata.bind": f"/environmentvariabledefinitions({definition_id})",
        },
        headers=dv_headers,
    )
    assert response.status_code == 204
    entity_id = response.headers["OData-EntityId"]
    match = re.fullmatch(
        r"https://contoso-dev\.crm\.lockstep\.test/api/data/v9\.2/environmentvariablevalues\((.+)\)",
        entity_id,
    )
    assert match is not None
    assert GUID.match(match.group(1))
    assert dev.value_of(SCHEMA) == "first"
    assert dev.value_row_count(SCHEMA) == 1
    read = await client.get(entity_id, headers=dv_headers)
    assert read.json()["value"] == "first"


@pytest.mark.parametrize(
    "bind_name",
    [
        "environmentvariabledefinitionid@odata.bind",
        "EnvironmentVariableDefinitionID@odata.bind",
        "environmentvariabledefinitionid_environmentvariablevalue@odata.bind",
    ],
)
async def test_post_bind_name_is_case_sensitive(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str], bind_name: str
) -> None:
    definition_id = dev.add_definition(SCHEMA)
    response = await client.post(
        f"{dv_base}environmentvariablevalues",
        json={
            "value": "first",
            "schemaname": SCHEMA,
            bind_name: f"/environmentvariabledefinitions({definition_id})",
        },
        headers=dv_headers,
    )
    assert response.status_code == 400
    name = bind_name.removesuffix("@odata.bind")
    assert odata_error(response)["message"].startswith(
        f"An undeclared property '{name}' which only has property annotations in the payload but no "
        "property value was found in the payload."
    )
    assert dev.value_row_count(SCHEMA) == 0


async def test_post_duplicate_makes_a_second_row_and_unknown_definition_is_404(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    """As in Dataverse, nothing stops a second value row: that is why clients must not POST twice."""
    definition_id = dev.add_definition(SCHEMA, value="existing")
    body = {
        "value": "second",
        "schemaname": SCHEMA,
        "EnvironmentVariableDefinitionId@odata.bind": f"/environmentvariabledefinitions({definition_id})",
    }
    duplicate = await client.post(f"{dv_base}environmentvariablevalues", json=body, headers=dv_headers)
    assert duplicate.status_code == 204
    assert dev.value_row_count(SCHEMA) == 2

    unknown = {
        **body,
        "EnvironmentVariableDefinitionId@odata.bind": (
            "/environmentvariabledefinitions(00000000-0000-4000-8000-000000000000)"
        ),
    }
    missing = await client.post(f"{dv_base}environmentvariablevalues", json=unknown, headers=dv_headers)
    assert missing.status_code == 404
    odata_error(missing)

    no_schema = {k: v for k, v in body.items() if k != "schemaname"}
    assert (
        await client.post(f"{dv_base}environmentvariablevalues", json=no_schema, headers=dv_headers)
    ).status_code == 400


def test_environment_handles(emu: Emulator) -> None:
    env = emu.environment("prod", org="contoso")
    assert env.url == "https://contoso.crm.lockstep.test"
    assert emu.environment("prod").id == env.id
    with pytest.raises(ValueError, match="already exists"):
        emu.environment("prod", org="other")
    with pytest.raises(ValueError, match="already used"):
        emu.environment("prod2", org="contoso")
    env.add_definition("contoso_A", value="a")
    with pytest.raises(ValueError, match="already exists"):
        env.add_definition("CONTOSO_a")
    env.set_value("contoso_A", "b")
    assert env.value_of("contoso_A") == "b"
    env.remove_definition("contoso_A")
    with pytest.raises(KeyError):
        env.value_of("contoso_A")


async def _value_row(client: httpx.AsyncClient, dv_base: str, dv_headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(
        f"{dv_base}environmentvariabledefinitions", params=definition_query(SCHEMA), headers=dv_headers
    )
    [row] = response.json()["value"]
    [value] = row["environmentvariabledefinition_environmentvariablevalue"]
    return dict(value)


def _etag_number(etag: str) -> int:
    match = re.fullmatch(r'W/"(\d+)"', etag)
    assert match is not None
    return int(match.group(1))


async def test_upsert_patch_creates_once_and_if_none_match_never_overwrites(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definition_id = dev.add_definition(SCHEMA)
    row_id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
    body = {
        "value": "first",
        "schemaname": SCHEMA,
        "EnvironmentVariableDefinitionId@odata.bind": f"/environmentvariabledefinitions({definition_id})",
    }
    url = f"{dv_base}environmentvariablevalues({row_id})"
    create_only = {**dv_headers, "If-None-Match": "*"}
    created = await client.patch(url, json=body, headers=create_only)
    assert created.status_code == 204 and dev.value_of(SCHEMA) == "first"
    again = await client.patch(url, json={**body, "value": "second"}, headers=create_only)
    assert again.status_code == 412
    assert again.json()["error"]["message"] == "A record with matching key values already exists."
    assert dev.value_row_count(SCHEMA) == 1 and dev.value_of(SCHEMA) == "first"
    update_only = await client.patch(
        f"{dv_base}environmentvariablevalues(2b4e28ba-2fa1-41d2-883f-0016d3cca427)",
        json={"value": "x"},
        headers={**dv_headers, "If-Match": "*"},
    )
    assert update_only.status_code == 404
