"""Step 5: tell makers in Teams. A failed post is reported on the run, never fails the sync."""

from __future__ import annotations

from typing import Any, Protocol

from sync.adapters.teams import NotificationError
from sync.card import build_card
from sync.models import RunReport
from sync.telemetry import get_logger

log = get_logger(__name__)


class Notifier(Protocol):
    async def post_card(self, card: dict[str, Any]) -> None: ...


async def notify(notifier: Notifier | None, report: RunReport) -> RunReport:
    """Posts the card when something changed or needs attention; returns the report with the outcome."""
    if notifier is None:
        return report.model_copy(update={"notification": "not configured"})
    if not (report.changed or report.failed):
        return report.model_copy(update={"notification": "not needed (nothing changed)"})
    try:
        await notifier.post_card(build_card(report))
    except NotificationError as error:
        log.warning("Teams notification failed (the sync itself is unaffected): %s", error)
        return report.model_copy(update={"notification": f"failed: {error}"})
    return report.model_copy(update={"notification": "posted"})
