"""Event → Key Vault → Dataverse → admin API → Teams, over real sockets against the emulator.

The production code runs unchanged (DefaultAzureCredential over the App Service managed-identity
protocol, the Key Vault SDK with its challenge flow, httpx through the proxy and the throw-away
CA); only the app settings point it at loopback.
"""

from __future__ import annotations

import json

import pytest

from demo.scenario import GRAPH_SECRET, GRAPH_VAR, SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import Emulator
from sync.errors import ReconcileIncompleteError, SyncIncompleteError

from .conftest import SPANS, deliver, last_report, outcomes, run_timer, writes


async def test_rotation_reaches_every_environment_and_is_announced(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    new = canary("new-sql-")
    await deliver(scenario.rotate(SQL_SECRET, new))

    assert scenario.values(SQL_VAR) == {"dev": new, "test": new, "prod": new}
    assert emulator.environment("test").value_row_count(SQL_VAR) == 1
    report = last_report(logs)
    assert outcomes(report) == {
        ("dev", SQL_VAR): "updated",
        ("test", SQL_VAR): "created",
        ("prod", SQL_VAR): "updated",
    }
    assert report["notification"] == "posted"
    assert report["secrets"][0]["version"] == scenario.vault.current_version(SQL_SECRET)

    [post] = emulator.teams_posts
    card = json.dumps(post, ensure_ascii=False)
    assert post["attachments"][0]["content"]["type"] == "AdaptiveCard"
    for expected in (
        SQL_SECRET,
        scenario.vault.current_version(SQL_SECRET),
        report["correlation_id"],
        "Stage 3",
        "prod · contoso_SqlConnectionPassword",
    ):
        assert expected in card
    assert new not in card

    # Stage order: dev is written before test, test before prod.
    order = [w.split("/")[0].split(" ")[1] for w in writes(emulator)]
    assert order == [
        "contoso-dev.crm.lockstep.test",
        "contoso-test.crm.lockstep.test",
        "contoso.crm.lockstep.test",
    ]


async def test_duplicate_event_writes_nothing(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    event = scenario.rotate(SQL_SECRET, canary("dup-"))
    await deliver(event)
    emulator.reset_requests()
    await deliver(event)  # Event Grid delivers at least once
    assert writes(emulator) == []
    assert set(outcomes(last_report(logs)).values()) == {"unchanged"}
    assert len(emulator.teams_posts) == 1  # nothing changed, nothing announced


async def test_stale_event_still_writes_the_current_version(scenario: Scenario) -> None:
    first = scenario.rotate(SQL_SECRET, canary("first-"))
    latest = canary("latest-")
    scenario.vault.set_secret(SQL_SECRET, latest)
    await deliver(first)  # arrives late, after a newer version exists
    assert set(scenario.values(SQL_VAR).values()) == {latest}


async def test_unmapped_secret_writes_nothing(scenario: Scenario, emulator: Emulator) -> None:
    event = scenario.rotate("not-mapped-anywhere", canary("unmapped-"))
    emulator.reset_requests()
    await deliver(event)
    assert [r for r in emulator.requests if r.service in ("dataverse", "keyvault", "teams")] == []


async def test_event_from_another_vault_writes_nothing(scenario: Scenario, emulator: Emulator) -> None:
    other = emulator.key_vault("someone-else")
    other.set_secret(SQL_SECRET, canary("other-vault-"))
    emulator.reset_requests()
    await deliver(other.secret_event(SQL_SECRET))
    assert [r for r in emulator.requests if r.service != "proxy"] == []


async def test_missing_definition_stops_the_rollout_at_that_stage(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    emulator.environment("test").remove_definition(SQL_VAR)
    old_prod = scenario.values(SQL_VAR)["prod"]
    new = canary("partial-")
    await deliver(scenario.rotate(SQL_SECRET, new))  # permanent failure: acknowledged, not raised

    # dev (stage 1) keeps the new value; prod (stage 3) is not touched while test (stage 2) fails.
    assert scenario.values(SQL_VAR) == {"dev": new, "test": None, "prod": old_prod}
    report = last_report(logs)
    assert outcomes(report)[("test", SQL_VAR)] == "failed"
    assert outcomes(report)[("prod", SQL_VAR)] == "held_back"
    [failed] = [r for s in report["secrets"] for r in s["results"] if r["outcome"] == "failed"]
    assert "no environment variable definition named 'contoso_SqlConnectionPassword'" in failed["reason"]
    assert failed["retryable"] is False
    card = json.dumps(emulator.teams_posts[-1])
    assert "with failures" in card and "no environment variable definition" in card


async def test_transient_outage_raises_for_redelivery_then_recovers(
    scenario: Scenario, emulator: Emulator
) -> None:
    emulator.inject_fault("dataverse", 503, times=50, path_contains="environmentvariabledefinitions")
    event = scenario.rotate(GRAPH_SECRET, canary("outage-"))
    with pytest.raises(SyncIncompleteError, match="Event Grid will redeliver"):
        await deliver(event)
    emulator.clear_faults()
    await deliver(event)  # the redelivery
    assert len(set(scenario.values(GRAPH_VAR).values()) - {None}) == 1


async def test_throttling_is_waited_out(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    emulator.inject_fault("dataverse", 429, times=2, retry_after=0.2)
    new = canary("throttled-")
    await deliver(scenario.rotate(GRAPH_SECRET, new))
    assert scenario.values(GRAPH_VAR) == {"dev": new, "test": new, "prod": None}
    assert sum(1 for r in emulator.requests if r.status == 429) == 2


async def test_environment_not_ready_is_skipped_and_redelivered(
    scenario: Scenario, emulator: Emulator
) -> None:
    emulator.environment("prod").set_state(management="Ready", runtime="AdminMode")
    new = canary("admin-mode-")
    event = scenario.rotate(SQL_SECRET, new)
    with pytest.raises(SyncIncompleteError):
        await deliver(event)
    assert scenario.values(SQL_VAR)["prod"] != new
    emulator.environment("prod").set_state(management="Ready", runtime="Enabled")
    await deliver(event)
    assert scenario.values(SQL_VAR)["prod"] == new


async def test_mapping_pointing_at_the_wrong_org_writes_nothing_there(
    scenario: Scenario, emulator: Emulator
) -> None:
    emulator.environment("dev").set_instance_url("https://contoso-elsewhere.crm.lockstep.test/")
    before = scenario.values(SQL_VAR)["dev"]
    await deliver(scenario.rotate(SQL_SECRET, canary("wrong-org-")))
    assert scenario.values(SQL_VAR)["dev"] == before


async def test_nightly_reconcile_repairs_drift(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    new = canary("drift-")
    await deliver(scenario.rotate(SQL_SECRET, new))
    emulator.environment("test").set_value(SQL_VAR, "tampered by hand")
    await run_timer()
    assert scenario.values(SQL_VAR) == {"dev": new, "test": new, "prod": new}
    report = last_report(logs)
    assert report["trigger"] == "reconcile"
    assert outcomes(report)[("test", SQL_VAR)] == "updated"
    assert outcomes(report)[("dev", SQL_VAR)] == "unchanged"
    assert outcomes(report)[("dev", GRAPH_VAR)] == "unchanged"


async def test_reconcile_with_failures_raises_after_reporting(scenario: Scenario, emulator: Emulator) -> None:
    emulator.environment("dev").remove_definition(GRAPH_VAR)
    with pytest.raises(ReconcileIncompleteError, match=r"dev/contoso_GraphSecret"):
        await run_timer()
    assert "with failures" in json.dumps(emulator.teams_posts[-1])


async def test_deleted_secret_is_a_reported_failure(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    event = scenario.rotate(GRAPH_SECRET, canary("deleted-"))
    scenario.vault.delete_secret(GRAPH_SECRET)
    await deliver(event)
    report = last_report(logs)
    assert set(outcomes(report).values()) == {"failed"}
    assert "does not exist in the vault" in report["secrets"][0]["results"][0]["reason"]


async def test_http_request_budget_per_rotation(scenario: Scenario, emulator: Emulator) -> None:
    """Three targets: 1 Key Vault read, 3 admin checks, 3 reads + 3 writes, 1 card (no read-backs:
    each write's answer carries the row as stored, `Prefer: return=representation`), and per
    changed target 2 reads to find the flows that use the variable (its dependencies and
    the flow listing), plus 1 look per environment for any agent at all (none here, so no agent
    search follows).

    Counted as answered requests: the Key Vault SDK's 401 challenge round trip happens once per
    vault per process (its challenge cache is process-wide), so it is not part of the budget.
    """
    event = scenario.rotate(SQL_SECRET, canary("count-"))
    emulator.reset_requests()
    await deliver(event)
    by_service: dict[str, int] = {}
    for request in emulator.requests:
        if request.service not in ("proxy", "identity") and request.status < 400:
            by_service[request.service] = by_service.get(request.service, 0) + 1
    assert by_service == {"keyvault": 1, "admin": 3, "dataverse": 6 + 3 * 2 + 3, "teams": 1}
    patches = [r.status for r in emulator.requests if r.service == "dataverse" and r.method == "PATCH"]
    assert len(patches) == 3 and set(patches) <= {200, 201}  # answered with the row, not 204


async def test_spans_carry_names_and_outcomes(scenario: Scenario) -> None:
    await deliver(scenario.rotate(SQL_SECRET, canary("span-")))
    spans = {span.name for span in SPANS.get_finished_spans()}
    assert {"lockstep.run", "lockstep.secret", "lockstep.target"} <= spans
    targets = [s for s in SPANS.get_finished_spans() if s.name == "lockstep.target"]
    assert {s.attributes["lockstep.outcome"] for s in targets if s.attributes} == {"updated", "created"}


async def test_disabled_secret_is_a_permanent_failure(
    scenario: Scenario, emulator: Emulator, logs: pytest.LogCaptureFixture
) -> None:
    event = scenario.rotate(GRAPH_SECRET, canary("disabled-"))
    scenario.vault.disable_secret(GRAPH_SECRET)
    await deliver(event)  # acknowledged: redelivery cannot enable it
    results = last_report(logs)["secrets"][0]["results"]
    assert {r["outcome"] for r in results} == {"failed"}
    assert all("current version is disabled" in r["reason"] and not r["retryable"] for r in results)
    assert writes(emulator) == []


async def test_near_expiry_warns_in_teams_names_the_flows_and_writes_nothing(
    scenario: Scenario, emulator: Emulator
) -> None:
    scenario.environments["prod"].add_flow("Month-end close", uses=[SQL_VAR])
    scenario.environments["dev"].add_flow("Unrelated", uses=[GRAPH_VAR])
    emulator.reset_requests()
    await deliver(scenario.vault.secret_event(SQL_SECRET, event_type="Microsoft.KeyVault.SecretNearExpiry"))
    assert writes(emulator) == []
    [post] = emulator.teams_posts
    card = json.dumps(post, ensure_ascii=False)
    assert "expires soon" in card
    assert "dev/contoso_SqlConnectionPassword" in card and "prod/contoso_SqlConnectionPassword" in card
    assert "Month-end close" in card and "Unrelated" not in card


async def test_documented_sample_payload_shape_syncs(scenario: Scenario) -> None:
    """Microsoft's documented sample: camelCase keys, 'objectName ' with a space, string NBF/EXP."""
    from tests.unit.test_events import DOCUMENTED

    new = canary("documented-")
    version = scenario.vault.set_secret(SQL_SECRET, new)
    payload = json.loads(
        json.dumps(DOCUMENTED)
        .replace("contoso-lockstep.vault.azure.net", "lockstep-demo.vault.lockstep.test")
        .replace("contoso-lockstep", "lockstep-demo")
        .replace("newsecret", SQL_SECRET)
        .replace("ee059b2bb5bc48398a53b168c6cdcb10", version)
    )
    payload.update(dataVersion="1")
    assert "objectName " in payload["data"]
    await deliver(payload)
    assert set(scenario.values(SQL_VAR).values()) == {new}
