"""The contract between the engine and each kind of target, and between the engine and consumers.

A *target* is one place a secret must land or be checked: an environment variable's value row,
a service-principal connection, a Key Vault reference. The engine (sync.engine) orders stages,
runs the gate after each stage and rolls a failed stage back; it never knows which kind it is
driving. Each kind implements the same five steps:

    read  → decide (pure) → write → verify → (on a failed stage) restore

and a kind's `decide` is also what `plan` / `status` show, so a plan can never disagree with
what a sync then does.

*Consumers* (cloud flows, Copilot Studio agents) read a value and keep the old one until they
are refreshed. They run as hooks after a stage keeps a new value, only for targets this run
wrote, and never change the gate; `prepare` lets them start their look-ups as the write begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sync.models import Outcome, SecretSnapshot, Target, TargetResult


class TargetState(StrEnum):
    """Where one target stands against its secret's current version (plan / status / --json)."""

    IN_SYNC = "in_sync"
    DIFFERS = "differs"  # holds something else: a sync would write it
    MISSING_VALUE = "missing_value"  # nothing stored yet: a sync would create it
    MISSING_DEFINITION = "missing_definition"  # nothing to write to: a maker must add it
    REFUSED = "refused"  # a sync would refuse to write here (type, length, readiness, URL)
    NEEDS_ACTION = "needs_action"  # Lockstep may not change it: a person must grant access
    REFERENCE = "reference"  # a Key Vault reference, checked and never written
    ERROR = "error"  # could not be inspected (unreachable, access denied, secret unreadable)


# Decisions: what one target needs, decided without I/O from what `read` observed.


@dataclass(frozen=True)
class InSync:
    """Nothing to write. `state` is REFERENCE for a verified Key Vault reference."""

    reason: str = ""
    state: TargetState = TargetState.IN_SYNC


@dataclass(frozen=True)
class Write:
    """Write the secret. `plan` is the kind's own instruction (an etag, a row to create, …)."""

    outcome: Outcome  # UPDATED or CREATED
    plan: Any = None
    reason: str = ""

    @property
    def state(self) -> TargetState:
        return TargetState.MISSING_VALUE if self.outcome is Outcome.CREATED else TargetState.DIFFERS


@dataclass(frozen=True)
class Refuse:
    """Nothing may be written; `reason` says why and is safe to show. A permanent failure."""

    reason: str
    state: TargetState = TargetState.REFUSED


@dataclass(frozen=True)
class NeedsAction:
    """Lockstep is not allowed to change this target: a person must act (share, grant, publish).

    Not a failure of the credential, so it neither rolls back nor holds back later stages.
    """

    reason: str

    @property
    def state(self) -> TargetState:
        return TargetState.NEEDS_ACTION


Decision = InSync | Write | Refuse | NeedsAction


@dataclass(frozen=True)
class Change:
    """What this run did to one target, kept in memory only, so a failed stage can be undone.

    `memento` is the kind's own record for `restore` (a previous value, an etag, a connection
    object); it may hold a secret and is never logged. `subject_id` is what consumers look up
    their dependents by (an environment variable's definition id), None when nothing consumes it.
    """

    outcome: Outcome
    subject_id: str | None = None
    memento: Any = None
    reason: str = ""

    @property
    def wrote(self) -> bool:
        return self.outcome in (Outcome.UPDATED, Outcome.CREATED)


class WriteConflict(Exception):
    """Raised by `write` when the target changed between read and write: re-read and re-decide."""


class TargetKind(Protocol):
    """One kind of target, bound to one run (see TargetKinds.open).

    `read` and `write` raise sync.errors.TransientError (retry later) or PermanentError (refused);
    `verify` raises PermanentError when the write did not take. No method ever puts a secret value
    into an exception, a log line or a reason.
    """

    async def expand(self, target: Target) -> list[Target]:
        """The concrete targets a mapped target stands for (connections discovered by client id);
        most kinds return [target]."""
        ...

    async def read(self, target: Target) -> Any:
        """What the target holds now, as `decide` needs it."""
        ...

    def decide(self, target: Target, observed: Any, snapshot: SecretSnapshot) -> Decision:
        """Pure: what this target needs to hold the secret's current version."""
        ...

    async def write(self, target: Target, observed: Any, decision: Write, snapshot: SecretSnapshot) -> None:
        """Makes the change; raises WriteConflict when the target moved under us."""
        ...

    async def verify(
        self, target: Target, observed: Any, decision: Write, snapshot: SecretSnapshot
    ) -> Change:
        """Reads the target back and returns the Change that `restore` can undo."""
        ...

    async def restore(self, target: Target, change: Change, snapshot: SecretSnapshot) -> tuple[Outcome, str]:
        """Undoes this run's change: (ROLLED_BACK, what was done) or (FAILED, why not)."""
        ...

    def close(self) -> None:
        """Ends the run: cancels or settles whatever the kind started (bulk reads)."""
        ...


class TargetKinds(Protocol):
    """Long-lived: opens a kind for one run, given every target of that kind the run will touch.

    `bulk` asks for the reconcile's reads (every target of an environment in a few requests).
    """

    def open(self, targets: Sequence[Target], *, bulk: bool) -> TargetKind: ...


class Consumer(Protocol):
    """Reads a target's value and must be refreshed after it changes (cloud flows, agents).

    `refresh` is called only for targets this run wrote, after their stage kept the new value.
    Returns the result with what it did recorded on it; never raises for a consumer that fails
    (that is a result of its own), and never changes the target's outcome.
    """

    def prepare(self, target: Target) -> None:
        """A write is about to happen at `target`: start (do not await) the look-ups `refresh` will
        need, so they run alongside the write and its verify instead of after the stage, where the
        rotation's card waits for them. Called only when a target's decision is a Write, before the
        write. Never raises and never reports: a look-up that failed is asked again by `refresh`."""
        ...

    async def refresh(self, target: Target, change: Change, result: TargetResult) -> TargetResult: ...
