"""Step 3: make one target hold the secret, whatever its kind — read, decide, write, verify.

The kind (sync.targets) does the I/O and the deciding; this step only sequences it, and re-reads
and re-decides after a lost race (WriteConflict): the other writer may have written the same
value already, which makes the target `unchanged`. `before_write` is told once, just before the
first write, that this target is about to be written (consumers start their look-ups then); a
target that is not written never calls it.
"""

from __future__ import annotations

from collections.abc import Callable

from sync.errors import PermanentError, TransientError
from sync.models import Outcome, SecretSnapshot, Target
from sync.targets.base import Change, InSync, NeedsAction, Refuse, TargetKind, Write, WriteConflict

WRITE_ATTEMPTS = 2


async def apply(
    kind: TargetKind,
    target: Target,
    snapshot: SecretSnapshot,
    before_write: Callable[[Target], None] | None = None,
) -> Change:
    """UPDATED, CREATED, UNCHANGED or NEEDS_ACTION; raises PermanentError (refused) or TransientError."""
    for attempt in range(WRITE_ATTEMPTS):
        observed = await kind.read(target)
        decision = kind.decide(target, observed, snapshot)
        match decision:
            case Refuse(reason=reason):
                raise PermanentError(reason)
            case NeedsAction(reason=reason):
                return Change(Outcome.NEEDS_ACTION, reason=reason)
            case InSync(reason=reason):
                return Change(Outcome.UNCHANGED, reason=reason)
            case Write():
                if attempt == 0 and before_write is not None:
                    before_write(target)
                try:
                    await kind.write(target, observed, decision, snapshot)
                except WriteConflict:
                    continue  # someone else wrote in between: read again and re-decide
                return await kind.verify(target, observed, decision, snapshot)
    raise TransientError("the target kept changing under us; another writer is active")
