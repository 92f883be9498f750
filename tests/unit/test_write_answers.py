"""A write's answer is its read-back: `Prefer: return=representation`, then verify without a GET.

Dataverse answers a PATCH that asks for it with the row as stored after the write (200 for an
update, 201 for the upsert that creates); verify compares that row instead of reading it back.
A server that answers 204 anyway leaves verify to read the row back, as before.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from sync.adapters.dataverse import DataverseClient, WriteConflict, value_row_id
from sync.errors import PermanentError
from sync.mapping import Environment
from sync.models import Definition, Outcome, SecretSnapshot, Target, ValueRow
from sync.plan import Create, Update
from sync.redact import held_values
from sync.targets.base import Write
from sync.targets.env_vars import EnvVarTargets, ReadbackMismatch, Written

from .test_adapters import FAST, ORG, FakeCredential

CANARY = "CANARY-answer-5c1e-do-not-leak"
PREVIOUS = "CANARY-previous-9a7d-do-not-leak"
ROW = "row-1"
UPDATE_URL = f"{ORG}/api/data/v9.2/environmentvariablevalues({ROW})"
CREATE_URL = f"{ORG}/api/data/v9.2/environmentvariablevalues({value_row_id('def-1')})"


def row_body(value: Any = CANARY, row_id: str = ROW, etag: str | None = 'W/"12"') -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.context": "…/$entity",
        "environmentvariablevalueid": row_id,
        "value": value,
    }
    if etag is not None:
        body["@odata.etag"] = etag
    return body


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as http:
        yield DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]


def asked_for_the_row(request: httpx.Request) -> None:
    assert request.headers["Prefer"] == "return=representation"
    assert request.url.params["$select"] == "environmentvariablevalueid,value"


@respx.mock
async def test_update_asks_for_the_row_and_returns_it_registered(client: DataverseClient) -> None:
    stored = "CANARY-stored-b4e0-do-not-leak"  # what a plug-in left there instead of ours
    route = respx.patch(UPDATE_URL).respond(
        200, json=row_body(stored), headers={"Preference-Applied": "return=representation"}
    )
    row = await client.update_value(ORG, ROW, 'W/"11"', SecretStr(CANARY))
    asked_for_the_row(route.calls.last.request)
    assert route.calls.last.request.headers["If-Match"] == 'W/"11"'
    assert json.loads(route.calls.last.request.content) == {"value": CANARY}
    assert row is not None and (row.id, row.etag) == (ROW, 'W/"12"')
    assert row.value is not None and row.value.get_secret_value() == stored
    assert stored in held_values()  # scrubbed from any later message while the row is held


@respx.mock
async def test_create_asks_for_the_row_and_returns_it(client: DataverseClient) -> None:
    row_id = value_row_id("def-1")
    route = respx.patch(CREATE_URL).respond(201, json=row_body(row_id=row_id.upper()))
    row = await client.create_value(ORG, "def-1", "contoso_Secret", SecretStr(CANARY))
    asked_for_the_row(route.calls.last.request)
    assert route.calls.last.request.headers["If-None-Match"] == "*"
    assert row is not None and row.id == row_id.upper() and row.etag == 'W/"12"'
    assert row.value == SecretStr(CANARY)


@respx.mock
async def test_an_answer_without_the_row_is_none(client: DataverseClient) -> None:
    respx.patch(UPDATE_URL).respond(204)
    respx.patch(CREATE_URL).respond(204)
    assert await client.update_value(ORG, ROW, 'W/"11"', SecretStr(CANARY)) is None
    assert await client.create_value(ORG, "def-1", "contoso_Secret", SecretStr(CANARY)) is None


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json=row_body(row_id="row-2")),  # some other row
        httpx.Response(200, json=row_body(etag=None)),
        httpx.Response(200, json=row_body(value=42)),
        httpx.Response(200, json={k: v for k, v in row_body().items() if k != "value"}),
        httpx.Response(200, json=[row_body()]),
        httpx.Response(200, text=f"<html>{CANARY}</html>"),
    ],
    ids=["other-row", "no-etag", "not-text", "no-value", "not-an-object", "not-json"],
)
@respx.mock
async def test_an_answer_that_is_not_the_row_is_none_and_silent(
    client: DataverseClient, answer: httpx.Response
) -> None:
    """Verify reads the row back then: a write that was applied is never turned into an error."""
    respx.patch(UPDATE_URL).mock(return_value=answer)
    assert await client.update_value(ORG, ROW, 'W/"11"', SecretStr(CANARY)) is None


@respx.mock
async def test_refusals_never_carry_the_body(client: DataverseClient) -> None:
    echo = {"error": {"code": "0x80040203", "message": f"Invalid value '{CANARY}' ({PREVIOUS})"}}
    respx.patch(UPDATE_URL).respond(400, json=echo)
    with pytest.raises(PermanentError) as refused:
        await client.update_value(ORG, ROW, 'W/"11"', SecretStr(CANARY))
    respx.patch(UPDATE_URL).respond(412, json={"error": {"code": "0x80060882", "message": CANARY}})
    with pytest.raises(WriteConflict) as conflict:
        await client.update_value(ORG, ROW, 'W/"11"', SecretStr(CANARY))
    for error in (refused.value, conflict.value):
        assert CANARY not in f"{error} {error!r}" and PREVIOUS not in f"{error} {error!r}"


# The kind: verify takes the row from the write's answer, and reads it back only without one.

DEV = Environment(name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url=ORG, stage=1)
TARGET = Target(environment=DEV, env_var="contoso_ApiKey", secret="api-key")
SNAPSHOT = SecretSnapshot(name="api-key", version="v2", value=SecretStr(CANARY))
OLD = ValueRow(id=ROW, value=SecretStr(PREVIOUS), etag='W/"11"')
DEFINITION = Definition(id="def-1", schema_name="contoso_ApiKey", type=100000000, value_row=OLD)
UPDATE = Write(Outcome.UPDATED, Update(row_id=ROW, etag='W/"11"'))
CREATE = Write(Outcome.CREATED, Create(definition_id="def-1", schema_name="contoso_ApiKey"))


class Values:
    """Dataverse as the kind sees it: each write answers with `answer`; reads are counted."""

    def __init__(self, answer: ValueRow | None, readback: ValueRow | None = None) -> None:
        self.answer = answer
        self.readback = readback
        self.reads = 0
        self.updates: list[tuple[str, str, str]] = []

    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None:
        self.reads += 1
        return Definition(id="def-1", schema_name=schema_name, type=100000000, value_row=self.readback)

    async def update_value(self, org_url: str, row_id: str, etag: str, value: SecretStr) -> ValueRow | None:
        self.updates.append((row_id, etag, value.get_secret_value()))
        return self.answer

    async def create_value(
        self, org_url: str, definition_id: str, schema_name: str, value: SecretStr
    ) -> ValueRow | None:
        return self.answer

    async def delete_value(self, org_url: str, row_id: str, etag: str) -> None:
        return None


async def write_and_verify(values: Values, decision: Write, observed: Definition = DEFINITION) -> Any:
    run = EnvVarTargets(values).open([TARGET], bulk=False)
    await run.write(TARGET, observed, decision, SNAPSHOT)
    return run, await run.verify(TARGET, observed, decision, SNAPSHOT)


async def test_verify_takes_the_row_and_its_etag_from_the_answer() -> None:
    values = Values(ValueRow(id=ROW, value=SecretStr(CANARY), etag='W/"12"'))
    run, change = await write_and_verify(values, UPDATE)
    assert values.reads == 0  # no read-back
    assert change.outcome is Outcome.UPDATED and change.subject_id == "def-1"
    assert change.memento == Written(row_id=ROW, etag='W/"12"', previous=SecretStr(PREVIOUS))
    assert await run.restore(TARGET, change, SNAPSHOT) == (
        Outcome.ROLLED_BACK,
        "rolled back: the previous value was restored",
    )
    assert values.updates[-1] == (ROW, 'W/"12"', PREVIOUS)  # guarded by the answer's etag


async def test_a_created_row_from_the_answer() -> None:
    created = value_row_id("def-1")
    values = Values(ValueRow(id=created, value=SecretStr(CANARY), etag='W/"1"'))
    empty = DEFINITION.model_copy(update={"value_row": None})
    _run, change = await write_and_verify(values, CREATE, empty)
    assert values.reads == 0 and change.subject_id == "def-1"
    assert change.memento == Written(row_id=created, etag='W/"1"', previous=None)


@pytest.mark.parametrize("stored", [SecretStr(PREVIOUS), None], ids=["reverted", "emptied"])
async def test_an_answer_without_the_new_value_is_a_mismatch_without_a_read(stored: SecretStr | None) -> None:
    values = Values(ValueRow(id=ROW, value=stored, etag='W/"12"'))
    with pytest.raises(ReadbackMismatch) as mismatch:
        await write_and_verify(values, UPDATE)
    assert values.reads == 0
    assert "read-back after the write does not hold the new value" in str(mismatch.value)
    assert CANARY not in repr(mismatch.value) and PREVIOUS not in repr(mismatch.value)


async def test_without_an_answer_verify_reads_the_row_back() -> None:
    values = Values(None, readback=ValueRow(id=ROW, value=SecretStr(CANARY), etag='W/"13"'))
    _run, change = await write_and_verify(values, UPDATE)
    assert values.reads == 1
    assert change.memento == Written(row_id=ROW, etag='W/"13"', previous=SecretStr(PREVIOUS))

    reverted = Values(None, readback=OLD)
    with pytest.raises(ReadbackMismatch):
        await write_and_verify(reverted, UPDATE)
    assert reverted.reads == 1
