"""Key Vault: read the current version of a secret with the function's identity.

Always the *current* version, never the one an event names: events arrive at least once and in
any order, so the event is only a hint. The Azure SDK does the challenge-based auth and retries.
"""

from __future__ import annotations

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
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
        except ResourceNotFoundError:
            raise PermanentError(f"secret {name!r} does not exist in the vault (deleted?)") from None
        except ClientAuthenticationError as error:
            raise TransientError(f"could not authenticate to Key Vault: {error.message}") from None
        except (ServiceRequestError, ServiceResponseError) as error:
            raise TransientError(f"Key Vault unreachable: {type(error).__name__}") from None
        except HttpResponseError as error:
            code = error.error.code if error.error else ""
            inner = error.error.innererror if error.error else {}
            if error.status_code == 403 and (inner or {}).get("code") == "SecretDisabled":
                raise PermanentError(f"secret {name!r}: its current version is disabled") from None
            if error.status_code == 403:
                raise PermanentError(
                    f"Key Vault refused to read {name!r} (HTTP 403 {code}): grant the identity "
                    "'Key Vault Secrets User' on the vault"
                ) from None
            if error.status_code in (408, 429) or (error.status_code or 0) >= 500:
                raise TransientError(
                    f"Key Vault answered HTTP {error.status_code} {code} after retries"
                ) from None
            raise PermanentError(f"Key Vault answered HTTP {error.status_code} {code} for {name!r}") from None
        if secret.value is None or secret.properties.version is None:
            raise PermanentError(f"secret {name!r} has no value")
        value = SecretStr(secret.value)
        register(value)  # covered by every scrub while the run holds it
        return SecretSnapshot(
            name=name,
            version=secret.properties.version,
            value=value,
            enabled=bool(secret.properties.enabled),
            expires=secret.properties.expires_on,
            updated=secret.properties.updated_on,
        )
