"""What Dataverse records as depending on an environment variable's definition.

Flow refresh (workflows, component type 29) and agent refresh (bot components, a per-organisation
type code) both ask `RetrieveDependentComponents` about the same definition right after its value
changed. One answer, shared for a short while, serves both: one request per changed variable
instead of one per consumer.
"""

from __future__ import annotations

from functools import partial

from sync.adapters.dataverse import DataverseClient, raise_for_error
from sync.adapters.http import json_object
from sync.adapters.shared import SharedAnswers

COMPONENT_DEFINITION = 380  # environmentvariabledefinition
SHARED_SECONDS = 30.0


class Dependencies:
    """`RetrieveDependentComponents` on a definition, each answer shared for SHARED_SECONDS."""

    def __init__(self, dataverse: DataverseClient) -> None:
        self._dataverse = dataverse
        self._answers: SharedAnswers[list[tuple[int, str]]] = SharedAnswers(SHARED_SECONDS)

    async def of_definition(self, org_url: str, definition_id: str) -> list[tuple[int, str]]:
        """(dependentcomponenttype, dependentcomponentobjectid) of every recorded dependent."""
        key = (org_url, definition_id.lower())
        return await self._answers.get(key, partial(self._read, org_url, definition_id))

    async def _read(self, org_url: str, definition_id: str) -> list[tuple[int, str]]:
        response = await self._dataverse.request(
            org_url,
            "GET",
            "RetrieveDependentComponents(ObjectId=@p1,ComponentType=@p2)",
            params={"@p1": definition_id, "@p2": str(COMPONENT_DEFINITION)},
        )
        raise_for_error(response, "reading the variable's dependencies")
        rows = json_object(response, "Dataverse").get("value") or []
        return [
            (row["dependentcomponenttype"], str(row.get("dependentcomponentobjectid")))
            for row in rows
            if isinstance(row, dict) and isinstance(row.get("dependentcomponenttype"), int)
        ]
