"""Step 7: after a stage keeps a new value, refresh what reads it (cloud flows, agents).

Consumers run only for targets this run wrote, off the rotation's critical path (the engine
starts them while the next stage runs), and never change a target's outcome or the gate: a flow
or agent that fails is a result of its own. Each consumer is a sync.targets.base.Consumer;
flow refresh (sync.steps.flow_refresh) is wrapped here, agents (sync.steps.agent_refresh) plug
in the same way.

Their look-ups (what reads the variable: the environment's dependency listing, its flows, whether
it has agents at all) start when a target is about to be written (`prepare_consumers`, called by
sync.steps.apply), so they run alongside the write and its verify; after the last stage the card
then waits for the refresh itself, not for the look-ups before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sync.deadline import within_budget
from sync.errors import LockstepError
from sync.models import Target, TargetKindName, TargetResult
from sync.steps.flow_refresh import FlowRefresher
from sync.targets.base import Change, Consumer
from sync.telemetry import get_logger, tracer

log = get_logger(__name__)


class FlowsConsumer:
    """Cloud flows, as a Consumer: cycles the active flows that use a changed variable."""

    def __init__(self, flows: FlowRefresher) -> None:
        self._flows = flows

    def prepare(self, target: Target) -> None:
        if target.kind is TargetKindName.ENV_VAR and target.refresh_flows:
            self._flows.prepare(target)

    async def refresh(self, target: Target, change: Change, result: TargetResult) -> TargetResult:
        if change.subject_id is None:
            return result
        if not target.refresh_flows:
            return result.model_copy(update={"refresh_flows": False})
        attributes = {"lockstep.environment": target.environment.name, "lockstep.env_var": target.env_var}
        with tracer.start_as_current_span("lockstep.flow_refresh", attributes=attributes) as span:
            try:
                refreshed = await within_budget(self._flows.refresh(target, change.subject_id))
            except LockstepError as error:
                span.set_attribute("lockstep.reason", f"flow refresh failed: {error}")
                return result.model_copy(update={"reason": f"flow refresh failed: {error}"})
            span.set_attribute("lockstep.flows", len(refreshed))
        return result.model_copy(update={"flows": refreshed})


def prepare_consumers(consumers: Sequence[Consumer], target: Target) -> None:
    """A write is about to happen at `target`: every consumer starts the look-ups its refresh needs.

    Never raises: preparing is only a head start, and a look-up that fails (or a consumer that
    cannot prepare) is asked again, and reported, by the refresh after the stage.
    """
    for consumer in consumers:
        try:
            consumer.prepare(target)
        except Exception as error:  # a head start that failed: the refresh asks again
            log.debug(
                "%s/%s: preparing %s failed: %s",
                target.environment.name,
                target.label,
                type(consumer).__name__,
                type(error).__name__,
            )


def start_refresh(
    consumers: Sequence[Consumer],
    outcomes: list[tuple[TargetResult, Change | None]],
    targets: list[Target],
) -> asyncio.Future[list[TargetResult]]:
    """`refresh_consumers`, started now (the engine goes on with the next stage meanwhile).

    Most stages write nothing (a reconcile of 10,000 targets in sync): their results are final
    as they are, and come back as a finished future instead of a task, which at that count costs
    real CPU (a task and a gather per stage, a task per target).
    """
    if any(change is not None and change.wrote for _, change in outcomes):
        return asyncio.ensure_future(refresh_consumers(consumers, outcomes, targets))
    done: asyncio.Future[list[TargetResult]] = asyncio.get_running_loop().create_future()
    done.set_result([result for result, _ in outcomes])
    return done


async def refresh_consumers(
    consumers: Sequence[Consumer],
    outcomes: list[tuple[TargetResult, Change | None]],
    targets: list[Target],
) -> list[TargetResult]:
    """Each result, refreshed by every consumer where this run wrote the value.

    Consumers are independent (flows and agents read the value each on their own), so they run
    concurrently: a stage's refresh costs the slowest consumer's round trips, not their sum, which
    matters after the last stage, where the card waits for it.
    """

    async def refresh(result: TargetResult, change: Change, target: Target) -> TargetResult:
        refreshed = await asyncio.gather(
            *(consumer.refresh(target, change, result) for consumer in consumers)
        )
        return merged(result, refreshed)

    results = [result for result, _ in outcomes]
    written = [
        (index, change) for index, (_, change) in enumerate(outcomes) if change is not None and change.wrote
    ]
    refreshed = await asyncio.gather(
        *(refresh(results[index], change, targets[index]) for index, change in written)
    )
    for (index, _), result in zip(written, refreshed, strict=True):
        results[index] = result
    return results


def merged(result: TargetResult, refreshed: Sequence[TargetResult]) -> TargetResult:
    """What each consumer recorded on its copy of the result, together; reasons added up."""
    update: dict[str, object] = {}
    reasons = [result.reason] if result.reason else []
    for each in refreshed:
        for name in type(result).model_fields:
            value = getattr(each, name)
            if value == getattr(result, name):
                continue
            if name == "reason":  # what the consumer added to the reason it was given
                added = value.removeprefix(result.reason).removeprefix("; ") if result.reason else value
                if added and added not in reasons:
                    reasons.append(added)
            else:
                update[name] = value
    if reasons:
        update["reason"] = "; ".join(reasons)
    return result.model_copy(update=update)
