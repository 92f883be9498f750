"""The dependency listing: one request per environment (every page, bounded), answering per definition."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from azure.core.credentials import AccessToken

from sync.adapters import dependencies as dependencies_module
from sync.adapters.dataverse import DataverseClient
from sync.adapters.dependencies import Dependencies
from sync.adapters.flows import FlowsClient
from sync.adapters.http import RetryPolicy
from sync.errors import PermanentError, TransientError
from sync.mapping import Environment
from sync.models import Target
from sync.steps.consumers import FlowsConsumer
from sync.steps.flow_refresh import FlowRefresh

ORG = "https://contoso-dev.crm.dynamics.com"
OTHER_ORG = "https://contoso-prod.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
DEF_A = "d0000000-0000-4000-8000-00000000000a"
DEF_B = "d0000000-0000-4000-8000-00000000000b"
FLOW_1 = "f0000000-0000-4000-8000-000000000001"
FLOW_2 = "f0000000-0000-4000-8000-000000000002"
TOPIC = "c0000000-0000-4000-8000-000000000001"


class FakeCredential:
    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


@pytest.fixture
async def dependencies() -> AsyncIterator[Dependencies]:
    async with httpx.AsyncClient() as http:
        yield Dependencies(DataverseClient(http, FakeCredential(), FAST))  # type: ignore[arg-type]


def row(required: str, kind: Any, dependent: str) -> dict[str, Any]:
    return {
        "requiredcomponentobjectid": required,
        "dependentcomponenttype": kind,
        "dependentcomponentobjectid": dependent,
    }


@respx.mock
async def test_one_listing_per_environment_answers_every_definition(dependencies: Dependencies) -> None:
    listed = respx.get(f"{API}/dependencies").respond(
        json={
            "value": [
                row(DEF_A, 29, FLOW_1),
                row(DEF_B.upper(), 29, FLOW_2),  # Dataverse may spell a GUID in upper case
                row(DEF_A, 10156, TOPIC),
                row(DEF_A, "29", FLOW_2),  # not a number: not a dependent, as before
            ]
        }
    )
    answers = await asyncio.gather(
        dependencies.of_definition(ORG, DEF_A),
        dependencies.of_definition(ORG, DEF_B),
        dependencies.of_definition(ORG, DEF_A.upper()),
        dependencies.of_definition(ORG, "d0000000-0000-4000-8000-0000000000ff"),
    )
    assert answers == [[(29, FLOW_1), (10156, TOPIC)], [(29, FLOW_2)], [(29, FLOW_1), (10156, TOPIC)], []]
    assert listed.call_count == 1
    request = listed.calls.last.request
    assert request.url.params["$filter"] == "requiredcomponenttype eq 380"
    assert request.url.params["$select"] == (
        "requiredcomponentobjectid,dependentcomponenttype,dependentcomponentobjectid"
    )
    assert request.headers["Prefer"] == "odata.maxpagesize=5000"
    other = respx.get(f"{OTHER_ORG}/api/data/v9.2/dependencies").respond(json={"value": []})
    assert await dependencies.of_definition(OTHER_ORG, DEF_A) == []
    assert other.call_count == 1 and listed.call_count == 1  # each environment its own listing


@respx.mock
async def test_every_page_is_followed(dependencies: Dependencies) -> None:
    second = f"{API}/dependencies?$skiptoken=2"
    third = f"{API}/dependencies?$skiptoken=3"
    listed = respx.get(f"{API}/dependencies").mock(
        side_effect=[
            httpx.Response(200, json={"value": [row(DEF_A, 29, FLOW_1)], "@odata.nextLink": second}),
            httpx.Response(200, json={"value": [row(DEF_B, 29, FLOW_2)], "@odata.nextLink": third}),
            httpx.Response(200, json={"value": [row(DEF_A, 10156, TOPIC)]}),
        ]
    )
    assert await dependencies.of_definition(ORG, DEF_A) == [(29, FLOW_1), (10156, TOPIC)]
    assert await dependencies.of_definition(ORG, DEF_B) == [(29, FLOW_2)]
    assert listed.call_count == 3
    assert [call.request.url.params.get("$skiptoken") for call in listed.calls] == [None, "2", "3"]
    assert all(call.request.headers["Prefer"] == "odata.maxpagesize=5000" for call in listed.calls)


@respx.mock
async def test_a_repeating_next_link_stops_the_listing_at_once(dependencies: Dependencies) -> None:
    again = f"{API}/dependencies?$skiptoken=2"
    listed = respx.get(f"{API}/dependencies").respond(
        json={"value": [row(DEF_A, 29, FLOW_1)], "@odata.nextLink": again}
    )
    with pytest.raises(PermanentError, match="repeats an earlier page after 2 requests"):
        await dependencies.of_definition(ORG, DEF_A)
    assert listed.call_count == 2


@respx.mock
async def test_a_next_link_leaving_the_organisation_is_not_followed(dependencies: Dependencies) -> None:
    elsewhere = respx.get("https://elsewhere.example/dependencies").respond(json={"value": []})
    respx.get(f"{API}/dependencies").respond(
        json={"value": [], "@odata.nextLink": "https://elsewhere.example/dependencies?$skiptoken=2"}
    )
    with pytest.raises(PermanentError, match="outside the organisation"):
        await dependencies.of_definition(ORG, DEF_A)
    assert elsewhere.call_count == 0


@respx.mock
async def test_an_endless_listing_is_bounded(
    dependencies: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dependencies_module, "MAX_PAGES", 3)
    pages = iter(range(2, 100))
    listed = respx.get(f"{API}/dependencies").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"value": [], "@odata.nextLink": f"{API}/dependencies?$skiptoken={next(pages)}"}
        )
    )
    with pytest.raises(TransientError, match="did not end after 3 pages"):
        await dependencies.of_definition(ORG, DEF_A)
    assert listed.call_count == 3


@respx.mock
async def test_errors_reach_the_caller_as_before_and_are_asked_again(dependencies: Dependencies) -> None:
    listed = respx.get(f"{API}/dependencies").mock(
        side_effect=[
            httpx.Response(403, json={"error": {"code": "0x80040220", "message": "no read on dependency"}}),
            httpx.Response(200, text="<html>gateway</html>", headers={"Content-Type": "text/html"}),
            httpx.Response(200, json={"value": [row(DEF_A, 29, FLOW_1)]}),
        ]
    )
    with pytest.raises(PermanentError, match=r"refused listing the variables' dependencies: HTTP 403"):
        await dependencies.of_definition(ORG, DEF_A)
    with pytest.raises(TransientError, match="not JSON"):
        await dependencies.of_definition(ORG, DEF_A)
    assert await dependencies.of_definition(ORG, DEF_A) == [(29, FLOW_1)]  # a failure is not shared
    assert listed.call_count == 3


@respx.mock
async def test_prefetch_starts_the_listing_that_of_definition_then_finds_answered(
    dependencies: Dependencies,
) -> None:
    listed = respx.get(f"{API}/dependencies").respond(json={"value": [row(DEF_A, 29, FLOW_1)]})
    dependencies.prefetch(ORG)
    dependencies.prefetch(ORG)  # shared: still one listing
    await asyncio.sleep(0.05)
    assert listed.call_count == 1
    assert await dependencies.of_definition(ORG, DEF_A) == [(29, FLOW_1)]
    assert listed.call_count == 1


@respx.mock
async def test_a_failed_prefetch_is_swallowed_and_asked_again_by_the_caller(
    dependencies: Dependencies,
) -> None:
    unhandled: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unhandled.append(context))
    listed = respx.get(f"{API}/dependencies").mock(
        side_effect=[
            httpx.Response(403, json={"error": {"code": "0x80040220", "message": "denied"}}),
            httpx.Response(403, json={"error": {"code": "0x80040220", "message": "denied"}}),
        ]
    )
    dependencies.prefetch(ORG)  # never raises
    await asyncio.sleep(0.05)
    assert listed.call_count == 1
    with pytest.raises(PermanentError, match="HTTP 403"):  # the caller asks again and reports
        await dependencies.of_definition(ORG, DEF_A)
    assert listed.call_count == 2
    gc.collect()
    await asyncio.sleep(0)
    assert unhandled == []  # no "exception was never retrieved"


class NoConnections:
    async def permissions(self, environment_id: str, connector: str, connection_id: str) -> list[Any]:
        raise AssertionError("no flow here names a connection")


@respx.mock
async def test_flows_are_prepared_by_listing_flows_and_dependencies_that_refresh_then_reuses() -> None:
    dev = Environment(name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url=ORG, stage=1)
    target = Target(environment=dev, env_var="contoso_ApiKey", secret="api-key")
    workflows = respx.get(f"{API}/workflows").respond(json={"value": []})
    listed = respx.get(f"{API}/dependencies").respond(json={"value": []})
    async with httpx.AsyncClient() as http:
        dataverse = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
        refresher = FlowRefresh(FlowsClient(dataverse), connections=NoConnections())
        FlowsConsumer(refresher).prepare(target.model_copy(update={"refresh_flows": False}))
        await asyncio.sleep(0.05)
        assert (workflows.call_count, listed.call_count) == (0, 0)  # flows not refreshed here
        FlowsConsumer(refresher).prepare(target)
        await asyncio.sleep(0.05)
        assert (workflows.call_count, listed.call_count) == (1, 1)
        assert await refresher.refresh(target, DEF_A) == ()
    assert (workflows.call_count, listed.call_count) == (1, 1)  # the refresh found both answered
