"""End-to-end fixtures: a fresh emulator per test, the app settings pointing at it, and a
capture of every log record and span, so tests can prove what did (and did not) leave."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from demo.scenario import Scenario, canary, function_event, seed
from emulator import Emulator
from sync.runtime import close_runtime
from tests.functions import FUNCTIONS

SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_provider)
METRICS = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
async def scenario(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Scenario]:
    built = seed(emulator, sql_value=canary("old-sql-"), graph_value=canary("old-graph-"))
    for name, value in built.app_settings().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LOCKSTEP_MAPPING_FILE", raising=False)
    SPANS.clear()
    yield built
    await close_runtime()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record from every logger, DEBUG and up (azure, httpx, aiohttp included)."""
    caplog.set_level(logging.DEBUG)
    return caplog


async def deliver(payload: dict[str, Any]) -> None:
    await FUNCTIONS["on_secret_event"].get_user_function()(function_event(payload))


async def run_timer(past_due: bool = False) -> None:
    from azure.functions.timer import TimerRequest

    await FUNCTIONS["reconcile_nightly"].get_user_function()(TimerRequest(past_due=past_due))


def last_report(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The run summary Lockstep logs (structured), as an operator would find it in App Insights."""
    reports = [r.lockstep_report for r in caplog.records if hasattr(r, "lockstep_report")]
    assert reports, "no run summary was logged"
    return reports[-1]  # type: ignore[no-any-return]


def outcomes(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (result["environment"], result["env_var"]): result["outcome"]
        for secret in report["secrets"]
        for result in secret["results"]
    }


def writes(emulator: Emulator) -> list[str]:
    return [
        f"{r.method} {r.host}{r.path}"
        for r in emulator.requests
        if r.service == "dataverse" and r.method in ("PATCH", "POST")
    ]


def haystacks(
    logs: pytest.LogCaptureFixture,
    emulator: Emulator,
    captured: str,
    escaped: list[str] | None = None,
) -> dict[str, str]:
    """Everywhere a secret value must never be: log text and records (arguments and attached
    reports too), every Teams post, every span with its events, escaped exceptions, and what was
    printed (`captured`: stdout and stderr, read once by the caller)."""
    return {
        "log text": logs.text,
        "log records": "\n".join(
            f"{r.getMessage()} {r.args!r} {getattr(r, 'lockstep_report', '')} {r.exc_text or ''}"
            for r in logs.records
        ),
        "teams": json.dumps(emulator.teams_posts),
        "spans": "\n".join(
            f"{s.name} {dict(s.attributes or {})} {[(e.name, dict(e.attributes or {})) for e in s.events]}"
            for s in SPANS.get_finished_spans()
        ),
        "exceptions": "\n".join(escaped or []),
        "stdout/stderr": captured,
    }
