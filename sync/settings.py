"""The configuration contract (the app settings the README lists), read and validated in one pass.

Settings are loaded on first use, never at import: the Functions host indexes `function_app.py`
at start-up, and an import that fails leaves an app with no functions at all. A bad setting
instead fails each invocation with every problem listed, which Event Grid then redelivers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping as EnvMapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from sync.errors import ConfigurationError
from sync.mapping import GUID, Mapping, parse_mapping

DEFAULT_ADMIN_URL = "https://api.bap.microsoft.com"
DEFAULT_POWER_PLATFORM_API_URL = "https://api.powerplatform.com"
VAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
CLIENT_ID = re.compile(rf"^{GUID}$")


@dataclass(frozen=True)
class Settings:
    """Validated settings. The webhook URL is a credential (its sig), hence SecretStr."""

    key_vault_uri: str
    vault_name: str
    mapping: Mapping
    teams_webhook_url: SecretStr | None
    admin_url: str
    azure_client_id: str | None
    # Turn flows on as their owner (CallerObjectId); the app user needs the Delegate privilege.
    flow_activation_as_owner: bool = False
    # Why notifications are off although TEAMS_WEBHOOK_URL is set (never the value itself).
    teams_webhook_problem: str | None = None
    # Power Platform API (connections); environments get their own hosts under it.
    power_platform_api_url: str = DEFAULT_POWER_PLATFORM_API_URL


def _https_base(value: str, name: str, problems: list[str]) -> str | None:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        problems.append(f"{name}: must be an https:// URL")
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append(f"{name}: must be a base URL with no path, query or fragment")
        return None
    return f"https://{parts.netloc.lower()}"


def _load_mapping(environ: EnvMapping[str, str], problems: list[str]) -> Mapping | None:
    inline = environ.get("LOCKSTEP_MAPPING", "").strip()
    path = environ.get("LOCKSTEP_MAPPING_FILE", "").strip()
    if bool(inline) == bool(path):
        problems.append(
            "LOCKSTEP_MAPPING / LOCKSTEP_MAPPING_FILE: set exactly one of them "
            f"({'both are' if inline else 'neither is'} set)"
        )
        return None
    source = "LOCKSTEP_MAPPING" if inline else "LOCKSTEP_MAPPING_FILE"
    if not inline:
        try:
            inline = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            problems.append(f"LOCKSTEP_MAPPING_FILE: cannot read {path!r}: {error.strerror}")
            return None
    try:
        document = json.loads(inline)
    except json.JSONDecodeError as error:
        problems.append(f"{source}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")
        return None
    try:
        return parse_mapping(document, source)
    except ConfigurationError as error:
        problems.extend(error.problems)
        return None


def load_settings(environ: EnvMapping[str, str]) -> Settings:
    """Reads and validates every setting; raises ConfigurationError listing all problems."""
    problems: list[str] = []

    vault_uri = environ.get("KEY_VAULT_URI", "").strip()
    vault_base = vault_name = None
    if not vault_uri:
        problems.append("KEY_VAULT_URI: required (https://<vault>.vault.azure.net/)")
    else:
        vault_base = _https_base(vault_uri, "KEY_VAULT_URI", problems)
        if vault_base:
            vault_name = (urlsplit(vault_base).hostname or "").split(".")[0]
            if not VAULT_NAME.match(vault_name):
                problems.append(
                    f"KEY_VAULT_URI: {vault_name!r} is not a Key Vault name (3-24 letters, digits, '-')"
                )

    mapping = _load_mapping(environ, problems)

    webhook, webhook_problem = _teams_webhook(environ.get("TEAMS_WEBHOOK_URL", "").strip())
    as_owner = _flag(environ, "FLOW_ACTIVATION_AS_OWNER", problems)

    admin_url = _https_base(
        environ.get("POWER_PLATFORM_ADMIN_URL", "").strip() or DEFAULT_ADMIN_URL,
        "POWER_PLATFORM_ADMIN_URL",
        problems,
    )

    api_url = _https_base(
        environ.get("POWER_PLATFORM_API_URL", "").strip() or DEFAULT_POWER_PLATFORM_API_URL,
        "POWER_PLATFORM_API_URL",
        problems,
    )

    client_id = environ.get("AZURE_CLIENT_ID", "").strip() or None
    if client_id and not CLIENT_ID.match(client_id):
        problems.append("AZURE_CLIENT_ID: must be the managed identity's client id (a GUID)")

    schedule = environ.get("RECONCILE_SCHEDULE", "").strip()
    if schedule and len(schedule.split()) != 6:
        problems.append(
            "RECONCILE_SCHEDULE: must be a six-field NCRONTAB expression "
            "({second} {minute} {hour} {day} {month} {day-of-week}, e.g. '0 0 2 * * *')"
        )

    if (
        problems
        or vault_base is None
        or vault_name is None
        or mapping is None
        or admin_url is None
        or api_url is None
    ):
        raise ConfigurationError(problems)
    return Settings(
        key_vault_uri=vault_base + "/",
        vault_name=vault_name.lower(),
        mapping=mapping,
        teams_webhook_url=SecretStr(webhook) if webhook else None,
        admin_url=admin_url,
        azure_client_id=client_id,
        flow_activation_as_owner=as_owner,
        teams_webhook_problem=webhook_problem,
        power_platform_api_url=api_url,
    )


def _teams_webhook(webhook: str) -> tuple[str | None, str | None]:
    """(usable URL, None) or (None, why not). Notifications are optional: a bad webhook setting
    turns them off and is reported on every run and by `doctor`; it never stops the sync."""
    if not webhook:
        return None, None
    if webhook.startswith("@Microsoft.KeyVault("):
        return None, (
            "TEAMS_WEBHOOK_URL: the Key Vault reference was not resolved by the host "
            "(check keyVaultReferenceIdentity and the identity's access to the vault)"
        )
    parts = urlsplit(webhook)
    if parts.scheme != "https" or not parts.hostname:
        # Never echo the value: the webhook URL carries its own signature.
        return None, "TEAMS_WEBHOOK_URL: must be an https:// URL (value not shown: it is a credential)"
    return webhook, None


def _flag(environ: EnvMapping[str, str], name: str, problems: list[str]) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    problems.append(f"{name}: must be true or false")
    return False
