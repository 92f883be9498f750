"""`plan` and `sync` over a JSON variable whose secret is nested 1,500 deep: a refusal with its
reason, exit code 2 (a problem), and no traceback (it used to crash the planner with RecursionError)."""

from __future__ import annotations

from demo.scenario import Scenario
from tests.cli.conftest import Cli

CONFIG_SECRET = "app-config"
CONFIG_VAR = "contoso_AppConfig"
JSON_TYPE = 100000003


def test_deeply_nested_json_is_refused_without_a_traceback(scenario: Scenario) -> None:
    scenario.vault.set_secret(CONFIG_SECRET, "[" * 1500)
    scenario.environments["dev"].add_definition(CONFIG_VAR, type=JSON_TYPE, value="{}")
    scenario.mapping["secrets"].append(
        {"secret": CONFIG_SECRET, "env_var": CONFIG_VAR, "environments": ["dev"]}
    )
    cli = Cli(scenario.app_settings())

    plan = cli("plan", "--json", "--secret", CONFIG_SECRET)
    [target] = plan.document["targets"]
    assert target["state"] == "refused" and "levels deep" in target["reason"], plan.text
    assert plan.code == 2  # a problem, not pending changes

    human = cli("plan", "--secret", CONFIG_SECRET)
    assert "1 refused" in human.stdout and human.code == 2  # the table wraps the reason

    synced = cli("sync", CONFIG_SECRET, "--json")
    [result] = synced.document["targets"]
    assert result["state"] == "failed" and "levels deep" in result["reason"], synced.text
    assert scenario.environments["dev"].value_of(CONFIG_VAR) == "{}"

    for output in cli.outputs:
        assert "Traceback" not in output and "RecursionError" not in output
