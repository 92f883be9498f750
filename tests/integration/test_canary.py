"""Secrets are radioactive: a canary value must never leave Key Vault, memory and Dataverse.

Runs every path that handles a value (rotation, create, duplicate, drift repair, transient and
permanent failures, near-expiry) and then searches everything that leaves the process for it:
every log record from every logger at DEBUG (message, arguments and structured extras), the
Teams posts, the span attributes and events, exception messages, stdout and stderr.
"""

from __future__ import annotations

import json

import pytest

from demo.scenario import GRAPH_SECRET, GRAPH_VAR, SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import Emulator

from .conftest import deliver, haystacks, run_timer


async def test_canary_never_leaves(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    old_values = [v for v in scenario.values(SQL_VAR).values() if v] + [
        v for v in scenario.values(GRAPH_VAR).values() if v
    ]
    new_sql, new_graph = canary("sql-"), canary("graph-")
    escaped: list[str] = []

    await deliver(scenario.rotate(SQL_SECRET, new_sql))  # update + create
    await deliver(scenario.vault.secret_event(SQL_SECRET))  # duplicate: unchanged
    emulator.environment("dev").remove_definition(GRAPH_VAR)  # permanent failure path
    emulator.inject_fault("dataverse", 503, times=8, path_contains="contoso-test")  # transient path
    try:
        await deliver(scenario.rotate(GRAPH_SECRET, new_graph))
    except Exception as error:
        escaped.append(f"{type(error).__name__}: {error} {error!r}")
    emulator.clear_faults()
    emulator.environment("prod").set_value(SQL_VAR, canary("tampered-"))  # drift
    try:
        await run_timer()
    except Exception as error:
        escaped.append(f"{type(error).__name__}: {error} {error!r}")
    await deliver(scenario.vault.secret_event(SQL_SECRET, event_type="Microsoft.KeyVault.SecretNearExpiry"))

    assert scenario.values(SQL_VAR)["prod"] == new_sql  # the paths really ran
    assert escaped, "the failure paths were expected to raise"

    places = haystacks(logs, emulator, "".join(capsys.readouterr()), escaped)
    assert len(emulator.teams_posts) >= 3
    for value in [new_sql, new_graph, *old_values]:
        for where, text in places.items():
            assert value not in text, f"secret value leaked into {where}"
    # The canary search itself works: the value is in Dataverse, where it belongs.
    assert new_sql in json.dumps(scenario.values(SQL_VAR))


async def test_webhook_signature_never_logged(scenario: Scenario, logs: pytest.LogCaptureFixture) -> None:
    await deliver(scenario.rotate(SQL_SECRET, canary("sig-")))
    signature = scenario.emulator.teams_webhook_url().split("sig=")[1].split("&")[0]
    assert len(signature) >= 16
    assert signature not in logs.text
    assert "sig=" not in logs.text


async def test_canary_in_a_writes_answer_never_leaves(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write's answer (`Prefer: return=representation`) carries the row as stored: the new value,
    or, when something reverts the write, the previous one. Neither leaves the process, also not
    through the read-back mismatch it causes."""
    previous, first, second = canary("held-"), canary("answered-"), canary("reverted-")
    emulator.environment("dev").set_value(SQL_VAR, previous)
    escaped: list[str] = []
    emulator.reset_requests()
    await deliver(scenario.rotate(SQL_SECRET, first))  # update and create, answered with the new value
    assert set(scenario.values(SQL_VAR).values()) == {first}
    emulator.environment("dev").set_value(SQL_VAR, previous)
    emulator.environment("dev").revert_writes()  # the answer carries `previous`: verify fails
    try:
        await deliver(scenario.rotate(SQL_SECRET, second))
    except Exception as error:
        escaped.append(f"{type(error).__name__}: {error} {error!r}")
    patches = [r.status for r in emulator.requests if r.service == "dataverse" and r.method == "PATCH"]
    assert 200 in patches and 201 in patches  # the paths really ran: rows came back in the answers
    assert "read-back after the write does not hold the new value" in logs.text

    places = haystacks(logs, emulator, "".join(capsys.readouterr()), escaped)
    for value in (previous, first, second):
        for where, text in places.items():
            assert value not in text, f"secret value leaked into {where}"
    assert scenario.values(SQL_VAR)["dev"] == previous  # the canary is where it belongs
