"""The plan's verdict per target comes from the same planner the engine writes with."""

from __future__ import annotations

from pydantic import SecretStr

from sync.inspection import TargetState, classify, select_targets
from sync.mapping import parse_mapping
from sync.models import Definition, DefinitionType, SecretSnapshot, ValueRow

SNAPSHOT = SecretSnapshot(name="s", version="v2", value=SecretStr("VALUE-NEW-9f3a"))


def definition(
    value: str | None, kind: DefinitionType = DefinitionType.STRING, row: bool = True
) -> Definition:
    value_row = (
        ValueRow(id="r", value=None if value is None else SecretStr(value), etag='W/"1"') if row else None
    )
    return Definition(id="d", schema_name="x_Var", type=int(kind), value_row=value_row)


def test_each_state() -> None:
    assert classify(definition("VALUE-NEW-9f3a"), "x_Var", SNAPSHOT) == (TargetState.IN_SYNC, "")
    assert classify(definition("VALUE-OLD-3c7e"), "x_Var", SNAPSHOT)[0] is TargetState.DIFFERS
    assert classify(definition(None, row=False), "x_Var", SNAPSHOT)[0] is TargetState.MISSING_VALUE
    assert classify(None, "x_Var", SNAPSHOT)[0] is TargetState.MISSING_DEFINITION
    # A Secret-type definition is a reference target (sync.targets.references); without a vault
    # to check it against, the pure planner cannot check it and says so (no longer "map a String").
    state, reason = classify(definition("VALUE-OLD-3c7e", DefinitionType.SECRET), "x_Var", SNAPSHOT)
    assert state is TargetState.REFUSED and "checked against the configured vault" in reason


def test_reasons_never_quote_values() -> None:
    for candidate in (definition("VALUE-OLD-3c7e"), definition(None, row=False), None):
        _, reason = classify(candidate, "x_Var", SNAPSHOT)
        assert "VALUE-NEW-9f3a" not in reason and "VALUE-OLD-3c7e" not in reason


def test_select_targets_narrows_by_secret_and_environment() -> None:
    mapping = parse_mapping(
        {
            "environments": [
                {
                    "name": "dev",
                    "id": "11111111-1111-4111-8111-111111111111",
                    "url": "https://a.crm.dynamics.com",
                    "stage": 1,
                },
                {
                    "name": "prod",
                    "id": "22222222-2222-4222-8222-222222222222",
                    "url": "https://b.crm.dynamics.com",
                    "stage": 2,
                },
            ],
            "secrets": [
                {"secret": "one", "env_var": "contoso_One"},
                {"secret": "two", "env_var": "contoso_Two"},
            ],
        },
        "test",
    )
    assert [(t.secret, t.environment.name) for t in select_targets(mapping)] == [
        ("one", "dev"),
        ("one", "prod"),
        ("two", "dev"),
        ("two", "prod"),
    ]
    assert [(t.secret, t.environment.name) for t in select_targets(mapping, ["two"], ["prod"])] == [
        ("two", "prod")
    ]
