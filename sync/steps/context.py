"""What one run shares across its secrets, rows and targets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from sync.models import TargetResult, Trigger
from sync.steps.prefetch import DefinitionPrefetch
from sync.steps.readiness import ReadinessChecks

ResultCallback = Callable[[TargetResult], None]


@dataclass
class RunContext:
    """Admin checks, prefetched reads, per-environment write limits and the progress callback."""

    trigger: Trigger
    readiness: ReadinessChecks
    prefetch: DefinitionPrefetch | None
    environments: Collection[str] | None
    on_result: ResultCallback | None
    per_environment: int
    limits: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def limiter(self, environment_id: str) -> asyncio.Semaphore:
        if environment_id not in self.limits:
            self.limits[environment_id] = asyncio.Semaphore(self.per_environment)
        return self.limits[environment_id]

    def close(self) -> None:
        self.readiness.close()
        if self.prefetch is not None:
            self.prefetch.close()
