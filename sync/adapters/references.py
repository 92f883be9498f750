"""Dataverse's own resolution of a Secret-type variable: `RetrieveEnvironmentVariableSecretValue`.

The unbound action returns what Power Platform reads from Key Vault for a Secret-type variable.
Microsoft documents it as meant for flows, so outside a flow it may be refused; that refusal is
an answer of its own (the check cannot be made from here), never a failure. An answer saying
Power Platform could not read the vault is a real finding. The resolved value is turned into a
SHA-256 digest the moment it arrives and is never kept, logged or put into a message.

Dataverse's answers are sorted by their words, since no error code is documented for them. The
one Microsoft documents for a vault Power Platform may not read is "User is not authorized to
read secrets from '/subscriptions/…/providers/Microsoft.KeyVault/vaults/<vault>/secrets/<name>'
resource" (Power Platform troubleshooting: environment-variable-key-vault-auth-error), with
"Caller is not authorized to perform action 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"
beneath it. A vault or secret Power Platform cannot find, or a disabled version, is a finding
too (`Unresolved`): the reference is wrong for Power Platform even though it names our vault.
Anything else (a privilege refusal of the action itself) is `NotVerifiable`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import SecretStr

from sync.adapters.http import odata_error
from sync.errors import LockstepError
from sync.mapping import SCHEMA_NAME
from sync.models import Definition, DefinitionType
from sync.redact import shorten

ACTION = "RetrieveEnvironmentVariableSecretValue"
# A Secret-type value row's value: a Key Vault secret's resource id, without a version.
REFERENCE = re.compile(
    r"^/subscriptions/(?P<subscription>[0-9A-Za-z-]{1,64})/resourceGroups/(?P<group>[-\w.()]{1,90})"
    r"/providers/Microsoft\.KeyVault/vaults/(?P<vault>[0-9A-Za-z-]{3,24})/secrets/(?P<secret>[0-9A-Za-z-]{1,127})/?$",
    re.IGNORECASE,
)
# Dataverse's words when its identity cannot read the vault (RBAC or access policy, firewall).
# Not the bare word "secret": a refusal of the action names "RetrieveEnvironmentVariableSecretValue"
# or "secret values" without being about the vault.
_VAULT = re.compile(r"key ?vault|\bakv\b|\bvaults?\b|read secrets?\b", re.IGNORECASE)
_DENIED = re.compile(
    r"forbidden|\bdenied\b|not authori[sz]ed|unauthori[sz]ed|does not have|permission|"
    r"not allowed|firewall|rbac",
    re.IGNORECASE,
)
_MISSING = re.compile(
    r"not (be )?found|does not exist|doesn't exist|\bdisabled\b|\bexpired\b|not enabled", re.IGNORECASE
)


@dataclass(frozen=True)
class Resolved:
    """Power Platform resolved the reference; only the value's SHA-256 digest is kept."""

    digest: bytes = field(repr=False)


@dataclass(frozen=True)
class NotVerifiable:
    """The action was refused (it is meant for flows): resolution cannot be checked from here."""

    reason: str


@dataclass(frozen=True)
class VaultUnreadable:
    """Power Platform answered that it cannot read the secret from the vault."""

    reason: str


@dataclass(frozen=True)
class Unresolved:
    """Power Platform answered that the vault or secret is missing, or its version disabled."""

    reason: str


@dataclass(frozen=True)
class Unchecked:
    """The check was not made (not attempted, or the service could not be reached now)."""

    reason: str


Resolution = Resolved | NotVerifiable | VaultUnreadable | Unresolved | Unchecked


@runtime_checkable
class ActionCaller(Protocol):
    """The one Dataverse call this needs (sync.adapters.dataverse.DataverseClient.request)."""

    async def request(self, org_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response: ...


def held_value(definition: Definition) -> SecretStr | None:
    """The value row's value the redaction registry must cover (sync.redact.register).

    A Secret-type row holding a Key Vault reference holds a resource id, not a secret: covering
    it would mask the vault and secret names in the very reason that says where it points.
    Anything else in a Secret-type row (a value typed where a reference belongs) stays covered.
    """
    row = definition.value_row
    if row is None or row.value is None:
        return None
    if definition.type == DefinitionType.SECRET and REFERENCE.match(row.value.get_secret_value().strip()):
        return None
    return row.value


def digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


async def resolve(dataverse: ActionCaller, org: str, schema_name: str) -> Resolution:
    """Asks Power Platform to resolve the Secret-type variable; never raises for its answer."""
    if not SCHEMA_NAME.match(schema_name):
        return Unchecked(f"{schema_name!r} is not a valid environment variable schema name")
    try:
        response = await dataverse.request(
            org,
            "POST",
            ACTION,
            json={"EnvironmentVariableName": schema_name},
            headers={"Content-Type": "application/json"},
        )
    except LockstepError as error:
        return Unchecked(str(error))
    if response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None
        value = body.get("EnvironmentVariableSecretValue") if isinstance(body, dict) else None
        if isinstance(value, str):
            return Resolved(digest(value))
        return Unchecked(f"Dataverse answered {ACTION} with HTTP {response.status_code} and no value")
    code, message = odata_error(response)
    said = shorten(f"HTTP {response.status_code} {code} {message}".replace("  ", " ").strip(), 200)
    return classify(said, message)


def classify(said: str, message: str) -> Resolution:
    """Sorts a refusal by its words (see the module docstring): `said` is what the reason shows."""
    if _VAULT.search(message) and _DENIED.search(message):
        return VaultUnreadable(said)
    if _VAULT.search(message) and _MISSING.search(message):
        return Unresolved(said)
    return NotVerifiable(said)
