"""Key Vault: read the current version of a secret with the function's identity.

Always the *current* version, never the one an event names: events arrive at least once and in
any order, so the event is only a hint. The Azure SDK does the challenge-based auth and retries.
Rolling a connection back needs the version before the current one (`get_previous`): a
connection holds no readable copy of its old secret, so the vault's history is the only source.
"""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import KeyVaultSecret
from azure.keyvault.secrets.aio import SecretClient
from pydantic import SecretStr

from sync.errors import PermanentError, TransientError
from sync.models import SecretSnapshot
from sync.redact import register


class KeyVaultReader:
    def __init__(self, client: SecretClient) -> None:
        self._client = client

    async def get_current(self, name: str) -> SecretSnapshot:
        """The current version, or PermanentError/TransientError with a message safe to show."""
        try:
            secret = await self._client.get_secret(name)
        except AzureError as error:
            raise _mapped(error, name) from None
        return _snapshot(name, secret)

    async def get_previous(self, name: str, before_version: str) -> SecretSnapshot | None:
        """The newest enabled version created before `before_version`, or None when there is none.

        What a connection is restored to when its stage fails. Versions are listed without values
        (needs the secrets' readMetadata, which Key Vault Secrets User includes); only the chosen
        one is read. Its value is the old credential: it stays in the returned SecretStr.
        """
        try:
            versions = [item async for item in self._client.list_properties_of_secret_versions(name)]
            current = next((v for v in versions if v.version == before_version), None)
            if current is None or current.created_on is None:
                raise PermanentError(f"secret {name!r}: version {before_version} is not in the vault")
            earlier = [
                (v.created_on, v.version)
                for v in versions
                if v.enabled and v.version and v.created_on is not None and v.created_on < current.created_on
            ]
            if not earlier:
                return None
            secret = await self._client.get_secret(name, max(earlier)[1])
        except AzureError as error:
            raise _mapped(error, name) from None
        return _snapshot(name, secret)


def _mapped(error: AzureError, name: str) -> Exception:
    """The SDK's error as a PermanentError / TransientError safe to show; anything else unchanged."""
    if isinstance(error, ResourceNotFoundError):
        return PermanentError(f"secret {name!r} does not exist in the vault (deleted?)")
    if isinstance(error, ClientAuthenticationError):
        return TransientError(f"could not authenticate to Key Vault: {error.message}")
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return TransientError(f"Key Vault unreachable: {type(error).__name__}")
    if isinstance(error, HttpResponseError):
        code = error.error.code if error.error else ""
        inner = error.error.innererror if error.error else {}
        if error.status_code == 403 and (inner or {}).get("code") == "SecretDisabled":
            return PermanentError(f"secret {name!r}: its current version is disabled")
        if error.status_code == 403:
            return PermanentError(
                f"Key Vault refused to read {name!r} (HTTP 403 {code}): grant the identity "
                "'Key Vault Secrets User' on the vault"
            )
        if error.status_code in (408, 429) or (error.status_code or 0) >= 500:
            return TransientError(f"Key Vault answered HTTP {error.status_code} {code} after retries")
        return PermanentError(f"Key Vault answered HTTP {error.status_code} {code} for {name!r}")
    return error


def _snapshot(name: str, secret: KeyVaultSecret) -> SecretSnapshot:
    if secret.value is None or secret.properties.version is None:
        raise PermanentError(f"secret {name!r} has no value")
    value = SecretStr(secret.value)
    register(value)  # covered by every scrub while the run holds it (the previous version too)
    return SecretSnapshot(
        name=name,
        version=secret.properties.version,
        value=value,
        enabled=bool(secret.properties.enabled),
        expires=secret.properties.expires_on,
        updated=secret.properties.updated_on,
        created=secret.properties.created_on,
    )
