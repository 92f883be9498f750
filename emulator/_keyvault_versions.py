"""Key Vault: list a secret's versions (`GET /secrets/{name}/versions`), without values, in pages.

As the service answers it: `{"value": [<item>…], "nextLink": <url or null>}`, each item the
version's `id`, `attributes` (enabled, created, updated, nbf/exp when set, recoveryLevel),
`tags` and `contentType` when set, and never a `value`. Disabled versions are listed too (their
`enabled` is false). `maxresults` (1-25, default 25) sets the page size; the next page is
`nextLink`, an absolute URL on the vault (with the explicit `:443` the service writes) carrying an
opaque `$skiptoken`. A secret that does not exist is `404 SecretNotFound`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ._http import error_response, json_response
from ._state import SecretRecord, VaultState

PAGE_SIZE = 25  # the service's default and its maximum


def item(record: SecretRecord, version_id: str, host: str) -> dict[str, Any]:
    """One version as a list item: a get's answer without its value."""
    version = record.versions[version_id]
    attributes: dict[str, Any] = {
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": "Recoverable+Purgeable",
    }
    if version.not_before is not None:
        attributes["nbf"] = version.not_before
    if version.expires is not None:
        attributes["exp"] = version.expires
    body: dict[str, Any] = {
        "id": f"https://{host}/secrets/{record.name}/{version.version}",
        "attributes": attributes,
    }
    if version.tags:
        body["tags"] = dict(version.tags)
    if version.content_type is not None:
        body["contentType"] = version.content_type
    return body


def _skip(token: str | None) -> int | None:
    """The offset a `$skiptoken` stands for, or None when it is not one this vault issued."""
    if token is None:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if not decoded.startswith("offset:") or not decoded[7:].isdigit():
        return None
    return int(decoded[7:])


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode("ascii")).decode("ascii")


def list_versions(vault: VaultState, name: str, request: web.Request, host: str) -> web.Response:
    """One page of the secret's versions, oldest first (caller holds the state lock)."""
    raw_size = request.query.get("maxresults")
    size = PAGE_SIZE
    if raw_size is not None:
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= PAGE_SIZE:
            return error_response(
                400, "BadParameter", f"The value of maxresults must be between 1 and {PAGE_SIZE}."
            )
        size = int(raw_size)
    offset = _skip(request.query.get("$skiptoken"))
    if offset is None:
        return error_response(400, "BadParameter", "The $skiptoken is not valid.")
    record = vault.find(name)
    if record is None or record.current is None:
        return error_response(
            404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault."
        )
    ordered = sorted(record.versions, key=lambda v: record.versions[v].created)  # stable: insertion order
    page = [item(record, version, host) for version in ordered[offset : offset + size]]
    next_link = None
    if offset + size < len(ordered):
        query = urlencode(
            {
                "api-version": request.query.get("api-version", ""),
                "$skiptoken": _token(offset + size),
                "maxresults": str(size),
            }
        )
        next_link = f"https://{host}:443/secrets/{record.name}/versions?{query}"
    return json_response(200, {"value": page, "nextLink": next_link})
