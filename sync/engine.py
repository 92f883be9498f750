"""The sync engine: read each secret once, then roll each mapping row out stage by stage.

It never knows what kind of target it drives: environment variables, connections and Key Vault
references each implement sync.targets.base.TargetKind, and what reads a value (cloud flows,
agents) plugs in as a Consumer refreshed after a stage keeps it.

Stages run in order (dev before test before prod) so the first environments to hold a new value
are the ones that matter least; targets within a stage run concurrently, bounded per environment
to stay far below Dataverse's 52-concurrent-requests-per-user limit. After each stage of a row the
gate (sync.rollout) decides: next stage, hold back, or roll the stage back (sync.steps.rollback).
Rows are independent: one row's failure never holds back another.

The steps themselves live in sync.steps (readiness, apply, rollback, consumers, notify); this
module only orders them, bounds them in time and concurrency, and turns errors into results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from sync.deadline import within_budget
from sync.errors import LockstepError, NeedsActionError, PermanentError, TransientError
from sync.mapping import Mapping
from sync.models import (
    Outcome,
    RunReport,
    SecretReport,
    SecretSnapshot,
    Target,
    TargetKindName,
    TargetResult,
    Trigger,
)
from sync.plan import by_stage, targets_for
from sync.redact import scrub
from sync.rollout import Gate, StageVerdict, held_back, judge_stage
from sync.steps.apply import apply
from sync.steps.consumers import FlowsConsumer, prepare_consumers, start_refresh
from sync.steps.context import ResultCallback, RunContext
from sync.steps.expand import expand_stage
from sync.steps.flow_refresh import FlowRefresher
from sync.steps.notify import Notifier, notify
from sync.steps.readiness import EnvironmentDirectory, ReadinessChecks
from sync.steps.rollback import roll_back_stage
from sync.targets.base import Change, Consumer, TargetKind, TargetKinds
from sync.targets.env_vars import EnvironmentValues, EnvVarTargets
from sync.telemetry import current_correlation_id, get_logger, record_result, run_duration, tracer

log = get_logger(__name__)

__all__ = ["EnvironmentDirectory", "EnvironmentValues", "Notifier", "ResultCallback", "SyncEngine"]


class SecretSource(Protocol):
    async def get_current(self, name: str) -> SecretSnapshot: ...


class SyncEngine:
    def __init__(
        self,
        mapping: Mapping,
        secrets: SecretSource,
        values: EnvironmentValues,
        directory: EnvironmentDirectory,
        notifier: Notifier | None,
        *,
        max_concurrency: int = 8,
        secret_concurrency: int = 16,
        flows: FlowRefresher | None = None,
        kinds: dict[TargetKindName, TargetKinds] | None = None,
        consumers: Sequence[Consumer] = (),
    ) -> None:
        """`values` is the environment-variable kind's Dataverse client; `kinds` adds (or replaces)
        other kinds; `flows` and `consumers` refresh what reads a changed value."""
        self._mapping = mapping
        self._secrets = secrets
        self._values = values
        self._kinds: dict[TargetKindName, TargetKinds] = {TargetKindName.ENV_VAR: EnvVarTargets(values)}
        self._kinds.update(kinds or {})
        self._directory = directory
        self._notifier = notifier
        self._max_concurrency = max_concurrency
        self._secret_concurrency = secret_concurrency
        self._consumers: list[Consumer] = [FlowsConsumer(flows)] if flows is not None else []
        self._consumers.extend(consumers)
        self._prepare = partial(prepare_consumers, self._consumers)  # a write is about to happen

    async def sync_secrets(
        self,
        names: list[str],
        trigger: Trigger,
        *,
        environments: Collection[str] | None = None,
        on_result: ResultCallback | None = None,
        prefetch: bool = False,
    ) -> RunReport:
        """Syncs each named secret to its targets (only `environments`, when given).

        `prefetch` reads every definition in bulk per environment first (the reconcile); without
        it each target reads its own (the event path, which touches one secret). `on_result` is
        called as each target finishes (the CLI's progress bar).
        """
        started = datetime.now(UTC)
        run = RunContext(
            trigger=trigger,
            readiness=ReadinessChecks.for_run(self._directory, self._values, self._secrets),
            kinds=self._open_kinds(names, environments, bulk=prefetch),
            environments=environments,
            on_result=on_result,
            per_environment=self._max_concurrency,
        )
        secret_limit = asyncio.Semaphore(self._secret_concurrency)

        async def one_secret(name: str) -> SecretReport:
            async with secret_limit:
                return await self._sync_secret(name, run)

        try:
            with tracer.start_as_current_span(
                "lockstep.run",
                attributes={
                    "lockstep.trigger": trigger.value,
                    "lockstep.correlation_id": current_correlation_id(),
                },
            ):
                reports = await asyncio.gather(*(one_secret(name) for name in names))
        finally:
            run.close()
        run_duration.record((datetime.now(UTC) - started).total_seconds() * 1000, {"trigger": trigger.value})
        report = RunReport(
            correlation_id=current_correlation_id(),
            trigger=trigger,
            started_at=started,
            secrets=tuple(reports),
        )
        report = await notify(self._notifier, report)
        log.info(
            "run finished: trigger=%s secrets=%d %s notification=%s",
            trigger.value,
            len(reports),
            " ".join(f"{outcome}={count}" for outcome, count in report.counts().items()),
            report.notification,
            extra={"lockstep_report": report.model_dump(mode="json")},
        )
        return report

    def _targets(self, name: str, environments: Collection[str] | None) -> list[Target]:
        targets = targets_for(self._mapping, name)
        if environments is None:
            return targets
        return [target for target in targets if target.environment.name in environments]

    def _open_kinds(
        self, names: list[str], environments: Collection[str] | None, *, bulk: bool
    ) -> dict[TargetKindName, TargetKind]:
        """Each kind opened for this run with every target of its kind (the reconcile's bulk reads)."""
        by_kind: dict[TargetKindName, list[Target]] = {kind: [] for kind in self._kinds}
        for name in names:
            for target in self._targets(name, environments):
                by_kind.setdefault(target.kind, []).append(target)
        missing = sorted(kind for kind, targets in by_kind.items() if targets and kind not in self._kinds)
        if missing:
            raise AssertionError(f"no target kind wired in for {', '.join(missing)}")
        return {kind: self._kinds[kind].open(by_kind[kind], bulk=bulk) for kind in self._kinds}

    async def _sync_secret(self, name: str, run: RunContext) -> SecretReport:
        targets = self._targets(name, run.environments)
        with tracer.start_as_current_span(
            "lockstep.secret", attributes={"lockstep.secret.name": name}
        ) as span:
            run.readiness.warm(target.environment for target in targets)  # while the secret is read
            try:
                snapshot = await within_budget(self._secrets.get_current(name))
            except LockstepError as error:
                retryable = isinstance(error, TransientError)
                log.error("secret %s: cannot read it from Key Vault: %s", name, error)
                failures = tuple(
                    self._report(
                        TargetResult.of(target, Outcome.FAILED, f"Key Vault: {error}", retryable), run
                    )
                    for target in targets
                )
                return SecretReport(secret=name, version=None, results=failures)
            span.set_attribute("lockstep.secret.version", snapshot.version)
            rows: dict[int, list[Target]] = {}
            for target in targets:
                rows.setdefault(target.row, []).append(target)
            # Rows are independent: one row's failure never holds back another row.
            per_row = await asyncio.gather(*(self._sync_row(row, snapshot, run) for row in rows.values()))
            results = sorted((r for row in per_row for r in row), key=lambda r: r.stage)
            return SecretReport(secret=name, version=snapshot.version, results=tuple(results))

    async def _sync_row(
        self, targets: list[Target], snapshot: SecretSnapshot, run: RunContext
    ) -> list[TargetResult]:
        """One mapping row, stage by stage, with the staged-rollout gate after each stage.

        A stage that keeps the new value has its consumers (flows, agents) refreshed while the
        next stage runs: refresh never changes the gate, so it stays off the critical path.
        """
        results: list[TargetResult] = []
        refreshing: list[asyncio.Future[list[TargetResult]]] = []
        stopped: StageVerdict | None = None
        label = targets[0].label
        for stage, mapped in by_stage(targets):
            if stopped is not None:
                retryable = stopped.gate is Gate.HOLD
                results.extend(self._report(held_back(t, stopped.reason, retryable), run) for t in mapped)
                continue
            with tracer.start_as_current_span(
                "lockstep.stage", attributes={"lockstep.stage": stage, "lockstep.env_var": label}
            ) as span:
                stage_targets, unexpanded = await expand_stage(mapped, snapshot, run)
                outcomes = await asyncio.gather(*(self._sync_target(t, snapshot, run) for t in stage_targets))
                verdict = judge_stage(
                    targets[0].rollout, stage, [result for result, _ in outcomes] + unexpanded
                )
                span.set_attribute("lockstep.gate", verdict.gate.value)
            results.extend(self._report(result, run) for result in unexpanded)
            if verdict.gate is Gate.ROLL_BACK:
                undone = await roll_back_stage(outcomes, stage_targets, verdict.reason, snapshot, run)
                results.extend(self._report(result, run) for result in undone)
            else:  # the new value stays in this stage: what reads it must pick it up
                refreshing.append(start_refresh(self._consumers, outcomes, stage_targets))
            if verdict.gate is not Gate.PROCEED:
                stopped = verdict
                log.warning("secret %s → %s: %s", snapshot.name, label, verdict.reason)
        for refreshed in await asyncio.gather(*refreshing):
            results.extend(self._report(result, run) for result in refreshed)
        return results

    async def _sync_target(
        self, target: Target, snapshot: SecretSnapshot, run: RunContext
    ) -> tuple[TargetResult, Change | None]:
        """Readiness → read → decide → write → verify for one target; never raises."""
        started = time.perf_counter()
        attributes = {
            "lockstep.environment": target.environment.name,
            "lockstep.env_var": target.label,
            "lockstep.secret.name": snapshot.name,
        }
        change: Change | None = None
        with tracer.start_as_current_span("lockstep.target", attributes=attributes) as span:
            try:
                change, reason = await within_budget(self._run_steps(target, snapshot, run))
                outcome = Outcome.SKIPPED if change is None else change.outcome
                retryable = change is None
            except TransientError as error:
                outcome, reason, retryable = Outcome.FAILED, str(error), True
            except NeedsActionError as error:
                outcome, reason, retryable = Outcome.NEEDS_ACTION, str(error), False
            except PermanentError as error:
                outcome, reason, retryable = Outcome.FAILED, str(error), False
            # A bug or an unforeseen reply: report it and keep the other targets going.
            except Exception as error:
                outcome, reason, retryable = (
                    Outcome.FAILED,
                    f"unexpected {type(error).__name__}: {error}",
                    True,
                )
            reason = scrub(reason, snapshot.value)
            span.set_attributes({"lockstep.outcome": outcome.value, "lockstep.reason": reason})
            result = TargetResult.of(target, outcome, reason, retryable, time.perf_counter() - started)
        return result, change

    async def _run_steps(
        self, target: Target, snapshot: SecretSnapshot, run: RunContext
    ) -> tuple[Change | None, str]:
        """(the change and what it says, or None and why the environment is not ready yet)."""
        not_ready = await run.readiness.not_ready_reason(target.environment)
        if not_ready:
            return None, not_ready
        async with run.limiter(target.environment.id):
            change = await apply(run.kind(target), target, snapshot, self._prepare)
        return change, change.reason

    def _report(self, result: TargetResult, run: RunContext) -> TargetResult:
        """Counts, logs and announces one final target result."""
        record_result(result, run.trigger)
        log_at = log.warning if result.needs_attention else log.info
        log_at(
            "%s/%s: %s%s (%.0f ms)",
            result.environment,
            result.label,
            result.outcome.value,
            f": {result.reason}" if result.reason else "",
            result.duration_ms,
        )
        if run.on_result is not None:
            run.on_result(result)
        return result
