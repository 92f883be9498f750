"""The configuration contract: defaults, every problem at once, the webhook never echoed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sync.errors import ConfigurationError
from sync.settings import DEFAULT_ADMIN_URL, load_settings


def problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    return caught.value.problems


def test_valid_settings_and_defaults(environ: dict[str, str]) -> None:
    settings = load_settings(environ)
    assert settings.key_vault_uri == "https://contoso-lockstep.vault.azure.net/"
    assert settings.vault_name == "contoso-lockstep"
    assert settings.admin_url == DEFAULT_ADMIN_URL
    assert settings.teams_webhook_url is not None
    assert "TOPSECRETSIG" not in repr(settings)
    assert [e.name for e in settings.mapping.environments] == ["dev", "test", "prod"]


def test_mapping_file(tmp_path: Path, environ: dict[str, str], mapping_doc: dict[str, Any]) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping_doc))
    del environ["LOCKSTEP_MAPPING"]
    environ["LOCKSTEP_MAPPING_FILE"] = str(path)
    assert len(load_settings(environ).mapping.secrets) == 2


def test_exactly_one_mapping_source(environ: dict[str, str]) -> None:
    environ["LOCKSTEP_MAPPING_FILE"] = "/x.json"
    assert problems(environ) == [
        "LOCKSTEP_MAPPING / LOCKSTEP_MAPPING_FILE: set exactly one of them (both are set)"
    ]
    del environ["LOCKSTEP_MAPPING"], environ["LOCKSTEP_MAPPING_FILE"]
    assert problems(environ) == [
        "LOCKSTEP_MAPPING / LOCKSTEP_MAPPING_FILE: set exactly one of them (neither is set)"
    ]


def test_missing_mapping_file(environ: dict[str, str], tmp_path: Path) -> None:
    del environ["LOCKSTEP_MAPPING"]
    environ["LOCKSTEP_MAPPING_FILE"] = str(tmp_path / "absent.json")
    assert problems(environ)[0].startswith("LOCKSTEP_MAPPING_FILE: cannot read")


def test_mapping_not_json(environ: dict[str, str]) -> None:
    environ["LOCKSTEP_MAPPING"] = "{not json"
    assert problems(environ)[0].startswith("LOCKSTEP_MAPPING: not valid JSON")


def test_all_problems_listed_together(environ: dict[str, str]) -> None:
    environ.update(
        KEY_VAULT_URI="http://vault",
        FLOW_ACTIVATION_AS_OWNER="maybe",
        POWER_PLATFORM_ADMIN_URL="https://api.bap.microsoft.com/some/path",
        AZURE_CLIENT_ID="nope",
        RECONCILE_SCHEDULE="0 2 * * *",
    )
    found = problems(environ)
    assert [p.split(":")[0] for p in found] == [
        "KEY_VAULT_URI",
        "FLOW_ACTIVATION_AS_OWNER",
        "POWER_PLATFORM_ADMIN_URL",
        "AZURE_CLIENT_ID",
        "RECONCILE_SCHEDULE",
    ]


def test_missing_vault_and_bad_name(environ: dict[str, str]) -> None:
    del environ["KEY_VAULT_URI"]
    assert problems(environ) == ["KEY_VAULT_URI: required (https://<vault>.vault.azure.net/)"]
    environ["KEY_VAULT_URI"] = "https://x.vault.azure.net/"
    assert "is not a Key Vault name" in problems(environ)[0]


def test_unusable_teams_webhook_turns_notifications_off_but_never_stops_the_sync(
    environ: dict[str, str],
) -> None:
    """Notifications are optional: the settings load, and the problem is kept for logs and doctor."""
    environ["TEAMS_WEBHOOK_URL"] = "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/teams/)"
    settings = load_settings(environ)
    assert settings.teams_webhook_url is None
    assert settings.teams_webhook_problem is not None
    assert "Key Vault reference was not resolved" in settings.teams_webhook_problem

    environ["TEAMS_WEBHOOK_URL"] = "http://hooks.example/TOPSECRETSIG"
    settings = load_settings(environ)
    assert settings.teams_webhook_url is None
    assert settings.teams_webhook_problem == (
        "TEAMS_WEBHOOK_URL: must be an https:// URL (value not shown: it is a credential)"
    )


def test_flow_activation_as_owner_flag(environ: dict[str, str]) -> None:
    assert load_settings(environ).flow_activation_as_owner is False
    environ["FLOW_ACTIVATION_AS_OWNER"] = "true"
    assert load_settings(environ).flow_activation_as_owner is True


def test_mapping_problems_carry_the_setting_name(
    environ: dict[str, str], mapping_doc: dict[str, Any]
) -> None:
    mapping_doc["secrets"][0]["env_var"] = "bad"
    environ["LOCKSTEP_MAPPING"] = json.dumps(mapping_doc)
    assert problems(environ)[0].startswith("LOCKSTEP_MAPPING.secrets[0].env_var:")


def test_local_settings_sample_is_complete_and_valid() -> None:
    """The sample operators copy for Core Tools names every setting and loads as it stands."""
    root = Path(__file__).resolve().parents[2]
    values = json.loads((root / "local.settings.sample.json").read_text())["Values"]
    contract = {
        "KEY_VAULT_URI",
        "LOCKSTEP_MAPPING",
        "LOCKSTEP_MAPPING_FILE",
        "TEAMS_WEBHOOK_URL",
        "POWER_PLATFORM_ADMIN_URL",
        "AZURE_CLIENT_ID",
        "RECONCILE_SCHEDULE",
        "FLOW_ACTIVATION_AS_OWNER",
    }
    assert contract <= set(values)
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    values["LOCKSTEP_MAPPING_FILE"] = str(root / values["LOCKSTEP_MAPPING_FILE"])
    settings = load_settings(values)
    assert settings.vault_name == "contoso-lockstep"
    assert [e.name for e in settings.mapping.environments] == ["dev", "test", "prod"]


def test_stale_trust_store_is_listed_with_the_rest(environ: dict[str, str], tmp_path: Path) -> None:
    """The emulator's CA is gone once it stops; a settings file still naming it is a problem, not a crash."""
    stale = str(tmp_path / "ca.pem")
    environ.update({"SSL_CERT_FILE": stale, "REQUESTS_CA_BUNDLE": stale, "KEY_VAULT_URI": "http://x"})
    found = problems(environ)
    assert found[0] == "KEY_VAULT_URI: must be an https:// URL"
    assert [problem.split(":")[0] for problem in found[1:]] == ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"]
    assert all(stale in problem for problem in found[1:])


def test_power_platform_api_url(environ: dict[str, str]) -> None:
    assert load_settings(environ).power_platform_api_url == "https://api.powerplatform.com"
    environ["POWER_PLATFORM_API_URL"] = "https://API.gov.powerplatform.microsoft.us/"
    assert load_settings(environ).power_platform_api_url == "https://api.gov.powerplatform.microsoft.us"
    environ["POWER_PLATFORM_API_URL"] = "http://api.powerplatform.com"
    assert problems(environ) == ["POWER_PLATFORM_API_URL: must be an https:// URL"]
