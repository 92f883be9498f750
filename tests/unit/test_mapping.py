"""Each kind of bad mapping gets its own error, naming the offending field by its JSON path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sync.errors import ConfigurationError
from sync.mapping import parse_mapping
from sync.plan import targets_for


def problems_of(document: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        parse_mapping(document, "LOCKSTEP_MAPPING")
    return caught.value.problems


def test_valid_mapping_resolves_targets_in_stage_order(mapping_doc: dict[str, Any]) -> None:
    mapping = parse_mapping(mapping_doc, "LOCKSTEP_MAPPING")
    sql = targets_for(mapping, "sql-conn-password")
    assert [(t.environment.name, t.env_var) for t in sql] == [
        ("dev", "contoso_SqlConnectionPassword"),
        ("test", "contoso_SqlConnectionPassword"),
        ("prod", "contoso_SqlConnectionPassword"),
    ]
    graph = targets_for(mapping, "graph-client-secret")
    assert [t.environment.name for t in graph] == ["dev", "test"]
    assert targets_for(mapping, "not-mapped") == []
    assert mapping.secret_names() == ["sql-conn-password", "graph-client-secret"]


def test_url_is_normalised(mapping_doc: dict[str, Any]) -> None:
    mapping_doc["environments"][0]["url"] = "https://Contoso-Dev.crm.dynamics.com/"
    mapping = parse_mapping(mapping_doc, "M")
    assert mapping.environments[0].url == "https://contoso-dev.crm.dynamics.com"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("environments"), "LOCKSTEP_MAPPING.environments: Field required"),
        (
            lambda d: d.update(environments=[]),
            "LOCKSTEP_MAPPING.environments: List should have at least 1 item",
        ),
        (lambda d: d.update(secrets=[]), "LOCKSTEP_MAPPING.secrets: List should have at least 1 item"),
        (
            lambda d: d["environments"][1].update(stage=0),
            "LOCKSTEP_MAPPING.environments[1].stage: Input should be",
        ),
        (
            lambda d: d["environments"][1].update(stage="2"),
            "LOCKSTEP_MAPPING.environments[1].stage: Input should be",
        ),
        (
            lambda d: d["environments"][0].update(url="http://x.crm.dynamics.com"),
            "environments[0].url: must be",
        ),
        (
            lambda d: d["environments"][0].update(url="https://x.crm.dynamics.com/api"),
            "environments[0].url: must be",
        ),
        (
            lambda d: d["environments"][2].update(id="not-a-guid"),
            "environments[2].id: must be a Power Platform",
        ),
        (lambda d: d["environments"][0].update(name="dev env"), "environments[0].name: must be"),
        (
            lambda d: d["environments"][0].update(colour="red"),
            "environments[0].colour: Extra inputs are not permitted",
        ),
        (
            lambda d: d["secrets"][0].update(secret="bad_name"),
            "secrets[0].secret: must be a Key Vault secret name",
        ),
        (
            lambda d: d["secrets"][0].update(env_var="NoPrefix"),
            "secrets[0].env_var: must be an environment variable",
        ),
        (lambda d: d["secrets"][0].update(env_var="x_y' or 1 eq 1"), "secrets[0].env_var: must be"),
        (
            lambda d: d["secrets"][1].update(environments=[]),
            "secrets[1].environments: must name at least one",
        ),
        (lambda d: d["secrets"][1].pop("env_var"), "secrets[1].env_var: Field required"),
    ],
)
def test_field_errors_name_the_field(mapping_doc: dict[str, Any], mutate: Any, expected: str) -> None:
    mutate(mapping_doc)
    problems = problems_of(mapping_doc)
    assert any(expected in problem for problem in problems), problems


def test_cross_row_errors(mapping_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(mapping_doc)
    doc["environments"][1]["name"] = "dev"  # duplicate name
    doc["environments"][2]["id"] = doc["environments"][0]["id"]  # duplicate id
    doc["secrets"][1]["environments"] = ["dev", "staging", "dev"]  # unknown + listed twice
    doc["secrets"].append(
        {"secret": "sql-conn-password", "env_var": "contoso_SqlConnectionPassword"}
    )  # dup row
    doc["secrets"].append(
        {"secret": "other-secret", "env_var": "contoso_GraphSecret", "environments": ["prod"]}
    )
    problems = problems_of(doc)
    expected = [
        "LOCKSTEP_MAPPING.environments[1].name: duplicate of environments[0].name",
        "LOCKSTEP_MAPPING.environments[2].id: duplicate of environments[0].id",
        "LOCKSTEP_MAPPING.secrets[1].environments[1]: unknown environment 'staging'",
        "LOCKSTEP_MAPPING.secrets[1].environments[2]: 'dev' is listed twice",
        "LOCKSTEP_MAPPING.secrets[2]: duplicate of secrets[0]",
    ]
    for item in expected:
        assert any(problem.startswith(item) for problem in problems), (item, problems)


def test_one_env_var_fed_by_two_secrets_is_a_conflict(mapping_doc: dict[str, Any]) -> None:
    mapping_doc["secrets"].append(
        {"secret": "another", "env_var": "contoso_GraphSecret", "environments": ["test"]}
    )
    problems = problems_of(mapping_doc)
    assert any(
        "'contoso_graphsecret' in environment 'test' is fed by more than one secret" in p for p in problems
    )


def test_every_problem_is_reported_at_once(mapping_doc: dict[str, Any]) -> None:
    mapping_doc["environments"][0]["url"] = "ftp://nope"
    mapping_doc["environments"][1]["stage"] = -1
    mapping_doc["secrets"][0]["secret"] = "has space"
    assert len(problems_of(mapping_doc)) == 3


def test_not_an_object() -> None:
    assert problems_of(["a list"]) == [
        "LOCKSTEP_MAPPING: Input should be a valid dictionary or instance of Mapping"
    ]


def test_refresh_agents_defaults_on_and_reaches_the_targets(mapping_doc: dict[str, Any]) -> None:
    mapping_doc["secrets"][1]["refresh_agents"] = False
    mapping = parse_mapping(mapping_doc, "LOCKSTEP_MAPPING")
    assert {t.refresh_agents for t in targets_for(mapping, "sql-conn-password")} == {True}
    assert {t.refresh_agents for t in targets_for(mapping, "graph-client-secret")} == {False}
    mapping_doc["secrets"][1]["refresh_agents"] = "sometimes"
    with pytest.raises(ConfigurationError, match=r"secrets\[1\]\.refresh_agents"):
        parse_mapping(mapping_doc, "LOCKSTEP_MAPPING")
