"""`python -m emulator` as an operator runs it for Core Tools: a settings file, then rotations on request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.settings import load_settings

from .conftest import run, standalone_emulator


@pytest.fixture
def settings_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "local.settings.json"
    with standalone_emulator(path):
        yield path


def test_written_settings_are_a_valid_lockstep_configuration(settings_file: Path) -> None:
    assert settings_file.stat().st_mode & 0o777 == 0o600
    values = json.loads(settings_file.read_text())["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    settings = load_settings(values)
    assert settings.vault_name == "lockstep-demo"
    assert [(e.name, e.stage) for e in settings.mapping.environments] == [
        ("dev", 1),
        ("test", 2),
        ("prod", 3),
    ]
    assert settings.mapping.secret_names() == ["sql-conn-password", "graph-client-secret"]


def test_rotate_prints_the_event_and_the_cli_sees_the_new_version(settings_file: Path) -> None:
    rotated = run("emulator", "rotate", "sql-conn-password", "--settings", str(settings_file))
    assert rotated.returncode == 0, rotated.stderr
    [event] = json.loads(rotated.stdout)
    assert event["eventType"] == "Microsoft.KeyVault.SecretNewVersionCreated"
    version = event["data"]["Version"]
    assert f"version {version}" in rotated.stderr
    assert "rotated-" not in rotated.stdout + rotated.stderr  # the value never leaves the emulator

    status = run("sync", "status", "--json", "--settings", str(settings_file))
    rows = [t for t in json.loads(status.stdout)["targets"] if t["secret"] == "sql-conn-password"]
    assert {row["version"] for row in rows} == {version}
    assert {row["state"] for row in rows} >= {"differs"}


def test_rotate_names_what_is_wrong(settings_file: Path, tmp_path: Path) -> None:
    unknown = run("emulator", "rotate", "no-such-secret", "--settings", str(settings_file))
    assert unknown.returncode == 2 and "No secret 'no-such-secret'" in unknown.stderr
    missing = run("emulator", "rotate", "sql-conn-password", "--settings", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "absent.json" in missing.stderr
    forged = json.loads(settings_file.read_text())
    forged["Values"]["IDENTITY_HEADER"] = "not-the-header"
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    refused = run("emulator", "rotate", "sql-conn-password", "--settings", str(tmp_path / "forged.json"))
    assert refused.returncode == 2 and "HTTP 401" in refused.stderr
