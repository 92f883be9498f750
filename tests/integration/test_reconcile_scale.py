"""The reconcile's cost grows with environments x chunks, not with mappings (request log counts).

N secrets x M environments: one bulk definitions read per environment per chunk of schema names
(more when the server pages), each secret read once, one admin check per environment, and not a
single write when everything is in sync. Drift costs exactly one write each: its answer carries the
row as stored, so there is no read-back request.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from demo.scenario import canary
from emulator import Emulator, Environment
from sync.entrypoints import run_reconcile
from sync.runtime import close_runtime

SECRETS = 45
ENVIRONMENTS = 3
PAGE = 7  # small pages, so the server pages and the client must follow every nextLink


def env_var(index: int) -> str:
    return f"scale_Var{index:03d}"


@pytest.fixture
async def fleet(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Environment]]:
    vault = emulator.key_vault("lockstep-scale")
    environments = [emulator.environment(f"env{i}", org=f"scale-{i}") for i in range(ENVIRONMENTS)]
    for index in range(SECRETS):
        value = canary(f"s{index}-")
        vault.set_secret(f"secret-{index}", value)
        for env in environments:
            env.add_definition(env_var(index), value=value)
    mapping = {
        "environments": [
            {"name": env.name, "id": env.id, "url": env.url, "stage": i + 1}
            for i, env in enumerate(environments)
        ],
        "secrets": [{"secret": f"secret-{i}", "env_var": env_var(i)} for i in range(SECRETS)],
    }
    for key, value in emulator.client_environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KEY_VAULT_URI", vault.url)
    monkeypatch.setenv("LOCKSTEP_MAPPING", json.dumps(mapping))
    monkeypatch.delenv("LOCKSTEP_MAPPING_FILE", raising=False)
    monkeypatch.delenv("TEAMS_WEBHOOK_URL", raising=False)
    monkeypatch.setattr("sync.adapters.dataverse.PAGE_SIZE", PAGE)
    emulator.add_ca_to_aiohttp_default_context()
    yield environments
    await close_runtime()


def counts(emulator: Emulator) -> Counter[str]:
    return Counter(
        f"{r.service} {r.method} {r.path.rstrip('/').rsplit('/', 1)[-1].split('(')[0]}"
        for r in emulator.requests
        if r.service not in ("proxy", "identity") and r.status != 401  # 401: Key Vault's auth challenge
    )


async def test_in_sync_reconcile_reads_in_bulk_and_writes_nothing(
    emulator: Emulator, fleet: list[Environment]
) -> None:
    emulator.reset_requests()
    report = await run_reconcile()
    seen = counts(emulator)
    pages_per_environment = math.ceil(SECRETS / PAGE)
    assert seen["dataverse GET environmentvariabledefinitions"] == ENVIRONMENTS * pages_per_environment
    assert (
        sum(n for key, n in seen.items() if key.startswith("dataverse"))
        == ENVIRONMENTS * pages_per_environment
    )
    assert seen["keyvault GET secret-0"] == 1  # each secret once (plus nothing else per target)
    assert sum(n for key, n in seen.items() if key.startswith("keyvault GET")) == SECRETS
    assert sum(n for key, n in seen.items() if key.startswith("admin")) == ENVIRONMENTS
    assert report.counts()["unchanged"] == SECRETS * ENVIRONMENTS


async def test_drift_costs_one_write_each_and_no_read_back(
    emulator: Emulator, fleet: list[Environment]
) -> None:
    """A repair is one PATCH: its answer carries the row as stored (`Prefer: return=representation`),
    so the definitions are read only in bulk, never again per repaired target."""
    drifted = [(fleet[0], 3), (fleet[1], 17), (fleet[2], 44)]
    for env, index in drifted:
        env.set_value(env_var(index), canary("drift-"))
    emulator.reset_requests()
    report = await run_reconcile()
    seen = counts(emulator)
    assert seen["dataverse PATCH environmentvariablevalues"] == len(drifted)
    assert seen["dataverse GET environmentvariabledefinitions"] == ENVIRONMENTS * math.ceil(SECRETS / PAGE)
    assert report.counts()["updated"] == len(drifted)
    for env, index in drifted:
        assert not (env.value_of(env_var(index)) or "").startswith("LOCKSTEP-CANARY-drift-")


def connections_opened(emulator: Emulator) -> int:
    """TLS connections Lockstep opened: each is one CONNECT through the emulator's proxy."""
    return sum(1 for r in emulator.requests if r.service == "proxy" and r.method == "CONNECT")


async def test_repairs_reuse_connections(emulator: Emulator, fleet: list[Environment]) -> None:
    """Repairs go over the connections already open, not one new TLS connection per write.

    The first repairing reconcile opens what its concurrency needs; a second one of the same size
    finds them pooled. (A pool cap below the engine's concurrency, or httpcore closing idle
    connections once more than its keep-alive cap were open, cost about one connection per repair.)
    """

    def drift(round_: int) -> list[tuple[Environment, int]]:
        drifted = [(env, index) for env in fleet for index in range(round_, SECRETS, 2)]
        for env, index in drifted:
            env.set_value(env_var(index), canary(f"drift{round_}-"))
        return drifted

    drift(0)
    first = await run_reconcile()
    assert first.counts()["updated"] == ENVIRONMENTS * math.ceil(SECRETS / 2)
    drifted = drift(1)
    emulator.reset_requests()
    second = await run_reconcile()
    assert second.counts()["updated"] == len(drifted)
    assert connections_opened(emulator) <= ENVIRONMENTS, [
        (r.host, r.status) for r in emulator.requests if r.service == "proxy"
    ]
