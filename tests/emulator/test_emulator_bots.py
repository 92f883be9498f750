"""Dataverse bots and botcomponents: OData queries, PvaPublish (delay, throttles), dependencies."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx

from emulator import Emulator, Environment

SCHEMA = "contoso_ApiBaseUrl"


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


async def test_bots_and_components_answer_filters_select_and_paging(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    bot = dev.add_bot("Help Desk")
    other = dev.add_bot("Sales Coach", published=False)
    topic = dev.add_bot_component(bot, "Reset password", uses=[SCHEMA])
    dev.add_bot_component(bot, "Greeting")
    dev.add_bot_component(other, "Pricing", uses=[SCHEMA])

    bots = await client.get(
        f"{dv_base}bots", params={"$select": "botid,name,schemaname,publishedon"}, headers=dv_headers
    )
    assert bots.status_code == 200
    rows = {row["botid"]: row for row in bots.json()["value"]}
    assert set(rows[bot]) == {"botid", "name", "schemaname", "publishedon"}
    assert rows[bot]["name"] == "Help Desk"
    assert rows[bot]["publishedon"].endswith("Z")
    assert rows[other]["publishedon"] is None

    in_filter = f"Microsoft.Dynamics.CRM.In(PropertyName='botid',PropertyValues=['{bot}','{other}'])"
    both = await client.get(f"{dv_base}bots", params={"$filter": in_filter}, headers=dv_headers)
    assert len(both.json()["value"]) == 2

    search = await client.get(
        f"{dv_base}botcomponents",
        params={
            "$filter": f"contains(data,'{SCHEMA.lower()}') and _parentbotid_value eq {bot.upper()}",
            "$select": "botcomponentid,_parentbotid_value,name,data,modifiedon",
        },
        headers=dv_headers,
    )
    assert search.status_code == 200
    [row] = search.json()["value"]
    assert row["botcomponentid"] == topic
    assert f"=Env.{SCHEMA}" in row["data"]
    assert parse(row["modifiedon"]) < parse(rows[bot]["publishedon"])

    paged = await client.get(
        f"{dv_base}botcomponents", headers={**dv_headers, "Prefer": "odata.maxpagesize=2"}
    )
    assert len(paged.json()["value"]) == 2
    rest = await client.get(paged.json()["@odata.nextLink"], headers=dv_headers)
    assert len(rest.json()["value"]) == 1

    unknown = await client.get(f"{dv_base}bots", params={"$filter": "nope eq 1"}, headers=dv_headers)
    assert unknown.status_code == 400
    assert "nope" in unknown.json()["error"]["message"]
    one = await client.get(f"{dv_base}bots({bot})", params={"$select": "publishedon"}, headers=dv_headers)
    assert set(one.json()) >= {"botid", "publishedon"}


async def test_publish_moves_publishedon_forward_and_is_recorded(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    bot = dev.add_bot("Help Desk")
    component = dev.add_bot_component(bot, "Reset password", uses=[SCHEMA])
    before = dev.bot(bot)["published_on"]
    dev.edit_bot_component(component)
    assert dev.bot(bot)["unpublished_changes"]
    url = f"{dv_base}bots({bot})/Microsoft.Dynamics.CRM.PvaPublish"
    published = await client.post(url, headers=dv_headers, json={})
    assert published.status_code == 204
    after = dev.bot(bot)
    assert after["published_on"] > before
    assert not after["unpublished_changes"]
    # Twice within one second still moves forward (Dataverse keeps whole seconds).
    assert (await client.post(url, headers=dv_headers, json={})).status_code == 204
    assert dev.bot(bot)["published_on"] > after["published_on"]
    assert dev.publishes() == [bot, bot]

    refused = await client.post(url, headers=dv_headers, json={"unexpected": 1})
    assert refused.status_code == 400
    missing = await client.post(
        f"{dv_base}bots(00000000-0000-0000-0000-000000000001)/Microsoft.Dynamics.CRM.PvaPublish",
        headers=dv_headers,
        json={},
    )
    assert missing.status_code == 404


async def test_publish_delay_makes_a_client_poll(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    bot = dev.add_bot("Help Desk")
    dev.set_publish_delay(0.3)
    before = dev.bot(bot)["published_on"]
    url = f"{dv_base}bots({bot})/Microsoft.Dynamics.CRM.PvaPublish"
    assert (await client.post(url, headers=dv_headers, json={})).status_code == 204
    read = await client.get(f"{dv_base}bots({bot})", params={"$select": "publishedon"}, headers=dv_headers)
    assert parse(read.json()["publishedon"]) == before
    await asyncio.sleep(0.4)
    read = await client.get(f"{dv_base}bots({bot})", params={"$select": "publishedon"}, headers=dv_headers)
    assert parse(read.json()["publishedon"]) > before


async def test_publish_throttling_kinds(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    bot = dev.add_bot("Help Desk")
    before = dev.bot(bot)["published_on"]
    dev.throttle_publishes("429", retry_after=3)
    dev.throttle_publishes("400")
    dev.throttle_publishes("401", times=2)
    url = f"{dv_base}bots({bot})/Microsoft.Dynamics.CRM.PvaPublish"
    first = await client.post(url, headers=dv_headers, json={})
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "3"
    second = await client.post(url, headers=dv_headers, json={})
    assert second.status_code == 400
    assert "429" in second.json()["error"]["message"]
    for _ in range(2):
        bare = await client.post(url, headers=dv_headers, json={})
        assert bare.status_code == 401
        assert bare.content == b""
    assert dev.bot(bot)["published_on"] == before
    assert (await client.post(url, headers=dv_headers, json={})).status_code == 204
    assert [status for _, status in dev.publish_attempts()] == [429, 400, 401, 401, 204]


async def test_dependencies_list_bot_components_and_their_type(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    definition = dev.add_definition(SCHEMA, value="https://api.contoso.test")
    bot = dev.add_bot("Help Desk")
    topic = dev.add_bot_component(bot, "Reset password", uses=[SCHEMA])
    dev.add_bot_component(bot, "No dependency row", uses=[SCHEMA], dependency=False)
    flow = dev.add_flow("Agent flow", [SCHEMA], agent_flow=True)
    response = await client.get(
        f"{dv_base}RetrieveDependentComponents(ObjectId=@p1,ComponentType=@p2)",
        params={"@p1": definition, "@p2": "380"},
        headers=dv_headers,
    )
    assert response.status_code == 200
    dependents = {
        row["dependentcomponentobjectid"]: row["dependentcomponenttype"] for row in response.json()["value"]
    }
    definitions = await client.get(
        f"{dv_base}solutioncomponentdefinitions",
        params={"$filter": "name eq 'botcomponent'", "$select": "name,solutioncomponenttype"},
        headers=dv_headers,
    )
    [botcomponent] = definitions.json()["value"]
    assert dependents == {topic: botcomponent["solutioncomponenttype"], flow: 29}

    flows = await client.get(f"{dv_base}workflows", params={"$filter": "category eq 5"}, headers=dv_headers)
    [row] = flows.json()["value"]
    assert (row["category"], row["modernflowtype"]) == (5, 1)


async def test_publish_faults_and_requests_are_recorded(
    emu: Emulator, client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    bot = dev.add_bot("Help Desk")
    emu.inject_fault("dataverse", 503, path_contains="PvaPublish")
    url = f"{dv_base}bots({bot})/Microsoft.Dynamics.CRM.PvaPublish"
    assert (await client.post(url, headers=dv_headers, json={})).status_code == 503
    assert (await client.post(url, headers=dv_headers, json={})).status_code == 204
    assert [r.status for r in emu.requests if r.path.endswith("PvaPublish")] == [503, 204]
