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
from sync.hosts import (
    ADMIN_HOSTS,
    API_HOSTS,
    OVERRIDE_SETTING,
    WEBHOOK_SUFFIXES,
    HostOverride,
    describe,
    is_webhook_host,
    parse_override,
)
from sync.mapping import GUID, Mapping, parse_mapping
from sync.tls import trust_store_problems

DEFAULT_ADMIN_URL = "https://api.bap.microsoft.com"
DEFAULT_API_URL = "https://api.powerplatform.com"
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
    # Power Platform API base: per-environment hosts and the token scope derive from it.
    power_platform_api_url: str = DEFAULT_API_URL
    # LOCKSTEP_ALLOWED_HOSTS entries, and "SETTING host" for each host only they allow (warned on start).
    allowed_hosts: tuple[str, ...] = ()
    overridden_hosts: tuple[str, ...] = ()


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

    override = parse_override(environ.get(OVERRIDE_SETTING, ""), problems)
    overridden: list[str] = []
    webhook, webhook_problem = _teams_webhook(
        environ.get("TEAMS_WEBHOOK_URL", "").strip(), override, overridden
    )
    as_owner = _flag(environ, "FLOW_ACTIVATION_AS_OWNER", problems)

    admin_url = _token_base(
        environ, "POWER_PLATFORM_ADMIN_URL", DEFAULT_ADMIN_URL, ADMIN_HOSTS, override, problems, overridden
    )
    api_url = _token_base(
        environ, "POWER_PLATFORM_API_URL", DEFAULT_API_URL, API_HOSTS, override, problems, overridden
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

    problems.extend(trust_store_problems(environ))  # SSL_CERT_FILE / REQUESTS_CA_BUNDLE

    if (
        problems
        or vault_base is None
        or vault_name is None
        or mapping is None
        or not admin_url
        or not api_url
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
        allowed_hosts=override.patterns,
        overridden_hosts=tuple(overridden),
    )


def _token_base(
    environ: EnvMapping[str, str],
    name: str,
    default: str,
    documented: frozenset[str],
    override: HostOverride,
    problems: list[str],
    overridden: list[str],
) -> str | None:
    """A base URL that receives the app's Power Platform token: a documented host of some cloud,
    or a host the operator allowed in LOCKSTEP_ALLOWED_HOSTS (recorded, to be warned about)."""
    base = _https_base(environ.get(name, "").strip() or default, name, problems)
    if base is None:
        return None
    parts = urlsplit(base)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        problems.append(f"{name}: the port is not a number")
        return None
    if host in documented and port in (None, 443) and not parts.username:
        return base
    if override.allows(host) and not parts.username:
        overridden.append(f"{name} {host}")
        return base
    problems.append(
        f"{name}: {parts.netloc!r} is not a documented host for it ({describe(documented)}); "
        f"it would receive a Power Platform token. List it in {OVERRIDE_SETTING} to allow it"
    )
    return None


def _teams_webhook(
    webhook: str, override: HostOverride, overridden: list[str]
) -> tuple[str | None, str | None]:
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
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "https" or not parts.hostname or port == -1:
        # Never echo the value: the webhook URL carries its own signature.
        return None, "TEAMS_WEBHOOK_URL: must be an https:// URL (value not shown: it is a credential)"
    host = parts.hostname
    if parts.username is None and is_webhook_host(host) and port in (None, 443):
        return webhook, None
    if parts.username is None and override.allows(host):
        overridden.append(f"TEAMS_WEBHOOK_URL {host}")
        return webhook, None
    return None, (
        f"TEAMS_WEBHOOK_URL: its host {host!r} is not a Teams Workflows host "
        f"(*{', *'.join(WEBHOOK_SUFFIXES)}); list it in {OVERRIDE_SETTING} to allow it "
        "(rest of the value not shown: it is a credential)"
    )


def _flag(environ: EnvMapping[str, str], name: str, problems: list[str]) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    problems.append(f"{name}: must be true or false")
    return False
