"""Parsing Key Vault events as Event Grid delivers them (Event Grid schema).

Key Vault has sent both PascalCase (`ObjectName`) and camelCase (`objectName`) data keys, and
`NBF`/`EXP` as int, numeric string or null, so keys are matched case-insensitively and times
leniently. Everything else is strict: an event we cannot trust names its offending field and
writes nothing. The event is only ever a hint that a secret *may* have changed: delivery is
at-least-once and unordered, so the engine always reads the latest version itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from azure.eventgrid import SystemEventNames

from sync.errors import InvalidEventError
from sync.mapping import SECRET_NAME


class SecretEventType(StrEnum):
    """The Key Vault secret events Lockstep acts on."""

    NEW_VERSION = SystemEventNames.KeyVaultSecretNewVersionCreatedEventName.value
    NEAR_EXPIRY = SystemEventNames.KeyVaultSecretNearExpiryEventName.value
    EXPIRED = SystemEventNames.KeyVaultSecretExpiredEventName.value


TOPIC = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/(?P<vault>[^/]+)$",
    re.IGNORECASE,
)
VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")
VAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
MAX_ENVELOPE_FIELD = 1024
# Longer than any Key Vault event type ("Microsoft.KeyVault.SecretNewVersionCreated" is 42).
MAX_EVENT_TYPE = 200
# What of an event's text reaches a log line or an exception message, before or after validation.
MAX_LOGGED = 200
EPOCH = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class SecretEvent:
    """A validated Key Vault secret event."""

    event_id: str
    event_type: SecretEventType
    vault_name: str
    secret_name: str
    version: str
    not_before: datetime | None
    expires: datetime | None


def loggable(value: Any, limit: int = MAX_LOGGED) -> str:
    """An event's field as it may appear in a log line or an exception: at most `limit` characters
    (a 1 MB eventType must not make a 1 MB line), and every control character escaped (a CR/LF in
    it must not forge a log line)."""
    text = value if isinstance(value, str) else type(value).__name__
    shown = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text[:limit]
    )
    return shown + (f"…(+{len(text) - limit} characters)" if len(text) > limit else "")


def _epoch(value: Any, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidEventError(field, "must be epoch seconds (int or numeric string) or null")
    numeric = isinstance(value, int | float) or (isinstance(value, str) and EPOCH.fullmatch(value.strip()))
    if numeric:
        seconds = float(value)
    else:
        raise InvalidEventError(field, "must be epoch seconds (int or numeric string) or null")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidEventError(field, "is out of range") from None


def _text(data: AnyMapping[str, Any], key: str) -> str:
    value = data.get(key.lower())
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidEventError(f"data.{key}", "is missing")
    if not isinstance(value, str):
        raise InvalidEventError(f"data.{key}", f"must be a string, not {type(value).__name__}")
    return value.strip()


def check_envelope(*, event_id: Any, event_type: Any, subject: Any, topic: Any) -> None:
    """The Event Grid envelope fields have the types the schema gives them, or InvalidEventError.

    Checked before anything reads them, so a hostile or broken event ends as a clear error
    (raised: Event Grid retries, then dead-letters it) and never as a crash class.
    """
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ENVELOPE_FIELD:
        raise InvalidEventError("id", "must be a non-empty string")
    # Logged everywhere downstream: a control character could forge a log line.
    for field, value in (("id", event_id), ("eventType", event_type)):
        if isinstance(value, str) and not value.isprintable():
            raise InvalidEventError(field, "contains control characters")
    if not isinstance(event_type, str) or not event_type.strip():
        raise InvalidEventError("eventType", "must be a non-empty string")
    if len(event_type) > MAX_EVENT_TYPE:
        raise InvalidEventError("eventType", f"is longer than {MAX_EVENT_TYPE} characters")
    for field, value in (("subject", subject), ("topic", topic)):
        if value is not None and not isinstance(value, str):
            raise InvalidEventError(field, f"must be a string, not {type(value).__name__}")
        if isinstance(value, str) and len(value) > MAX_ENVELOPE_FIELD:
            raise InvalidEventError(field, f"is longer than {MAX_ENVELOPE_FIELD} characters")


def is_secret_event_type(event_type: str) -> bool:
    """True for the three secret event types; other Key Vault events are acknowledged and ignored."""
    return event_type in {member.value for member in SecretEventType}


def parse_secret_event(
    *, event_id: str, event_type: str, subject: str | None, topic: str | None, data: Any
) -> SecretEvent:
    """Validates one secret event; raises InvalidEventError naming the first bad field."""
    check_envelope(event_id=event_id, event_type=event_type, subject=subject, topic=topic)
    if not is_secret_event_type(event_type):
        raise InvalidEventError("eventType", f"'{loggable(event_type)}' is not a Key Vault secret event")
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            raise InvalidEventError("data", "is not valid JSON") from None
    if not isinstance(data, AnyMapping):
        raise InvalidEventError("data", "must be a JSON object")
    # Keys vary in case across payload versions (and a documented sample has "objectName " with a space).
    lowered = {str(key).strip().lower(): value for key, value in data.items()}

    object_type = _text(lowered, "ObjectType")
    if object_type.lower() != "secret":
        raise InvalidEventError("data.ObjectType", f"expected 'Secret', got '{loggable(object_type)}'")
    secret_name = _text(lowered, "ObjectName")
    if not SECRET_NAME.match(secret_name):
        raise InvalidEventError("data.ObjectName", "is not a Key Vault secret name")
    if subject is not None and subject.strip() and subject.strip() != secret_name:
        raise InvalidEventError("subject", "does not match data.ObjectName")
    vault_name = _text(lowered, "VaultName")
    if not VAULT_NAME.match(vault_name):
        raise InvalidEventError("data.VaultName", "is not a Key Vault name (3-24 letters, digits, '-')")
    version = _text(lowered, "Version")
    if not VERSION.match(version):
        raise InvalidEventError("data.Version", "is not a Key Vault secret version")

    if topic:
        match = TOPIC.match(topic.strip())
        if not match:
            raise InvalidEventError(
                "topic", "is not a Key Vault resource id (/subscriptions/…/vaults/<name>)"
            )
        if match["vault"].lower() != vault_name.lower():
            raise InvalidEventError("topic", "names a different vault than data.VaultName")

    secret_id = lowered.get("id")
    if secret_id is not None:
        if not isinstance(secret_id, str):
            raise InvalidEventError("data.Id", "must be a string")
        parts = urlsplit(secret_id)
        segments = [segment for segment in parts.path.split("/") if segment]
        host_vault = (parts.hostname or "").split(".")[0]
        if len(segments) < 2 or segments[0] != "secrets" or segments[1] != secret_name:
            raise InvalidEventError("data.Id", "does not point at the secret named in data.ObjectName")
        if host_vault.lower() != vault_name.lower():
            raise InvalidEventError("data.Id", "points at a different vault than data.VaultName")

    return SecretEvent(
        event_id=event_id,
        event_type=SecretEventType(event_type),
        vault_name=vault_name.lower(),
        secret_name=secret_name,
        version=version,
        not_before=_epoch(lowered.get("nbf"), "data.NBF"),
        expires=_epoch(lowered.get("exp"), "data.EXP"),
    )
