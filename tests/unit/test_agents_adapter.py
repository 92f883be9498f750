"""The agents adapter against respx: finding agents, paging, publishing, throttling, confirming."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import respx
from azure.core.credentials import AccessToken

from sync import deadline
from sync.adapters import agents as agents_module
from sync.adapters.agents import AgentsClient, is_throttled
from sync.adapters.dataverse import DataverseClient
from sync.adapters.flows import FlowsClient
from sync.adapters.http import RetryPolicy
from sync.agent_rules import Agent
from sync.errors import PermanentError, TransientError
from sync.mapping import Environment
from sync.models import FlowOutcome, Target
from sync.steps.flow_refresh import FlowRefresh

ORG = "https://contoso-dev.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
VAR = "contoso_ApiKey"
DEFINITION = "d0000000-0000-4000-8000-000000000001"
BOT_A = "b0000000-0000-4000-8000-00000000000a"
BOT_B = "b0000000-0000-4000-8000-00000000000b"
BOT_C = "b0000000-0000-4000-8000-00000000000c"
COMPONENT_DEP = "c0000000-0000-4000-8000-0000000000d1"


class FakeCredential:
    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as http:
        yield AgentsClient(DataverseClient(http, FakeCredential(), FAST))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents_module, "PUBLISH_BACKOFF", 0.01)


def component(bot: str, data: str) -> dict[str, Any]:
    return {"botcomponentid": "c0000000-0000-4000-8000-000000000001", "_parentbotid_value": bot, "data": data}


def bot(bot_id: str, name: str, published: str | None = "2024-05-01T10:00:00Z") -> dict[str, Any]:
    return {"botid": bot_id, "name": name, "schemaname": f"cr1_{name}", "publishedon": published}


def mock_bots() -> None:
    respx.get(f"{API}/bots").respond(json={"value": [{"botid": BOT_A}]})  # the environment has agents
    for bot_id, name in ((BOT_A, "Alpha"), (BOT_B, "Beta"), (BOT_C, "Gamma")):
        respx.get(f"{API}/bots({bot_id})").respond(json=bot(bot_id, name))


@respx.mock
async def test_agents_found_by_text_are_confirmed_by_a_whole_identifier_across_pages(
    client: AgentsClient,
) -> None:
    mock_bots()
    second = f"{API}/botcomponents?$skiptoken=2"
    search = respx.get(f"{API}/botcomponents").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "value": [
                        component(BOT_A, 'kind: AdaptiveDialog\n  value: =Env.contoso_ApiKey & "x"'),
                        component(BOT_B, "value: =Env.contoso_ApiKeyOld"),  # another variable
                        component(BOT_C, "value: =MyEnv.contoso_ApiKey"),  # not Env
                    ],
                    "@odata.nextLink": second,
                },
            ),
            httpx.Response(
                200,
                json={"value": [component(BOT_C, "text: '{Env.CONTOSO_APIKEY}'")], "@odata.nextLink": second},
            ),
        ]
    )
    respx.get(f"{API}/solutioncomponentdefinitions").respond(404)
    found = await client.agents_using(ORG, VAR, DEFINITION)
    assert [agent.name for agent in found] == ["Alpha", "Gamma"]
    first = search.calls[0].request
    assert first.url.params["$filter"] == "contains(data,'contoso_ApiKey')"
    assert first.headers["Prefer"] == "odata.maxpagesize=500"
    assert search.call_count == 2  # the repeated next link ends the listing


@respx.mock
async def test_agents_found_by_dependency_use_the_organisations_type_code(client: AgentsClient) -> None:
    mock_bots()
    respx.get(f"{API}/botcomponents").respond(json={"value": []})
    respx.get(f"{API}/solutioncomponentdefinitions").respond(
        json={"value": [{"name": "botcomponent", "solutioncomponenttype": 10134}]}
    )
    dependents = respx.get(f"{API}/dependencies").respond(
        json={
            "value": [
                {
                    "requiredcomponentobjectid": DEFINITION,
                    "dependentcomponenttype": 10134,
                    "dependentcomponentobjectid": COMPONENT_DEP,
                },
                {  # a flow
                    "requiredcomponentobjectid": DEFINITION,
                    "dependentcomponenttype": 29,
                    "dependentcomponentobjectid": BOT_C,
                },
                {  # another variable's topic
                    "requiredcomponentobjectid": "d0000000-0000-4000-8000-000000000002",
                    "dependentcomponenttype": 10134,
                    "dependentcomponentobjectid": "c0000000-0000-4000-8000-0000000000d2",
                },
            ]
        }
    )
    respx.get(f"{API}/botcomponents({COMPONENT_DEP})").respond(json=component(BOT_B, "=Env.contoso_ApiKey"))
    found = await client.agents_using(ORG, VAR, DEFINITION)
    assert [agent.name for agent in found] == ["Beta"]
    assert dependents.calls.last.request.url.params["$filter"] == "requiredcomponenttype eq 380"


@respx.mock
async def test_no_copilot_studio_means_no_agents(client: AgentsClient) -> None:
    bots = respx.get(f"{API}/bots").respond(404, json={"error": {"code": "0x8006088a", "message": "no"}})
    search = respx.get(f"{API}/botcomponents").respond(404)
    assert await client.agents_using(ORG, VAR, DEFINITION) == []
    assert bots.call_count == 1 and search.call_count == 0


@respx.mock
async def test_an_environment_without_agents_is_asked_once_and_never_searched(client: AgentsClient) -> None:
    """Most environments have no agent: one look per environment, not a search per variable."""
    bots = respx.get(f"{API}/bots").respond(json={"value": []})
    search = respx.get(f"{API}/botcomponents").respond(json={"value": []})
    for name in ("contoso_ApiKey", "contoso_Other", "contoso_Third"):
        assert await client.agents_using(ORG, name, DEFINITION) == []
    assert bots.call_count == 1 and search.call_count == 0
    assert bots.calls.last.request.url.params["$top"] == "1"


@respx.mock
async def test_a_next_link_outside_the_organisation_is_not_followed(client: AgentsClient) -> None:
    mock_bots()
    respx.get(f"{API}/botcomponents").respond(
        json={"value": [], "@odata.nextLink": "https://evil.example/api/data/v9.2/botcomponents?x=1"}
    )
    with pytest.raises(PermanentError, match="outside the organisation"):
        await client.agents_using(ORG, VAR, None)


async def test_an_invalid_schema_name_never_reaches_a_filter(client: AgentsClient) -> None:
    with pytest.raises(PermanentError, match="not a valid"):
        await client.agents_using(ORG, "x') or 1 eq 1 or contains(data,'", None)


@respx.mock
async def test_draft_reports_the_newest_edit_and_the_agents_it_names(client: AgentsClient) -> None:
    rows = [
        {"botcomponentid": "1", "modifiedon": "2024-05-01T09:00:00Z", "data": "x: cr1_Beta.topic.Lookup"},
        {"botcomponentid": "2", "modifiedon": "2024-05-02T09:00:00Z", "data": "uses cr1_BetaTwo only"},
        {"botcomponentid": "3", "modifiedon": None, "data": None},
    ]
    route = respx.get(f"{API}/botcomponents").respond(json={"value": rows})
    agent = Agent(id=BOT_A, name="Alpha", schema_name="cr1_Alpha", published_on=None)
    draft = await client.draft(ORG, agent, ["cr1_Alpha", "cr1_Beta", "cr1_Gamma"])
    assert draft.names == {"cr1_beta"}
    assert draft.last_modified is not None and draft.last_modified.isoformat() == "2024-05-02T09:00:00+00:00"
    assert route.calls.last.request.url.params["$filter"] == f"_parentbotid_value eq {BOT_A}"


def published(stamp: str) -> httpx.Response:
    return httpx.Response(200, json=bot(BOT_A, "Alpha", stamp))


AGENT = Agent(
    id=BOT_A,
    name="Alpha",
    schema_name="cr1_Alpha",
    published_on=agents_module.parse_time("2024-05-01T10:00:00Z"),
)


@respx.mock
async def test_publish_posts_the_action_and_polls_until_publishedon_moves(client: AgentsClient) -> None:
    action = respx.post(f"{API}/bots({BOT_A})/Microsoft.Dynamics.CRM.PvaPublish").respond(204)
    respx.get(f"{API}/bots({BOT_A})").mock(
        side_effect=[
            published("2024-05-01T10:00:00Z"),
            published("2024-05-01T10:00:00Z"),
            published("2024-05-03T08:00:00Z"),
        ]
    )
    moved = await client.publish(ORG, AGENT)
    assert moved.isoformat() == "2024-05-03T08:00:00+00:00"
    assert action.call_count == 1 and json.loads(action.calls.last.request.content) == {}


@pytest.mark.parametrize(
    "throttled",
    [
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(
            400, json={"error": {"code": "0x80072321", "message": "Received HTTP 429 TooManyRequests"}}
        ),
        httpx.Response(401),
    ],
    ids=["429", "400-wrapping-429", "bare-401"],
)
@respx.mock
async def test_throttled_publishes_are_retried(client: AgentsClient, throttled: httpx.Response) -> None:
    action = respx.post(f"{API}/bots({BOT_A})/Microsoft.Dynamics.CRM.PvaPublish").mock(
        side_effect=[throttled, throttled, throttled, httpx.Response(204)]
    )
    respx.get(f"{API}/bots({BOT_A})").mock(return_value=published("2024-05-03T08:00:00Z"))
    await client.publish(ORG, AGENT)
    assert action.call_count == 4


@respx.mock
async def test_a_401_with_an_error_body_is_a_refusal_not_throttling(client: AgentsClient) -> None:
    body = {"error": {"code": "0x80040220", "message": "Principal user is missing prvPublishBot"}}
    action = respx.post(f"{API}/bots({BOT_A})/Microsoft.Dynamics.CRM.PvaPublish").respond(401, json=body)
    with pytest.raises(PermanentError, match="prvPublishBot"):
        await client.publish(ORG, AGENT)
    assert action.call_count == 1


@respx.mock
async def test_throttling_that_never_ends_is_transient(client: AgentsClient) -> None:
    respx.post(f"{API}/bots({BOT_A})/Microsoft.Dynamics.CRM.PvaPublish").respond(401)
    with pytest.raises(TransientError, match="throttled \\(HTTP 401\\)"):
        await client.publish(ORG, AGENT)


@respx.mock
async def test_confirmation_gives_up_within_the_budget(client: AgentsClient) -> None:
    respx.post(f"{API}/bots({BOT_A})/Microsoft.Dynamics.CRM.PvaPublish").respond(204)
    respx.get(f"{API}/bots({BOT_A})").mock(return_value=published("2024-05-01T10:00:00Z"))
    started = time.monotonic()
    with deadline.time_budget(1.5), pytest.raises(TransientError, match="did not move forward"):
        await client.publish(ORG, AGENT)
    assert time.monotonic() - started < 1.5


def test_is_throttled_tells_throttling_from_refusals() -> None:
    assert not is_throttled(httpx.Response(400, json={"error": {"code": "0x1", "message": "Bad bot id"}}))
    assert not is_throttled(httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}))
    assert not is_throttled(httpx.Response(403))
    assert is_throttled(httpx.Response(401, text="   "))


AGENT_FLOW = "f0000000-0000-4000-8000-0000000000af"


@respx.mock
async def test_agent_flows_are_listed_with_cloud_flows_so_flow_refresh_cycles_them() -> None:
    """Agent flows are workflows of category 5 with modernflowtype 1: the cloud-flow listing
    (category 5) includes them, so flow refresh turns them off and on like any cloud flow."""
    dev = Environment(name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url=ORG, stage=1)

    clientdata = json.dumps(
        {
            "properties": {
                "definition": {
                    "parameters": {"Api key (contoso_ApiKey)": {"metadata": {"schemaName": "contoso_ApiKey"}}}
                }
            }
        }
    )
    row = {
        "workflowid": AGENT_FLOW,
        "name": "Agent flow: look up order",
        "category": 5,
        "modernflowtype": 1,
        "statecode": 1,
        "statuscode": 2,
        "clientdata": clientdata,
        "_ownerid_value": "u1",
    }
    listing = respx.get(f"{API}/workflows").respond(json={"value": [row]})
    respx.get(f"{API}/dependencies").respond(json={"value": []})
    states = respx.patch(f"{API}/workflows({AGENT_FLOW})").respond(204)
    respx.get(f"{API}/workflows({AGENT_FLOW})").respond(json=row)
    async with httpx.AsyncClient() as http:
        flows = FlowsClient(DataverseClient(http, FakeCredential(), FAST))  # type: ignore[arg-type]
        found = await flows.flows_using(ORG, VAR, DEFINITION)
        target = Target(environment=dev, env_var=VAR, secret="api-key")
        # The agent flow uses no connection reference, so the pre-check has no connection to ask about.
        refreshed = await FlowRefresh(flows, connections=NoConnections()).refresh(target, DEFINITION)
    assert [(flow.id, flow.on) for flow in found] == [(AGENT_FLOW, True)]
    assert listing.calls.last.request.url.params["$filter"] == "category eq 5"
    assert [(r.name, r.outcome) for r in refreshed] == [("Agent flow: look up order", FlowOutcome.REFRESHED)]
    assert [json.loads(call.request.content) for call in states.calls] == [
        {"statecode": 0, "statuscode": 1},
        {"statecode": 1, "statuscode": 2},
    ]


class NoConnections:
    """Connection permissions that must not be asked for (the flow names no connection)."""

    async def permissions(self, environment_id: str, connector: str, connection_id: str) -> list[Any]:
        raise AssertionError("a flow without connection references needs no permission check")


@respx.mock
async def test_prefetch_looks_for_agents_and_lists_dependencies_only_where_there_are_agents(
    client: AgentsClient,
) -> None:
    """Started while a value is written: the agents check, then (only where there are agents) the
    dependency listing; the refresh after the write finds both answered."""
    other_api = "https://contoso-prod.crm.dynamics.com/api/data/v9.2"
    bots = respx.get(f"{API}/bots").respond(json={"value": [{"botid": BOT_A}]})
    listing = respx.get(f"{API}/dependencies").respond(json={"value": []})
    no_bots = respx.get(f"{other_api}/bots").respond(json={"value": []})
    other_listing = respx.get(f"{other_api}/dependencies").respond(json={"value": []})
    client.prefetch(ORG)
    client.prefetch("https://contoso-prod.crm.dynamics.com")
    await asyncio.sleep(0.1)
    assert (bots.call_count, listing.call_count) == (1, 1)
    assert (no_bots.call_count, other_listing.call_count) == (1, 0)  # no agent: nothing to look up
    respx.get(f"{API}/botcomponents").respond(json={"value": []})
    respx.get(f"{API}/solutioncomponentdefinitions").respond(404)
    assert await client.agents_using(ORG, VAR, DEFINITION) == []
    assert (bots.call_count, listing.call_count) == (1, 1)  # answered by the head start
