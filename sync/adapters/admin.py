"""Power Platform admin API: is an environment reachable, ready, and where the mapping says?

Checking the admin API before writing catches an environment in admin mode or being copied,
and a mapping whose URL points at a different organisation than its environment id.
"""

from __future__ import annotations

from typing import Any

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from sync.adapters.http import BearerTokenAuth, RetryPolicy, json_object, odata_error, send_with_retry
from sync.errors import PermanentError
from sync.models import EnvironmentStatus
from sync.redact import shorten

ADMIN_SCOPE = "https://service.powerapps.com/.default"
API_VERSION = "2020-10-01"
ENVIRONMENTS_PATH = "/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments"


class PowerPlatformAdmin:
    """Reads environment state with the identity registered as a management app."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credential: AsyncTokenCredential,
        base_url: str,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._auth = BearerTokenAuth(credential, ADMIN_SCOPE)
        self._policy = policy or RetryPolicy()

    async def get_environment(self, environment_id: str) -> EnvironmentStatus:
        url = f"{self._base_url}{ENVIRONMENTS_PATH}/{environment_id}"
        response = await send_with_retry(
            self._http,
            "GET",
            url,
            policy=self._policy,
            service="Power Platform admin API",
            params={"api-version": API_VERSION},
            headers={"Accept": "application/json"},
            auth=self._auth,
        )
        if not response.is_success:
            code, message = odata_error(response)
            hint = ""
            if response.status_code in (401, 403):
                hint = " (register the identity: pac admin application register --application-id <client id>)"
            elif response.status_code == 404:
                hint = " (check the environment id in the mapping)"
            raise PermanentError(
                f"admin API: environment {environment_id}: HTTP {response.status_code} {code} "
                f"{shorten(message)}{hint}"
            )
        properties = _object(json_object(response, "Power Platform admin API").get("properties"))
        states = _object(properties.get("states"))
        linked = _object(properties.get("linkedEnvironmentMetadata"))
        instance_url = linked.get("instanceUrl")
        return EnvironmentStatus(
            environment_id=environment_id,
            management_state=str(_object(states.get("management")).get("id", "unknown")),
            runtime_state=str(_object(states.get("runtime")).get("id", "unknown")),
            instance_url=instance_url if isinstance(instance_url, str) else None,
        )


def _object(value: Any) -> dict[str, Any]:
    """A nested JSON object, or an empty one when the answer has something else there."""
    return value if isinstance(value, dict) else {}
