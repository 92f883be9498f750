"""A connection as the connectivity API describes it, and the credential set Lockstep sends back.

Pure: parsing is defensive (a row of an unexpected shape is skipped, never a crash), and
`credential_set` decides the complete service-principal parameter set without I/O, so the rules
(keep the set's name, keep every value the service showed, never switch a user sign-in to a
service principal) are tested on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from sync.errors import PermanentError

# Parameter sets that authenticate as an app registration: Dataverse, SQL Server and others.
SERVICE_PRINCIPAL_SETS = frozenset({"serviceprincipaloauth", "oauthsp", "serviceprincipal"})


@dataclass(frozen=True)
class Connection:
    """One connection as read; `raw` is the object as the service gave it (never a secret: GET
    returns no secret values), kept to be PUT back."""

    environment_id: str
    connector: str
    id: str
    display_name: str
    status: str  # Connected, Error, … ("" when the service gave none)
    error_code: str
    parameter_set: str | None
    values: Mapping[str, str]
    last_modified: datetime | None
    created_by: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def service_principal(self) -> bool:
        """Uses an app registration's client secret (never a user's sign-in)."""
        return self.parameter_set is not None and self.parameter_set.lower() in SERVICE_PRINCIPAL_SETS

    @property
    def client_id(self) -> str | None:
        """The app registration the connection signs in as, when the service shows it."""
        key = _key(self.values, "clientId")
        return self.values[key].lower() if key else None

    @property
    def label(self) -> str:
        return f"{self.display_name!r} ({self.id})" if self.display_name else self.id


@dataclass(frozen=True)
class Permission:
    """Who may use a connection: Owner, CanEdit, CanViewWithShare or CanView."""

    role: str
    principal_id: str
    principal_type: str


def _key(values: Mapping[str, Any], name: str) -> str | None:
    """The key of a parameter whatever its prefix and case: token:clientId, token:TenantId, …"""
    wanted = name.lower()
    return next((key for key in values if key.rsplit(":", 1)[-1].lower() == wanted), None)


def credential_set(
    connection: Connection, client_id: str, tenant_id: str, secret: SecretStr
) -> dict[str, Any]:
    """The complete service-principal parameter set to PUT: the set's own name, every value the
    GET returned, the ids the mapping knows, the client-credentials grant and the new secret."""
    if not connection.service_principal or connection.parameter_set is None:
        raise PermanentError(f"connection {connection.label} does not use a service principal: not changed")
    current = _object(_object(connection.raw.get("properties")).get("connectionParametersSet")).get("values")
    values: dict[str, Any] = {
        key: value
        for key, value in _object(current).items()
        if key.rsplit(":", 1)[-1].lower() != "clientsecret"
    }
    client_key = _key(values, "clientId")
    prefix = client_key.rsplit(":", 1)[0] + ":" if client_key and ":" in client_key else "token:"
    known = {
        "clientId": client_id,
        "TenantId": tenant_id,
        "grantType": "client_credentials",
        "clientSecret": secret.get_secret_value(),
    }
    for name, value in known.items():
        values[_key(values, name) or f"{prefix}{name}"] = {"value": value}
    return {"name": connection.parameter_set, "values": values}


def connection_from(row: Any, environment_id: str) -> Connection | None:
    """A connection from the service's JSON, or None when the row is not one."""
    row = _object(row)
    properties = _object(row.get("properties"))
    name = row.get("name")
    api_id = properties.get("apiId")
    if not isinstance(name, str) or not isinstance(api_id, str):
        return None
    statuses = [_object(item) for item in properties.get("statuses") or [] if isinstance(item, dict)]
    first = next((s for s in statuses if s.get("status") == "Error"), statuses[0] if statuses else {})
    parameter_set = _object(properties.get("connectionParametersSet"))
    values = {
        key: item["value"]
        for key, item in _object(parameter_set.get("values")).items()
        if isinstance(item, dict) and isinstance(item.get("value"), str)
    }
    return Connection(
        environment_id=environment_id,
        connector=api_id.rstrip("/").rsplit("/", 1)[-1],
        id=name,
        display_name=str(properties.get("displayName") or ""),
        status=str(first.get("status") or ""),
        error_code=str(_object(first.get("error")).get("code") or ""),
        parameter_set=parameter_set.get("name") if isinstance(parameter_set.get("name"), str) else None,
        values=values,
        last_modified=_timestamp(properties.get("lastModifiedTime")),
        created_by=str(_object(properties.get("createdBy")).get("id") or "").lower(),
        raw=row,
    )


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
