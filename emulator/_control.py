"""Loopback control endpoint: lets another process (an operator's shell) rotate a secret and
read the Teams cards the emulator has recorded.

Served next to the managed-identity endpoint on 127.0.0.1 only, never through the service
hostnames, and guarded by the same per-run header value (`X-Emulator-Control: <IDENTITY_HEADER>`),
so only whoever holds the emulator's settings can drive it. A rotation's answer names the new
version and carries the Event Grid event Key Vault would publish; it never contains the value.
"""

from __future__ import annotations

import copy
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._http import error_response, json_response, parse_json_object
from ._state import State
from ._vault import KeyVault

PREFIX = "/control/"
HEADER = "X-Emulator-Control"

ControlHandler = Callable[[web.Request], Awaitable[web.Response]]


def make_handler(state: State) -> ControlHandler:
    """Works on the shared state (never on the ``Emulator``), so no request can reach back into it."""

    async def handle(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(HEADER, ""), state.identity_header):
            return error_response(
                401, "unauthorized", f"Send the {HEADER} header (the IDENTITY_HEADER value)."
            )
        if request.path == f"{PREFIX}cards" and request.method == "GET":
            with state.lock:
                cards = copy.deepcopy(state.teams_posts)
            return json_response(200, {"cards": cards})
        if request.path != f"{PREFIX}rotate":
            return error_response(
                404, "not_found", "The control endpoint offers POST /control/rotate and GET /control/cards."
            )
        if request.method != "POST":
            return error_response(405, "method_not_allowed", "Use POST.")
        body = parse_json_object(await request.read())
        if body is None:
            return error_response(400, "bad_request", "The body must be a JSON object.")
        return _rotate(state, body)

    return handle


def _rotate(state: State, body: dict[str, Any]) -> web.Response:
    secret, vault_name, value = body.get("secret"), body.get("vault"), body.get("value")
    with state.lock:
        vaults = {name: KeyVault(state, name) for name in state.vaults}
    if vault_name is None and len(vaults) == 1:
        vault_name = next(iter(vaults))
    if not isinstance(secret, str) or vault_name not in vaults:
        return error_response(
            400,
            "bad_request",
            f"Send {{'secret': <name>, 'vault': <one of {sorted(vaults)}>}}; 'vault' may go with one vault.",
        )
    vault = vaults[str(vault_name)]
    if vault.current_version(secret) is None:
        return error_response(404, "not_found", f"No secret {secret!r} in vault {vault.name!r}.")
    if value is not None and not isinstance(value, str):
        return error_response(400, "bad_request", "'value' must be a string (or absent for a random one).")
    version = vault.set_secret(secret, value if value is not None else f"rotated-{secrets.token_urlsafe(18)}")
    event = vault.secret_event(secret, version)
    return json_response(200, {"secret": secret, "vault": vault.name, "version": version, "event": event})


def rotate_request(identity_endpoint: str, header: str, secret: str, vault: str | None) -> dict[str, Any]:
    """Client side, for `python -m emulator rotate`: POST to the control endpoint next to the identity one."""
    return _call(
        identity_endpoint, header, "rotate", {"secret": secret, **({"vault": vault} if vault else {})}
    )


def cards_request(identity_endpoint: str, header: str) -> list[dict[str, Any]]:
    """Client side, for `python -m emulator cards`: the Teams messages the emulator has recorded."""
    cards: list[dict[str, Any]] = _call(identity_endpoint, header, "cards", None)["cards"]
    return cards


def _call(identity_endpoint: str, header: str, action: str, body: dict[str, Any] | None) -> dict[str, Any]:
    """POST `body` (or GET without one) to /control/<action>; a refusal or no answer is a ValueError."""
    import urllib.error
    import urllib.request

    base = identity_endpoint.split("/msi/", 1)[0]
    if not base.startswith("http://127.0.0.1:"):
        raise ValueError(f"IDENTITY_ENDPOINT {identity_endpoint!r} is not the emulator's loopback endpoint")
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL checked above
        f"{base}{PREFIX}{action}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json", HEADER: header},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("error", {}).get("message", error.reason)
        raise ValueError(f"the emulator refused: HTTP {error.code} {detail}") from None
    except urllib.error.URLError as error:
        raise ValueError(f"no emulator answers at {base} ({error.reason}); is it running?") from None
