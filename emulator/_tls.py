"""The HTTPS listener: one aiohttp application that routes on the Host header."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import _admin, _connectivity, _dataverse, _keyvault, _monitor, _teams
from ._http import error_response, host_of
from ._state import (
    ADMIN_HOST,
    CRM_SUFFIX,
    ENVIRONMENT_API_SUFFIX,
    MONITOR_HOST,
    POWER_PLATFORM_API_HOST,
    TEAMS_HOST,
    VAULT_SUFFIX,
    State,
)

log = logging.getLogger(__name__)

Handler = Callable[[State, web.Request, str], Awaitable[web.Response]]
LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def route(host: str) -> tuple[str, Handler] | None:
    """The service and handler for a Host (lower-case, no port), or None for a host we do not serve."""
    if host.endswith(VAULT_SUFFIX) and LABEL.match(host[: -len(VAULT_SUFFIX)]):
        return _keyvault.SERVICE, _keyvault.handle
    if host.endswith(CRM_SUFFIX) and LABEL.match(host[: -len(CRM_SUFFIX)]):
        return _dataverse.SERVICE, _dataverse.handle
    if host == POWER_PLATFORM_API_HOST or host.endswith(ENVIRONMENT_API_SUFFIX):
        return _connectivity.SERVICE, _connectivity.handle
    if host == ADMIN_HOST:
        return _admin.SERVICE, _admin.handle
    if host == TEAMS_HOST:
        return _teams.SERVICE, _teams.handle
    if host == MONITOR_HOST:
        return _monitor.SERVICE, _monitor.handle
    return None


def make_app(state: State) -> web.Application:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        host = host_of(request)
        target = route(host)
        if target is None:
            return error_response(421, "MisdirectedRequest", "This emulator does not serve that host.")
        service, handler = target
        delay = state.latency_of(service)
        if delay > 0:
            await asyncio.sleep(delay)  # a slow network or service, outside the state lock
        try:
            response = await handler(state, request, host)
        except web.HTTPException as exc:  # e.g. a body over client_max_size
            response = error_response(exc.status, "BadRequest", exc.reason)
        except Exception:
            log.exception("emulator handler failed for %s %s", service, request.method)
            response = error_response(
                500, "InternalServerError", "The emulator failed to handle the request."
            )
        state.record(service, request.method, host, request.path, response.status)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
