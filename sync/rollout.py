"""Pure decisions of a staged rollout: may the next stage start, or must this one roll back?

A mapping row (one secret → one environment variable) rolls out stage by stage. After each
stage the gate looks at that stage's results:

- every target in sync → the next stage starts;
- a target failed **permanently** (refused write, wrong definition type, missing definition,
  read-back that does not hold the value) → with `staged` rollout, every target of the stage that
  this run changed is restored to its previous value and later stages are held back: a credential
  that breaks something stops at dev. Retrying cannot fix it, so the event is acknowledged;
- a target failed **transiently** (throttled, unreachable, not ready) → later stages are held back,
  nothing is rolled back, and the event is redelivered to continue from there.

With `all` rollout every stage runs whatever happens elsewhere: for secrets whose old value is
revoked at rotation, holding back would break later stages anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sync.models import Outcome, Target, TargetResult

STAGED = "staged"


class Gate(StrEnum):
    PROCEED = "proceed"
    ROLL_BACK = "roll_back"
    HOLD = "hold"


@dataclass(frozen=True)
class StageVerdict:
    gate: Gate
    # Why later stages are held back, in words for the card (names, never values).
    reason: str = ""


def judge_stage(rollout: str, stage: int, results: Sequence[TargetResult]) -> StageVerdict:
    """The gate after one stage of one row."""
    if rollout != STAGED:
        return StageVerdict(Gate.PROCEED)
    permanent = [r for r in results if r.outcome is Outcome.FAILED and not r.retryable]
    if permanent:
        where = ", ".join(sorted({r.environment for r in permanent}))
        return StageVerdict(
            Gate.ROLL_BACK,
            f"stage {stage} failed in {where}: stage {stage} is rolled back"
            + (", earlier stages keep the new value" if stage > 1 else "")
            + f", stages after {stage} were not touched; fix the cause, then rotate again or run the "
            "reconcile",
        )
    # A target that needs a person (a connection not shared with Lockstep) says nothing about the
    # credential, so it holds nothing back.
    waiting = [r for r in results if r.needs_attention and r.outcome is not Outcome.NEEDS_ACTION]
    if waiting:
        where = ", ".join(sorted({r.environment for r in waiting}))
        return StageVerdict(
            Gate.HOLD,
            f"stage {stage} is not in sync yet in {where}: "
            "later stages wait for the redelivery or the reconcile",
        )
    return StageVerdict(Gate.PROCEED)


def held_back(target: Target, reason: str, retryable: bool) -> TargetResult:
    """The result of a target a failed earlier stage kept this run from touching."""
    return TargetResult.of(target, Outcome.HELD_BACK, reason, retryable)
