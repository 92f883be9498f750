"""Step 6: turn the flows that use a changed variable off and on, so they pick up the new value.

A cloud flow reads environment variable values when it is turned on; until then it keeps the
old one. The engine calls this (through sync.steps.consumers) only for targets whose value this
run wrote, after their stage passed the gate, so a duplicate event or an in-sync reconcile
touches no flow.

Per flow: one its owner had turned off is left off; an active one is turned off, then on, then
read again to confirm it is on. Turning a flow on needs access to its connections: when
Dataverse refuses (ConnectionAuthorizationFailed) the flow is now off, and the result says so
loudly with what a person must do. With `as_owner`, activation impersonates the flow's owner
(header CallerObjectId), which needs the Delegate privilege. A flow that fails is a failure of
that flow, never a rollback of the value.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from sync.adapters.flows import OFF, ON, ActivationRefused, Flow, FlowsClient
from sync.errors import LockstepError
from sync.models import FlowOutcome, FlowResult, Target
from sync.redact import scrub
from sync.telemetry import get_logger

log = get_logger(__name__)

LISTING_SECONDS = 30.0
SHARE_OR_IMPERSONATE = (
    "it is OFF now: share its connections with Lockstep's application user, or set "
    "FLOW_ACTIVATION_AS_OWNER=true (needs the Delegate privilege), then turn it on"
)


class FlowRefresher(Protocol):
    """Cycles the active cloud flows that use a changed variable (sync.steps.flow_refresh).

    Raises LockstepError only when the flows cannot even be listed; a flow that fails to
    re-activate is a FlowResult of its own, never a failure of the value.
    """

    async def refresh(self, target: Target, definition_id: str) -> tuple[FlowResult, ...]: ...


class FlowRefresh:
    """Implements the engine's FlowRefresher over the Dataverse flows API."""

    def __init__(self, flows: FlowsClient, *, as_owner: bool = False) -> None:
        self._flows = flows
        self._as_owner = as_owner
        self._listings: dict[str, tuple[float, asyncio.Future[list[Flow]]]] = {}

    def _listing(self, org: str) -> asyncio.Future[list[Flow]]:
        """One cloud-flow listing per environment for LISTING_SECONDS, shared by the targets of a
        run (a reconcile repairing 50 variables in one environment lists its flows once)."""
        now = time.monotonic()
        cached = self._listings.get(org)
        if (
            cached is None
            or now - cached[0] > LISTING_SECONDS
            or (cached[1].done() and cached[1].exception())
        ):
            cached = (now, asyncio.ensure_future(self._flows.cloud_flows(org)))
            self._listings[org] = cached
        return cached[1]

    async def refresh(self, target: Target, definition_id: str) -> tuple[FlowResult, ...]:
        """Raises LockstepError only when the flows cannot be listed."""
        org = target.environment.url
        listing = asyncio.shield(self._listing(org))
        flows = await self._flows.flows_using(org, target.env_var, definition_id, listing)
        results = await asyncio.gather(*(self._refresh_one(org, flow) for flow in flows))
        for result in results:
            log_at = (
                log.info if result.outcome in (FlowOutcome.REFRESHED, FlowOutcome.LEFT_OFF) else log.warning
            )
            log_at(
                "%s/%s: flow %r %s%s",
                target.environment.name,
                target.env_var,
                result.name,
                result.outcome.value,
                f": {result.reason}" if result.reason else "",
            )
        return tuple(results)

    async def _refresh_one(self, org: str, flow: Flow) -> FlowResult:
        if not flow.on:
            return self._result(flow, FlowOutcome.LEFT_OFF, "turned off by its owner: left off")
        try:
            caller = await self._flows.owner_object_id(org, flow.owner_id) if self._as_owner else None
        except LockstepError as error:
            return self._result(
                flow, FlowOutcome.FAILED, f"cannot impersonate its owner: {scrub(str(error))}; not touched"
            )
        try:
            await self._flows.set_state(org, flow.id, OFF)
        except LockstepError as error:
            return self._result(
                flow, FlowOutcome.FAILED, f"could not turn it off: {scrub(str(error))}; still on"
            )
        try:
            await self._flows.set_state(org, flow.id, ON, caller_object_id=caller)
        except ActivationRefused:
            return self._result(
                flow, FlowOutcome.NEEDS_ACTION, f"activation refused (connections): {SHARE_OR_IMPERSONATE}"
            )
        except LockstepError as error:
            return self._result(
                flow, FlowOutcome.FAILED, f"could not turn it back on: {scrub(str(error))}; it is OFF now"
            )
        try:
            confirmed = await self._flows.get_flow(org, flow.id)
        except LockstepError as error:
            return self._result(
                flow, FlowOutcome.FAILED, f"turned on, but not confirmed: {scrub(str(error))}"
            )
        if not confirmed.on:
            return self._result(
                flow, FlowOutcome.FAILED, "turned on, but Dataverse reports it off: turn it on by hand"
            )
        return self._result(flow, FlowOutcome.REFRESHED, "")

    @staticmethod
    def _result(flow: Flow, outcome: FlowOutcome, reason: str) -> FlowResult:
        return FlowResult(id=flow.id, name=flow.name, outcome=outcome, reason=reason)
