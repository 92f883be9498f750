"""Power Platform admin API (BAP): one environment by id."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ._http import check_bearer, error_response, fault_response, json_response, take_fault
from ._state import ADMIN_AUDIENCE, EnvironmentState, State

SERVICE = "admin"
ENVIRONMENT_PATH = re.compile(
    r"^/providers/Microsoft\.BusinessAppPlatform/scopes/admin/environments/([^/]+)/?$", re.IGNORECASE
)
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


def environment_json(env: EnvironmentState) -> dict[str, Any]:
    return {
        "id": f"/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments/{env.id}",
        "name": env.id,
        "type": "Microsoft.BusinessAppPlatform/scopes/environments",
        "location": "europe",
        "properties": {
            "displayName": env.name,
            "states": {"management": {"id": env.management}, "runtime": {"id": env.runtime}},
            "linkedEnvironmentMetadata": {"instanceUrl": env.instance_url, "domainName": env.org},
        },
    }


async def handle(state: State, request: web.Request, host: str) -> web.Response:
    problem = check_bearer(state, request, ADMIN_AUDIENCE)
    if problem is not None:
        return error_response(401, "InvalidAuthenticationToken", problem.message)
    fault = take_fault(state, SERVICE, request)
    if fault is not None:
        return fault_response(fault, request)
    match = ENVIRONMENT_PATH.match(request.path)
    if match is None:
        return error_response(404, "NotFound", "The requested resource does not exist.")
    if request.method != "GET":
        return error_response(405, "MethodNotAllowed", f"The method {request.method} is not allowed here.")
    api_version = request.query.get("api-version")
    if api_version is None:
        return error_response(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if not API_VERSION.match(api_version):
        return error_response(
            400, "InvalidApiVersionParameter", f"The api-version '{api_version}' is invalid."
        )
    environment_id = match.group(1)
    with state.lock:
        env = state.environment_by_id(environment_id)
        if env is None:
            return error_response(
                404, "EnvironmentNotFound", f"The environment '{environment_id}' could not be found."
            )
        return json_response(200, environment_json(env))
