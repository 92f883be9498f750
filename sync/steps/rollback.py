"""Step 6 (staged rollout only): undo a stage that failed its gate.

Every target of the failed stage that this run changed gets back the value it held before the
run (kept in memory, never logged); a row this run created is deleted, so the variable falls
back to its definition's default as before. Each restore is guarded by the etag read back after
our own write: if someone wrote the variable since, their value stays and the rollback says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from pydantic import SecretStr

from sync.adapters.dataverse import WriteConflict
from sync.deadline import within_budget
from sync.errors import LockstepError
from sync.models import Outcome, SecretSnapshot, Target, TargetResult
from sync.redact import scrub
from sync.steps.context import RunContext
from sync.steps.upsert import Change


class RestorableValues(Protocol):
    async def update_value(self, org_url: str, row_id: str, etag: str, value: SecretStr) -> None: ...
    async def delete_value(self, org_url: str, row_id: str, etag: str) -> None: ...


async def restore(values: RestorableValues, target: Target, change: Change) -> tuple[Outcome, str]:
    """ROLLED_BACK with what was done, or FAILED when the previous value could not be put back."""
    if not change.wrote or change.row_id is None or change.etag is None:
        raise ValueError("only a target this run wrote can be rolled back")
    url = target.environment.url
    try:
        if change.outcome is Outcome.CREATED:
            await values.delete_value(url, change.row_id, change.etag)
            return Outcome.ROLLED_BACK, "rolled back: the value row this run created was removed"
        if change.previous is None:
            raise ValueError("an updated target always has a previous value")
        await values.update_value(url, change.row_id, change.etag, change.previous)
        return Outcome.ROLLED_BACK, "rolled back: the previous value was restored"
    except WriteConflict:
        return (
            Outcome.FAILED,
            "rollback skipped: someone changed the variable after this run wrote it; their value stays",
        )
    except LockstepError as error:
        return Outcome.FAILED, f"rollback failed, the new value is still in place: {error}"


async def roll_back_stage(
    values: RestorableValues,
    outcomes: Sequence[tuple[TargetResult, Change | None]],
    targets: Sequence[Target],
    why: str,
    snapshot: SecretSnapshot,
    run: RunContext,
) -> list[TargetResult]:
    """Restores every target of a failed stage that this run changed; the others keep their result."""

    async def undo(result: TargetResult, change: Change | None, target: Target) -> TargetResult:
        if change is None or not change.wrote:
            return result
        async with run.limiter(target.environment.id):
            outcome, what = await within_budget(restore(values, target, change))
        reason = scrub(f"{what}; {why}", snapshot.value, change.previous)
        return result.model_copy(update={"outcome": outcome, "reason": reason, "retryable": False})

    return list(
        await asyncio.gather(
            *(
                undo(result, change, target)
                for (result, change), target in zip(outcomes, targets, strict=True)
            )
        )
    )
