"""Error types that decide what happens to an event: retried, acknowledged, or reported.

The split matters because Event Grid redelivers only when the function raises. A transient
failure must raise (so nothing is lost); a permanent one must not (so a poison input does not
burn the retry budget), but must be reported. No message here ever carries a secret value.
"""

from __future__ import annotations


class LockstepError(Exception):
    """Base class for every error Lockstep raises on purpose."""


class ConfigurationError(LockstepError):
    """The app settings or the mapping are invalid; lists every problem, each naming its field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid Lockstep configuration ({len(problems)} problem(s)):\n{listing}")


class InvalidEventError(LockstepError):
    """An Event Grid event that cannot be a Key Vault secret event; names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid Key Vault event: {field}: {problem}")


class TransientError(LockstepError):
    """A failure worth retrying later: timeouts, throttling, 5xx, an environment not ready yet."""


class PermanentError(LockstepError):
    """A failure retrying cannot fix: missing definition, wrong definition type, forbidden."""


class NeedsActionError(PermanentError):
    """Lockstep is not allowed to change this target (a connection not shared with it): a person
    must act. Reported as `needs_action`; it neither rolls a stage back nor holds later ones."""


class SyncIncompleteError(TransientError):
    """Raised by the event path so Event Grid redelivers when a target failed transiently."""


class ReconcileIncompleteError(LockstepError):
    """Raised by the reconcile after reporting, so a run with failures shows as failed in monitoring."""
