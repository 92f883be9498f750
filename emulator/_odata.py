"""OData plumbing shared by the emulated Dataverse tables: errors, headers, query options, keys."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from yarl import URL

from ._http import JSON, error_response, json_response

CODE_BAD_REQUEST = "0x80048d19"
CODE_QUERY = "0x80060888"
CODE_HEADER = "0x80048d1a"
CODE_NOT_FOUND = "0x80040217"
CODE_ETAG = "0x80060882"
CODE_DUPLICATE = "0x80040237"
CODE_LENGTH = "0x80044331"
CODE_UNAUTHORIZED = "0x80072560"
CODE_METHOD = "0x80060889"
CODE_PRIVILEGE = "0x80040220"
# Every principal id behind the request's bearer token (_principals.aliases; set by _dataverse.handle;
# flows check shares with it).
CALLER: web.RequestKey[frozenset[str]] = web.RequestKey("caller", object)  # type: ignore[arg-type]
MAX_PAGE_SIZE = 5000
MAX_PAGE_SIZE_PREFERENCE = re.compile(r"(?:^|[,;]\s*)odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)
GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _response(status: int, body: Any, *, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(
        status,
        body,
        headers={"OData-Version": "4.0", **(headers or {})},
        content_type="application/json; odata.metadata=minimal",
    )


def _error(error: ODataError) -> web.Response:
    return error_response(error.status, error.code, error.message, headers={"OData-Version": "4.0"})


def etag(row_version: int) -> str:
    return f'W/"{row_version}"'


def _check_headers(request: web.Request) -> None:
    for header in ("OData-MaxVersion", "OData-Version"):
        got = request.headers.get(header)
        if got is None:
            raise ODataError(400, CODE_HEADER, f"The request has no {header} header; it must be 4.0.")
        if got.strip() != "4.0":
            raise ODataError(400, CODE_HEADER, f"The {header} header must be 4.0, got '{got.strip()}'.")
    accept = request.headers.get("Accept")
    if accept is None:
        raise ODataError(400, CODE_HEADER, "The request has no Accept header; it must be application/json.")
    types = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    if JSON not in types:
        raise ODataError(400, CODE_HEADER, f"The Accept header must be application/json, got '{accept}'.")


def _query_options(request: web.Request, allowed: set[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in request.query.items():
        if key in options:
            raise ODataError(400, CODE_QUERY, f"The query option {key} is specified more than once.")
        if key not in allowed:
            raise ODataError(400, CODE_QUERY, f"The query option '{key}' is not supported here.")
        options[key] = value
    return options


def _select(raw: str | None, columns: tuple[str, ...], entity_type: str) -> list[str]:
    if raw is None:
        return list(columns)
    selected = [part.strip() for part in raw.split(",")]
    for column in selected:
        if not column:
            raise ODataError(400, CODE_QUERY, "The $select option has an empty column name.")
        if column not in columns:
            raise ODataError(
                400, CODE_BAD_REQUEST, f"Could not find a property named '{column}' on type '{entity_type}'."
            )
    return selected


def _require_method(method: str, allowed: str) -> None:
    if method != allowed:
        raise ODataError(405, CODE_METHOD, f"The HTTP method {method} is not allowed for this resource.")


def _guid(raw: str) -> str:
    if not re.fullmatch(GUID, raw):
        raise ODataError(400, CODE_QUERY, "The key in the request URL is not a valid GUID.")
    return raw.lower()


def _row_not_found(entity: str, row_id: str) -> ODataError:
    return ODataError(404, CODE_NOT_FOUND, f"{entity} With Id = {row_id} Does Not Exist")


def _page_size(request: web.Request) -> tuple[int, bool]:
    """The page size and whether the client asked for it (`Prefer: odata.maxpagesize=N`)."""
    match = MAX_PAGE_SIZE_PREFERENCE.search(request.headers.get("Prefer", ""))
    if match is None:
        return MAX_PAGE_SIZE, False
    return max(1, min(int(match.group(1)), MAX_PAGE_SIZE)), True


def _skip(raw: str | None) -> int:
    if raw is None:
        return 0
    if not raw.isdigit():
        raise ODataError(400, CODE_QUERY, "The $skiptoken is not one this server issued.")
    return int(raw)


Row = TypeVar("Row")


def _page(
    request: web.Request,
    options: dict[str, str],
    base: str,
    entity_set: str,
    context: str,
    matching: Sequence[Row],
    project: Callable[[Row], dict[str, Any]],
) -> web.Response:
    """One server-side page of `matching`, each row through `project`, as Dataverse pages: up to
    `Prefer: odata.maxpagesize` rows (or the server's own page size), an `@odata.nextLink` to
    `entity_set` with the same options and a `$skiptoken` while rows remain, and
    `Preference-Applied` when the client asked for a size. `context` follows `$metadata#`."""
    page_size, preferred = _page_size(request)
    skip = _skip(options.get("$skiptoken"))
    body: dict[str, Any] = {
        "@odata.context": f"{base}$metadata#{context}",
        "value": [project(row) for row in matching[skip : skip + page_size]],
    }
    if skip + page_size < len(matching):
        query = {key: value for key, value in options.items() if key != "$skiptoken"}
        query["$skiptoken"] = str(skip + page_size)
        body["@odata.nextLink"] = str(URL(f"{base}{entity_set}").with_query(query))
    headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if preferred else None
    return _response(200, body, headers=headers)
