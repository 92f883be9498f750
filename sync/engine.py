"""The sync engine: read the secret once, then per stage upsert → verify, then report and notify.

Stages run in order (dev before test before prod) so the first environments to hold a new value
are the ones that matter least; targets within a stage run concurrently, bounded to stay far
below Dataverse's 52-concurrent-requests-per-user limit. A failure stays with its target: one
missing definition does not hold back the others, and a rotated secret reaches prod even if a
dev environment is down (the old value may already be revoked).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from pydantic import SecretStr

from sync import deadline
from sync.adapters.dataverse import WriteConflict
from sync.adapters.teams import NotificationError
from sync.card import build_card
from sync.errors import LockstepError, PermanentError, TransientError
from sync.mapping import Environment, Mapping
from sync.models import (
    Definition,
    EnvironmentStatus,
    Outcome,
    RunReport,
    SecretReport,
    SecretSnapshot,
    Target,
    TargetResult,
    Trigger,
)
from sync.plan import Create, NoChange, Refuse, Update, by_stage, plan_write, readiness_problem, targets_for
from sync.redact import scrub
from sync.telemetry import current_correlation_id, get_logger, target_duration, target_outcomes, tracer

log = get_logger(__name__)
WRITE_ATTEMPTS = 2
T = TypeVar("T")


class SecretSource(Protocol):
    async def get_current(self, name: str) -> SecretSnapshot: ...


class EnvironmentValues(Protocol):
    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None: ...
    async def update_value(self, org_url: str, row_id: str, etag: str, value: SecretStr) -> None: ...
    async def create_value(
        self, org_url: str, definition_id: str, schema_name: str, value: SecretStr
    ) -> None: ...


class EnvironmentDirectory(Protocol):
    async def get_environment(self, environment_id: str) -> EnvironmentStatus: ...


class Notifier(Protocol):
    async def post_card(self, card: dict[str, object]) -> None: ...


class _EnvironmentChecks:
    """One admin-API call per environment per run, shared by every target in that environment."""

    def __init__(self, directory: EnvironmentDirectory) -> None:
        self._directory = directory
        self._pending: dict[str, asyncio.Future[EnvironmentStatus]] = {}

    async def status(self, environment: Environment) -> EnvironmentStatus:
        if environment.id not in self._pending:
            self._pending[environment.id] = asyncio.ensure_future(
                self._directory.get_environment(environment.id)
            )
        return await asyncio.shield(self._pending[environment.id])

    def close(self) -> None:
        for future in self._pending.values():
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved: each target already reported it
            else:
                future.cancel()


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
    ) -> None:
        self._mapping = mapping
        self._secrets = secrets
        self._values = values
        self._directory = directory
        self._notifier = notifier
        self._max_concurrency = max_concurrency

    async def sync_secrets(self, names: list[str], trigger: Trigger) -> RunReport:
        """Syncs each named secret to all its targets; returns the run's report (card included)."""
        started = datetime.now(UTC)
        checks = _EnvironmentChecks(self._directory)
        limiter = asyncio.Semaphore(self._max_concurrency)
        try:
            with tracer.start_as_current_span(
                "lockstep.run",
                attributes={
                    "lockstep.trigger": trigger.value,
                    "lockstep.correlation_id": current_correlation_id(),
                },
            ):
                reports = [await self._sync_secret(name, trigger, checks, limiter) for name in names]
        finally:
            checks.close()
        report = RunReport(
            correlation_id=current_correlation_id(),
            trigger=trigger,
            started_at=started,
            secrets=tuple(reports),
        )
        report = await self._notify(report)
        log.info(
            "run finished: trigger=%s secrets=%d %s notification=%s",
            trigger.value,
            len(reports),
            " ".join(f"{outcome}={count}" for outcome, count in report.counts().items()),
            report.notification,
            extra={"lockstep_report": report.model_dump(mode="json")},
        )
        return report

    async def _sync_secret(
        self, name: str, trigger: Trigger, checks: _EnvironmentChecks, limiter: asyncio.Semaphore
    ) -> SecretReport:
        targets = targets_for(self._mapping, name)
        with tracer.start_as_current_span(
            "lockstep.secret", attributes={"lockstep.secret.name": name}
        ) as span:
            try:
                snapshot = await self._bounded(self._secrets.get_current(name))
            except LockstepError as error:
                retryable = isinstance(error, TransientError)
                log.error("secret %s: cannot read it from Key Vault: %s", name, error)
                failures = tuple(
                    self._result(target, Outcome.FAILED, f"Key Vault: {error}", retryable, 0.0, trigger)
                    for target in targets
                )
                return SecretReport(secret=name, version=None, results=failures)
            span.set_attribute("lockstep.secret.version", snapshot.version)
            results: list[TargetResult] = []
            for _stage, stage_targets in by_stage(targets):
                results.extend(
                    await asyncio.gather(
                        *(
                            self._sync_target(target, snapshot, trigger, checks, limiter)
                            for target in stage_targets
                        )
                    )
                )
            return SecretReport(secret=name, version=snapshot.version, results=tuple(results))

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        """Awaits within the run's time budget; running out is a transient failure."""
        left = deadline.remaining()
        if left is None:
            return await awaitable
        try:
            async with asyncio.timeout(max(left, 0.0)):
                return await awaitable
        except TimeoutError:
            raise TransientError(
                "time budget exhausted; Event Grid redelivery or the nightly reconcile will finish"
            ) from None

    async def _sync_target(
        self,
        target: Target,
        snapshot: SecretSnapshot,
        trigger: Trigger,
        checks: _EnvironmentChecks,
        limiter: asyncio.Semaphore,
    ) -> TargetResult:
        started = time.perf_counter()
        attributes = {
            "lockstep.environment": target.environment.name,
            "lockstep.env_var": target.env_var,
            "lockstep.secret.name": snapshot.name,
        }
        with tracer.start_as_current_span("lockstep.target", attributes=attributes) as span:
            try:
                async with limiter:
                    outcome, reason = await self._bounded(self._write_and_verify(target, snapshot, checks))
                retryable = outcome is Outcome.SKIPPED
            except TransientError as error:
                outcome, reason, retryable = Outcome.FAILED, str(error), True
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
            span.set_attribute("lockstep.outcome", outcome.value)
            result = self._result(target, outcome, reason, retryable, time.perf_counter() - started, trigger)
        log_at = log.warning if result.needs_attention else log.info
        log_at(
            "secret %s → %s/%s: %s%s (%.0f ms)",
            snapshot.name,
            target.environment.name,
            target.env_var,
            outcome.value,
            f": {reason}" if reason else "",
            result.duration_ms,
        )
        return result

    async def _write_and_verify(
        self, target: Target, snapshot: SecretSnapshot, checks: _EnvironmentChecks
    ) -> tuple[Outcome, str]:
        environment = target.environment
        problem = readiness_problem(await checks.status(environment), environment)
        if problem:
            reason, retryable = problem
            if retryable:
                return Outcome.SKIPPED, reason
            raise PermanentError(reason)

        for _attempt in range(WRITE_ATTEMPTS):
            definition = await self._values.get_definition(environment.url, target.env_var)
            action = plan_write(definition, target.env_var, snapshot.value)
            try:
                match action:
                    case Refuse(reason=reason):
                        raise PermanentError(reason)
                    case NoChange():
                        return Outcome.UNCHANGED, ""
                    case Update(row_id=row_id, etag=etag):
                        await self._values.update_value(environment.url, row_id, etag, snapshot.value)
                        outcome = Outcome.UPDATED
                    case Create(definition_id=definition_id, schema_name=schema_name):
                        await self._values.create_value(
                            environment.url, definition_id, schema_name, snapshot.value
                        )
                        outcome = Outcome.CREATED
            except WriteConflict:
                continue  # someone else wrote in between: read again and re-plan
            await self._verify(target, snapshot)
            return outcome, ""
        raise TransientError("the value row kept changing under us; another writer is active")

    async def _verify(self, target: Target, snapshot: SecretSnapshot) -> None:
        """Reads the value back: a write that did not stick is a failure, not a success."""
        readback = await self._values.get_definition(target.environment.url, target.env_var)
        row = readback.value_row if readback else None
        if (
            row is None
            or row.value is None
            or row.value.get_secret_value() != snapshot.value.get_secret_value()
        ):
            raise TransientError("read-back after the write does not hold the new value")

    def _result(
        self, target: Target, outcome: Outcome, reason: str, retryable: bool, seconds: float, trigger: Trigger
    ) -> TargetResult:
        attributes = {
            "outcome": outcome.value,
            "trigger": trigger.value,
            "environment": target.environment.name,
        }
        target_outcomes.add(1, attributes)
        target_duration.record(seconds * 1000, attributes)
        return TargetResult(
            environment=target.environment.name,
            stage=target.environment.stage,
            env_var=target.env_var,
            outcome=outcome,
            reason=reason,
            retryable=retryable,
            duration_ms=round(seconds * 1000, 1),
        )

    async def _notify(self, report: RunReport) -> RunReport:
        """Posts the card when something changed or needs attention; never fails the run."""
        if self._notifier is None:
            return report.model_copy(update={"notification": "not configured"})
        if not (report.changed or report.failed):
            return report.model_copy(update={"notification": "not needed (nothing changed)"})
        try:
            await self._notifier.post_card(build_card(report))
        except NotificationError as error:
            log.warning("Teams notification failed (the sync itself is unaffected): %s", error)
            return report.model_copy(update={"notification": f"failed: {error}"})
        return report.model_copy(update={"notification": "posted"})
