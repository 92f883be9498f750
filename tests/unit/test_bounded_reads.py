"""Bounded work on hostile or huge answers: every body is capped while it streams in, the cloud-flow
listing pages and keeps only small records, and a nextLink that repeats stops the listing at once."""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx
from azure.core.credentials import AccessToken

from sync.adapters.dataverse import DataverseClient
from sync.adapters.flows import FLOW_PAGE_SIZE, Flow, FlowsClient
from sync.adapters.http import MAX_BODY_BYTES, ResponseTooLarge, RetryPolicy, send_with_retry
from sync.errors import PermanentError

ORG = "https://contoso-dev.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
CANARY = b"CANARY-body-7f3e-"
MIB = 1024 * 1024


class FakeCredential:
    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def flows_client(http: httpx.AsyncClient) -> FlowsClient:
    return FlowsClient(DataverseClient(http, FakeCredential(), FAST))


def flow_row(index: int, padding: str = "") -> dict[str, Any]:
    clientdata = {
        "properties": {
            "definition": {
                "parameters": {"p": {"metadata": {"schemaName": f"contoso_Var{index % 3}"}}},
                "description": padding,
            },
            "connectionReferences": {},
        }
    }
    return {
        "workflowid": f"00000000-0000-4000-8000-{index:012d}",
        "name": f"Flow {index}",
        "category": 5,
        "statecode": 1,
        "statuscode": 2,
        "_ownerid_value": "owner",
        "clientdata": json.dumps(clientdata),
    }


async def streamed(body: bytes) -> AsyncIterator[bytes]:
    """A body as a network transport delivers it: in chunks, never held by the response itself."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


def paged_workflows(pages: int, per_page: int, padding: str) -> Callable[[httpx.Request], httpx.Response]:
    """A Dataverse that builds each page only when asked (so the test itself holds one at most)."""

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("$skiptoken", "0"))
        body: dict[str, Any] = {
            "value": [flow_row(page * per_page + i, padding) for i in range(per_page)],
        }
        if page + 1 < pages:
            body["@odata.nextLink"] = f"{API}/workflows?$skiptoken={page + 1}"
        return httpx.Response(200, content=streamed(json.dumps(body).encode()))

    return handler


# --- the general cap -------------------------------------------------------------------------------


async def test_a_body_over_the_cap_is_refused_while_streaming_without_reading_the_rest() -> None:
    sent = 0

    async def endless_body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 64 MiB if nobody stops reading
            sent += 1
            yield CANARY + b"x" * (MIB - len(CANARY))

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=endless_body()))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ResponseTooLarge) as caught:
            await send_with_retry(http, "GET", f"{API}/x", policy=FAST, service="Dataverse", max_body=4 * MIB)
    message = str(caught.value)
    assert "Dataverse" in message and f"more than {4 * MIB} bytes" in message
    assert CANARY.decode() not in message
    assert sent <= 5  # refused as the fifth MiB arrived, not after reading all 64
    assert isinstance(caught.value, PermanentError)  # waiting does not shrink it: no redelivery


@respx.mock
async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    respx.get(f"{API}/x").respond(200, content=b"{}", headers={"Content-Length": str(MAX_BODY_BYTES + 1)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(ResponseTooLarge, match=f"{MAX_BODY_BYTES + 1} bytes"):
            await send_with_retry(http, "GET", f"{API}/x", policy=FAST, service="Dataverse")


@respx.mock
async def test_every_adapter_call_is_capped_by_default() -> None:
    body = b'{"value": [], "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    respx.get(f"{API}/environmentvariabledefinitions").respond(200, content=body)
    async with httpx.AsyncClient() as http:
        with pytest.raises(ResponseTooLarge, match="Dataverse"):
            await DataverseClient(http, FakeCredential(), FAST).get_definition(ORG, "contoso_Var")


@respx.mock
async def test_a_body_under_the_cap_reads_as_before() -> None:
    respx.get(f"{API}/x").respond(200, json={"ok": True}, headers={"X-Extra": "1"})
    async with httpx.AsyncClient() as http:
        response = await send_with_retry(http, "GET", f"{API}/x", policy=FAST, service="Dataverse")
    assert response.json() == {"ok": True} and response.headers["X-Extra"] == "1"
    assert response.reason_phrase == "OK"


# --- the cloud-flow listing ------------------------------------------------------------------------


async def test_flow_listing_pages_and_keeps_memory_flat_in_the_number_of_flows() -> None:
    pages, padding = 25, "p" * (200 * 1024)  # 20 flows x 200 KB a page: 4 MB a page, 100 MB in all
    seen: list[httpx.Request] = []
    handler = paged_workflows(pages, FLOW_PAGE_SIZE, padding)

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http:
        client = flows_client(http)
        gc.collect()
        tracemalloc.start()
        try:
            flows = await client.cloud_flows(ORG)
            gc.collect()
            retained, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(flows) == pages * FLOW_PAGE_SIZE and all(isinstance(flow, Flow) for flow in flows)
    assert flows[7].schema_names == frozenset({"contoso_var1"})
    assert len(seen) == pages
    assert all(r.headers["Prefer"] == f"odata.maxpagesize={FLOW_PAGE_SIZE}" for r in seen)
    assert seen[1].url.params["$skiptoken"] == "1" and "$select" not in seen[1].url.params
    # One page at a time (a few copies of its 4 MB while parsing: ~12 MiB), never the 100 MB...
    assert peak < 24 * MIB, f"peak {peak / MIB:.0f} MiB"
    # ...and what it keeps is the small records, not the definitions (500 flows: well under 1 MB).
    assert retained < 2 * MIB, f"retained {retained / MIB:.1f} MiB"


async def test_a_flow_page_may_exceed_the_general_cap_up_to_its_own() -> None:
    padding = "p" * (MAX_BODY_BYTES // FLOW_PAGE_SIZE + 1024)  # one page just over the general cap
    transport = httpx.MockTransport(paged_workflows(1, FLOW_PAGE_SIZE, padding))
    async with httpx.AsyncClient(transport=transport) as http:
        flows = await flows_client(http).cloud_flows(ORG)
    assert len(flows) == FLOW_PAGE_SIZE


@pytest.mark.parametrize("kind", ["self", "loop"])
async def test_a_repeating_flow_next_link_stops_at_the_first_repeat(kind: str) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if kind == "self":  # the first page points at itself
            next_link = str(request.url)
        else:  # page 1 -> 2 -> 1 ...
            next_link = f"{API}/workflows?$skiptoken={1 if len(calls) % 2 else 2}"
        return httpx.Response(200, json={"value": [flow_row(len(calls))], "@odata.nextLink": next_link})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(PermanentError, match="repeats an earlier page"):
            await flows_client(http).cloud_flows(ORG)
    assert len(calls) == (1 if kind == "self" else 3)


async def test_a_flow_next_link_outside_the_organisation_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"value": [], "@odata.nextLink": "https://elsewhere.example/api/data/v9.2/workflows"}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(PermanentError, match="outside the organisation"):
            await flows_client(http).cloud_flows(ORG)


@pytest.mark.parametrize("kind", ["self", "loop"])
async def test_a_repeating_definitions_next_link_stops_at_the_first_repeat(kind: str) -> None:
    calls: list[httpx.Request] = []
    url = f"{API}/environmentvariabledefinitions"

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        next_link = str(request.url) if kind == "self" else f"{url}?$skiptoken={1 if len(calls) % 2 else 2}"
        return httpx.Response(200, json={"value": [], "@odata.nextLink": next_link})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(PermanentError, match="repeats an earlier page"):
            await DataverseClient(http, FakeCredential(), FAST).get_definitions(ORG, ["contoso_A"])
    assert len(calls) == (1 if kind == "self" else 3)  # was 100 requests before it stopped
