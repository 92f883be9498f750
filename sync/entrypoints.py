"""The functions every trigger calls: thin, so each trigger runs the same path.

Outcome mapping for Event Grid: an exception makes Event Grid redeliver (and, after its retry
policy, dead-letter), so we raise for anything that a later attempt could fix (transient
failures, a configuration being fixed) and for malformed events (they end in the dead-letter
container, inspected rather than lost). We return normally for events that are not ours and
for permanent per-target failures, which are reported on the card and in the log.
"""

from __future__ import annotations

from typing import Any

from sync.errors import ConfigurationError, InvalidEventError, ReconcileIncompleteError, SyncIncompleteError
from sync.events import check_envelope, is_secret_event_type, loggable, parse_secret_event
from sync.models import RunReport, Trigger
from sync.runtime import get_service
from sync.telemetry import correlation, current_correlation_id, get_logger, new_correlation_id, tracer
from sync.telemetry_export import configure_export

log = get_logger(__name__)


async def handle_event_grid_event(
    *, event_id: Any, event_type: Any, subject: Any, topic: Any, data: Any
) -> RunReport | None:
    """Runs one Event Grid event through Lockstep; raises when Event Grid should redeliver.

    Event fields are logged before they are validated, so every one goes through `loggable`
    (bounded, control characters escaped): an event must not size or forge a log line.
    """
    configure_export()
    shown_id = loggable(event_id)
    with correlation(new_correlation_id()):
        try:
            check_envelope(event_id=event_id, event_type=event_type, subject=subject, topic=topic)
        except InvalidEventError as error:
            log.error("event rejected, nothing written: %s", error)
            raise
        log.info(
            "event %s received: type=%s subject=%s",
            shown_id,
            loggable(event_type),
            "None" if subject is None else loggable(subject),
        )
        if event_type.startswith("Microsoft.KeyVault.") and not is_secret_event_type(event_type):
            log.info("event %s ignored: %s is not a secret event", shown_id, loggable(event_type))
            return None
        try:
            event = parse_secret_event(
                event_id=event_id, event_type=event_type, subject=subject, topic=topic, data=data
            )
        except InvalidEventError as error:
            log.error("event %s rejected, nothing written: %s", shown_id, error)
            raise
        try:
            service = await get_service()
        except ConfigurationError as error:
            log.error("event %s not processed: %s", shown_id, error)
            raise
        with tracer.start_as_current_span(
            "lockstep.event",
            attributes={
                "lockstep.event.id": event.event_id,
                "lockstep.event.type": event.event_type.value,
                "lockstep.secret.name": event.secret_name,
                "lockstep.event.version": event.version,
                "lockstep.correlation_id": current_correlation_id(),
            },
        ):
            report = await service.on_event(event)
        if report is not None and report.retryable:
            raise SyncIncompleteError(
                f"event {shown_id}: {sum(r.retryable for r in report.results)} target(s) failed transiently; "
                f"Event Grid will redeliver (correlation id {report.correlation_id})"
            )
        return report


async def run_reconcile(*, trigger: Trigger = Trigger.RECONCILE, past_due: bool = False) -> RunReport:
    """Reconciles every mapped secret; raises when anything failed so the run shows as failed."""
    configure_export()
    with correlation(new_correlation_id()):
        log.info("reconcile started: trigger=%s past_due=%s", trigger.value, past_due)
        try:
            service = await get_service()
        except ConfigurationError as error:
            log.error("reconcile not run: %s", error)
            raise
        report = await service.reconcile(trigger)
        if report.failed:
            failed = [f"{r.environment}/{r.label}" for r in report.results if r.needs_attention]
            raise ReconcileIncompleteError(
                f"reconcile finished with {len(failed)} target(s) not in sync: {', '.join(failed)} "
                f"(correlation id {report.correlation_id})"
            )
        return report
