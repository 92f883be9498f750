"""`--write-settings` leaves the file at mode 0600 even when it existed with a wider mode: it holds
the emulator's identity header and webhook sig."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from emulator import Emulator, apply_seed
from emulator._settings import write_core_tools_settings
from sync.settings import load_settings

SEED = Path(__file__).resolve().parents[2] / "emulator" / "seed.sample.json"


@pytest.mark.parametrize("existing_mode", [None, 0o644, 0o666, 0o600])
def test_the_written_file_is_private_whatever_was_there(
    emu: Emulator, tmp_path: Path, existing_mode: int | None
) -> None:
    document = json.loads(SEED.read_text())
    apply_seed(emu, document)
    path = tmp_path / "local.settings.json"
    if existing_mode is not None:
        path.write_text('{"Values": {"OLD": "1"}}')
        os.chmod(path, existing_mode)
    write_core_tools_settings(path, emu, document)
    assert path.stat().st_mode & 0o777 == 0o600
    values = json.loads(path.read_text())["Values"]
    assert "OLD" not in values and values["IDENTITY_HEADER"] == emu.identity_header
    settings = load_settings(values)  # the emulator's hosts pass through LOCKSTEP_ALLOWED_HOSTS
    assert settings.admin_url == "https://api.bap.lockstep.test"
    assert settings.teams_webhook_url is not None and settings.teams_webhook_problem is None
    assert "TEAMS_WEBHOOK_URL webhook.lockstep.test" in settings.overridden_hosts
