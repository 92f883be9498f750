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

_correlation_id: ContextVar[str] = ContextVar("lockstep_correlation_id", default="-")

tracer = trace.get_tracer("lockstep")
meter = metrics.get_meter("lockstep")
target_outcomes = meter.create_counter(
    "lockstep.targets", unit="{target}", description="Targets synced, by outcome and trigger"
)
target_duration = meter.create_histogram(
    "lockstep.target.duration", unit="ms", description="Time to sync one target"
)

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
    """Prefixes each message with the run's correlation id and adds it as a structured field."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        correlation_id = _correlation_id.get()
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("correlation_id", correlation_id)
        kwargs["extra"] = extra
        return f"[{correlation_id}] {msg}", kwargs


def get_logger(name: str) -> CorrelatedLogger:
    return CorrelatedLogger(logging.getLogger(name), {})
