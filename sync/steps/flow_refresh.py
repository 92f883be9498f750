"""Step 6: turn the flows that use a changed variable off and on, so they pick up the new value.

A cloud flow reads environment variable values when it is turned on; until then it keeps the
old one. The engine calls this (through sync.steps.consumers) only for targets whose value this
run wrote, after their stage passed the gate, so a duplicate event or an in-sync reconcile
touches no flow.

Per flow: one its owner had turned off is left off; an active one is turned off, then on, then
read again to confirm it is on. Turning a flow on needs access to its connections, so before a
flow is turned off Lockstep establishes that it can turn it on again: with `as_owner`, activation
impersonates the flow's owner (header CallerObjectId, needs the Delegate privilege), so the
owner must be resolvable; otherwise every connection the flow's connection references are bound
to must be *given* to Lockstep's identity: its object id holds a permission on the connection
(Owner, or shared as CanEdit, CanViewWithShare or CanView, any of which lets a caller use it).
A share with a group Lockstep's identity belongs to is not recognised. When that cannot be
established the flow is left on and reported `needs_action`: the value is written, the flow
keeps the old value until a maker re-saves it or shares its connections. Should Dataverse still
refuse (ConnectionAuthorizationFailed), the flow is now off and the result says so loudly. A
flow that fails is a failure of that flow, never a rollback of the value.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Protocol, TypeVar

from sync.adapters.connection_model import Permission
from sync.adapters.connections import ConnectionNotFound, NotEditable
from sync.adapters.flows import OFF, ON, ActivationRefused, Flow, FlowsClient
from sync.adapters.shared import SharedAnswers
from sync.errors import LockstepError
from sync.models import FlowOutcome, FlowResult, Target
from sync.redact import scrub
from sync.telemetry import get_logger

log = get_logger(__name__)

LISTING_SECONDS = 30.0
T = TypeVar("T")
KEEPS_OLD_VALUE = (
    "left ON: the value is written; the flow keeps the old value until a maker re-saves it or "
    "shares its connections with Lockstep's identity"
)
SHARE_OR_IMPERSONATE = (
    "it is OFF now: share its connections with Lockstep's application user, or set "
    "FLOW_ACTIVATION_AS_OWNER=true (needs the Delegate privilege), then turn it on"
)


class FlowRefresher(Protocol):
    """Cycles the active cloud flows that use a changed variable (sync.steps.flow_refresh).

    Raises LockstepError only when the flows cannot even be listed; a flow that fails to
    re-activate is a FlowResult of its own, never a failure of the value.
    """

    def prepare(self, target: Target) -> None:
        """Starts the look-ups `refresh` needs (a write is about to happen at `target`); never raises."""
        ...

    async def refresh(self, target: Target, definition_id: str) -> tuple[FlowResult, ...]: ...


class ConnectionPermissions(Protocol):
    """Who may use a connection (sync.adapters.connections.ConnectivityClient)."""

    async def permissions(
        self, environment_id: str, connector: str, connection_id: str
    ) -> list[Permission]: ...


class FlowRefresh:
    """Implements the engine's FlowRefresher over the Dataverse flows API."""

    def __init__(
        self, flows: FlowsClient, *, connections: ConnectionPermissions, as_owner: bool = False
    ) -> None:
        self._flows = flows
        self._connections = connections
        self._as_owner = as_owner
        # One answer per environment (or connection) for LISTING_SECONDS, shared by every flow and
        # target asking: a reconcile repairing 50 variables in one environment lists its flows once.
        self._listings: SharedAnswers[list[Flow]] = SharedAnswers(LISTING_SECONDS)
        self._references: SharedAnswers[dict[str, dict[str, str]]] = SharedAnswers(LISTING_SECONDS)
        self._identity: SharedAnswers[str] = SharedAnswers(LISTING_SECONDS)
        self._permissions: SharedAnswers[list[Permission]] = SharedAnswers(LISTING_SECONDS)

    def _listing(self, org: str) -> asyncio.Future[list[Flow]]:
        return self._listings.get(org, partial(self._flows.cloud_flows, org))

    async def _not_usable(self, org: str, environment_id: str, flow: Flow) -> str | None:
        """Why Lockstep could not turn the flow on again (its connections are not given to it), or
        None; asked before the flow is turned off. Raises LockstepError when it cannot tell."""
        if not flow.connection_references:
            return None
        references = await self._references.get(org, partial(self._flows.connection_references, org))
        me = await self._identity.get(org, partial(self._flows.caller_object_id, org))
        problems = []
        for logical in flow.connection_references:
            bound = references.get(logical) or {}
            connection = bound.get("connection", "")
            connector = bound.get("connector", "").rstrip("/").rsplit("/", 1)[-1]
            if not connection or not connector:
                problems.append(f"connection reference {logical} is bound to no connection")
                continue
            ask = partial(self._connections.permissions, environment_id, connector, connection)
            try:
                permissions = await self._permissions.get((environment_id, connector, connection), ask)
            except (NotEditable, ConnectionNotFound):
                permissions = []
            if not any(permission.principal_id == me for permission in permissions):
                problems.append(f"the connection of {logical} ({connector}) is not shared with Lockstep")
        return "; ".join(problems) or None

    def prepare(self, target: Target) -> None:
        """Starts the environment's flow listing and dependency listing while the value is written:
        `refresh` after the stage then finds both answered (or asks again if they failed)."""
        org = target.environment.url
        self._listings.start(org, partial(self._flows.cloud_flows, org))
        self._flows.prefetch_dependencies(org)

    async def refresh(self, target: Target, definition_id: str) -> tuple[FlowResult, ...]:
        """Raises LockstepError only when the flows cannot be listed."""
        org = target.environment.url
        listing = asyncio.shield(self._listing(org))
        flows = await self._flows.flows_using(org, target.env_var, definition_id, listing)
        environment_id = target.environment.id
        results = await asyncio.gather(*(self._refresh_one(org, environment_id, flow) for flow in flows))
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

    async def _refresh_one(self, org: str, environment_id: str, flow: Flow) -> FlowResult:
        if not flow.on:
            return self._result(flow, FlowOutcome.LEFT_OFF, "turned off by its owner: left off")
        try:
            caller = await self._flows.owner_object_id(org, flow.owner_id) if self._as_owner else None
        except LockstepError as error:
            return self._result(
                flow, FlowOutcome.FAILED, f"cannot impersonate its owner: {scrub(str(error))}; not touched"
            )
        if caller is None:  # Lockstep turns it on itself: only if it may use the flow's connections
            try:
                not_usable = await self._not_usable(org, environment_id, flow)
            except LockstepError as error:
                return self._result(
                    flow, FlowOutcome.FAILED, f"could not check its connections: {scrub(str(error))}; left on"
                )
            if not_usable:
                return self._result(flow, FlowOutcome.NEEDS_ACTION, f"{not_usable}: {KEEPS_OLD_VALUE}")
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
