"""Application Insights ingestion (`POST /v2.1/track`), as the Azure Monitor exporter calls it.

Only Entra-authenticated ingestion is accepted (a bearer token for the monitor audience from the
emulator's identity endpoint), as for a component with local authentication off. Envelopes are
kept for tests (`Emulator.telemetry_items()`); bodies may be gzip-compressed JSON arrays.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from aiohttp import web

from ._http import check_bearer, error_response, fault_response, json_response, take_fault
from ._state import State

SERVICE = "monitor"
MONITOR_AUDIENCE = "https://monitor.azure.com"
TRACK_PATH = "/v2.1/track"


async def handle(state: State, request: web.Request, host: str) -> web.Response:
    problem = check_bearer(state, request, MONITOR_AUDIENCE)
    if problem is not None:
        return error_response(401, "Unauthorized", problem.message, headers={"WWW-Authenticate": "Bearer"})
    fault = take_fault(state, SERVICE, request)
    if fault is not None:
        return fault_response(fault, request)
    # The exporter joins "IngestionEndpoint=https://host/" and "/v2.1/track": "//v2.1/track".
    if "/" + request.path.lstrip("/") != TRACK_PATH or request.method != "POST":
        return error_response(404, "NotFound", "Ingestion is POST /v2.1/track.")
    raw = await request.read()
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = gzip.decompress(raw)
    try:
        items: Any = json.loads(raw)
    except ValueError:
        return error_response(400, "BadRequest", "The body is not JSON.")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return error_response(400, "BadRequest", "The body must be a JSON array of envelopes.")
    with state.lock:
        state.telemetry.extend(item for item in items if isinstance(item, dict))
    return json_response(200, {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []})
