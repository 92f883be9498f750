"""Dataverse's own resolution of a Secret-type variable: `RetrieveEnvironmentVariableSecretValue`.

The unbound action returns what Power Platform reads from Key Vault for a Secret-type variable.
Microsoft documents it as meant for flows, so outside a flow it may be refused; that refusal is
an answer of its own (the check cannot be made from here), never a failure. An answer saying
Power Platform could not read the vault is a real finding. The resolved value is turned into a
SHA-256 digest the moment it arrives and is never kept, logged or put into a message.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from sync.adapters.dataverse import DataverseClient
from sync.adapters.http import odata_error
from sync.errors import LockstepError
from sync.mapping import SCHEMA_NAME
from sync.redact import shorten

ACTION = "RetrieveEnvironmentVariableSecretValue"
# Dataverse's words when its identity cannot read the vault (RBAC or access policy, firewall).
_VAULT = re.compile(r"key ?vault|\bakv|vault", re.IGNORECASE)
_DENIED = re.compile(
    r"forbidden|access (is )?denied|not authori[sz]ed|unauthori[sz]ed|does not have|permission|"
    r"not allowed|firewall|rbac",
    re.IGNORECASE,
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
class Unchecked:
    """The check was not made (not attempted, or the service could not be reached now)."""

    reason: str


Resolution = Resolved | NotVerifiable | VaultUnreadable | Unchecked


def digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


async def resolve(dataverse: DataverseClient, org: str, schema_name: str) -> Resolution:
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
    if _VAULT.search(message) and _DENIED.search(message):
        return VaultUnreadable(said)
    return NotVerifiable(said)
