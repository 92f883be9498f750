"""Fixtures for the emulator's own tests: a running emulator and raw httpx clients pointed at it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from emulator import Emulator, Environment

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
