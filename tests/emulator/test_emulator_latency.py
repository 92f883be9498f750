"""Injected latency: every request to a service waits first, so benchmarks see per-request cost."""

from __future__ import annotations

import time

import httpx
import pytest

from emulator import Emulator


def token_request(emulator: Emulator) -> httpx.Response:
    return httpx.get(
        emulator.identity_endpoint,
        params={"resource": "https://vault.lockstep.test", "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": emulator.identity_header},
        timeout=10,
    )


def test_latency_applies_per_service() -> None:
    with Emulator() as emulator:
        emulator.set_latency(0.3, "keyvault")
        assert emulator._state.latency_of("identity") == 0.0
        emulator.set_latency(0.3, "identity")
        started = time.monotonic()
        assert token_request(emulator).status_code == 200
        assert time.monotonic() - started >= 0.3  # asyncio.sleep guarantees the lower bound


def test_latency_for_every_service_from_the_constructor() -> None:
    with Emulator(latency=0.2) as emulator:
        started = time.monotonic()
        assert token_request(emulator).status_code == 200
        assert time.monotonic() - started >= 0.2


def test_latency_rejects_nonsense() -> None:
    emulator = Emulator()
    with pytest.raises(ValueError, match="negative"):
        emulator.set_latency(-1)
    with pytest.raises(ValueError, match="unknown service"):
        emulator.set_latency(0.1, "proxy")
