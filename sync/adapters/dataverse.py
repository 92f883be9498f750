"""Dataverse Web API: read a definition with its value row, update or create the value row.

One GET returns the definition and its value row (`$expand`), so deciding costs one request.
Updates carry `If-Match` so a concurrent writer surfaces as WriteConflict (412) instead of
being silently overwritten; the engine then re-reads and re-plans.

Writes ask for the row back (`Prefer: return=representation`, `$select` of the columns verify
needs): Dataverse answers with the row as stored after the write, synchronous plug-ins included
("Update with data returned" in Microsoft's Web API documentation), so verifying a write costs
no second request. A server that answers 204 anyway leaves verify to read the row back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from pydantic import SecretStr

from sync.adapters.dataverse_bulk import PAGE_SIZE, definition_from_row, read_definitions
from sync.adapters.http import BearerTokenAuth, RetryPolicy, json_object, odata_error, send_with_retry
from sync.adapters.references import held_value
from sync.errors import PermanentError, TransientError
from sync.mapping import SCHEMA_NAME
from sync.models import Definition, ValueRow
from sync.redact import register
from sync.targets import base

API_PATH = "/api/data/v9.2"
ODATA_HEADERS = {
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "Accept": "application/json",
}
VALUES = "environmentvariabledefinition_environmentvariablevalue"
# Navigation property names are case-sensitive: any other casing is a 400.
DEFINITION_BIND = "EnvironmentVariableDefinitionId@odata.bind"
# What a write asks back: the row as stored, only the columns verify compares (the etag comes anyway).
RETURN_ROW = {"Prefer": "return=representation"}
# In the path, not as `params`: httpx merges params by re-parsing the whole URL (~0.3 ms a write).
ROW_COLUMNS = "$select=environmentvariablevalueid,value"


VALUE_ROW_NAMESPACE = uuid.UUID("6f0c2a4e-1d7b-5c3e-9a8f-4b2d6e1c7a90")


def value_row_id(definition_id: str) -> str:
    """The id Lockstep gives the value row it creates for a definition: the same on every attempt."""
    return str(uuid.uuid5(VALUE_ROW_NAMESPACE, definition_id.lower()))


class WriteConflict(PermanentError, base.WriteConflict):
    """The row changed (412) or vanished (404) between our read and our write: re-read, re-plan."""


class DataverseClient:
    """Talks to any number of Dataverse organisations with one credential and one HTTP pool."""

    def __init__(
        self, http: httpx.AsyncClient, credential: AsyncTokenCredential, policy: RetryPolicy | None = None
    ) -> None:
        self._http = http
        self._credential = credential
        self._policy = policy or RetryPolicy()
        self._auth: dict[str, BearerTokenAuth] = {}

    def _auth_for(self, org_url: str) -> BearerTokenAuth:
        if org_url not in self._auth:
            self._auth[org_url] = BearerTokenAuth(self._credential, f"{org_url}/.default")
        return self._auth[org_url]

    async def prepare(self, org_url: str) -> None:
        """Fetches the organisation's token ahead of its first request (the credential caches it)."""
        await self._auth_for(org_url).prepare()

    async def request(self, org_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One Web API call to `org_url` with the OData headers, its token and the retry policy."""
        headers = {**ODATA_HEADERS, **kwargs.pop("headers", {})}
        return await send_with_retry(
            self._http,
            method,
            f"{org_url}{API_PATH}/{path}",
            policy=self._policy,
            service=f"Dataverse {org_url}",
            headers=headers,
            auth=self._auth_for(org_url),
            **kwargs,
        )

    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None:
        """The definition named `schema_name` with its value row, or None when there is none."""
        if not SCHEMA_NAME.match(schema_name):
            raise PermanentError(f"{schema_name!r} is not a valid environment variable schema name")
        literal = schema_name.replace("'", "''")
        params = {
            "$filter": f"schemaname eq '{literal}'",
            "$select": "environmentvariabledefinitionid,schemaname,type",
            "$expand": f"{VALUES}($select=environmentvariablevalueid,value)",
        }
        response = await self.request(org_url, "GET", "environmentvariabledefinitions", params=params)
        raise_for_error(response, f"reading definition {schema_name!r}")
        rows = json_object(response, "Dataverse").get("value")
        if not isinstance(rows, list):
            raise TransientError("Dataverse answered the definitions read without a 'value' list")
        if not rows:
            return None
        if len(rows) > 1:
            raise PermanentError(f"{len(rows)} definitions are named {schema_name!r}; expected one")
        definition, value_rows = definition_from_row(rows[0])
        register(held_value(definition))  # the previous value (not a Key Vault reference)
        if value_rows > 1:
            raise PermanentError(
                f"definition {schema_name!r} has {value_rows} value rows; expected at most one"
            )
        return definition

    async def update_value(self, org_url: str, row_id: str, etag: str, value: SecretStr) -> ValueRow | None:
        """PATCH the value row, only if it is still the version we read; the row as stored after
        the write, or None when the answer did not carry it (see `stored_row`)."""
        response = await self.request(
            org_url,
            "PATCH",
            f"environmentvariablevalues({row_id})?{ROW_COLUMNS}",
            headers={"If-Match": etag, "Content-Type": "application/json", **RETURN_ROW},
            json={"value": value.get_secret_value()},
        )
        if response.status_code in (404, 412):
            raise WriteConflict(f"value row changed or vanished while updating (HTTP {response.status_code})")
        raise_for_error(response, "updating the value", value)
        return stored_row(response, row_id)

    async def create_value(
        self, org_url: str, definition_id: str, schema_name: str, value: SecretStr
    ) -> ValueRow | None:
        """Create the value row, exactly once, whatever happens to the answer; the row as stored
        after the write, or None when the answer did not carry it (see `stored_row`).

        The row's id is derived from its definition's id, and the create is an upsert that
        refuses to overwrite (`PATCH environmentvariablevalues(<id>)` with `If-None-Match: *`).
        A retry after a lost answer, or a second instance racing this one, therefore meets the
        existing row (412, WriteConflict: re-read and re-plan) instead of adding a second value
        row, which would leave Dataverse with two values for one variable.
        """
        row_id = value_row_id(definition_id)
        response = await self.request(
            org_url,
            "PATCH",
            f"environmentvariablevalues({row_id})?{ROW_COLUMNS}",
            headers={"If-None-Match": "*", "Content-Type": "application/json", **RETURN_ROW},
            json={
                "value": value.get_secret_value(),
                "schemaname": schema_name,
                DEFINITION_BIND: f"/environmentvariabledefinitions({definition_id})",
            },
        )
        if response.status_code == 412:
            raise WriteConflict(
                "the value row exists already (created concurrently, or an earlier answer was lost)"
            )
        raise_for_error(response, "creating the value", value)
        return stored_row(response, row_id)

    async def get_definitions(self, org_url: str, schema_names: Sequence[str]) -> dict[str, Definition]:
        """Many definitions with their value rows in few requests, keyed by lower-case schema name.

        The reconcile's read: chunked `In` filters, every server-side page followed (see
        sync.adapters.dataverse_bulk). A name with no definition is absent from the result.
        """
        api_base = f"{org_url}{API_PATH}"

        async def send(url: str, params: dict[str, str] | None) -> httpx.Response:
            return await send_with_retry(
                self._http,
                "GET",
                url,
                policy=self._policy,
                service=f"Dataverse {org_url}",
                headers={**ODATA_HEADERS, "Prefer": f"odata.maxpagesize={PAGE_SIZE}"},
                auth=self._auth_for(org_url),
                params=params,
            )

        found = await read_definitions(send, org_url, api_base, schema_names)
        register(*(held_value(d) for d in found.values()))  # previous values (not references)
        return found

    async def delete_value(self, org_url: str, row_id: str, etag: str) -> None:
        """DELETE a value row this run created (rollback), only if it is still the version we wrote."""
        response = await self.request(
            org_url, "DELETE", f"environmentvariablevalues({row_id})", headers={"If-Match": etag}
        )
        if response.status_code in (404, 412):
            raise WriteConflict(
                f"value row changed or vanished before the rollback (HTTP {response.status_code})"
            )
        raise_for_error(response, "removing the value row")

    async def who_am_i(self, org_url: str) -> dict[str, str]:
        """WhoAmI: proves the identity is an application user of this organisation."""
        response = await self.request(org_url, "GET", "WhoAmI")
        raise_for_error(response, "WhoAmI")
        try:
            body = response.json()
            return {key: str(body[key]) for key in ("UserId", "BusinessUnitId", "OrganizationId")}
        except (ValueError, KeyError, TypeError):
            raise TransientError(
                f"Dataverse answered WhoAmI with HTTP {response.status_code} and an unexpected body"
            ) from None


def stored_row(response: httpx.Response, row_id: str) -> ValueRow | None:
    """The value row `row_id` as a successful write's answer carries it, or None.

    None when the server answered without the row (204: the preference ignored) or with a body
    that is not that row; the caller then reads the row back. The body is the stored value (ours,
    or what a plug-in left there, possibly the previous credential): it is registered for
    redaction and nothing of it ever goes into a message.
    """
    if response.status_code == 204 or not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    found, etag, raw = body.get("environmentvariablevalueid"), body.get("@odata.etag"), body.get("value")
    if not isinstance(found, str) or found.lower() != row_id.lower() or not isinstance(etag, str):
        return None
    if "value" not in body or not (raw is None or isinstance(raw, str)):
        return None
    row = ValueRow(id=found, value=None if raw is None else SecretStr(raw), etag=etag)
    register(row.value)  # the object the row holds, for as long as it holds it
    return row


def raise_for_error(response: httpx.Response, action: str, value: SecretStr | None = None) -> None:
    if response.is_success:
        return
    code, detail = odata_error(response, value)
    hint = ""
    if response.status_code in (401, 403):
        hint = " (is the managed identity an application user with the Lockstep security role?)"
    raise PermanentError(
        f"Dataverse refused {action}: HTTP {response.status_code} {code} {detail}{hint}".replace("  ", " ")
    )
