"""Each kind of bad mapping gets its own error, naming the offending field by its JSON path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sync.errors import ConfigurationError
from sync.mapping import parse_mapping
from sync.models import ConnectionTarget, TargetKindName
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


CLIENT = "11111111-2222-4333-8444-555555555555"
TENANT = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def connection_row(**connection: Any) -> dict[str, Any]:
    spec = {"connector": "shared_commondataserviceforapps", "client_id": CLIENT, "tenant_id": TENANT}
    return {"secret": "flows-spn-secret", "connection": {**spec, **connection}}


def test_connection_rows_become_connection_targets(mapping_doc: dict[str, Any]) -> None:
    pinned = ["4b6d5f5e0c1a4d2e9f8b7a6c5d4e3f21", "shared-commondataser-4b6d5f5e-0c1a"]
    mapping_doc["secrets"].append({**connection_row(ids=pinned), "environments": ["prod"]})
    mapping_doc["secrets"].append({**connection_row(), "secret": "other-spn", "environments": ["dev"]})
    mapping_doc["secrets"][-1]["connection"]["client_id"] = CLIENT.upper().replace("1", "2")
    mapping = parse_mapping(mapping_doc, "M")
    pinned_targets = targets_for(mapping, "flows-spn-secret")
    assert [(t.kind, t.environment.name, t.env_var) for t in pinned_targets] == [
        (TargetKindName.CONNECTION, "prod", ""),
        (TargetKindName.CONNECTION, "prod", ""),
    ]
    assert [t.connection.id for t in pinned_targets if t.connection] == pinned
    assert all(
        t.connection == ConnectionTarget(**{**connection_row()["connection"], "id": t.connection.id})
        for t in pinned_targets
        if t.connection
    )
    (discovering,) = targets_for(mapping, "other-spn")
    assert discovering.connection is not None and discovering.connection.id is None
    assert discovering.connection.client_id == CLIENT.replace("1", "2")  # normalised to lower case
    assert discovering.label == discovering.connection.client_id
    # env-var rows are unchanged
    assert {t.kind for t in targets_for(mapping, "sql-conn-password")} == {TargetKindName.ENV_VAR}


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        ({"connector": "commondataserviceforapps"}, "secrets[2].connection.connector: must be a connector"),
        ({"connector": "shared_x/../y"}, "secrets[2].connection.connector: must be a connector"),
        ({"client_id": "not-a-guid"}, "secrets[2].connection.client_id: must be a GUID"),
        ({"tenant_id": "contoso.onmicrosoft.com"}, "secrets[2].connection.tenant_id: must be a GUID"),
        ({"ids": []}, "secrets[2].connection.ids: must name at least one"),
        ({"ids": ["ok-id", "a/b"]}, "secrets[2].connection.ids[1]: must be a connection id"),
        ({"ids": ["id?x=1"]}, "secrets[2].connection.ids[0]: must be a connection id"),
        ({"ids": ["con", "CON"]}, "secrets[2].connection.ids[1]: 'CON' is listed twice"),
        ({"secret_key": "x"}, "secrets[2].connection.secret_key: Extra inputs are not permitted"),
    ],
)
def test_connection_field_errors_name_the_field(
    mapping_doc: dict[str, Any], connection: dict[str, Any], expected: str
) -> None:
    mapping_doc["secrets"].append(connection_row(**connection))
    problems = problems_of(mapping_doc)
    assert any(expected in problem for problem in problems), problems


def test_a_connection_field_that_is_missing_is_named(mapping_doc: dict[str, Any]) -> None:
    row = connection_row()
    del row["connection"]["tenant_id"]
    mapping_doc["secrets"].append(row)
    assert problems_of(mapping_doc) == ["LOCKSTEP_MAPPING.secrets[2].connection.tenant_id: Field required"]


def test_a_row_names_exactly_one_of_env_var_and_connection(mapping_doc: dict[str, Any]) -> None:
    mapping_doc["secrets"].append({**connection_row(), "env_var": "contoso_Also"})
    mapping_doc["secrets"].append({"secret": "nothing"})
    problems = problems_of(mapping_doc)
    assert problems == [
        "LOCKSTEP_MAPPING.secrets[2].env_var: a row names exactly one of env_var and connection; "
        "this one names both",
        "LOCKSTEP_MAPPING.secrets[3].env_var: Field required (a row names an env_var or a connection)",
    ]


def test_a_bad_connection_is_reported_once_not_as_a_missing_env_var(mapping_doc: dict[str, Any]) -> None:
    mapping_doc["secrets"].append(connection_row(client_id="x"))
    assert problems_of(mapping_doc) == [
        "LOCKSTEP_MAPPING.secrets[2].connection.client_id: must be a GUID "
        "(the app registration's application / directory id)"
    ]


def test_connections_claimed_by_two_rows_are_reported(mapping_doc: dict[str, Any]) -> None:
    rows = [
        connection_row(ids=["conn-a", "conn-b"]),  # 2: all environments
        {**connection_row(ids=["CONN-A"]), "secret": "another", "environments": ["test"]},  # 3: overlaps 2
        {**connection_row(), "environments": ["dev"]},  # 4: discovers what 2 pins in dev
        {**connection_row(), "secret": "third", "environments": ["dev", "prod"]},  # 5: 4 in dev, 2 in prod
        {**connection_row(ids=["conn-z"]), "environments": ["dev"]},  # 6: pinned under 4's discovery
    ]
    mapping_doc["secrets"].extend(rows)
    problems = problems_of(mapping_doc)
    assert problems == [
        "LOCKSTEP_MAPPING.secrets[3].connection.ids[0]: connection 'CONN-A' is already mapped by secrets[2] "
        "(in 'test')",
        "LOCKSTEP_MAPPING.secrets[4].connection: the connections of shared_commondataserviceforapps with "
        f"client id {CLIENT} are already mapped by secrets[2] (in 'dev')",
        "LOCKSTEP_MAPPING.secrets[5].connection: the connections of shared_commondataserviceforapps with "
        f"client id {CLIENT} are already mapped by secrets[4] (in 'dev')",
        "LOCKSTEP_MAPPING.secrets[5].connection: the connections of shared_commondataserviceforapps with "
        f"client id {CLIENT} are already mapped by secrets[2] (in 'prod')",
        "LOCKSTEP_MAPPING.secrets[6].connection: secrets[4] already discovers every connection of "
        f"shared_commondataserviceforapps with client id {CLIENT}; pin ids in both rows or drop one "
        "(in 'dev')",
    ]


def test_connection_problems_and_field_problems_are_reported_together(mapping_doc: dict[str, Any]) -> None:
    mapping_doc["secrets"].append(connection_row(client_id="x", ids=["a b"]))
    mapping_doc["secrets"][0]["secret"] = "has space"
    assert len(problems_of(mapping_doc)) == 3
