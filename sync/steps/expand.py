"""Step 2: the concrete targets of a stage.

Most mapped targets are concrete already (one environment variable in one environment); a
connection row without pinned ids stands for every service-principal connection of its client id
in the environment, which only a read can tell. A mapped target that cannot be expanded is a
failed result of its own, so it fails the stage's gate like any other target.
"""

from __future__ import annotations

import asyncio
import time

from sync.deadline import within_budget
from sync.errors import LockstepError, TransientError
from sync.models import Outcome, SecretSnapshot, Target, TargetResult
from sync.redact import scrub
from sync.steps.context import RunContext


async def expand_stage(
    mapped: list[Target], snapshot: SecretSnapshot, run: RunContext
) -> tuple[list[Target], list[TargetResult]]:
    """(the concrete targets, a failed result for each mapped target that could not be expanded)."""

    async def expand(target: Target) -> list[Target] | TargetResult:
        started = time.perf_counter()
        try:
            return await within_budget(run.kind(target).expand(target))
        except LockstepError as error:
            retryable = isinstance(error, TransientError)
            reason = scrub(str(error), snapshot.value)
            return TargetResult.of(target, Outcome.FAILED, reason, retryable, time.perf_counter() - started)

    concrete: list[Target] = []
    failed: list[TargetResult] = []
    for expanded in await asyncio.gather(*(expand(target) for target in mapped)):
        if isinstance(expanded, TargetResult):
            failed.append(expanded)
        else:
            concrete.extend(expanded)
    return concrete, failed
