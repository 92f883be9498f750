"""Exit codes every command shares, so scripts and pipelines can branch on them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # in sync, or done
    PENDING = 1  # changes pending (plan, reconcile --dry-run, status)
    FAILURES = 2  # something is unreachable, refused, or needs fixing (doctor findings)
    INVALID_CONFIGURATION = (
        3  # invalid settings or mapping, a usage error, or an argument naming nothing mapped
    )


def worst(*codes: ExitCode) -> ExitCode:
    """Failures outrank pending changes, which outrank success; configuration outranks all."""
    return max(codes, default=ExitCode.OK)
