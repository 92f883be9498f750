"""The connection kind: the pure decision, and expand/read/write/verify/restore over a fake API."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from sync.adapters.connection_model import Connection, connection_from
from sync.adapters.connections import ConnectionNotFound, NotEditable
from sync.errors import NeedsActionError, PermanentError, TransientError
from sync.mapping import Environment
from sync.models import ConnectionTarget, Outcome, SecretSnapshot, Target, TargetKindName
from sync.targets.base import Change, InSync, NeedsAction, Refuse, TargetState, Write
from sync.targets.connections import ConnectionKinds, NoneFound, Unreadable, Written, decide
from tests.unit.test_connectivity import CLIENT, CONNECTOR, ENV, TENANT, connection_body

CREATED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CANARY = "CANARY-conn-9d1e-do-not-leak"
OLD = "OLD-conn-4c2b-do-not-leak"
DEV = Environment(name="dev", id=ENV, url="https://contoso-dev.crm.dynamics.com", stage=1)
SNAPSHOT = SecretSnapshot(name="flows-spn", version="v2", value=SecretStr(CANARY), created=CREATED)
PREVIOUS = SecretSnapshot(
    name="flows-spn", version="v1", value=SecretStr(OLD), created=CREATED - timedelta(days=90)
)


def target(connection_id: str | None = None) -> Target:
    spec = ConnectionTarget(connector=CONNECTOR, client_id=CLIENT, tenant_id=TENANT, id=connection_id)
    return Target(environment=DEV, secret="flows-spn", kind=TargetKindName.CONNECTION, connection=spec)


def connection(
    name: str = "conn-1", *, modified: datetime = CREATED + timedelta(minutes=1), **body: Any
) -> Connection:
    row = connection_body(name, **body)
    row["properties"]["lastModifiedTime"] = modified.isoformat()
    parsed = connection_from(row, ENV)
    assert parsed is not None
    return parsed


ERROR = {"status": "Error", "target": "token", "error": {"code": "Unauthenticated", "message": "AADSTS"}}


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (connection(), InSync),
        (connection(modified=CREATED), InSync),  # Key Vault keeps whole seconds: the same second counts
        (connection(modified=CREATED - timedelta(seconds=1)), Write),
        (connection(status=ERROR), Write),
        (connection(status={"status": "Unknown"}), Write),
        (connection(parameter_set="Oauth"), Refuse),  # a user sign-in is never switched
        (connection(values={"token:clientId": {"value": "99999999-2222-4333-8444-555555555555"}}), Refuse),
        (connection(values={}), InSync),  # the service may not show the client id
        (Unreadable("not shared"), NeedsAction),
        (NoneFound("none here"), NeedsAction),
    ],
)
def test_decide(observed: Any, expected: type) -> None:
    decision = decide(target("conn-1"), observed, SNAPSHOT)
    assert isinstance(decision, expected), decision


def test_decide_explains_itself() -> None:
    error = decide(target("conn-1"), connection(status=ERROR), SNAPSHOT)
    assert isinstance(error, Write) and error.reason == "in Error (Unauthenticated)"
    assert error.outcome is Outcome.UPDATED and error.state is TargetState.DIFFERS
    user = decide(target("conn-1"), connection(parameter_set="Oauth"), SNAPSHOT)
    assert isinstance(user, Refuse) and "signs in as a user (Oauth)" in user.reason
    without_time = decide(target("conn-1"), connection(), SNAPSHOT.model_copy(update={"created": None}))
    assert isinstance(without_time, Write)


class FakeApi:
    def __init__(self, *connections: Connection) -> None:
        self.connections = {c.id: c for c in connections}
        self.lists = 0
        self.gets: list[str] = []
        self.puts: list[tuple[str, str]] = []
        self.refuse_put: Exception | None = None
        self.status_after_put: dict[str, Any] = {}

    async def list_connections(self, environment_id: str) -> list[Connection]:
        self.lists += 1
        return list(self.connections.values())

    async def get_connection(self, environment_id: str, connector: str, connection_id: str) -> Connection:
        self.gets.append(connection_id)
        if connection_id not in self.connections:
            raise ConnectionNotFound("HTTP 404 ConnectionNotFound")
        return self.connections[connection_id]

    async def put_credentials(
        self, found: Connection, client_id: str, tenant_id: str, secret: SecretStr
    ) -> None:
        if self.refuse_put:
            raise self.refuse_put
        self.puts.append((found.id, secret.get_secret_value()))
        row = copy.deepcopy(found.raw)
        row["properties"]["lastModifiedTime"] = (CREATED + timedelta(minutes=10 + len(self.puts))).isoformat()
        row["properties"]["statuses"] = [
            self.status_after_put.get(secret.get_secret_value(), {"status": "Connected"})
        ]
        parsed = connection_from(row, ENV)
        assert parsed is not None
        self.connections[found.id] = parsed


class FakeVersions:
    def __init__(self, previous: SecretSnapshot | None = PREVIOUS) -> None:
        self.previous = previous
        self.calls = 0

    async def get_previous(self, name: str, before_version: str) -> SecretSnapshot | None:
        self.calls += 1
        return self.previous


async def test_discovery_finds_service_principal_connections_of_the_client_once_per_environment() -> None:
    api = FakeApi(
        connection("b-conn", modified=CREATED - timedelta(days=1)),
        connection("a-conn"),
        connection("user", parameter_set="Oauth"),
        connection("other-client", values={"token:clientId": {"value": TENANT}}),
        connection("sql", connector="shared_sql"),
    )
    kind = ConnectionKinds(api, FakeVersions()).open([], bulk=False)
    first, second = await kind.expand(target()), await kind.expand(target())
    assert [t.connection.id for t in first if t.connection] == ["a-conn", "b-conn"]
    assert first == second and api.lists == 1
    assert all(t.connection and t.connection.display_name == "Flows SPN" for t in first)
    observed = await kind.read(first[0])
    assert api.gets == []  # the listing's copy is used once, then read afresh
    assert isinstance(kind.decide(first[0], observed, SNAPSHOT), InSync)
    await kind.read(first[0])
    assert api.gets == ["a-conn"]
    kind.close()


async def test_no_connection_found_needs_a_person() -> None:
    kind = ConnectionKinds(FakeApi(), FakeVersions()).open([], bulk=False)
    (only,) = await kind.expand(target())
    decision = kind.decide(only, await kind.read(only), SNAPSHOT)
    assert (
        isinstance(decision, NeedsAction)
        and "no connection of shared_commondataserviceforapps" in decision.reason
    )


async def test_a_pinned_connection_not_shared_needs_a_person() -> None:
    api = FakeApi()

    async def refuse(*_: Any) -> Connection:
        raise NotEditable("HTTP 403 Forbidden: share the connection with Lockstep's identity as Can edit")

    api.get_connection = refuse  # type: ignore[method-assign]
    kind = ConnectionKinds(api, FakeVersions()).open([], bulk=False)
    (pinned,) = await kind.expand(target("conn-9"))
    decision = kind.decide(pinned, await kind.read(pinned), SNAPSHOT)
    assert isinstance(decision, NeedsAction) and "Can edit" in decision.reason


async def test_a_pinned_connection_that_does_not_exist_fails_permanently() -> None:
    kind = ConnectionKinds(FakeApi(), FakeVersions()).open([], bulk=False)
    (pinned,) = await kind.expand(target("gone"))
    with pytest.raises(ConnectionNotFound):
        await kind.read(pinned)


async def test_write_then_verify_connected_is_updated() -> None:
    api = FakeApi(connection(status=ERROR))
    kind = ConnectionKinds(api, FakeVersions()).open([], bulk=False)
    (pinned,) = await kind.expand(target("conn-1"))
    observed = await kind.read(pinned)
    decision = kind.decide(pinned, observed, SNAPSHOT)
    assert isinstance(decision, Write)
    await kind.write(pinned, observed, decision, SNAPSHOT)
    change = await kind.verify(pinned, observed, decision, SNAPSHOT)
    assert change.outcome is Outcome.UPDATED and change.wrote and isinstance(change.memento, Written)
    assert api.puts == [("conn-1", CANARY)]
    assert CANARY not in repr(change)


async def test_a_refused_put_needs_action() -> None:
    api = FakeApi(connection(status=ERROR))
    api.refuse_put = NotEditable("HTTP 403 Forbidden: share it")
    kind = ConnectionKinds(api, FakeVersions()).open([], bulk=False)
    observed = await kind.read(target("conn-1"))
    with pytest.raises(NeedsActionError, match="share it"):
        await kind.write(target("conn-1"), observed, Write(Outcome.UPDATED), SNAPSHOT)


async def test_an_error_after_the_put_is_permanent_and_puts_the_previous_version_back() -> None:
    api = FakeApi(connection(status=ERROR))
    api.status_after_put[CANARY] = ERROR
    kind = ConnectionKinds(api, FakeVersions()).open([], bulk=False)
    observed = await kind.read(target("conn-1"))
    await kind.write(target("conn-1"), observed, Write(Outcome.UPDATED), SNAPSHOT)
    with pytest.raises(PermanentError) as caught:
        await kind.verify(target("conn-1"), observed, Write(Outcome.UPDATED), SNAPSHOT)
    message = str(caught.value)
    assert "'Flows SPN' (conn-1) reports Error (Unauthenticated)" in message
    assert "rolled back to the secret's previous version v1" in message
    assert api.puts == [("conn-1", CANARY), ("conn-1", OLD)]
    assert CANARY not in message and OLD not in message


async def test_an_unconfirmed_status_is_transient() -> None:
    api = FakeApi(connection())
    api.status_after_put[CANARY] = {"status": "Pending"}
    kind = ConnectionKinds(api, FakeVersions()).open([], bulk=False)
    observed = await kind.read(target("conn-1"))
    await kind.write(target("conn-1"), observed, Write(Outcome.UPDATED), SNAPSHOT)
    with pytest.raises(TransientError, match="status Pending"):
        await kind.verify(target("conn-1"), observed, Write(Outcome.UPDATED), SNAPSHOT)


async def written(api: FakeApi, versions: FakeVersions) -> tuple[Any, Change]:
    kind = ConnectionKinds(api, versions).open([], bulk=False)
    observed = await kind.read(target("conn-1"))
    await kind.write(target("conn-1"), observed, Write(Outcome.UPDATED), SNAPSHOT)
    return kind, await kind.verify(target("conn-1"), observed, Write(Outcome.UPDATED), SNAPSHOT)


async def test_restore_puts_the_previous_enabled_version() -> None:
    api = FakeApi(connection(modified=CREATED - timedelta(days=1)))
    kind, change = await written(api, FakeVersions())
    outcome, reason = await kind.restore(target("conn-1"), change, SNAPSHOT)
    assert (outcome, reason) == (Outcome.ROLLED_BACK, "rolled back to the secret's previous version v1")
    assert api.puts[-1] == ("conn-1", OLD)


async def test_restore_leaves_a_connection_someone_changed_since() -> None:
    api = FakeApi(connection(modified=CREATED - timedelta(days=1)))
    kind, change = await written(api, FakeVersions())
    await api.put_credentials(api.connections["conn-1"], CLIENT, TENANT, SecretStr("someone else"))
    outcome, reason = await kind.restore(target("conn-1"), change, SNAPSHOT)
    assert outcome is Outcome.FAILED and "their change stays" in reason
    assert api.puts[-1] == ("conn-1", "someone else")


async def test_restore_without_an_earlier_version_fails_and_says_so() -> None:
    api = FakeApi(connection(modified=CREATED - timedelta(days=1)))
    kind, change = await written(api, FakeVersions(previous=None))
    outcome, reason = await kind.restore(target("conn-1"), change, SNAPSHOT)
    assert outcome is Outcome.FAILED and "no earlier enabled version" in reason
