"""What one run shares across its secrets, rows and targets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from sync.models import Target, TargetKindName, TargetResult, Trigger
from sync.steps.readiness import ReadinessChecks
from sync.targets.base import TargetKind

ResultCallback = Callable[[TargetResult], None]


@dataclass
class RunContext:
    """Admin checks, each kind opened for this run, per-environment write limits, the progress callback."""

    trigger: Trigger
    readiness: ReadinessChecks
    kinds: Mapping[TargetKindName, TargetKind]
    environments: Collection[str] | None
    on_result: ResultCallback | None
    per_environment: int
    limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def kind(self, target: Target) -> TargetKind:
        """The kind that handles this target; a mapping row of a kind not wired in is a bug."""
        return self.kinds[target.kind]

    def limiter(self, environment_id: str) -> asyncio.Semaphore:
        if environment_id not in self.limits:
            self.limits[environment_id] = asyncio.Semaphore(self.per_environment)
        return self.limits[environment_id]

    def close(self) -> None:
        self.readiness.close()
        for kind in self.kinds.values():
            kind.close()
