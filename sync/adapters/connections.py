"""Power Platform API, connectivity: list, read and update connections, and read who may use them.

The one place a connection's credentials are written. An update is what Microsoft's Terraform
provider does: read the connection, replace `properties.connectionParametersSet` with the
complete set (GET never returns the secret and may leave out other values, so everything the
connection needs is sent again), PUT the object back, expect 200.

Each environment has its own host: the environment id, lower case and without dashes, split as
`<all but the last n characters>.<last n>.environment.<API host>`; n is 2 in the public cloud
and 1 in the sovereign clouds (Microsoft's own clients, e.g. the Copilot Studio client, do the
same). A default environment's id `Default-<tenant id>` becomes `default<tenant id hex>` the same
way; the `$filter=environment eq '…'` keeps the id as the mapping spells it.

Remote error messages are never passed on: only the HTTP status and the service's error code,
so a message that repeats a credential cannot reach a log line or a card.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from pydantic import SecretStr

from sync.adapters.connection_model import Connection, Permission, connection_from, credential_set
from sync.adapters.http import BearerTokenAuth, RetryPolicy, json_object, odata_error, send_with_retry
from sync.errors import PermanentError, TransientError
from sync.mapping_connections import CONNECTION_ID, CONNECTOR_NAME

DEFAULT_POWER_PLATFORM_API_URL = "https://api.powerplatform.com"
SERVICE = "Power Platform API"
MAX_PAGES = 100
# Sovereign clouds split one character off the environment id, the public cloud two.
ONE_CHARACTER_SUFFIX = frozenset(
    {
        "api.gov.powerplatform.microsoft.us",
        "api.high.powerplatform.microsoft.us",
        "api.appsplatform.us",
        "api.powerplatform.partner.microsoftonline.cn",
    }
)
SHARE_HINT = "share the connection with Lockstep's identity as Can edit (or make it an owner)"
REGISTER_HINT = (
    "register Lockstep's identity as a Power Platform management application "
    "(pac admin application register --application-id <client id>)"
)


def environment_host(environment_id: str, base_url: str) -> str:
    """The environment's own API host, e.g. 6a1b…00.01.environment.api.powerplatform.com."""
    base_host = (urlsplit(base_url).hostname or "").lower()
    compact = environment_id.lower().replace("-", "")
    if not compact.isalnum() or len(compact) < 3:
        raise PermanentError(f"{environment_id!r} is not a Power Platform environment id")
    suffix = 1 if base_host in ONE_CHARACTER_SUFFIX else 2
    return f"{compact[:-suffix]}.{compact[-suffix:]}.environment.{base_host}"


class ConnectionNotFound(PermanentError):
    """The connection does not exist in that environment (404 ConnectionNotFound)."""


class NotEditable(PermanentError):
    """The service refused Lockstep this connection (401/403): a person must share or register."""


class ConnectivityClient:
    """The connectivity API of every mapped environment, with one credential and one HTTP pool."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credential: AsyncTokenCredential,
        base_url: str = DEFAULT_POWER_PLATFORM_API_URL,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._auth = BearerTokenAuth(credential, f"{self._base_url}/.default")
        self._policy = policy or RetryPolicy()

    def _url(self, environment_id: str, path: str) -> str:
        return f"https://{environment_host(environment_id, self._base_url)}{path}"

    async def _send(self, method: str, url: str, environment_id: str | None, **kwargs: Any) -> httpx.Response:
        params = {"api-version": "1"}
        if environment_id is not None:
            params["$filter"] = f"environment eq '{environment_id}'"
        return await send_with_retry(
            self._http,
            method,
            url,
            policy=self._policy,
            service=SERVICE,
            params=params if "?" not in url else None,
            headers={"Accept": "application/json"},
            auth=self._auth,
            **kwargs,
        )

    async def list_connections(self, environment_id: str) -> list[Connection]:
        """Every connection of the environment the identity can see, every page followed."""
        url: str | None = self._url(environment_id, "/connectivity/connections")
        seen: set[str] = set()
        connections: list[Connection] = []
        while url is not None and url not in seen and len(seen) < MAX_PAGES:
            seen.add(url)
            response = await self._send("GET", url, None)
            _raise_for_error(response, "listing connections", environment_id)
            body = json_object(response, SERVICE)
            rows = body.get("value")
            if not isinstance(rows, list):
                raise TransientError(f"{SERVICE} answered the connection list without a 'value' list")
            connections.extend(
                parsed for row in rows if (parsed := connection_from(row, environment_id)) is not None
            )
            url = _next_link(body.get("nextLink") or body.get("@odata.nextLink"), url)
        return connections

    def _one(self, environment_id: str, connector: str, connection_id: str, tail: str = "") -> str:
        if not CONNECTOR_NAME.match(connector) or not CONNECTION_ID.match(connection_id):
            raise PermanentError(f"{connector}/{connection_id} is not a connector and connection id")
        return self._url(
            environment_id, f"/connectivity/connectors/{connector}/connections/{connection_id}{tail}"
        )

    async def get_connection(self, environment_id: str, connector: str, connection_id: str) -> Connection:
        """One connection; ConnectionNotFound, NotEditable (not shared), or another error."""
        url = self._one(environment_id, connector, connection_id)
        response = await self._send("GET", url, environment_id)
        _raise_for_error(response, f"reading connection {connection_id}", environment_id)
        parsed = connection_from(json_object(response, SERVICE), environment_id)
        if parsed is None:
            raise TransientError(f"{SERVICE} answered connection {connection_id} with an unexpected shape")
        return parsed

    async def put_credentials(
        self, connection: Connection, client_id: str, tenant_id: str, secret: SecretStr
    ) -> None:
        """PUTs the connection back with the complete service-principal set (200 expected).

        `connectionParameters` (the flat form) is left out, as Microsoft's provider does when it
        sends a set. Never raises with the secret or the service's message in the text.
        """
        body = dict(connection.raw)
        properties = {k: v for k, v in _object(body.get("properties")).items() if k != "connectionParameters"}
        properties["connectionParametersSet"] = credential_set(connection, client_id, tenant_id, secret)
        body["properties"] = properties
        url = self._one(connection.environment_id, connection.connector, connection.id)
        response = await self._send("PUT", url, connection.environment_id, json=body)
        _raise_for_error(response, f"updating connection {connection.label}", connection.environment_id)
        if response.status_code != 200:
            raise PermanentError(
                f"{SERVICE} answered the update of connection {connection.label} with HTTP "
                f"{response.status_code}, expected 200"
            )

    async def permissions(self, environment_id: str, connector: str, connection_id: str) -> list[Permission]:
        """Who may use the connection (owners and shares), as the service lists them."""
        url = self._one(environment_id, connector, connection_id, "/permissions")
        response = await self._send("GET", url, environment_id)
        _raise_for_error(response, f"reading who may use connection {connection_id}", environment_id)
        rows = json_object(response, SERVICE).get("value")
        found = []
        for row in rows if isinstance(rows, list) else []:
            properties = _object(_object(row).get("properties"))
            principal = _object(properties.get("principal"))
            found.append(
                Permission(
                    role=str(properties.get("roleName") or ""),
                    principal_id=str(principal.get("id") or "").lower(),
                    principal_type=str(principal.get("type") or ""),
                )
            )
        return found


def _raise_for_error(response: httpx.Response, action: str, environment_id: str) -> None:
    if response.is_success:
        return
    code, _message = odata_error(response)  # the message is dropped: it may echo what was sent
    status = response.status_code
    where = f"{SERVICE} refused {action} in environment {environment_id}: HTTP {status} {code}".rstrip()
    if status == 404 and code in ("ConnectionNotFound", ""):
        raise ConnectionNotFound(f"{where} (it does not exist: check the id in the mapping)")
    if status == 401:
        raise NotEditable(f"{where}: {REGISTER_HINT}")
    if status == 403:
        raise NotEditable(f"{where}: {SHARE_HINT}")
    raise PermanentError(where)


def _next_link(link: Any, current: str) -> str | None:
    """The next page, only on the same host and over https (a link elsewhere would get a token)."""
    if not isinstance(link, str) or not link:
        return None
    parts, here = urlsplit(link), urlsplit(current)
    if parts.scheme != "https" or parts.netloc.lower() != here.netloc.lower():
        raise TransientError(f"{SERVICE} answered with a next page on another host: not followed")
    return link


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
