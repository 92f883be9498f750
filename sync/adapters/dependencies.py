"""What Dataverse records as depending on environment variable definitions, one listing per environment.

Flow refresh (workflows, component type 29) and agent refresh (bot components, a per-organisation
type code) both need the components recorded as depending on a changed variable's definition.
`RetrieveDependentComponents` answers that for one definition per request: a reconcile repairing
500 variables sent 500 of them, about a third of the repair's CPU. The `dependency` table is
queryable as well (`GET dependencies`), and `RetrieveDependentComponents` returns exactly its rows
whose required component is the given one. So, per environment, one listing of every dependency
on an environment variable definition (`requiredcomponenttype eq 380`, three columns), every
server page followed, serves every variable of that environment, flows and agents alike, shared
for SHARED_SECONDS; `of_definition` answers from it.

The trade-off: the listing carries every variable's dependents, not only the changed one's. Rows
are small (two GUIDs and a number, ~150 bytes), so an environment whose variables are used by
5,000 flows and topics fits one page of ~1 MB; a single changed variable (the event path) costs
the same one request as before, a reconcile repairing N variables of an environment one request
instead of N. Only an environment with tens of thousands of such rows pays more than one page
for one variable, and MAX_PAGES bounds it. Staleness stays bounded by SHARED_SECONDS, but a
variable first asked about may now get a listing read for another one up to that long ago. That
is harmless: a dependency is recorded when a maker saves a flow or topic, not when a value
changes, and both consumers also find users by their text, which is read fresh.

`prefetch` starts an environment's listing early (when a write is about to happen, see
sync.targets.base.Consumer.prepare) so that `of_definition` after the write finds it answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import httpx

from sync.adapters.dataverse import API_PATH, DataverseClient, raise_for_error
from sync.adapters.dataverse_bulk import next_page_path, page
from sync.adapters.shared import SharedAnswers
from sync.errors import TransientError

COMPONENT_DEFINITION = 380  # environmentvariabledefinition
SHARED_SECONDS = 30.0
PAGE_SIZE = 5000  # Dataverse's largest page
MAX_PAGES = 100  # 500,000 dependency rows: beyond that the listing is not ours to follow
LISTING = {
    "$filter": f"requiredcomponenttype eq {COMPONENT_DEFINITION}",
    "$select": "requiredcomponentobjectid,dependentcomponenttype,dependentcomponentobjectid",
}

Dependents = Mapping[str, list[tuple[int, str]]]


class Dependencies:
    """Every dependency on an environment variable definition, listed per environment and shared."""

    def __init__(self, dataverse: DataverseClient) -> None:
        self._dataverse = dataverse
        self._listings: SharedAnswers[Dependents] = SharedAnswers(SHARED_SECONDS)

    def prefetch(self, org_url: str) -> None:
        """Starts the environment's listing unless a fresh one is shared already; never raises
        (a failed listing is asked again, and reported, by whoever then needs it)."""
        self._listings.start(org_url, partial(self._read, org_url))

    async def of_definition(self, org_url: str, definition_id: str) -> list[tuple[int, str]]:
        """(dependentcomponenttype, dependentcomponentobjectid) of every recorded dependent."""
        listing = await self._listings.get(org_url, partial(self._read, org_url))
        return list(listing.get(definition_id.lower(), ()))

    async def _read(self, org_url: str) -> Dependents:
        """The listing, grouped by required definition (lower-case id), page by page."""
        base = f"{org_url}{API_PATH}/"
        path: str = "dependencies"
        params: dict[str, str] | None = dict(LISTING)
        seen = {str(httpx.URL(f"{base}{path}", params=params))}
        found: dict[str, list[tuple[int, str]]] = {}
        for _ in range(MAX_PAGES):
            response = await self._dataverse.request(
                org_url, "GET", path, params=params, headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
            )
            raise_for_error(response, "listing the variables' dependencies")
            rows, next_link = page(response)
            for row in rows:
                required, kind = row.get("requiredcomponentobjectid"), row.get("dependentcomponenttype")
                if isinstance(required, str) and isinstance(kind, int) and not isinstance(kind, bool):
                    dependent = (kind, str(row.get("dependentcomponentobjectid")))
                    found.setdefault(required.lower(), []).append(dependent)
            if next_link is None:
                return found
            path, params = next_page_path(base, next_link, seen, "dependencies listing"), None
        raise TransientError(f"the dependencies listing did not end after {MAX_PAGES} pages")
