"""Key Vault-backed (Secret-type) variables in `plan`, `status` and `doctor`, as an operator runs them.

A Secret-type definition is a reference target: `plan --json` shows state `reference`, and
`doctor` checks the reference read-only (vault and secret named, version enabled, resolution),
reporting a resolution Power Platform refuses to answer once per environment, not as a finding.
"""

from __future__ import annotations

import json

from demo.scenario import SQL_SECRET, VAULT, Scenario
from tests.cli.conftest import Cli

REF = "contoso_SqlRef"


def with_reference(cli: Cli, scenario: Scenario, *, secret: str = SQL_SECRET) -> dict[str, str]:
    for env in scenario.environments.values():
        env.add_secret_reference(REF, VAULT, secret)
    mapping = json.loads(cli.settings["LOCKSTEP_MAPPING"])
    mapping["secrets"].append({"secret": SQL_SECRET, "env_var": REF})
    return {**cli.settings, "LOCKSTEP_MAPPING": json.dumps(mapping)}


def targets(document: dict[str, object]) -> dict[tuple[str, str], tuple[str, str]]:
    rows = document["targets"]
    assert isinstance(rows, list)
    return {(t["environment"], t["env_var"]): (t["state"], t["reason"]) for t in rows}


def test_plan_and_doctor_show_a_verified_reference(cli: Cli, scenario: Scenario) -> None:
    settings = with_reference(cli, scenario)
    etags = {name: env.value_etag(REF) for name, env in scenario.environments.items()}

    plan = cli("plan", "--json", settings=settings)
    state, reason = targets(plan.document)[("prod", REF)]
    assert state == "reference" and "resolves it to the current version" in reason

    doctor = cli("doctor", "--json", settings=settings)
    assert doctor.code == 0, doctor.text
    checks = {(c["scope"], c["check"]): c for c in doctor.document["checks"]}
    assert checks[("environment prod", f"reference {REF}")]["ok"]
    assert targets(doctor.document)[("prod", REF)][0] == "reference"
    assert {name: env.value_etag(REF) for name, env in scenario.environments.items()} == etags


def test_doctor_reports_a_refused_resolution_once_per_environment(cli: Cli, scenario: Scenario) -> None:
    settings = with_reference(cli, scenario)
    mapping = json.loads(settings["LOCKSTEP_MAPPING"])
    mapping["secrets"].append({"secret": SQL_SECRET, "env_var": "contoso_SqlRefTwo"})
    for env in scenario.environments.values():
        env.add_secret_reference("contoso_SqlRefTwo", VAULT, SQL_SECRET)
        env.refuse_secret_retrieval()
    settings["LOCKSTEP_MAPPING"] = json.dumps(mapping)

    doctor = cli("doctor", "--json", settings=settings)

    assert doctor.code == 0, doctor.text
    told = [c for c in doctor.document["checks"] if c["check"] == "reference resolution"]
    assert sorted(c["scope"] for c in told) == ["environment dev", "environment prod", "environment test"]
    assert all(c["ok"] and "not verifiable from outside a flow" in c["detail"] for c in told)
    resolutions = [
        r for r in scenario.emulator.requests if r.path.endswith("RetrieveEnvironmentVariableSecretValue")
    ]
    assert len(resolutions) == 3  # asked once per environment, not once per variable


def test_doctor_names_where_a_wrong_reference_points_and_an_unreadable_vault(
    cli: Cli, scenario: Scenario
) -> None:
    settings = with_reference(cli, scenario, secret="graph-client-secret")
    scenario.environments["dev"].set_vault_unreadable()

    doctor = cli("doctor", "--json", settings=settings)

    assert doctor.code == 2
    failing = {c["scope"]: c for c in doctor.document["checks"] if not c["ok"]}
    assert set(failing) == {"environment dev", "environment test", "environment prod"}
    assert "points at secret 'graph-client-secret'" in failing["environment prod"]["detail"]
    assert f"/vaults/{VAULT}/secrets/{SQL_SECRET}" in failing["environment prod"]["fix"]
    assert targets(doctor.document)[("prod", REF)][0] == "refused"
    human = cli("doctor", settings=settings)
    assert f"to fix (environment prod, reference {REF})" in human.stdout


def test_doctor_says_what_to_grant_when_power_platform_cannot_read_the_vault(
    cli: Cli, scenario: Scenario
) -> None:
    settings = with_reference(cli, scenario)
    scenario.environments["test"].set_vault_unreadable()

    doctor = cli("doctor", "--json", settings=settings)

    assert doctor.code == 2
    [finding] = [c for c in doctor.document["checks"] if not c["ok"]]
    assert finding["scope"] == "environment test" and finding["check"] == f"reference {REF}"
    assert "Key Vault Secrets User" in finding["fix"] and "cannot read the secret" in finding["detail"]
