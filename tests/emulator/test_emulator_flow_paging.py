"""The emulated `workflows` listing pages like Dataverse, and the production listing follows it."""

from __future__ import annotations

import time
from typing import Any

import httpx
from azure.core.credentials import AccessToken

from emulator import Emulator, Environment
from sync.adapters.dataverse import DataverseClient
from sync.adapters.flows import FLOW_PAGE_SIZE, FlowsClient


async def test_workflows_page_with_a_skiptoken_when_asked(
    client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    ids = sorted(dev.add_flow(f"Flow {i}", uses=["contoso_A"]) for i in range(5))
    params = {"$filter": "category eq 5", "$select": "workflowid,name,clientdata"}
    first = await client.get(
        f"{dv_base}workflows", params=params, headers={**dv_headers, "Prefer": "odata.maxpagesize=2"}
    )
    assert first.status_code == 200 and first.headers["Preference-Applied"] == "odata.maxpagesize=2"
    listed, link = [row["workflowid"] for row in first.json()["value"]], first.json()["@odata.nextLink"]
    while link:
        page = (await client.get(link, headers={**dv_headers, "Prefer": "odata.maxpagesize=2"})).json()
        listed += [row["workflowid"] for row in page["value"]]
        link = page.get("@odata.nextLink")
    assert listed == ids
    unpaged = await client.get(f"{dv_base}workflows", params=params, headers=dv_headers)
    assert len(unpaged.json()["value"]) == 5 and "@odata.nextLink" not in unpaged.json()
    bad = await client.get(f"{dv_base}workflows", params={"$skiptoken": "x"}, headers=dv_headers)
    assert bad.status_code == 400


class EmulatorCredential:
    def __init__(self, emu: Emulator) -> None:
        self._emu = emu

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken(self._emu.issue_token(scopes[0]), int(time.time()) + 3600)

    async def close(self) -> None:
        return None


async def test_the_production_listing_reads_every_page(
    emu: Emulator, client: httpx.AsyncClient, dev: Environment
) -> None:
    count = FLOW_PAGE_SIZE * 2 + 3
    for i in range(count):
        dev.add_flow(f"Flow {i}", uses=["contoso_A"] if i % 2 else ["contoso_B"])
    flows = await FlowsClient(DataverseClient(client, EmulatorCredential(emu))).cloud_flows(dev.url)
    assert len(flows) == count and len({flow.id for flow in flows}) == count
    assert sum("contoso_a" in flow.schema_names for flow in flows) == count // 2
    listings = [r for r in emu.requests if r.method == "GET" and r.path.endswith("/workflows")]
    assert len(listings) == 3 and {r.status for r in listings} == {200}
