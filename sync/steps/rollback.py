"""Step 6 (staged rollout only): undo a stage that failed its gate.

Every target of the failed stage that this run changed is handed back to its kind's `restore`
(an environment variable gets back the value it held before, a connection the previous secret
version); the others keep their result. What was restored, or why it could not be, replaces the
target's reason, followed by why the stage failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sync.deadline import within_budget
from sync.models import SecretSnapshot, Target, TargetResult
from sync.redact import scrub
from sync.steps.context import RunContext
from sync.targets.base import Change


async def roll_back_stage(
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
            outcome, what = await within_budget(run.kind(target).restore(target, change, snapshot))
        reason = scrub(f"{what}; {why}", snapshot.value)
        return result.model_copy(update={"outcome": outcome, "reason": reason, "retryable": False})

    return list(
        await asyncio.gather(
            *(
                undo(result, change, target)
                for (result, change), target in zip(outcomes, targets, strict=True)
            )
        )
    )
