"""A secret value built to crash the parser (JSON nested 1,500 deep) is a permanent refusal with a
reason, in the planner, the engine and the inspection alike: never a RecursionError redelivered."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from sync.inspection import TargetState, classify
from sync.mapping import parse_mapping
from sync.models import Definition, DefinitionType, Outcome, SecretSnapshot
from sync.plan import MAX_JSON_DEPTH, json_depth, value_problem

from .conftest import mapping_document
from .test_engine import Secrets, Store, engine, run

DEEP = "[" * 1500  # 1,500 characters: inside the 2,000-character limit
JSON_TYPE = int(DefinitionType.JSON)


@pytest.mark.parametrize("value", [DEEP, "[" * 999 + "]" * 999, '{"a":' * 300 + "1" + "}" * 300])
def test_deep_json_is_refused_with_a_reason(value: str) -> None:
    problem = value_problem(JSON_TYPE, value)
    assert problem is not None and f"more than {MAX_JSON_DEPTH} levels deep" in problem
    assert value[:20] not in problem


def test_json_at_the_depth_limit_and_brackets_in_strings_are_accepted() -> None:
    assert value_problem(JSON_TYPE, "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is None
    assert value_problem(JSON_TYPE, json.dumps({"p": "[[[[" * 400, "q": '\\"{'})) is None
    assert json_depth(json.dumps(["[", {"k": ']}\\"[['}])) == 2


def test_inspection_reports_the_refusal() -> None:
    definition = Definition(id="d", schema_name="x_Config", type=JSON_TYPE, value_row=None)
    snapshot = SecretSnapshot(name="s", version="v1", value=SecretStr(DEEP))
    state, reason = classify(definition, "x_Config", snapshot)
    assert state is TargetState.REFUSED and "levels deep" in reason


class DeepSecrets(Secrets):
    async def get_current(self, name: str) -> SecretSnapshot:
        self.reads.append(name)
        return SecretSnapshot(name=name, version="v2", value=SecretStr(DEEP))


async def test_the_engine_refuses_permanently_and_writes_nothing() -> None:
    mapping = parse_mapping(mapping_document(), "M")
    store = Store(mapping)
    for rows in store.rows.values():
        rows["contoso_SqlConnectionPassword"][0] = JSON_TYPE
    report = await run(engine(mapping, secrets=DeepSecrets(), store=store), "sql-conn-password")
    first = report.results[0]
    assert first.outcome is Outcome.FAILED and not first.retryable
    assert "levels deep" in first.reason
    assert not report.retryable and store.writes == []
