"""Only documented hosts receive the Power Platform token or the Teams cards; anything else needs
LOCKSTEP_ALLOWED_HOSTS, which is warned about on every start. The webhook URL is never echoed."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from sync.errors import ConfigurationError
from sync.hosts import ADMIN_HOSTS, API_HOSTS, matches
from sync.runtime import build_runtime
from sync.settings import DEFAULT_API_URL, load_settings

SIG = "TOPSECRETSIG"


def problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    return caught.value.problems


@pytest.mark.parametrize("host", sorted(ADMIN_HOSTS))
def test_every_documented_admin_host_is_accepted(environ: dict[str, str], host: str) -> None:
    environ["POWER_PLATFORM_ADMIN_URL"] = f"https://{host}/"
    assert load_settings(environ).admin_url == f"https://{host}"


@pytest.mark.parametrize("host", sorted(API_HOSTS))
def test_every_documented_power_platform_api_host_is_accepted(environ: dict[str, str], host: str) -> None:
    environ["POWER_PLATFORM_API_URL"] = f"https://{host}"
    assert load_settings(environ).power_platform_api_url == f"https://{host}"


def test_the_power_platform_api_defaults_to_the_public_cloud(environ: dict[str, str]) -> None:
    settings = load_settings(environ)
    assert settings.power_platform_api_url == DEFAULT_API_URL == "https://api.powerplatform.com"
    assert settings.allowed_hosts == () and settings.overridden_hosts == ()


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("POWER_PLATFORM_ADMIN_URL", "https://api.bap.microsoft.com.evil.example"),
        ("POWER_PLATFORM_ADMIN_URL", "https://10.0.0.5"),
        ("POWER_PLATFORM_ADMIN_URL", "https://api.bap.microsoft.com:8443"),
        ("POWER_PLATFORM_ADMIN_URL", "https://user@api.bap.microsoft.com"),
        ("POWER_PLATFORM_API_URL", "https://api.bap.microsoft.com"),  # the admin host is not the API
        ("POWER_PLATFORM_API_URL", "https://x.environment.api.powerplatform.com"),
    ],
)
def test_other_token_hosts_are_refused(environ: dict[str, str], name: str, url: str) -> None:
    environ[name] = url
    [problem] = problems(environ)
    assert problem.startswith(f"{name}: ") and "would receive a Power Platform token" in problem
    assert "LOCKSTEP_ALLOWED_HOSTS" in problem


@pytest.mark.parametrize(
    "host",
    [
        "prod-01.westeurope.logic.azure.com",
        "prod-12.usgovvirginia.logic.azure.us",
        "prod-03.chinaeast2.logic.azure.cn",
        "default1a2b3c.4d.environment.api.powerplatform.com",
        "default1a2b3c.4.environment.api.gov.powerplatform.microsoft.us",
    ],
)
def test_teams_workflows_hosts_are_accepted(environ: dict[str, str], host: str) -> None:
    environ["TEAMS_WEBHOOK_URL"] = f"https://{host}:443/workflows/abc/triggers/manual/paths/invoke?sig={SIG}"
    settings = load_settings(environ)
    assert settings.teams_webhook_url is not None and settings.teams_webhook_problem is None


@pytest.mark.parametrize(
    "url",
    [
        f"https://10.1.2.3/workflows/x?sig={SIG}",
        f"https://169.254.169.254/metadata?sig={SIG}",
        f"https://hooks.example/TOPSECRET?sig={SIG}",
        f"https://logic.azure.com/workflows/x?sig={SIG}",  # no trigger host below the suffix
        f"https://prod-01.westeurope.logic.azure.com.example/x?sig={SIG}",
        f"https://prod-01.westeurope.logic.azure.com:8443/x?sig={SIG}",
        f"https://me:{SIG}@prod-01.westeurope.logic.azure.com/x",
    ],
)
def test_other_webhook_hosts_turn_notifications_off_without_echoing(
    environ: dict[str, str], url: str
) -> None:
    environ["TEAMS_WEBHOOK_URL"] = url
    settings = load_settings(environ)  # notifications are optional: the sync still runs
    assert settings.teams_webhook_url is None
    assert settings.teams_webhook_problem is not None
    assert "TEAMS_WEBHOOK_URL" in settings.teams_webhook_problem
    assert SIG not in settings.teams_webhook_problem and "/x" not in settings.teams_webhook_problem


def test_the_override_allows_exact_and_wildcard_hosts_and_records_them(environ: dict[str, str]) -> None:
    environ["LOCKSTEP_ALLOWED_HOSTS"] = (
        " api.bap.lockstep.test , *.lockstep.test,api.powerplatform.lockstep.test"
    )
    environ["POWER_PLATFORM_ADMIN_URL"] = "https://api.bap.lockstep.test"
    environ["POWER_PLATFORM_API_URL"] = "https://api.powerplatform.lockstep.test"
    environ["TEAMS_WEBHOOK_URL"] = f"https://webhook.lockstep.test/workflows/x?sig={SIG}"
    settings = load_settings(environ)
    assert settings.allowed_hosts == (
        "api.bap.lockstep.test",
        "*.lockstep.test",
        "api.powerplatform.lockstep.test",
    )
    assert settings.overridden_hosts == (
        "TEAMS_WEBHOOK_URL webhook.lockstep.test",
        "POWER_PLATFORM_ADMIN_URL api.bap.lockstep.test",
        "POWER_PLATFORM_API_URL api.powerplatform.lockstep.test",
    )
    assert settings.teams_webhook_url is not None


def test_wildcards_match_below_the_suffix_only() -> None:
    assert matches(
        "*.environment.api.powerplatform.lockstep.test", "ab.cd.environment.api.powerplatform.lockstep.test"
    )
    assert not matches("*.lockstep.test", "lockstep.test")
    assert not matches("*.lockstep.test", "evil-lockstep.test")
    assert not matches("api.bap.lockstep.test", "x.api.bap.lockstep.test")


@pytest.mark.parametrize(
    "entry", ["https://x.test", "x.test:443", "x.test/path", "a.*.test", "*", "*.*.test"]
)
def test_malformed_override_entries_are_problems(environ: dict[str, str], entry: str) -> None:
    environ["LOCKSTEP_ALLOWED_HOSTS"] = f"ok.test,{entry}"
    [problem] = problems(environ)
    assert problem.startswith("LOCKSTEP_ALLOWED_HOSTS: ") and "is not a host name" in problem


async def test_every_start_warns_about_the_override_and_never_logs_the_webhook(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    environ["LOCKSTEP_ALLOWED_HOSTS"] = "api.bap.lockstep.test,*.lockstep.test"
    environ["POWER_PLATFORM_ADMIN_URL"] = "https://api.bap.lockstep.test"
    environ["TEAMS_WEBHOOK_URL"] = f"https://webhook.lockstep.test/workflows/x?sig={SIG}"
    settings = load_settings(environ)
    caplog.set_level(logging.WARNING)
    for _ in range(2):  # each start (a new worker, a new loop) warns again
        runtime = build_runtime(settings, asyncio.get_running_loop())
        await runtime.aclose()
    warnings = [r.getMessage() for r in caplog.records if "LOCKSTEP_ALLOWED_HOSTS" in r.getMessage()]
    assert len(warnings) == 2 and all(
        r.levelno == logging.WARNING for r in caplog.records if "ALLOWED" in r.msg
    )
    assert "api.bap.lockstep.test, *.lockstep.test" in warnings[0]
    assert "POWER_PLATFORM_ADMIN_URL api.bap.lockstep.test" in warnings[0]
    assert "TEAMS_WEBHOOK_URL webhook.lockstep.test" in warnings[0]
    assert SIG not in caplog.text and "/workflows/" not in caplog.text


async def test_no_override_no_warning(environ: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    runtime = build_runtime(load_settings(environ), asyncio.get_running_loop())
    await runtime.aclose()
    assert "LOCKSTEP_ALLOWED_HOSTS" not in caplog.text


def test_the_sample_settings_name_the_new_settings_and_load() -> None:
    root = Path(__file__).resolve().parents[2]
    values = json.loads((root / "local.settings.sample.json").read_text())["Values"]
    assert values["POWER_PLATFORM_API_URL"] == DEFAULT_API_URL
    assert values["LOCKSTEP_ALLOWED_HOSTS"] == ""  # production: Microsoft's hosts only
    readme = (root / "README.md").read_text()
    assert "| `POWER_PLATFORM_API_URL` |" in readme and "| `LOCKSTEP_ALLOWED_HOSTS` |" in readme
