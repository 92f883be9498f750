"""Telemetry export is configured once, only with a connection string, over nobody else's
provider, and a failure to configure it never reaches a sync (or the import of function_app)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync import telemetry_export

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    telemetry_export._state.clear()
    yield
    telemetry_export._state.clear()


def test_nothing_without_a_connection_string() -> None:
    assert telemetry_export.configure_export({}) == (
        "not configured: APPLICATIONINSIGHTS_CONNECTION_STRING is not set"
    )


def test_an_installed_provider_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry_export, "_provider_already_set", lambda: True)
    result = telemetry_export.configure_export(
        {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}
    )
    assert result == "not configured: a tracer provider is already installed"


def test_a_failure_is_logged_not_raised_and_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.monitor.opentelemetry as distro

    calls = []

    def broken(**kwargs: object) -> None:
        calls.append(kwargs)
        raise RuntimeError("boom")

    monkeypatch.setattr(telemetry_export, "_provider_already_set", lambda: False)
    monkeypatch.setattr(distro, "configure_azure_monitor", broken)
    environ = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD;ClientId=1111",
    }
    assert telemetry_export.configure_export(environ) == "not configured: RuntimeError"
    assert telemetry_export.configure_export(environ) == "not configured: RuntimeError"
    assert len(calls) == 1  # once per process
    assert calls[0]["sampling_ratio"] == 1.0 and calls[0]["credential"] is not None


def test_importing_function_app_configures_nothing() -> None:
    """Indexing must never fail because of telemetry: the import touches no provider."""
    code = (
        "import os; os.environ['APPLICATIONINSIGHTS_CONNECTION_STRING']='InstrumentationKey=broken';"
        "import function_app; from opentelemetry import trace;"
        "print(type(trace.get_tracer_provider()).__name__)"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ProxyTracerProvider"


def test_host_json_turns_on_opentelemetry() -> None:
    import json

    assert json.loads((REPO / "host.json").read_text())["telemetryMode"] == "OpenTelemetry"
