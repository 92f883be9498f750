"""What Lockstep does with an event or a reconcile request, above the engine.

Triage lives here: events for another vault or an unmapped secret are acknowledged and logged
(they are not ours, retrying cannot change that); a new version is synced under the Event Grid
time budget; near-expiry and expired events raise a heads-up in Teams and write nothing.
"""

from __future__ import annotations

from sync.adapters.teams import NotificationError
from sync.card import build_expiry_card
from sync.deadline import time_budget, within_budget
from sync.engine import Notifier, ResultCallback, SyncEngine
from sync.errors import LockstepError
from sync.events import SecretEvent, SecretEventType
from sync.inventory import Inventory, breaks
from sync.models import RunReport, Target, Trigger
from sync.plan import targets_for
from sync.settings import Settings
from sync.telemetry import current_correlation_id, get_logger

log = get_logger(__name__)

# Event Grid counts a delivery failed after 30 s; answer well before that.
EVENT_TIME_BUDGET_SECONDS = 25.0
# The reconcile has the function timeout to itself, but a stuck run must still end and report.
RECONCILE_TIME_BUDGET_SECONDS = 600.0


class LockstepService:
    def __init__(
        self,
        settings: Settings,
        engine: SyncEngine,
        notifier: Notifier | None,
        inventory: Inventory | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._notifier = notifier
        self._inventory = inventory

    async def on_event(self, event: SecretEvent) -> RunReport | None:
        """Handles one validated event; None means acknowledged without a sync."""
        if event.vault_name != self.settings.vault_name:
            log.warning(
                "event %s ignored: it comes from vault %r, Lockstep reads only %r",
                event.event_id,
                event.vault_name,
                self.settings.vault_name,
            )
            return None
        targets = targets_for(self.settings.mapping, event.secret_name)
        if not targets:
            log.info("event %s ignored: secret %r is not in the mapping", event.event_id, event.secret_name)
            return None
        if event.event_type is SecretEventType.NEW_VERSION:
            with time_budget(EVENT_TIME_BUDGET_SECONDS):
                return await self.engine.sync_secrets([event.secret_name], Trigger.EVENT)
        await self._expiry_notice(event, targets)
        return None

    async def reconcile(
        self, trigger: Trigger = Trigger.RECONCILE, on_result: ResultCallback | None = None
    ) -> RunReport:
        """Brings every mapped secret's targets in line: the backstop for lost or missing events.

        Definitions are read in bulk per environment, so an all-in-sync reconcile costs a few
        Dataverse requests per environment rather than one per mapping.
        """
        with time_budget(RECONCILE_TIME_BUDGET_SECONDS):
            return await self.engine.sync_secrets(
                self.settings.mapping.secret_names(), trigger, on_result=on_result, prefetch=True
            )

    async def _expiry_notice(self, event: SecretEvent, targets: list[Target]) -> None:
        """Names what will break: each variable the secret feeds, the flows and the agents using it.

        One inventory read per environment gives both (agents read a Secret-type variable at run
        time, so they break with an expired secret too).
        """
        expires = event.expires.strftime("%Y-%m-%d %H:%M UTC") if event.expires else "unknown"
        names = [f"{t.environment.name}/{t.label}" for t in targets]
        flows: dict[str, list[str]] = {}
        agents: dict[str, list[str]] = {}
        connections: dict[str, list[str]] = {}
        if self._inventory is not None:
            try:
                with time_budget(EVENT_TIME_BUDGET_SECONDS):
                    rows, uses = await within_budget(self._inventory.collect_all(targets))
                flows, agents, connections = breaks(rows, uses)
            except LockstepError as error:
                log.warning("secret %s: could not list what it feeds: %s", event.secret_name, error)
        log.warning(
            "secret %s: %s (expires %s); it feeds %s; flows using it: %s; agents using it: %s",
            event.secret_name,
            event.event_type.value,
            expires,
            ", ".join(names),
            _listing(flows),
            _listing(agents),
        )
        if self._notifier is None:
            return
        card = build_expiry_card(
            secret=event.secret_name,
            event_type=event.event_type.value,
            expires=expires,
            targets=names,
            correlation_id=current_correlation_id(),
            flows=flows,
            agents=agents,
            connections=connections,
        )
        try:
            await self._notifier.post_card(card)
        except NotificationError as error:
            log.warning("Teams notification failed: %s", error)


def _listing(found: dict[str, list[str]]) -> str:
    return "; ".join(f"{key}: {', '.join(value)}" for key, value in found.items() if value) or "none found"
