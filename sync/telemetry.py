"""Correlation ids, logging and OpenTelemetry instruments.

Every log line of a run carries its correlation id (as a message prefix, so it survives any
handler the Functions host installs, and as a structured `correlation_id` field). Spans and
metrics carry names and outcomes, never values. httpx logs each request URL at INFO, and the
Teams webhook URL is a credential, so its loggers are held at WARNING.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import metrics, trace

from sync.models import Outcome, TargetResult, Trigger

_correlation_id: ContextVar[str] = ContextVar("lockstep_correlation_id", default="-")

tracer = trace.get_tracer("lockstep")
meter = metrics.get_meter("lockstep")
target_outcomes = meter.create_counter(
    "lockstep.targets", unit="{target}", description="Targets synced, by outcome and trigger"
)
target_duration = meter.create_histogram(
    "lockstep.target.duration", unit="ms", description="Time to sync one target"
)
run_duration = meter.create_histogram("lockstep.run.duration", unit="ms", description="Time of one whole run")
drift_found = meter.create_counter(
    "lockstep.reconcile.drift",
    unit="{target}",
    description="Targets the reconcile found out of sync and wrote",
)
throttled = meter.create_counter(
    "lockstep.http.throttled", unit="{response}", description="HTTP 429 answers, by service"
)
rollbacks = meter.create_counter(
    "lockstep.rollbacks", unit="{target}", description="Targets restored after their stage failed the gate"
)
flows_refreshed = meter.create_counter(
    "lockstep.flows.refreshed", unit="{flow}", description="Cloud flows turned off and on, by outcome"
)


def record_result(result: TargetResult, trigger: Trigger) -> None:
    """The metric points of one final target result (names and outcomes only)."""
    attributes = {
        "outcome": result.outcome.value,
        "trigger": trigger.value,
        "environment": result.environment,
    }
    target_outcomes.add(1, attributes)
    target_duration.record(result.duration_ms, attributes)
    if result.outcome is Outcome.ROLLED_BACK:
        rollbacks.add(1, {"environment": result.environment})
    if trigger is Trigger.RECONCILE and result.outcome in (Outcome.UPDATED, Outcome.CREATED):
        drift_found.add(1, {"environment": result.environment})
    for flow in result.flows:
        flows_refreshed.add(1, {"environment": result.environment, "outcome": flow.outcome.value})


# Loggers that would otherwise print request URLs (the webhook's sig) or headers at INFO.
NOISY_LOGGERS = ("httpx", "httpcore", "azure.core.pipeline.policies.http_logging_policy")


def quiet_noisy_loggers() -> None:
    """Raises URL-logging libraries to WARNING; called when the service is built, not at import."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def current_correlation_id() -> str:
    return _correlation_id.get()


@contextmanager
def correlation(correlation_id: str) -> Iterator[str]:
    """Binds a correlation id to everything logged inside the block (tasks inherit it)."""
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)


class CorrelatedLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each message with the run's correlation id; adds it and the trace id as fields."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        correlation_id = _correlation_id.get()
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("correlation_id", correlation_id)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:  # the run's trace, to find its spans from a log line
            extra.setdefault("trace_id", format(context.trace_id, "032x"))
        kwargs["extra"] = extra
        return f"[{correlation_id}] {msg}", kwargs


def get_logger(name: str) -> CorrelatedLogger:
    return CorrelatedLogger(logging.getLogger(name), {})
