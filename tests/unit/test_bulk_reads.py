"""The reconcile's bulk read: chunking, the In filter, paging, and the prefetch step over fakes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import respx
from azure.core.credentials import AccessToken

from sync.adapters.dataverse import DataverseClient
from sync.adapters.dataverse_bulk import CHUNK_NAMES, chunks, in_filter, query_url
from sync.adapters.http import RetryPolicy
from sync.errors import PermanentError, TransientError
from sync.mapping import Mapping, parse_mapping
from sync.models import Definition, Outcome, Trigger
from sync.steps.readiness import OncePerRun
from sync.telemetry import correlation

from .conftest import mapping_document
from .test_engine import Directory, Secrets, Store

ORG = "https://contoso-dev.crm.dynamics.com"
LIST_URL = f"{ORG}/api/data/v9.2/environmentvariabledefinitions"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


class Credential:
    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("t", int(time.time()) + 3600)


def row(name: str, value: str | None = "v", rows: int = 1) -> dict[str, Any]:
    values = [
        {
            "environmentvariablevalueid": f"00000000-0000-4000-8000-{i:012d}",
            "value": value,
            "@odata.etag": 'W/"7"',
        }
        for i in range(rows if value is not None else 0)
    ]
    return {
        "environmentvariabledefinitionid": f"def-{name}",
        "schemaname": name,
        "type": 100000000,
        "environmentvariabledefinition_environmentvariablevalue": values,
    }


def client() -> DataverseClient:
    return DataverseClient(httpx.AsyncClient(), Credential(), FAST)  # type: ignore[arg-type]


def test_chunks_respect_count_and_length() -> None:
    names = [f"contoso_Var{i:04d}" for i in range(1000)]
    groups = list(chunks(names))
    assert [name for group in groups for name in group] == names
    assert all(len(group) <= CHUNK_NAMES for group in groups)
    assert len(groups) == 5


def test_in_filter_escapes_and_validates() -> None:
    assert in_filter(["contoso_A", "contoso_B"]) == (
        "Microsoft.Dynamics.CRM.In(PropertyName='schemaname',PropertyValues=['contoso_A','contoso_B'])"
    )
    with pytest.raises(PermanentError, match="not a valid environment variable schema name"):
        in_filter(["contoso_A') or (1 eq 1"])


@respx.mock
async def test_bulk_read_follows_every_page_and_keys_by_lower_case_name() -> None:
    next_link = f"{LIST_URL}?$skiptoken=abc"
    route = respx.get(LIST_URL)
    route.side_effect = [
        httpx.Response(
            200, json={"value": [row("contoso_A"), row("contoso_B", None)], "@odata.nextLink": next_link}
        ),
        httpx.Response(200, json={"value": [row("contoso_C", rows=2)]}),
    ]
    found = await client().get_definitions(ORG, ["contoso_A", "contoso_B", "contoso_C", "contoso_D"])
    assert set(found) == {"contoso_a", "contoso_b"}  # C has two value rows: left to the single read
    assert found["contoso_b"].value_row is None
    first, second = route.calls
    assert "Microsoft.Dynamics.CRM.In(" in str(first.request.url.params["$filter"])
    assert first.request.headers["Prefer"] == "odata.maxpagesize=1000"
    assert str(second.request.url) == next_link


@respx.mock
async def test_next_link_outside_the_org_is_refused() -> None:
    respx.get(LIST_URL).respond(
        json={"value": [], "@odata.nextLink": "https://elsewhere.example/api/data/v9.2/x"}
    )
    with pytest.raises(PermanentError, match="outside the organisation"):
        await client().get_definitions(ORG, ["contoso_A"])


@respx.mock
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>gateway</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"value": [{"schemaname": "contoso_A"}]}),
    ],
)
async def test_bodies_of_the_wrong_shape_are_transient(response: httpx.Response) -> None:
    respx.get(LIST_URL).mock(return_value=response)
    with pytest.raises(TransientError):
        await client().get_definitions(ORG, ["contoso_A"])


async def test_once_per_run_shares_one_lookup() -> None:
    calls: list[str] = []

    async def lookup(key: str) -> str:
        calls.append(key)
        return key.upper()

    once: OncePerRun[str, str] = OncePerRun(lookup)
    assert [await once.get("a"), await once.get("a"), await once.get("b")] == ["A", "A", "B"]
    assert calls == ["a", "b"]
    once.close()


class BulkStore(Store):
    """The engine's fake Dataverse, plus the bulk read, counting requests."""

    def __init__(self, mapping: Mapping) -> None:
        super().__init__(mapping)
        self.single_reads = 0
        self.bulk_reads: list[tuple[str, int]] = []

    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None:
        self.single_reads += 1
        return await super().get_definition(org_url, schema_name)

    async def get_definitions(self, org_url: str, schema_names: Sequence[str]) -> dict[str, Definition]:
        self.bulk_reads.append((org_url, len(schema_names)))
        found = {}
        for name in schema_names:
            definition = await super().get_definition(org_url, name)
            if definition is not None:
                found[name.lower()] = definition
        return found


@pytest.fixture
def mapping() -> Mapping:
    return parse_mapping(mapping_document(), "M")


async def run_reconcile(mapping: Mapping, store: BulkStore, **options: Any) -> Any:
    from sync.engine import SyncEngine

    engine = SyncEngine(mapping, Secrets(), store, Directory(mapping), None)
    with correlation("cid"):
        return await engine.sync_secrets(mapping.secret_names(), Trigger.RECONCILE, prefetch=True, **options)


async def test_prefetched_reconcile_reads_each_environment_once_and_writes_only_drift(
    mapping: Mapping,
) -> None:
    store = BulkStore(mapping)
    for rows in store.rows.values():  # everything already holds the secret...
        for entry in rows.values():
            entry[1] = "n3w-value"
    store.rows["https://contoso-test.crm.dynamics.com"]["contoso_GraphSecret"][1] = "drifted"  # ...but one
    seen: list[str] = []
    report = await run_reconcile(mapping, store, on_result=lambda r: seen.append(r.outcome.value))
    assert sorted(store.bulk_reads) == sorted(
        [
            ("https://contoso-dev.crm.dynamics.com", 2),
            ("https://contoso-test.crm.dynamics.com", 2),
            ("https://contoso.crm.dynamics.com", 1),
        ]
    )
    assert store.writes == [("https://contoso-test.crm.dynamics.com", "update")]
    assert store.single_reads == 1  # only the read-back of the one write (this fake answers without the row)
    assert sorted(seen) == sorted(r.outcome.value for r in report.results)
    assert report.counts()["updated"] == 1 and report.counts()["unchanged"] == 4


async def test_environment_filter_limits_targets(mapping: Mapping) -> None:
    store = BulkStore(mapping)
    report = await run_reconcile(mapping, store, environments={"test"})
    assert {(r.environment, r.outcome) for r in report.results} == {("test", Outcome.UPDATED)}
    assert [url for url, _ in store.bulk_reads] == ["https://contoso-test.crm.dynamics.com"]


async def test_definition_missing_from_the_bulk_answer_is_read_singly(mapping: Mapping) -> None:
    store = BulkStore(mapping)
    del store.rows["https://contoso-dev.crm.dynamics.com"]["contoso_GraphSecret"]
    report = await run_reconcile(mapping, store)
    dev = {(r.environment, r.env_var): r for r in report.results}[("dev", "contoso_GraphSecret")]
    assert dev.outcome is Outcome.FAILED and "no environment variable definition" in dev.reason


def test_the_bulk_query_is_encoded_once_and_httpx_keeps_it_as_it_is() -> None:
    """httpx re-quotes a query given as `params` character by character (~1.3 ms per 6 KB URL);
    the URL Lockstep sends is encoded already, so httpx leaves it alone, and decodes to the same
    filter, select and expand."""
    names = [f"contoso_Name{i:03d}" for i in range(CHUNK_NAMES)]
    params = {"$filter": in_filter(names), "$select": "a,b", "$expand": "x($select=y)"}
    url = query_url(LIST_URL, params)
    assert str(httpx.URL(url)) == url
    assert dict(httpx.URL(url).params) == params
    assert "[" not in url and "]" not in url  # not allowed unencoded in a query (RFC 3986)
    assert "'contoso_Name000'" in url  # OData's punctuation stays readable in logs and traces
