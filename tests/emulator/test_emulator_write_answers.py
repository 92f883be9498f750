"""Writes that ask for the row back (`Prefer: return=representation`) get it, as stored.

Dataverse answers such a PATCH with `200 OK` (update) or `201 Created` (upsert that creates) and
the row after the write, limited to `$select`; without the preference, `204 No Content`.
"""

from __future__ import annotations

from typing import Any

import httpx

from emulator import Environment

from .test_emulator_dataverse import SCHEMA, _value_row

ROW_ID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
RETURN_ROW = {"Prefer": "return=representation"}
SELECT = {"$select": "environmentvariablevalueid,value"}


def create_body(definition_id: str, value: str) -> dict[str, Any]:
    return {
        "value": value,
        "schemaname": SCHEMA,
        "EnvironmentVariableDefinitionId@odata.bind": f"/environmentvariabledefinitions({definition_id})",
    }


async def test_update_answers_with_the_selected_columns_of_the_stored_row(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA, value="old")
    row = await _value_row(client, dv_base, dv_headers)
    url = f"{dv_base}environmentvariablevalues({row['environmentvariablevalueid']})"
    headers = {**dv_headers, **RETURN_ROW, "If-Match": row["@odata.etag"]}
    answer = await client.patch(url, params=SELECT, json={"value": "new"}, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["Preference-Applied"] == "return=representation"
    body = answer.json()
    assert body["@odata.context"].endswith(
        "$metadata#environmentvariablevalues(environmentvariablevalueid,value)/$entity"
    )
    assert {k: v for k, v in body.items() if k != "@odata.context"} == {
        "@odata.etag": dev.value_etag(SCHEMA),
        "environmentvariablevalueid": row["environmentvariablevalueid"],
        "value": "new",
    }
    assert body["@odata.etag"] != row["@odata.etag"]

    everything = await client.patch(url, json={"value": "newer"}, headers={**dv_headers, **RETURN_ROW})
    assert everything.status_code == 200
    assert everything.json()["_environmentvariabledefinitionid_value"] == dev.definition_id(SCHEMA)


async def test_a_reverted_write_answers_with_the_value_that_stayed(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA, value="old")
    row = await _value_row(client, dv_base, dv_headers)
    dev.revert_writes()
    answer = await client.patch(
        f"{dv_base}environmentvariablevalues({row['environmentvariablevalueid']})",
        params=SELECT,
        json={"value": "new"},
        headers={**dv_headers, **RETURN_ROW, "If-Match": row["@odata.etag"]},
    )
    assert answer.status_code == 200 and answer.json()["value"] == "old" == dev.value_of(SCHEMA)
    assert answer.json()["@odata.etag"] == dev.value_etag(SCHEMA)


async def test_upsert_create_answers_201_with_the_row(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definition_id = dev.add_definition(SCHEMA)
    answer = await client.patch(
        f"{dv_base}environmentvariablevalues({ROW_ID})",
        params=SELECT,
        json=create_body(definition_id, "first"),
        headers={**dv_headers, **RETURN_ROW, "If-None-Match": "*"},
    )
    assert answer.status_code == 201
    assert answer.headers["Preference-Applied"] == "return=representation"
    assert answer.json()["environmentvariablevalueid"] == ROW_ID and answer.json()["value"] == "first"
    assert answer.json()["@odata.etag"] == dev.value_etag(SCHEMA)

    dev.remove_definition(SCHEMA)
    definition_id = dev.add_definition(SCHEMA)
    dev.revert_writes()
    reverted = await client.post(
        f"{dv_base}environmentvariablevalues",
        params=SELECT,
        json=create_body(definition_id, "second"),
        headers={**dv_headers, "Prefer": "odata.include-annotations=*, return=representation"},
    )
    assert reverted.status_code == 201 and reverted.json()["value"] is None


async def test_without_the_preference_writes_answer_204_without_a_body(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definition_id = dev.add_definition(SCHEMA)
    url = f"{dv_base}environmentvariablevalues({ROW_ID})"
    created = await client.patch(
        url, params=SELECT, json=create_body(definition_id, "first"), headers=dv_headers
    )
    updated = await client.patch(url, json={"value": "second"}, headers=dv_headers)
    for answer in (created, updated):
        assert answer.status_code == 204 and answer.content == b""
        assert "Preference-Applied" not in answer.headers
    assert dev.value_of(SCHEMA) == "second"


async def test_an_unknown_column_is_refused_before_writing(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA, value="old")
    row = await _value_row(client, dv_base, dv_headers)
    answer = await client.patch(
        f"{dv_base}environmentvariablevalues({row['environmentvariablevalueid']})",
        params={"$select": "value,nope"},
        json={"value": "new"},
        headers={**dv_headers, **RETURN_ROW},
    )
    assert answer.status_code == 400 and dev.value_of(SCHEMA) == "old"
