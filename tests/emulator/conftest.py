"""Fixtures for the emulator's own tests: a running emulator and raw httpx clients pointed at it,
and the standalone `python -m emulator` as an operator runs it."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from emulator import Emulator, Environment

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "emulator" / "seed.sample.json"
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """Reaches the HTTPS services the way production does: through the proxy, verifying the emulator CA."""
    context = ssl.create_default_context(cafile=emu.ca_cert_path)
    async with httpx.AsyncClient(verify=context, proxy=emu.proxy_url, timeout=5.0) as http:
        yield http


@pytest.fixture
async def loopback() -> AsyncIterator[httpx.AsyncClient]:
    """For the plain-HTTP managed-identity endpoint (no proxy, as NO_PROXY arranges)."""
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as http:
        yield http


@pytest.fixture
def dev(emu: Emulator) -> Environment:
    return emu.environment("dev", org="contoso-dev")


@pytest.fixture
def dv_base(dev: Environment) -> str:
    return f"{dev.url}/api/data/v9.2/"


@pytest.fixture
def dv_headers(emu: Emulator, dev: Environment) -> dict[str, str]:
    token = emu.issue_token(f"{dev.url}/.default")
    return {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m <args>` from the repository root, as an operator types it."""
    return subprocess.run(  # noqa: S603 - our interpreter, our modules
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@dataclass
class Standalone:
    """A running `python -m emulator`; `stdout` is what it printed, once it has been stopped."""

    process: subprocess.Popen[str]
    stdout: str = ""


@contextmanager
def standalone_emulator(settings: Path) -> Iterator[Standalone]:
    """`python -m emulator --seed <sample> --write-settings <settings>`, running until the block ends."""
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our modules
        [sys.executable, "-m", "emulator", "--seed", str(SEED), "--write-settings", str(settings)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Standalone(process)
    try:
        deadline = time.monotonic() + 30
        while not settings.exists() or not settings.read_text().strip().endswith("}"):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the emulator did not write its settings"
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        running.stdout, _ = process.communicate(timeout=15)
