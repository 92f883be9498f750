"""A handle on one emulated Key Vault: set, disable and delete secrets; Key Vault's events."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from . import _keyvault
from ._state import FAKE_SUBSCRIPTION_ID, State, VaultState

EVENT_RESOURCE_GROUP = "lockstep-demo"


def _epoch(moment: datetime | None) -> int | None:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


class KeyVault:
    """A handle on one emulated vault (``https://<name>.vault.lockstep.test/``)."""

    def __init__(self, state: State, name: str) -> None:
        self._state = state
        self.name = name
        self.url = f"https://{_keyvault.vault_host(name)}/"

    def __repr__(self) -> str:
        return f"KeyVault({self.name!r})"

    def _vault(self) -> VaultState:
        return self._state.vaults[self.name]

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        enabled: bool = True,
        expires: datetime | None = None,
        not_before: datetime | None = None,
        content_type: str | None = None,
    ) -> str:
        """Add a new version (32 lower-case hex digits) and make it current."""
        if not _keyvault.SECRET_NAME.match(name):
            raise ValueError(f"invalid Key Vault secret name: {name!r}")
        with self._state.lock:
            _, version = _keyvault.add_version(
                self._vault(),
                name,
                value,
                enabled=enabled,
                not_before=_epoch(not_before),
                expires=_epoch(expires),
                content_type=content_type,
            )
            return version.version

    def disable_secret(self, name: str) -> None:
        """Disable the current version."""
        with self._state.lock:
            record = self._vault().find(name)
            if record is None or record.current is None:
                raise KeyError(f"no secret {name!r} in vault {self.name!r}")
            current = record.versions[record.current]
            current.enabled = False
            current.updated = int(time.time())

    def delete_secret(self, name: str) -> None:
        """Delete the secret and all its versions (reads then answer 404 SecretNotFound)."""
        with self._state.lock:
            if self._vault().secrets.pop(name.lower(), None) is None:
                raise KeyError(f"no secret {name!r} in vault {self.name!r}")

    def current_version(self, name: str) -> str | None:
        with self._state.lock:
            record = self._vault().find(name)
            return None if record is None else record.current

    def secret_event(
        self,
        name: str,
        version: str | None = None,
        event_type: str = "Microsoft.KeyVault.SecretNewVersionCreated",
    ) -> dict[str, Any]:
        """An Event Grid schema event for that secret version, as Key Vault publishes it."""
        with self._state.lock:
            record = self._vault().find(name)
            if record is None or record.current is None:
                raise KeyError(f"no secret {name!r} in vault {self.name!r}")
            wanted = record.current if version is None else version.lower()
            found = record.versions.get(wanted)
            if found is None:
                raise KeyError(f"no version {version!r} of secret {name!r}")
            secret_name = record.name
        return {
            "id": str(uuid.uuid4()),
            "topic": (
                f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{EVENT_RESOURCE_GROUP}"
                f"/providers/Microsoft.KeyVault/vaults/{self.name}"
            ),
            "subject": secret_name,
            "eventType": event_type,
            "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "dataVersion": "1",
            "metadataVersion": "1",
            "data": {
                "Id": _keyvault.secret_id(self.name, secret_name, found.version),
                "VaultName": self.name,
                "ObjectType": "Secret",
                "ObjectName": secret_name,
                "Version": found.version,
                "NBF": found.not_before,
                "EXP": found.expires,
            },
        }
