"""Consumer: republish the Copilot Studio agents that use a changed variable.

An agent reads an environment variable with the value it was *published* with, so after a stage
keeps a new value the agents using it must be published again. The engine calls this hook only
for targets this run wrote, after their stage kept the value, off the rotation's critical path
(like flow refresh); it never changes the target's outcome.

Per environment, agents are published one at a time (publishing is throttled under bursts), an
agent that another one names before the one naming it, and each agent once per run even when
several changed variables feed it: the targets that ask within a short settling window share one
batch. A variable whose request comes after its agent's publish has started gets that agent
published once more, since the earlier publish may have carried the old value.

Publishing ships the agent's draft: an agent with components modified after its last publish is
not published (needs_action: its maker publishes it), one never published is left alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sync.adapters.agents import AgentsClient
from sync.agent_rules import Agent, Draft, publish_order, publish_verdict
from sync.deadline import within_budget
from sync.errors import LockstepError
from sync.models import AgentOutcome, AgentResult, Target, TargetKindName, TargetResult
from sync.redact import scrub, shorten
from sync.targets.base import Change
from sync.telemetry import current_correlation_id, get_logger, tracer

log = get_logger(__name__)

SETTLE_SECONDS = 1.0


@dataclass
class _Batch:
    """Agents of one environment waiting to be published together in one run."""

    agents: dict[str, Agent] = field(default_factory=dict)
    done: asyncio.Future[dict[str, AgentResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    closed: bool = False


class AgentRefresh:
    """Implements sync.targets.base.Consumer over the Dataverse agents API."""

    def __init__(self, agents: AgentsClient, *, settle_seconds: float = SETTLE_SECONDS) -> None:
        self._agents = agents
        self._settle = settle_seconds
        self._open: dict[tuple[str, str], _Batch] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def prepare(self, target: Target) -> None:
        """A write is about to happen: look for the environment's agents (and their dependencies)
        alongside it, so the refresh after the stage does not start with those round trips."""
        if target.kind is TargetKindName.ENV_VAR and target.refresh_agents:
            self._agents.prefetch(target.environment.url)

    async def refresh(self, target: Target, change: Change, result: TargetResult) -> TargetResult:
        """Republishes the agents using the target's variable; never raises for an agent."""
        if target.kind is not TargetKindName.ENV_VAR or not change.wrote or not target.refresh_agents:
            return result
        org = target.environment.url
        attributes = {"lockstep.environment": target.environment.name, "lockstep.env_var": target.env_var}
        with tracer.start_as_current_span("lockstep.agent_refresh", attributes=attributes) as span:
            try:
                agents = await within_budget(
                    self._agents.agents_using(org, target.env_var, change.subject_id)
                )
                if not agents:
                    return result
                outcomes = await within_budget(self._join(org, agents))
            except LockstepError as error:
                reason = f"agent refresh failed: {shorten(scrub(str(error)))}"
                span.set_attribute("lockstep.reason", reason)
                return result.model_copy(update={"reason": "; ".join(filter(None, (result.reason, reason)))})
            span.set_attribute("lockstep.agents", len(outcomes))
        for agent in outcomes:
            log_at = (
                log.info
                if agent.outcome in (AgentOutcome.PUBLISHED, AgentOutcome.LEFT_ALONE)
                else log.warning
            )
            log_at(
                "%s/%s: agent %r %s%s",
                target.environment.name,
                target.env_var,
                agent.name,
                agent.outcome.value,
                f": {agent.reason}" if agent.reason else "",
            )
        return result.model_copy(update={"agents": outcomes})

    async def _join(self, org: str, agents: list[Agent]) -> tuple[AgentResult, ...]:
        """Adds the agents to this run's open batch for the environment and waits for it."""
        key = (current_correlation_id(), org)
        batch = self._open.get(key)
        if batch is None or batch.closed:
            batch = _Batch()
            self._open[key] = batch
            task = asyncio.create_task(self._run(key, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        for agent in agents:
            batch.agents.setdefault(agent.id, agent)
        # Shielded: one target giving up (its time budget) must not cancel the others' batch.
        results = await asyncio.shield(batch.done)
        return tuple(results[agent.id] for agent in agents)

    async def _run(self, key: tuple[str, str], batch: _Batch) -> None:
        org = key[1]
        try:
            await asyncio.sleep(self._settle)
            async with self._locks.setdefault(org, asyncio.Lock()):
                batch.closed = True
                if self._open.get(key) is batch:
                    del self._open[key]
                batch.done.set_result(await self._publish_all(org, list(batch.agents.values())))
        except BaseException as error:  # a failed batch must still answer every target waiting on it
            if not batch.done.done():
                batch.done.set_exception(error if isinstance(error, LockstepError) else _failed(error))
            if not isinstance(error, Exception):
                raise

    async def _publish_all(self, org: str, agents: list[Agent]) -> dict[str, AgentResult]:
        """One at a time, used agents first; an agent with a maker's draft is never published."""
        others = [agent.schema_name for agent in agents]
        drafts: dict[str, Draft] = {}
        results: dict[str, AgentResult] = {}
        for agent in agents:
            try:
                drafts[agent.id] = await self._agents.draft(org, agent, others)
            except LockstepError as error:
                results[agent.id] = _result(
                    agent,
                    AgentOutcome.FAILED,
                    f"could not read its components: {scrub(str(error))}; not published",
                )
        for agent in publish_order([a for a in agents if a.id in drafts], drafts):
            verdict = publish_verdict(agent, drafts[agent.id])
            if verdict is not None:
                results[agent.id] = _result(agent, *verdict)
                continue
            try:
                await self._agents.publish(org, agent)
            except LockstepError as error:
                results[agent.id] = _result(agent, AgentOutcome.FAILED, shorten(scrub(str(error))))
                continue
            results[agent.id] = _result(agent, AgentOutcome.PUBLISHED, "")
        return results


class _BatchFailed(LockstepError):
    """The batch itself broke (a bug or a cancellation); every waiting target reports it."""


def _failed(error: BaseException) -> LockstepError:
    return _BatchFailed(f"agent publishing stopped: {type(error).__name__}")


def _result(agent: Agent, outcome: AgentOutcome, reason: str) -> AgentResult:
    return AgentResult(id=agent.id, name=agent.name, outcome=outcome, reason=reason)
