"""Bulk reads of environment-variable definitions: many schema names per request, every page.

A reconcile that read one definition per request would cost one Dataverse request per mapping
and run into the service-protection limit (6,000 requests per 5 minutes per application user)
at a few thousand mappings. Instead, per environment, schema names go into
`Microsoft.Dynamics.CRM.In(PropertyName='schemaname',PropertyValues=[…])` in chunks that keep the
URL far below Dataverse's 32 KB limit, with the value rows expanded, and every
`@odata.nextLink` page is followed (Dataverse pages server-side whatever the client asks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import SecretStr

from sync.errors import PermanentError, TransientError
from sync.mapping import SCHEMA_NAME
from sync.models import Definition, ValueRow
from sync.redact import shorten

VALUES = "environmentvariabledefinition_environmentvariablevalue"
SELECT = "environmentvariabledefinitionid,schemaname,type"
EXPAND = f"{VALUES}($select=environmentvariablevalueid,value)"
# Characters of schema-name literals per request: with the rest of the query and percent-encoding
# the URL stays under ~8 KB, well inside Dataverse's 32 KB and any proxy's limit.
CHUNK_CHARACTERS = 4000
QUERY_SAFE = "$(),'=:"
CHUNK_NAMES = 200
PAGE_SIZE = 1000
# A definitions listing that pages more than this is not ours to follow (a server bug or a loop).
MAX_PAGES = 100

Send = Callable[..., Awaitable[httpx.Response]]


def chunks(names: Sequence[str]) -> Iterator[list[str]]:
    """Splits schema names into groups whose filter stays short enough for one URL."""
    chunk: list[str] = []
    size = 0
    for name in names:
        if chunk and (size + len(name) + 3 > CHUNK_CHARACTERS or len(chunk) >= CHUNK_NAMES):
            yield chunk
            chunk, size = [], 0
        chunk.append(name)
        size += len(name) + 3
    if chunk:
        yield chunk


def query_url(path: str, params: dict[str, str]) -> str:
    """The URL with its query encoded here, once. Given `params`, httpx checks and quotes the
    ~6 KB query character by character in Python (~1.3 ms of CPU per URL, and the URL was built
    more than once per request); an already-encoded query it only scans. OData's own punctuation
    stays readable; everything else (brackets included) is percent-encoded."""
    return f"{path}?{urlencode(params, quote_via=quote, safe=QUERY_SAFE)}"


def in_filter(names: Sequence[str]) -> str:
    """The OData `In` query function over schema names (validated, quotes doubled regardless)."""
    for name in names:
        if not SCHEMA_NAME.match(name):
            raise PermanentError(f"{name!r} is not a valid environment variable schema name")
    literals = ",".join("'" + name.replace("'", "''") + "'" for name in names)
    return f"Microsoft.Dynamics.CRM.In(PropertyName='schemaname',PropertyValues=[{literals}])"


def definition_from_row(row: dict[str, Any]) -> tuple[Definition, int]:
    """One definitions row (with its expanded value rows) → (Definition, number of value rows)."""
    try:
        values = row.get(VALUES) or []
        value_row = None
        if values:
            first = values[0]
            raw = first.get("value")
            value_row = ValueRow(
                id=str(first["environmentvariablevalueid"]),
                value=None if raw is None else SecretStr(str(raw)),
                etag=str(first.get("@odata.etag", "*")),
            )
        definition = Definition(
            id=str(row["environmentvariabledefinitionid"]),
            schema_name=str(row["schemaname"]),
            type=int(row["type"]),
            value_row=value_row,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise TransientError(
            f"Dataverse returned a definition row of an unexpected shape ({type(error).__name__})"
        ) from None
    return definition, len(values)


def next_page_path(base: str, next_link: str, seen: set[str], listing: str) -> str:
    """The path (with its query) below `base` of the next page of `listing`, refusing a link that
    leaves the organisation (the token goes wherever the request goes) or repeats an earlier one
    (following it would only repeat pages until the page bound)."""
    if not next_link.startswith(base):
        raise PermanentError("Dataverse's @odata.nextLink points outside the organisation")
    if next_link in seen:
        raise PermanentError(
            f"Dataverse's @odata.nextLink repeats an earlier page after {len(seen)} requests: "
            f"the {listing} would never end"
        )
    seen.add(next_link)
    return next_link[len(base) :]


def page(response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
    """The rows and the next link of one page; a body that is not an OData page is transient."""
    try:
        body = response.json()
    except ValueError:
        content_type = response.headers.get("Content-Type", "?")
        raise TransientError(
            f"Dataverse answered HTTP {response.status_code} with a body that is not JSON ({content_type})"
        ) from None
    rows = body.get("value") if isinstance(body, dict) else None
    next_link = body.get("@odata.nextLink") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise TransientError(f"Dataverse answered HTTP {response.status_code} without a 'value' list")
    if next_link is not None and not isinstance(next_link, str):
        raise TransientError("Dataverse answered an @odata.nextLink that is not a string")
    return rows, next_link


async def read_definitions(
    send: Send, org_url: str, api_base: str, schema_names: Sequence[str]
) -> dict[str, Definition]:
    """Every named definition with its value row, keyed by lower-case schema name.

    A name without a definition is absent. A definition with more than one value row is absent
    too: the single-definition read reports that problem with its full explanation.
    """
    found: dict[str, Definition] = {}
    unique = list(dict.fromkeys(schema_names))
    for chunk in chunks(unique):
        url = query_url(
            f"{api_base}/environmentvariabledefinitions",
            {"$filter": in_filter(chunk), "$select": SELECT, "$expand": EXPAND},
        )
        seen = {url}
        for _ in range(MAX_PAGES):
            response = await send(url, None)
            if not response.is_success:
                raise PermanentError(
                    f"Dataverse refused the bulk definitions read: HTTP {response.status_code} "
                    f"{shorten(response.reason_phrase)}"
                )
            rows, next_link = page(response)
            for row in rows:
                definition, value_rows = definition_from_row(row)
                if value_rows <= 1:
                    found[definition.schema_name.lower()] = definition
            if next_link is None:
                break
            base = f"{api_base}/"
            url = base + next_page_path(base, next_link, seen, "definitions listing")
        else:
            raise TransientError(f"the definitions listing did not end after {MAX_PAGES} pages")
    return found


__all__ = [
    "PAGE_SIZE",
    "chunks",
    "definition_from_row",
    "in_filter",
    "next_page_path",
    "query_url",
    "read_definitions",
]
