"""The connection inventory's shaping: each mapped connection, the references bound to it, the
flows using those; and the near-expiry card naming them, literally."""

from __future__ import annotations

from datetime import UTC, datetime

from sync.adapters.connection_model import Connection
from sync.adapters.flows import Flow
from sync.card import build_expiry_card
from sync.inventory_connections import connection_uses, matches
from sync.mapping import Environment
from sync.models import ConnectionTarget, Target
from tests.unit.test_card import HOSTILE_FLOW, _assert_literal, text, valid

DEV = Environment(
    name="dev", id="11111111-1111-4111-8111-111111111111", url="https://a.crm.dynamics.com", stage=1
)
CLIENT = "22222222-2222-4222-8222-222222222222"
DATAVERSE = "shared_commondataserviceforapps"


def connection(
    cid: str,
    name: str,
    *,
    client: str = CLIENT,
    parameter_set: str = "ServicePrincipalOauth",
    status: str = "Connected",
    code: str = "",
) -> Connection:
    return Connection(
        environment_id=DEV.id,
        connector=DATAVERSE,
        id=cid,
        display_name=name,
        status=status,
        error_code=code,
        parameter_set=parameter_set,
        values={"token:clientId": client},
        last_modified=datetime(2025, 1, 1, tzinfo=UTC),
        created_by="",
        raw={},
    )


def target(secret: str = "spn", pinned: str | None = None) -> Target:
    spec = ConnectionTarget(connector=DATAVERSE, client_id=CLIENT, tenant_id=CLIENT, id=pinned)
    return Target(environment=DEV, secret=secret, connection=spec)


def flow(name: str, refs: tuple[str, ...], on: bool = True) -> Flow:
    return Flow(
        id=name, name=name, on=on, owner_id="u1", schema_names=frozenset(), connection_references=refs
    )


def test_a_discovering_row_finds_service_principal_connections_of_its_client_id_only() -> None:
    listing = [
        connection("c2", "b"),
        connection("c1", "A"),
        connection("c3", "mine", parameter_set="Oauth"),
        connection("c4", "other app", client="33333333-3333-4333-8333-333333333333"),
    ]
    assert [c.id for c in matches(listing, target().connection)] == ["c1", "c2"]  # type: ignore[arg-type]


def test_each_connection_with_its_references_and_the_flows_using_them() -> None:
    found = [
        [connection("c1", "Flows SPN"), connection("c2", "Spare SPN", status="Error", code="Unauthenticated")]
    ]
    references = {
        "contoso_Dv": {"connector": "/providers/x/shared_commondataserviceforapps", "connection": "C1"},
        "contoso_Dv2": {"connector": "", "connection": "c1"},
        "contoso_Sql": {"connector": "", "connection": "elsewhere"},
    }
    flows = [
        flow("Export", ("contoso_Dv",)),
        flow("Old", ("contoso_Dv2",), on=False),
        flow("Other", ("contoso_Sql",)),
    ]
    rows = {
        row.name: row for row in connection_uses(DEV, [target()], found, flows, references, {"u1": "Maker"})
    }
    used = rows["Flows SPN"]
    assert (
        used.state == "in_use"
        and used.status == "Connected"
        and used.connection == {"id": "c1", "display_name": "Flows SPN"}
    )
    assert used.connection_references == ("contoso_Dv", "contoso_Dv2")
    assert [(f.name, f.state, f.owner) for f in used.flows] == [
        ("Export", "on", "Maker"),
        ("Old", "off", "Maker"),
    ]
    spare = rows["Spare SPN"]
    assert (spare.state, spare.status, spare.error_code, spare.flows) == (
        "unused",
        "Error",
        "Unauthenticated",
        (),
    )


def test_not_found_unreadable_and_shared_connections() -> None:
    rows = connection_uses(
        DEV,
        [target("a"), target("b", pinned="gone"), target("c"), target("d")],
        [[], "refused: HTTP 403", [connection("c1", "X")], [connection("c1", "X")]],
        [],
        {},
        {},
    )
    states = [(r.state, r.connection["id"], r.secrets) for r in rows]
    assert ("not_found", None, ("a",)) in states and ("error", "gone", ("b",)) in states
    assert ("unused", "c1", ("c", "d")) in states  # one row, both secrets
    assert len(rows) == 3


def test_the_expiry_card_names_connections_references_and_flows_literally() -> None:
    card = valid(
        build_expiry_card(
            secret="flows-spn-secret",
            event_type="Microsoft.KeyVault.SecretNearExpiry",
            expires="2026-12-01 00:00 UTC",
            targets=["dev/Flows SPN"],
            correlation_id="cid",
            connections={
                "dev/**Flows** SPN (Connected)": ["references: contoso_Dv", f"flows: {HOSTILE_FLOW}, Export"],
                "test/Spare (Error Unauthenticated)": [],
            },
        )
    )
    body = text(card)
    assert (
        "Connections that will break" in body and "references: contoso" in body and "test/Spare" not in body
    )
    _assert_literal(card, "**Flows** SPN (Connected)", HOSTILE_FLOW)
