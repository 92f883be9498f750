"""Key Vault: read the current version of a secret with the function's identity.

Always the *current* version, never the one an event names: events arrive at least once and in
any order, so the event is only a hint. The Azure SDK does the challenge-based auth and retries.
Rolling a connection back needs the version before the current one (`get_previous`): a
connection holds no readable copy of its old secret, so the vault's history is the only source.

A cold process pays three round trips before its first value: the SDK sends the read without a
token to elicit Key Vault's 401 challenge, then asks the credential for a token for the scope the
challenge names, then reads. `prepare` overlaps the second with the first (see OneFetchPerScope).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
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
from sync.telemetry import get_logger

log = get_logger(__name__)


class TokenSource(Protocol):
    """What azure-identity's async credentials offer (the SDK prefers get_token_info)."""

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken: ...

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo: ...


class OneFetchPerScope:
    """The credential, with at most one token request per scope in flight.

    `KeyVaultReader.prepare` asks for the vault's token while the SDK's challenge is in flight.
    Both answers arrive about together, so without this the SDK's own call would miss the
    credential's cache and fetch the same token again. Each caller still gets its token from the
    credential with its own options (the SDK adds the challenge's tenant and `enable_cae`): this
    only orders the calls, so the credential's cache decides what is reused and nothing is ever
    substituted. The runtime owns (and closes) the credential; closing this does nothing.
    """

    def __init__(self, credential: TokenSource) -> None:
        self._credential = credential
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    def _lock(self, scopes: tuple[str, ...]) -> asyncio.Lock:
        return self._locks.setdefault(scopes, asyncio.Lock())

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        async with self._lock(scopes):
            return await self._credential.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        async with self._lock(scopes):
            return await self._credential.get_token_info(*scopes, options=options)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> OneFetchPerScope:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        return None


def vault_scope(vault_url: str) -> str | None:
    """The scope Key Vault's challenge will name, when the vault's host tells it: the host without
    the vault's own label (`https://vault.azure.net/.default` for `x.vault.azure.net`, likewise
    in the sovereign clouds). The SDK accepts only a challenge resource whose domain the vault's
    host ends with. None for other hosts (a private-link name): their resource is not derivable."""
    host = (urlsplit(vault_url).hostname or "").lower()
    labels = host.split(".")
    if len(labels) < 3 or labels[1] != "vault":
        return None
    return f"https://{'.'.join(labels[1:])}/.default"


class KeyVaultReader:
    def __init__(self, client: SecretClient, tokens: OneFetchPerScope | None = None) -> None:
        """`tokens` is the credential `client` was built with, wrapped; without it `prepare` does nothing."""
        self._client = client
        self._tokens = tokens
        self._scope = vault_scope(client.vault_url) if tokens is not None else None

    @property
    def prefetches(self) -> bool:
        """Whether `prepare` fetches anything (a credential that caches, a vault host that says its scope)."""
        return self._scope is not None

    async def prepare(self) -> None:
        """Fetches the vault's token into the credential's cache, with the options the SDK's
        challenge policy will use (`enable_cae`), so a cold read's token fetch overlaps the
        challenge instead of following it. Never raises: the read itself reports what fails."""
        if self._tokens is None or self._scope is None:
            return
        try:
            await self._tokens.get_token_info(self._scope, options={"enable_cae": True})
        except Exception as error:  # the read asks again and reports it
            log.debug("Key Vault token prefetch failed: %s", type(error).__name__)

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
