"""The connection model behind the connectivity API: app registrations, connections, shares, statuses.

Pure data and decisions (no HTTP): which parameter sets a connector takes and which keys each
needs, whether a connection's client secret is one Entra would accept right now, who may edit
or use a connection, and the JSON the real service answers with (never a secret value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SERVICE_PRINCIPAL_SETS = {"ServicePrincipalOauth", "oauthSP"}
USER_SIGN_IN_SETS = {"Oauth"}
# Keys each parameter set must carry on a PUT (the service cannot keep what GET never returned).
REQUIRED_KEYS = {
    "ServicePrincipalOauth": ("token:clientId", "token:clientSecret", "token:TenantId"),
    "oauthSP": ("token:clientId", "token:clientSecret", "token:TenantId"),
    "Oauth": (),
}
SECRET_KEYS = {"token:clientSecret"}
# Values the service keeps but does not return on GET (secret or not).
HIDDEN_KEYS = SECRET_KEYS | {"token:grantType"}
ROLES = ("CanView", "CanViewWithShare", "CanEdit", "Owner")
# A permission's principal standing for Lockstep's managed identity, whatever client id it asks
# tokens for (see State.aliases): shares and registrations made before any token was issued hold.
MANAGED_IDENTITY = "<managed identity>"
EDIT_ROLES = {"CanEdit", "Owner"}
INVALID_SECRET = (
    "Failed to refresh access token for service: aadcertificate. Correlation Id=00000000-0000-0000-0000-"
    "000000000000, UTC TimeStamp={when}, Error: AADSTS7000215: Invalid client secret provided. Ensure the "
    "secret being sent in the request is the client secret value, not the client secret ID, for a secret "
    "added to app '{client_id}'."
)
UNKNOWN_APP = (
    "Failed to refresh access token for service: aadcertificate. Error: AADSTS700016: Application with "
    "identifier '{client_id}' was not found in the directory '{tenant_id}'."
)


def timestamp(moment: datetime) -> str:
    """The service's format: seven fractional digits and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(slots=True)
class AppRegistrationState:
    client_id: str
    tenant_id: str
    display_name: str
    valid_secrets: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Permission:
    id: str
    principal_id: str
    principal_type: str  # "User" | "ServicePrincipal" | "Group"
    display_name: str
    role: str
    tenant_id: str


@dataclass(slots=True)
class Connection:
    id: str
    connector: str
    display_name: str
    parameter_set: str
    values: dict[str, str]  # every parameter value, secrets included: the service's own memory
    owner: Permission
    shares: list[Permission]
    created: datetime
    modified: datetime
    forced_status: str | None = None  # a test's scripted status, until the next PUT
    history: list[str] = field(default_factory=list)  # "put" per accepted update

    def permissions(self) -> list[Permission]:
        return [self.owner, *self.shares]

    def role_of(self, aliases: frozenset[str]) -> str | None:
        """The strongest role a caller known by ``aliases`` (lower case) holds here, or None."""
        held = [p.role for p in self.permissions() if p.principal_id.lower() in aliases]
        return max(held, key=ROLES.index) if held else None


def secret_problem(connection_values: dict[str, str], apps: dict[str, AppRegistrationState]) -> str | None:
    """Why Entra would refuse these service-principal credentials now (an AADSTS message), or None."""
    client_id = connection_values.get("token:clientId", "")
    tenant_id = connection_values.get("token:TenantId", "")
    app = apps.get(client_id.lower())
    if app is None or app.tenant_id.lower() != tenant_id.lower():
        return UNKNOWN_APP.format(client_id=client_id, tenant_id=tenant_id)
    if connection_values.get("token:clientSecret") not in app.valid_secrets:
        return INVALID_SECRET.format(client_id=client_id, when=timestamp(datetime.now(UTC)))
    return None


def statuses(connection: Connection, apps: dict[str, AppRegistrationState]) -> list[dict[str, Any]]:
    """Connected, or an Error on the token, as the service reports a connection's health."""
    problem: str | None
    if connection.forced_status == "Connected":
        problem = None
    elif connection.forced_status == "Error":
        problem = INVALID_SECRET.format(
            client_id=connection.values.get("token:clientId", ""), when=timestamp(connection.modified)
        )
    elif connection.parameter_set in SERVICE_PRINCIPAL_SETS:
        problem = secret_problem(connection.values, apps)
    else:
        problem = None
    if problem is None:
        return [{"status": "Connected"}]
    return [{"status": "Error", "target": "token", "error": {"code": "Unauthenticated", "message": problem}}]


def principal_json(permission: Permission, identity: str) -> dict[str, Any]:
    """``identity``: the client id shown for Lockstep's managed identity."""
    return {
        "id": identity if permission.principal_id == MANAGED_IDENTITY else permission.principal_id,
        "displayName": permission.display_name,
        "type": permission.principal_type,
        "tenantId": permission.tenant_id,
    }


def permission_json(connection: Connection, permission: Permission, identity: str) -> dict[str, Any]:
    return {
        "name": permission.id,
        "id": f"{connection_path(connection)}/permissions/{permission.id}",
        "type": "Microsoft.PowerApps/apis/connections/permissions",
        "properties": {
            "roleName": permission.role,
            "principal": principal_json(permission, identity),
            "notifyShareTargetOption": "NotSpecified",
            "inviteGuestToTenant": False,
        },
    }


def connection_path(connection: Connection) -> str:
    return f"/providers/Microsoft.PowerApps/apis/{connection.connector}/connections/{connection.id}"


def connection_json(
    connection: Connection,
    environment_id: str,
    apps: dict[str, AppRegistrationState],
    *,
    identity: str,
    with_permissions: bool = False,
) -> dict[str, Any]:
    """The connection as GET answers it: no secret, no hidden value."""
    values = {key: {"value": value} for key, value in connection.values.items() if key not in HIDDEN_KEYS}
    properties: dict[str, Any] = {
        "apiId": f"/providers/Microsoft.PowerApps/apis/{connection.connector}",
        "displayName": connection.display_name,
        "iconUri": f"https://connectoricons.lockstep.test/{connection.connector}/icon.png",
        "statuses": statuses(connection, apps),
        "connectionParametersSet": {"name": connection.parameter_set, "values": values},
        "keywordsRemaining": 78,
        "createdBy": principal_json(connection.owner, identity),
        "createdTime": timestamp(connection.created),
        "lastModifiedTime": timestamp(connection.modified),
        "environment": {
            "id": f"/providers/Microsoft.PowerApps/environments/{environment_id}",
            "name": environment_id,
        },
        "allowSharing": False,
    }
    if with_permissions:  # the listing carries each connection's permissions, a single GET does not
        properties["permissions"] = [
            permission_json(connection, p, identity) for p in connection.permissions()
        ]
    return {
        "name": connection.id,
        "id": connection_path(connection),
        "type": "Microsoft.PowerApps/apis/connections",
        "properties": properties,
    }


def parameter_set_problem(current: str, body: Any) -> str | None:
    """What is wrong with a PUT's ``properties.connectionParametersSet``, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return "The property 'properties.connectionParametersSet' must be an object with a 'name'."
    name, values = body["name"], body.get("values")
    if not isinstance(values, dict) or not all(
        isinstance(v, dict) and set(v) == {"value"} and isinstance(v["value"], str) for v in values.values()
    ):
        return "The property 'connectionParametersSet.values' must map each key to {'value': <string>}."
    if name != current:
        if current in USER_SIGN_IN_SETS:
            return (
                f"The connection uses the parameter set '{current}' (user sign-in); it cannot be changed to "
                f"'{name}'. Create a new connection for another authentication type."
            )
        return f"The connection's parameter set '{current}' cannot be changed to '{name}'."
    missing = [key for key in REQUIRED_KEYS.get(name, ()) if not values.get(key, {}).get("value")]
    if missing:
        return f"The connection parameter(s) {', '.join(repr(k) for k in missing)} are required for '{name}'."
    grant = values.get("token:grantType", {}).get("value")
    if grant is not None and name in SERVICE_PRINCIPAL_SETS and grant != "client_credentials":
        return "The connection parameter 'token:grantType' must be 'client_credentials'."
    return None
