"""The CLI as an operator runs it: a separate process (`python -m sync`) against a running emulator.

The emulator serves from this test process; the CLI gets nothing but the app settings, exactly as
it would from a Core Tools local.settings.json or the Function App's configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from demo.scenario import Scenario, canary, seed
from emulator import Emulator

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 120


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class Cli:
    """Runs `python -m sync ...` with the given app settings; records every output for canary checks."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.settings = settings
        self.outputs: list[str] = []

    def __call__(self, *args: str, settings: dict[str, str] | None = None) -> Result:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("LOCKSTEP_", "KEY_VAULT", "TEAMS_", "IDENTITY_", "PYTEST"))
        }
        env.update(self.settings if settings is None else settings)
        env.update({"NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "sync", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def scenario(emulator: Emulator) -> Scenario:
    return seed(emulator, sql_value=canary("cli-sql-"), graph_value=canary("cli-graph-"))


@pytest.fixture
def cli(scenario: Scenario) -> Cli:
    return Cli(scenario.app_settings())
