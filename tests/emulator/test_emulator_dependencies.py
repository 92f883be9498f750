"""The `dependencies` entity set: filter, select, paging, over RetrieveDependentComponents' rows."""

from __future__ import annotations

from typing import Any

import httpx

from emulator import Environment

SELECT = "requiredcomponentobjectid,dependentcomponenttype,dependentcomponentobjectid"


def populated(dev: Environment) -> dict[str, str]:
    """Three definitions: one used by two flows and a topic, one by a flow, one by nothing."""
    definitions = {
        name: dev.add_definition(name, value="v") for name in ("contoso_A", "contoso_B", "contoso_Unused")
    }
    dev.add_flow("Invoices", ["contoso_A"])
    dev.add_flow("Both", ["contoso_A", "contoso_B"])
    bot = dev.add_bot("Help Desk")
    dev.add_bot_component(bot, "Reset password", uses=["contoso_A"])
    dev.add_bot_component(bot, "Text only", uses=["contoso_B"], dependency=False)
    return definitions


async def listing(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, str] | None
) -> tuple[list[dict[str, Any]], int]:
    """Every row, following nextLinks; and how many pages it took."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages += 1
        rows += response.json()["value"]
        next_url, params = response.json().get("@odata.nextLink"), None
    return rows, pages


async def test_the_listing_holds_exactly_what_retrieve_dependent_components_answers(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definitions = populated(dev)
    rows, pages = await listing(
        client,
        f"{dv_base}dependencies",
        {**dv_headers, "Prefer": "odata.maxpagesize=2"},
        {"$filter": "requiredcomponenttype eq 380", "$select": SELECT},
    )
    assert pages == 2  # 4 rows, 2 per page
    assert all(set(row) == {"dependencyid", *SELECT.split(",")} for row in rows)
    assert len({row["dependencyid"] for row in rows}) == len(rows) == 4
    for definition in definitions.values():
        answer = await client.get(
            f"{dv_base}RetrieveDependentComponents(ObjectId=@p1,ComponentType=@p2)",
            params={"@p1": definition, "@p2": "380"},
            headers=dv_headers,
        )
        expected = {
            (row["dependentcomponenttype"], row["dependentcomponentobjectid"])
            for row in answer.json()["value"]
        }
        listed = {
            (row["dependentcomponenttype"], row["dependentcomponentobjectid"])
            for row in rows
            if row["requiredcomponentobjectid"] == definition
        }
        assert listed == expected
    assert {row["requiredcomponentobjectid"] for row in rows} == {
        definitions["contoso_A"],
        definitions["contoso_B"],
    }


async def test_the_listing_filters_by_one_definition_and_pages_with_the_clients_size(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definitions = populated(dev)
    used_by_three = definitions["contoso_A"]
    one = await client.get(
        f"{dv_base}dependencies",
        params={
            "$filter": f"requiredcomponenttype eq 380 and requiredcomponentobjectid eq {used_by_three}",
            "$select": "dependentcomponenttype",
        },
        headers={**dv_headers, "Prefer": "odata.maxpagesize=1"},
    )
    assert one.status_code == 200
    assert one.headers["Preference-Applied"] == "odata.maxpagesize=1"
    assert len(one.json()["value"]) == 1 and "@odata.nextLink" in one.json()
    assert set(one.json()["value"][0]) == {"dependencyid", "dependentcomponenttype"}
    everything, _ = await listing(
        client,
        f"{dv_base}dependencies",
        dv_headers,
        {"$filter": f"requiredcomponentobjectid eq {used_by_three} and requiredcomponenttype eq 380"},
    )
    assert sorted(row["dependentcomponenttype"] for row in everything) == [29, 29, 10156]
    other_type = await client.get(
        f"{dv_base}dependencies", params={"$filter": "requiredcomponenttype eq 1"}, headers=dv_headers
    )
    assert other_type.json()["value"] == []  # the emulator records dependencies on definitions only


async def test_the_listing_refuses_what_it_does_not_understand(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    populated(dev)
    for params, says in (
        ({}, "requiredcomponenttype eq"),
        (
            {"$filter": "requiredcomponentobjectid eq 00000000-0000-4000-8000-000000000001"},
            "requiredcomponenttype eq",
        ),
        (
            {"$filter": "requiredcomponenttype eq 380 or dependentcomponenttype eq 29"},
            "'eq' on component types",
        ),
        ({"$filter": "requiredcomponenttype gt 1"}, "'eq' on component types"),
        (
            {"$filter": "requiredcomponenttype eq 380", "$select": "name"},
            "Could not find a property named 'name'",
        ),
        ({"$filter": "requiredcomponenttype eq 380", "$top": "1"}, "'$top' is not supported"),
    ):
        response = await client.get(f"{dv_base}dependencies", params=params, headers=dv_headers)
        assert response.status_code == 400, params
        assert says in response.json()["error"]["message"], (params, response.json())
    posted = await client.post(f"{dv_base}dependencies", json={}, headers=dv_headers)
    assert posted.status_code == 405
