"""The span tree and metric points of a rotation and a reconcile, read from in-memory exporters
installed by the test suite (tests/integration/conftest.py); never a value or a token in them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from demo.scenario import SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import Emulator

from .conftest import METRICS, SPANS, deliver, run_timer


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        names.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    return names


def metric_points() -> dict[str, list[Any]]:
    data = METRICS.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def counter(name: str, **attributes: str) -> float:
    return sum(
        p.value
        for p in metric_points().get(name, [])
        if all(p.attributes.get(k) == v for k, v in attributes.items())
    )


def all_attributes(spans: Iterable[ReadableSpan]) -> str:
    return json.dumps([dict(span.attributes or {}) for span in spans], default=str)


async def test_rotation_span_tree(scenario: Scenario, emulator: Emulator) -> None:
    new = canary("spans-")
    await deliver(scenario.rotate(SQL_SECRET, new))
    spans = SPANS.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    [event] = [s for s in spans if s.name == "lockstep.event"]
    assert event.attributes is not None
    assert event.attributes["lockstep.secret.name"] == SQL_SECRET
    assert event.attributes["lockstep.event.version"] == scenario.vault.current_version(SQL_SECRET)
    stages = [s for s in spans if s.name == "lockstep.stage"]
    assert sorted(s.attributes["lockstep.stage"] for s in stages if s.attributes) == [1, 2, 3]
    targets = [s for s in spans if s.name == "lockstep.target"]
    assert len(targets) == 3
    for target in targets:
        assert ancestors(target, by_id)[:4] == [
            "lockstep.stage",
            "lockstep.secret",
            "lockstep.run",
            "lockstep.event",
        ]
        assert target.attributes and target.attributes["lockstep.outcome"] in ("updated", "created")
    http = [s for s in spans if s.name.startswith("HTTP ")]
    assert http and all(
        s.attributes
        and {"server.address", "http.response.status_code", "lockstep.attempt"} <= set(s.attributes)
        for s in http
    )
    writes = [s for s in http if s.name == "HTTP PATCH" and "lockstep.target" in ancestors(s, by_id)]
    assert len(writes) == 3  # one write per target, each beneath its target span
    text = all_attributes(spans)
    assert new not in text and "LOCKSTEP-CANARY" not in text and "Bearer" not in text and "sig=" not in text


async def test_metric_points_of_a_rotation_and_a_reconcile(scenario: Scenario, emulator: Emulator) -> None:
    before_updated = counter("lockstep.targets", outcome="updated", trigger="event")
    before_drift = counter("lockstep.reconcile.drift")
    before_throttled = counter("lockstep.http.throttled", service="Dataverse")
    emulator.inject_fault("dataverse", 429, retry_after=0, path_contains="contoso-dev.crm", method="GET")
    await deliver(scenario.rotate(SQL_SECRET, canary("metrics-")))
    assert counter("lockstep.targets", outcome="updated", trigger="event") - before_updated == 2
    assert counter("lockstep.http.throttled", service="Dataverse") - before_throttled == 1
    scenario.environments["test"].set_value(SQL_VAR, canary("drift-"))
    await run_timer()
    assert counter("lockstep.reconcile.drift") - before_drift == 1
    durations = metric_points()["lockstep.run.duration"]
    assert sum(p.count for p in durations) >= 2
    text = json.dumps([dict(p.attributes) for points in metric_points().values() for p in points])
    assert "LOCKSTEP-CANARY" not in text and "Bearer" not in text
