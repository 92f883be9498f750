"""The engine over in-memory fakes: ordering, idempotence, isolation of failures, notifications."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from sync.adapters.dataverse import WriteConflict
from sync.adapters.teams import NotificationError
from sync.deadline import time_budget
from sync.engine import SyncEngine
from sync.errors import PermanentError, TransientError
from sync.mapping import Mapping, parse_mapping
from sync.models import Definition, EnvironmentStatus, Outcome, SecretSnapshot, Trigger, ValueRow
from sync.telemetry import correlation

from .conftest import mapping_document

NEW = "n3w-value"


class Secrets:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.reads: list[str] = []

    async def get_current(self, name: str) -> SecretSnapshot:
        self.reads.append(name)
        if self.error:
            raise self.error
        return SecretSnapshot(name=name, version="v2", value=SecretStr(NEW))


class Store:
    """A Dataverse per org URL: {org: {schema: [type, value or None, etag]}}."""

    def __init__(self, mapping: Mapping, value: str | None = "old") -> None:
        self.rows: dict[str, dict[str, list[Any]]] = {
            env.url: {
                "contoso_SqlConnectionPassword": [100000000, value, 1],
                "contoso_GraphSecret": [100000000, value, 1],
            }
            for env in mapping.environments
        }
        self.writes: list[tuple[str, str]] = []
        self.conflicts = 0
        self.sticky = True
        self.delay = 0.0
        self.refuse: set[str] = set()

    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None:
        await asyncio.sleep(self.delay)
        row = self.rows[org_url].get(schema_name)
        if row is None:
            return None
        value_row = (
            None
            if row[1] is None
            else ValueRow(id=f"{org_url}|{schema_name}", value=SecretStr(row[1]), etag=f'W/"{row[2]}"')
        )
        return Definition(id="def", schema_name=schema_name, type=row[0], value_row=value_row)

    async def update_value(self, org_url: str, row_id: str, etag: str, value: SecretStr) -> None:
        if self.conflicts:
            self.conflicts -= 1
            self.rows[org_url][row_id.split("|")[1]][2] += 1
            raise WriteConflict("412")
        if org_url in self.refuse:
            raise PermanentError("Dataverse refused updating the value: HTTP 403")
        self.writes.append((org_url, "update"))
        row = self.rows[org_url][row_id.split("|")[1]]
        if self.sticky:
            row[1], row[2] = value.get_secret_value(), row[2] + 1

    async def create_value(
        self, org_url: str, definition_id: str, schema_name: str, value: SecretStr
    ) -> None:
        if org_url in self.refuse:
            raise PermanentError("Dataverse refused creating the value: HTTP 403")
        self.writes.append((org_url, "create"))
        self.rows[org_url][schema_name][1] = value.get_secret_value()

    async def delete_value(self, org_url: str, row_id: str, etag: str) -> None:
        self.writes.append((org_url, "delete"))
        self.rows[org_url][row_id.split("|")[1]][1] = None


class Directory:
    def __init__(self, mapping: Mapping) -> None:
        self.states = {env.id: ("Ready", "Enabled", env.url + "/") for env in mapping.environments}
        self.calls: list[str] = []

    async def get_environment(self, environment_id: str) -> EnvironmentStatus:
        self.calls.append(environment_id)
        management, runtime, url = self.states[environment_id]
        return EnvironmentStatus(
            environment_id=environment_id,
            management_state=management,
            runtime_state=runtime,
            instance_url=url,
        )


class Teams:
    def __init__(self, fail: bool = False) -> None:
        self.cards: list[dict[str, Any]] = []
        self.fail = fail

    async def post_card(self, card: dict[str, Any]) -> None:
        if self.fail:
            raise NotificationError("Teams webhook answered HTTP 500")
        self.cards.append(card)


@pytest.fixture
def mapping() -> Mapping:
    return parse_mapping(mapping_document(), "M")


def engine(
    mapping: Mapping,
    secrets: Secrets | None = None,
    store: Store | None = None,
    directory: Directory | None = None,
    teams: Teams | None = None,
) -> SyncEngine:
    return SyncEngine(
        mapping, secrets or Secrets(), store or Store(mapping), directory or Directory(mapping), teams
    )


async def run(engine_: SyncEngine, *names: str) -> Any:
    with correlation("cid-test"):
        return await engine_.sync_secrets(list(names), Trigger.EVENT)


async def test_updates_every_environment_in_stage_order_and_notifies(mapping: Mapping) -> None:
    store, teams, directory = Store(mapping), Teams(), Directory(mapping)
    report = await run(engine(mapping, store=store, teams=teams, directory=directory), "sql-conn-password")
    assert [(r.environment, r.outcome) for r in report.results] == [
        ("dev", Outcome.UPDATED),
        ("test", Outcome.UPDATED),
        ("prod", Outcome.UPDATED),
    ]
    assert [url for url, _ in store.writes] == [e.url for e in mapping.environments]
    assert all(rows["contoso_SqlConnectionPassword"][1] == NEW for rows in store.rows.values())
    assert report.notification == "posted" and len(teams.cards) == 1
    assert report.correlation_id == "cid-test"
    assert len(directory.calls) == 3


async def test_second_run_writes_nothing_and_posts_nothing(mapping: Mapping) -> None:
    store, teams = Store(mapping), Teams()
    sync = engine(mapping, store=store, teams=teams)
    await run(sync, "sql-conn-password")
    writes = len(store.writes)
    report = await run(sync, "sql-conn-password")
    assert {r.outcome for r in report.results} == {Outcome.UNCHANGED}
    assert len(store.writes) == writes
    assert report.notification == "not needed (nothing changed)" and len(teams.cards) == 1


async def test_missing_definition_stops_a_staged_row_at_its_stage(mapping: Mapping) -> None:
    store = Store(mapping)
    del store.rows["https://contoso-dev.crm.dynamics.com"]["contoso_SqlConnectionPassword"]
    report = await run(engine(mapping, store=store), "sql-conn-password")
    outcomes = {r.environment: r for r in report.results}
    assert outcomes["dev"].outcome is Outcome.FAILED and not outcomes["dev"].retryable
    assert (
        "no environment variable definition named 'contoso_SqlConnectionPassword'" in outcomes["dev"].reason
    )
    assert outcomes["test"].outcome is Outcome.HELD_BACK and outcomes["prod"].outcome is Outcome.HELD_BACK
    assert "stage 1 failed in dev" in outcomes["prod"].reason
    assert store.writes == []
    assert not report.retryable  # permanent: a redelivery cannot fix it


async def test_missing_definition_fails_only_that_target_with_rollout_all() -> None:
    document = mapping_document()
    document["secrets"][0]["rollout"] = "all"
    mapping = parse_mapping(document, "M")
    store = Store(mapping)
    del store.rows["https://contoso-dev.crm.dynamics.com"]["contoso_SqlConnectionPassword"]
    report = await run(engine(mapping, store=store), "sql-conn-password")
    outcomes = {r.environment: r.outcome for r in report.results}
    assert outcomes == {"dev": Outcome.FAILED, "test": Outcome.UPDATED, "prod": Outcome.UPDATED}


async def test_missing_value_row_is_created(mapping: Mapping) -> None:
    store = Store(mapping, value=None)
    report = await run(engine(mapping, store=store), "graph-client-secret")
    assert [r.outcome for r in report.results] == [Outcome.CREATED, Outcome.CREATED]


async def test_lost_race_rereads_and_retries(mapping: Mapping) -> None:
    store = Store(mapping)
    store.conflicts = 1
    report = await run(engine(mapping, store=store), "graph-client-secret")
    assert {r.outcome for r in report.results} == {Outcome.UPDATED}


async def test_endless_races_are_transient(mapping: Mapping) -> None:
    store = Store(mapping)
    store.conflicts = 100
    report = await run(engine(mapping, store=store), "graph-client-secret")
    dev, test = report.results
    assert dev.outcome is Outcome.FAILED and dev.retryable
    assert test.outcome is Outcome.HELD_BACK and test.retryable  # the redelivery continues from dev


async def test_write_that_does_not_stick_fails_verification(mapping: Mapping) -> None:
    store = Store(mapping)
    store.sticky = False
    report = await run(engine(mapping, store=store), "graph-client-secret")
    dev, test = report.results
    assert dev.outcome is Outcome.FAILED and "read-back" in dev.reason and not dev.retryable
    assert test.outcome is Outcome.HELD_BACK  # a read-back mismatch fails the stage's gate


async def test_environment_not_ready_is_skipped_and_retryable(mapping: Mapping) -> None:
    directory, store = Directory(mapping), Store(mapping)
    prod = mapping.environment("prod")
    directory.states[prod.id] = ("Ready", "AdminMode", prod.url + "/")
    report = await run(engine(mapping, directory=directory, store=store), "sql-conn-password")
    result = {r.environment: r for r in report.results}["prod"]
    assert result.outcome is Outcome.SKIPPED and result.retryable and "AdminMode" in result.reason
    assert (prod.url, "update") not in store.writes
    assert report.retryable


async def test_instance_url_mismatch_writes_nothing(mapping: Mapping) -> None:
    directory, store = Directory(mapping), Store(mapping)
    dev = mapping.environment("dev")
    directory.states[dev.id] = ("Ready", "Enabled", "https://someone-else.crm.dynamics.com/")
    report = await run(engine(mapping, directory=directory, store=store), "sql-conn-password")
    result = {r.environment: r for r in report.results}["dev"]
    assert result.outcome is Outcome.FAILED and not result.retryable and "fix the mapping" in result.reason
    assert (dev.url, "update") not in store.writes


@pytest.mark.parametrize(
    ("error", "retryable"),
    [(TransientError("Key Vault unreachable"), True), (PermanentError("secret gone"), False)],
)
async def test_key_vault_failure_fails_every_target(
    mapping: Mapping, error: Exception, retryable: bool
) -> None:
    store = Store(mapping)
    report = await run(engine(mapping, secrets=Secrets(error), store=store), "sql-conn-password")
    assert len(report.results) == 3
    assert all(r.outcome is Outcome.FAILED and r.retryable is retryable for r in report.results)
    assert store.writes == []


async def test_failed_notification_never_fails_the_sync(mapping: Mapping) -> None:
    report = await run(engine(mapping, teams=Teams(fail=True)), "sql-conn-password")
    assert {r.outcome for r in report.results} == {Outcome.UPDATED}
    assert report.notification == "failed: Teams webhook answered HTTP 500"


async def test_time_budget_turns_slow_targets_into_retryable_failures(mapping: Mapping) -> None:
    store = Store(mapping)
    store.delay = 0.5
    with time_budget(0.2):
        report = await run(engine(mapping, store=store), "graph-client-secret")
    dev, test = report.results
    assert dev.outcome is Outcome.FAILED and dev.retryable and "time budget" in dev.reason
    assert test.outcome is Outcome.HELD_BACK and test.retryable


async def test_unexpected_error_is_contained_and_scrubbed(mapping: Mapping) -> None:
    store = Store(mapping)

    async def boom(org_url: str, schema_name: str) -> Definition | None:
        raise RuntimeError(f"weird {NEW}")

    store.get_definition = boom  # type: ignore[method-assign]
    report = await run(engine(mapping, store=store), "graph-client-secret")
    dev, test = report.results
    assert dev.outcome is Outcome.FAILED and NEW not in dev.reason and "RuntimeError" in dev.reason
    assert test.outcome is Outcome.HELD_BACK


async def test_reconcile_reads_each_secret_once(mapping: Mapping) -> None:
    secrets = Secrets()
    directory = Directory(mapping)
    with correlation("cid"):
        report = await engine(mapping, secrets=secrets, directory=directory).sync_secrets(
            mapping.secret_names(), Trigger.RECONCILE
        )
    assert secrets.reads == ["sql-conn-password", "graph-client-secret"]
    assert len(report.results) == 5
    assert len(directory.calls) == 3  # one admin check per environment per run


class PreparedSecrets(Secrets):
    """A secret source that can fetch its token ahead (sync.adapters.keyvault.KeyVaultReader)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def prepare(self) -> None:
        self.events.append("prepare")

    async def get_current(self, name: str) -> SecretSnapshot:
        self.events.append(f"read {name}")
        return await super().get_current(name)


async def test_the_vault_token_is_fetched_once_per_run(mapping: Mapping) -> None:
    secrets = PreparedSecrets()
    with correlation("cid"):
        await engine(mapping, secrets=secrets).sync_secrets(mapping.secret_names(), Trigger.RECONCILE)
    # Started by the run's warm-up (with the reads, not after them), once however many secrets it reads.
    assert secrets.events.count("prepare") == 1
    assert sorted(secrets.events) == ["prepare", "read graph-client-secret", "read sql-conn-password"]
