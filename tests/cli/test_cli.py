"""Each CLI command against a running emulator: output, --json shape, exit code, and what it wrote."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from demo.scenario import GRAPH_SECRET, GRAPH_VAR, SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import Emulator
from tests.cli.conftest import CLI_TIMEOUT, Cli

REQUIRED_KEYS = {"secret", "environment", "env_var", "state"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def writes(emulator: Emulator) -> list[str]:
    return [
        f"{r.method} {r.host}{r.path}"
        for r in emulator.requests
        if r.service == "dataverse" and r.method in ("PATCH", "POST", "DELETE")
    ]


def states(document: dict[str, object]) -> dict[tuple[str, str], str]:
    targets = document["targets"]
    assert isinstance(targets, list)
    for target in targets:
        assert set(target) >= REQUIRED_KEYS, target
    return {(t["environment"], t["env_var"]): t["state"] for t in targets}


def test_validate_lists_the_targets(cli: Cli) -> None:
    human = cli("validate")
    assert human.code == 0, human.text
    assert "Configuration is valid: 3 environment(s)" in human.stdout
    document = cli("validate", "--json").document
    assert document["command"] == "validate" and document["exit_code"] == 0
    assert states(document)[("prod", SQL_VAR)] == "mapped"


def test_invalid_configuration_exits_3_naming_each_field_without_a_traceback(
    cli: Cli, tmp_path: Path
) -> None:
    broken = {**cli.settings, "KEY_VAULT_URI": "http://not-https", "LOCKSTEP_MAPPING": '{"environments": ['}
    for command in ("validate", "plan", "doctor", "reconcile"):
        result = cli(command, settings=broken)
        assert result.code == 3, result.text
        assert "KEY_VAULT_URI: must be an https:// URL" in result.stderr
        assert "LOCKSTEP_MAPPING: not valid JSON" in result.stderr
        assert "Traceback" not in result.text
    document = cli("plan", "--json", settings=broken).document
    assert document["exit_code"] == 3 and document["targets"] == []
    assert any("KEY_VAULT_URI" in problem for problem in document["problems"])

    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": {"KEY_VAULT_URI": 42}}))
    result = cli("validate", "--settings", str(settings_file))
    assert result.code == 3 and "Values.KEY_VAULT_URI: must be a string" in result.stderr


def test_a_stale_trust_store_is_invalid_configuration_not_a_traceback(cli: Cli, tmp_path: Path) -> None:
    """A local.settings.json outliving its emulator names a CA file that is gone."""
    gone = str(tmp_path / "ca-of-a-stopped-emulator.pem")
    stale = {**cli.settings, "SSL_CERT_FILE": gone, "REQUESTS_CA_BUNDLE": gone}
    for command in ("validate", "plan", "doctor", "status"):
        result = cli(command, settings=stale)
        assert result.code == 3, result.text
        assert f"SSL_CERT_FILE: cannot read the trust store {gone!r}" in result.stderr
        assert "REQUESTS_CA_BUNDLE" in result.stderr and "Traceback" not in result.text
    document = cli("validate", "--json", settings=stale).document
    assert document["exit_code"] == 3 and len(document["problems"]) == 2


def test_settings_file_is_read_like_core_tools(cli: Cli, tmp_path: Path) -> None:
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": cli.settings}))
    result = cli("plan", "--json", "--settings", str(settings_file), settings={})
    assert result.code == 1, result.text
    assert states(result.document)[("test", SQL_VAR)] == "missing_value"


def test_plan_shows_drift_writes_nothing_and_exits_1(
    cli: Cli, scenario: Scenario, emulator: Emulator
) -> None:
    scenario.environments["dev"].set_value(GRAPH_VAR, canary("drifted-"))
    emulator.reset_requests()
    result = cli("plan", "--json")
    assert result.code == 1, result.text
    found = states(result.document)
    assert found[("dev", GRAPH_VAR)] == "differs"
    assert found[("test", SQL_VAR)] == "missing_value"
    assert found[("prod", SQL_VAR)] == "in_sync"
    assert result.document["summary"] == {"differs": 1, "in_sync": 3, "missing_value": 1}
    assert writes(emulator) == []

    narrowed = cli("plan", "--json", "--secret", GRAPH_SECRET, "--env", "test").document
    assert states(narrowed) == {("test", GRAPH_VAR): "in_sync"}
    assert narrowed["exit_code"] == 0

    human = cli("plan")
    assert human.code == 1 and "Changes pending" in human.stdout and "differs" in human.stdout


def test_unknown_names_are_rejected_not_reported_in_sync(cli: Cli) -> None:
    result = cli("plan", "--secret", "no-such-secret")
    assert result.code == 3 and "--secret no-such-secret: not in the mapping" in result.stderr
    result = cli("sync", "no-such-secret")
    assert result.code == 3 and "SECRET no-such-secret: not in the mapping" in result.stderr
    assert "--secret" not in result.stderr  # sync takes the secret as its argument, not as --secret


def test_sync_one_secret_then_plan_is_clean(cli: Cli, scenario: Scenario, emulator: Emulator) -> None:
    new = canary("cli-rotated-")
    scenario.vault.set_secret(SQL_SECRET, new)
    result = cli("sync", SQL_SECRET, "--json")
    assert result.code == 0, result.text
    assert states(result.document) == {
        ("dev", SQL_VAR): "updated",
        ("test", SQL_VAR): "created",
        ("prod", SQL_VAR): "updated",
    }
    assert scenario.values(SQL_VAR) == {"dev": new, "test": new, "prod": new}
    assert cli("plan", "--secret", SQL_SECRET).code == 0
    assert new not in "".join(cli.outputs)


def test_sync_limited_to_one_environment(cli: Cli, scenario: Scenario) -> None:
    new = canary("cli-dev-only-")
    scenario.vault.set_secret(GRAPH_SECRET, new)
    result = cli("sync", GRAPH_SECRET, "--env", "dev", "--json")
    assert result.code == 0, result.text
    assert states(result.document) == {("dev", GRAPH_VAR): "updated"}
    assert scenario.values(GRAPH_VAR)["dev"] == new
    assert scenario.values(GRAPH_VAR)["test"] != new


def test_reconcile_dry_run_then_reconcile(cli: Cli, scenario: Scenario, emulator: Emulator) -> None:
    emulator.reset_requests()
    dry = cli("reconcile", "--dry-run", "--json")
    assert dry.code == 1 and states(dry.document)[("test", SQL_VAR)] == "missing_value"
    assert writes(emulator) == []
    done = cli("reconcile", "--json")
    assert done.code == 0, done.text
    assert states(done.document)[("test", SQL_VAR)] == "created"
    assert done.document["summary"] == {"created": 1, "unchanged": 4}
    assert cli("reconcile", "--dry-run").code == 0


def test_status_shows_each_environment_with_the_secret_version(cli: Cli, scenario: Scenario) -> None:
    version = scenario.vault.current_version(SQL_SECRET)
    assert version is not None
    result = cli("status", "--json")
    assert result.code == 1  # test has no value row yet
    row = next(t for t in result.document["targets"] if t["environment"] == "prod")
    assert row["version"] == version and row["state"] == "in_sync" and row["version_updated"]
    human = cli("status")
    assert "prod (stage 3)" in human.stdout and version[:12] in human.stdout


def test_unreachable_environment_exits_2_in_bounded_time(cli: Cli, emulator: Emulator) -> None:
    emulator.inject_fault("admin", 503, times=1000)
    started = time.monotonic()
    result = cli("plan", "--json", "--timeout", "5")
    elapsed = time.monotonic() - started
    assert result.code == 2, result.text
    assert set(states(result.document).values()) == {"error"}
    assert elapsed < CLI_TIMEOUT
    assert "Traceback" not in result.text


def test_doctor_names_a_missing_definition(cli: Cli, scenario: Scenario) -> None:
    healthy = cli("doctor", "--json")
    assert healthy.code == 0, healthy.text
    assert all(check["ok"] for check in healthy.document["checks"])

    scenario.environments["test"].remove_definition(GRAPH_VAR)
    result = cli("doctor", "--json")
    assert result.code == 2
    failing = [check for check in result.document["checks"] if not check["ok"]]
    assert [(c["scope"], c["check"]) for c in failing] == [("environment test", f"definition {GRAPH_VAR}")]
    assert "import the solution" in failing[0]["fix"]
    assert states(result.document)[("test", GRAPH_VAR)] == "missing_definition"
    human = cli("doctor")
    assert human.code == 2 and f"to fix (environment test, definition {GRAPH_VAR})" in human.stdout


def test_doctor_reports_an_identity_that_is_not_an_application_user(cli: Cli, emulator: Emulator) -> None:
    emulator.inject_fault("dataverse", 403, times=1000, path_contains="WhoAmI")
    result = cli("doctor", "--json")
    assert result.code == 2
    failing = [c for c in result.document["checks"] if not c["ok"]]
    assert {c["check"] for c in failing} == {"WhoAmI"}
    assert "application user" in failing[0]["fix"]


def test_no_value_in_any_output(cli: Cli, scenario: Scenario) -> None:
    """Every command, human and JSON, quiet and -vv: the canary never appears."""
    new = canary("cli-everywhere-")
    scenario.vault.set_secret(SQL_SECRET, new)
    scenario.environments["dev"].set_value(GRAPH_VAR, canary("cli-drift-"))
    for args in (
        ("validate",),
        ("plan",),
        ("status",),
        ("doctor",),
        ("reconcile", "--dry-run"),
        ("sync", SQL_SECRET, "--env", "dev"),
        ("reconcile",),
    ):
        for extra in ((), ("--json",), ("-vv",)):
            cli(*args, *extra)
    assert scenario.values(SQL_VAR)["prod"] == new  # the value did travel, to Dataverse
    everything = "\n".join(cli.outputs)
    assert "LOCKSTEP-CANARY" not in everything


def test_inventory_lists_flows_per_variable(cli: Cli, scenario: Scenario) -> None:
    dev = scenario.environments["dev"]
    owner = dev.add_user("Maker One")
    dev.add_connection_reference("contoso_sql")
    dev.add_flow("Invoice export", uses=[SQL_VAR], owner=owner, connection_references=["contoso_sql"])
    dev.add_flow("Retired", uses=[SQL_VAR], on=False, owner=owner)
    dev.add_flow("Graph sync", uses=[GRAPH_VAR], owner=owner)
    result = cli("inventory", "--json", "--env", "dev")
    assert result.code == 0, result.text
    rows = {(t["env_var"], t["secret"]): t for t in result.document["targets"]}
    sql = rows[(SQL_VAR, SQL_SECRET)]
    assert sql["state"] == "in_use" and sql["environment"] == "dev"
    assert {(f["name"], f["state"], f["owner"]) for f in sql["flows"]} == {
        ("Invoice export", "on", "Maker One"),
        ("Retired", "off", "Maker One"),
    }
    assert [ref["logical_name"] for ref in sql["connection_references"]] == ["contoso_sql"]
    assert [f["name"] for f in rows[(GRAPH_VAR, GRAPH_SECRET)]["flows"]] == ["Graph sync"]
    human = cli("inventory")
    assert "Invoice export (on, Maker One)" in human.stdout and "prod (stage 3)" in human.stdout
    assert "LOCKSTEP-CANARY" not in human.text + result.text


def test_unresolved_teams_reference_is_a_doctor_finding_and_sync_still_runs(
    cli: Cli, scenario: Scenario
) -> None:
    settings = {
        **cli.settings,
        "TEAMS_WEBHOOK_URL": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/t/)",
    }
    doctor = cli("doctor", "--json", settings=settings)
    assert doctor.code == 2
    [finding] = [c for c in doctor.document["checks"] if not c["ok"]]
    assert finding["check"] == "TEAMS_WEBHOOK_URL" and "not resolved" in finding["detail"]
    new = canary("teams-off-")
    scenario.vault.set_secret(SQL_SECRET, new)
    synced = cli("sync", SQL_SECRET, "--json", settings=settings)
    assert synced.code == 0, synced.text
    assert synced.document["notification"] == "not configured"
    assert scenario.values(SQL_VAR)["prod"] == new


def card_facts(post: dict[str, object]) -> dict[str, str]:
    text = json.dumps(post)
    return dict(re.findall(r'"title": "([^"]+)", "value": "([^"]*)"', text))


def test_every_cli_run_has_one_correlation_id_everywhere(
    cli: Cli, scenario: Scenario, emulator: Emulator
) -> None:
    """Logs, --json, the run header and the Teams card carry the same real id; never '-'."""
    scenario.vault.set_secret(SQL_SECRET, canary("cli-correlated-"))
    synced = cli("sync", SQL_SECRET, "--json", "-v")
    assert synced.code == 0, synced.text
    run_id = synced.document["correlation_id"]
    assert UUID.match(run_id), run_id
    logged = [line for line in synced.stderr.splitlines() if line.startswith("INFO sync.")]
    assert logged and all(f"[{run_id}] " in line for line in logged), synced.stderr
    assert "[-]" not in synced.stderr
    assert card_facts(emulator.teams_posts[-1])["Correlation id"] == run_id

    scenario.environments["dev"].set_value(GRAPH_VAR, canary("cli-drift-id-"))
    human = cli("reconcile")
    assert human.code == 0, human.text
    header = re.search(r"Run (\S+) \(cli\)", human.stdout)
    assert header is not None and UUID.match(header.group(1)), human.stdout
    assert header.group(1) != run_id
    assert card_facts(emulator.teams_posts[-1])["Correlation id"] == header.group(1)
    for command in ("validate", "plan"):
        assert UUID.match(cli(command, "--json").document["correlation_id"])
