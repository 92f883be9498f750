"""The impact inventory's shaping: which flows use which variable, with their connections."""

from __future__ import annotations

import json

from sync.adapters.flows import Flow, parse_clientdata
from sync.inventory import impacts
from sync.mapping import Environment
from sync.models import Definition, Target

DEV = Environment(
    name="dev", id="11111111-1111-4111-8111-111111111111", url="https://a.crm.dynamics.com", stage=1
)


def flow(name: str, uses: set[str], on: bool = True, refs: tuple[str, ...] = ()) -> Flow:
    return Flow(
        id=name, name=name, on=on, owner_id="u1", schema_names=frozenset(uses), connection_references=refs
    )


def test_variables_with_and_without_flows() -> None:
    targets = [
        Target(environment=DEV, env_var="contoso_Sql", secret="sql"),
        Target(environment=DEV, env_var="contoso_Graph", secret="graph"),
        Target(environment=DEV, env_var="contoso_Gone", secret="gone"),
    ]
    definitions = {
        "contoso_sql": Definition(id="d1", schema_name="contoso_Sql", type=100000000, value_row=None),
        "contoso_graph": Definition(id="d2", schema_name="contoso_Graph", type=100000000, value_row=None),
    }
    flows = [flow("Export", {"contoso_sql"}, refs=("cr_sql",)), flow("Old", {"contoso_sql"}, on=False)]
    rows = {
        row.env_var: row
        for row in impacts(
            DEV,
            targets,
            definitions,
            flows,
            {"cr_sql": {"connector": "sql", "connection": "c1"}},
            {"u1": "Maker"},
        )
    }
    assert rows["contoso_Sql"].state == "in_use"
    assert [(f.name, f.state, f.owner) for f in rows["contoso_Sql"].flows] == [
        ("Export", "on", "Maker"),
        ("Old", "off", "Maker"),
    ]
    assert rows["contoso_Sql"].connection_references == (
        {"logical_name": "cr_sql", "connector": "sql", "connection": "c1"},
    )
    assert rows["contoso_Graph"].state == "unused" and rows["contoso_Graph"].flows == ()
    assert rows["contoso_Gone"].state == "missing_definition"


def test_clientdata_parsing_tolerates_anything() -> None:
    assert parse_clientdata(None) == (frozenset(), ())
    assert parse_clientdata("not json") == (frozenset(), ())
    assert parse_clientdata('{"properties": {"definition": {"parameters": [1, 2]}}}') == (frozenset(), ())
    clientdata = {
        "properties": {
            "connectionReferences": {"a": {"connection": {"connectionReferenceLogicalName": "cr"}}},
            "definition": {"parameters": {"p": {"metadata": {"schemaName": "Contoso_Sql"}}, "q": {}}},
        }
    }
    names, refs = parse_clientdata(json.dumps(clientdata))
    assert names == frozenset({"contoso_sql"}) and refs == ("cr",)
