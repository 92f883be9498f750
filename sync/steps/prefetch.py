"""The reconcile's bulk read: every mapped definition of an environment in a few requests.

Reading per target costs one request per mapping; reading per environment costs one request per
~200 mappings. The event path touches one secret and keeps its single reads. A prefetched answer
is only the first read: writes stay guarded by the row's etag, and a lost race re-reads singly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sync.mapping import Environment
from sync.models import Definition
from sync.steps.readiness import OncePerRun


@runtime_checkable
class BulkDefinitions(Protocol):
    async def get_definitions(self, org_url: str, schema_names: Sequence[str]) -> dict[str, Definition]: ...


class NotPrefetched:
    """The prefetch cannot answer for this name: read it singly."""


NOT_PREFETCHED = NotPrefetched()


class DefinitionPrefetch:
    """Per environment, one bulk read of every schema name the run will touch there."""

    def __init__(self, source: BulkDefinitions, names_by_environment: dict[str, list[str]]) -> None:
        self._names = names_by_environment
        self._reads: OncePerRun[str, dict[str, Definition]] = OncePerRun(self._read)
        self._source = source

    async def _read(self, org_url: str) -> dict[str, Definition]:
        return await self._source.get_definitions(org_url, self._names.get(org_url, []))

    async def definition(self, environment: Environment, env_var: str) -> Definition | NotPrefetched | None:
        """The definition (None: there is none), or NOT_PREFETCHED when it must be read singly."""
        found = await self._reads.get(environment.url)
        definition = found.get(env_var.lower())
        if definition is not None:
            return definition
        # Absent from the bulk answer: really missing, or left out because it has several value
        # rows. A single read tells which, with the full explanation.
        return NOT_PREFETCHED

    def close(self) -> None:
        self._reads.close()
