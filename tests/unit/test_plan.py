"""The write decision and the readiness check, without any I/O."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from sync.mapping import Environment
from sync.models import Definition, DefinitionType, EnvironmentStatus, ValueRow
from sync.plan import Create, NoChange, Refuse, Update, plan_write, readiness_problem

SECRET = SecretStr("s3cr3t-value")


def definition(type_: int = DefinitionType.STRING, value: str | None = None, row: bool = True) -> Definition:
    value_row = (
        ValueRow(id="row-1", value=None if value is None else SecretStr(value), etag='W/"7"') if row else None
    )
    return Definition(id="def-1", schema_name="contoso_Secret", type=type_, value_row=value_row)


def test_missing_definition_is_refused() -> None:
    action = plan_write(None, "contoso_Secret", SECRET)
    assert action == Refuse("no environment variable definition named 'contoso_Secret' in this environment")


def test_create_when_no_value_row() -> None:
    assert plan_write(definition(row=False), "contoso_Secret", SECRET) == Create("def-1", "contoso_Secret")


def test_update_with_etag_when_value_differs() -> None:
    assert plan_write(definition(value="old"), "contoso_Secret", SECRET) == Update("row-1", 'W/"7"')
    assert plan_write(definition(value=None), "contoso_Secret", SECRET) == Update("row-1", 'W/"7"')


def test_no_change_when_equal() -> None:
    assert plan_write(definition(value="s3cr3t-value"), "contoso_Secret", SECRET) == NoChange()


@pytest.mark.parametrize(
    ("type_", "value", "reason_part"),
    [
        (DefinitionType.SECRET, "x", "type Secret"),
        (DefinitionType.DATA_SOURCE, "x", "Data source"),
        (DefinitionType.NUMBER, "12a", "not a number"),
        (DefinitionType.BOOLEAN, "maybe", "not 'yes' or 'no'"),
        (DefinitionType.JSON, "{bad", "not valid JSON"),
        (DefinitionType.STRING, "x" * 2001, "at most 2000"),
        (42, "x", "unknown type 42"),
    ],
)
def test_refusals_never_quote_the_value(type_: int, value: str, reason_part: str) -> None:
    action = plan_write(definition(type_=type_, value="old"), "contoso_Secret", SecretStr(value))
    assert isinstance(action, Refuse)
    assert reason_part in action.reason
    assert value not in action.reason


@pytest.mark.parametrize(
    ("type_", "value"),
    [(DefinitionType.NUMBER, "42.5"), (DefinitionType.BOOLEAN, "yes"), (DefinitionType.JSON, '{"a": 1}')],
)
def test_typed_values_that_fit(type_: int, value: str) -> None:
    assert isinstance(plan_write(definition(type_=type_, value="old"), "contoso_X", SecretStr(value)), Update)


ENV = Environment(
    name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url="https://contoso-dev.crm.dynamics.com", stage=1
)


def status(
    management: str = "Ready",
    runtime: str = "Enabled",
    url: str | None = "https://contoso-dev.crm.dynamics.com/",
) -> EnvironmentStatus:
    return EnvironmentStatus(
        environment_id=ENV.id, management_state=management, runtime_state=runtime, instance_url=url
    )


def test_ready_environment() -> None:
    assert readiness_problem(status(), ENV) is None


def test_not_ready_is_retryable() -> None:
    problem = readiness_problem(status(management="NotReady"), ENV)
    assert problem is not None and problem[1] is True
    problem = readiness_problem(status(runtime="AdminMode"), ENV)
    assert problem is not None and "runtime AdminMode" in problem[0]


def test_url_mismatch_is_permanent() -> None:
    problem = readiness_problem(status(url="https://contoso-other.crm.dynamics.com/"), ENV)
    assert problem is not None and problem[1] is False and "fix the mapping" in problem[0]
    problem = readiness_problem(status(url=None), ENV)
    assert problem is not None and problem[1] is False
