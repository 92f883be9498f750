"""App Service managed-identity endpoint (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``).

Served on the plain-HTTP loopback listener that _listeners builds (the control channel sits beside it).
"""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web

from ._http import error_response, fault_response, host_of, json_response, take_fault
from ._principals import adopt_identity
from ._state import State

SERVICE = "identity"
PATH = "/msi/token"
API_VERSION = "2019-08-01"


async def serve(state: State, request: web.Request) -> web.Response:
    """One identity request: injected latency, the answer, and its record."""
    delay = state.latency_of(SERVICE)
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        response = await handle(state, request)
    except web.HTTPException as exc:
        response = error_response(exc.status, "bad_request", exc.reason)
    state.record(SERVICE, request.method, host_of(request), request.path, response.status)
    return response


async def handle(state: State, request: web.Request) -> web.Response:
    if request.path != PATH:
        return error_response(404, "not_found", "The managed-identity endpoint is /msi/token.")
    if request.method != "GET":
        return error_response(405, "method_not_allowed", "Use GET.")
    header = request.headers.get("X-IDENTITY-HEADER", "")
    if not hmac.compare_digest(header.encode(), state.identity_header.encode()):
        return error_response(
            401, "unauthorized", "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER."
        )
    fault = take_fault(state, SERVICE, request)
    if fault is not None:
        return fault_response(fault, request)
    if request.query.get("api-version") != API_VERSION:
        return error_response(
            400, "invalid_request", f"The api-version query parameter must be {API_VERSION}."
        )
    resource = request.query.get("resource", "").strip()
    if not resource:
        return error_response(400, "invalid_request", "The resource query parameter is required.")
    client_id = request.query.get("client_id") or None
    with state.lock:
        access_token, token = state.issue_token(resource, client_id)
        adopt_identity(state, token.client_id)
    return json_response(
        200,
        {
            "access_token": access_token,
            "expires_on": str(int(token.expires_at)),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": token.client_id,
        },
    )
