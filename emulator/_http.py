"""Small helpers shared by the service handlers: JSON responses, bearer checks, injected faults."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

from aiohttp import web

from ._state import Fault, State

JSON = "application/json"


def json_response(
    status: int, body: Any, *, headers: dict[str, str] | None = None, content_type: str = JSON
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": f"{content_type}; charset=utf-8", **(headers or {})},
    )


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers=headers)


def empty_response(status: int, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


def host_of(request: web.Request) -> str:
    """The Host header, lower-cased, without a port."""
    host = (request.headers.get("Host") or "").strip().lower()
    if host.startswith("["):  # IPv6 literal
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def parse_json_object(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@dataclass(frozen=True, slots=True)
class AuthProblem:
    message: str


def check_bearer(state: State, request: web.Request, expected_audience: str) -> AuthProblem | None:
    """None when the request carries a live emulator token for ``expected_audience``."""
    header = request.headers.get("Authorization")
    if header is None:
        return AuthProblem(
            f"The request has no Authorization header; a Bearer token for audience "
            f"'{expected_audience}' is required."
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return AuthProblem("The Authorization header does not carry a Bearer token.")
    with state.lock:
        issued = state.tokens.get(token.strip())
    if issued is None:
        return AuthProblem("The bearer token was not issued by this emulator's managed-identity endpoint.")
    if issued.expires_at <= time.time():
        expired = datetime.fromtimestamp(issued.expires_at, UTC).isoformat()
        return AuthProblem(f"The bearer token expired at {expired}.")
    if issued.audience != expected_audience.lower():
        return AuthProblem(
            f"The bearer token has the wrong audience: expected '{expected_audience}', "
            f"got '{issued.audience}'."
        )
    return None


def take_fault(state: State, service: str, request: web.Request) -> Fault | None:
    """The pending fault for this request, if any; ``path_contains`` is matched against host + path."""
    with state.lock:
        return state.take_fault(service, host_of(request) + request.path, request.method)


def hang_up(request: web.Request) -> web.Response:
    """Closes the connection without an answer, as a dropped network path or a crashed gateway."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=599)  # never reaches the client: the connection is gone


def fault_response(fault: Fault, request: web.Request) -> web.Response:
    """The answer a fault stands for (drop_after is handled by the service, after applying)."""
    if fault.kind in ("drop_before", "drop_after"):
        return hang_up(request)
    if fault.kind == "html":
        body = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
        return web.Response(status=502, text=body, content_type="text/html")
    if fault.kind == "truncated":
        return web.Response(status=200, text='{"value": [{"environmentvariab', content_type=JSON)
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        retry_after = fault.retry_after
        if fault.retry_after_date:
            headers["Retry-After"] = formatdate(time.time() + retry_after, usegmt=True)
        else:
            headers["Retry-After"] = (
                str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            )
    if fault.status in (204, 304):
        return empty_response(fault.status, headers=headers)
    return error_response(
        fault.status,
        "EmulatorInjectedFault",
        f"The emulator answered HTTP {fault.status} because a fault was injected.",
        headers=headers,
    )
