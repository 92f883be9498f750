"""Which hosts Lockstep may send a token or a card to: the documented Power Platform and Teams
Workflows hosts, and whatever the operator lists, loudly, in LOCKSTEP_ALLOWED_HOSTS.

A base URL from the settings receives the app's Power Platform token (admin API, Power Platform
API) and the Teams webhook receives run reports, so a typo or a tampered setting must not send them
to any https host, least of all a private address. The lists follow Microsoft's own clients for
each cloud (public, GCC, GCC High, DoD, China, and the two air-gapped US clouds); anything else —
the emulator, a new cloud — needs the explicit override, which is logged as a warning on every start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OVERRIDE_SETTING = "LOCKSTEP_ALLOWED_HOSTS"

# Power Platform admin API (BAP) per cloud: public, GCC, GCC High, DoD, China, EX, RX.
ADMIN_HOSTS = frozenset(
    {
        "api.bap.microsoft.com",
        "gov.api.bap.microsoft.us",
        "high.api.bap.microsoft.us",
        "api.bap.appsplatform.us",
        "api.bap.partner.microsoftonline.cn",
        "api.bap.eaglex.ic.gov",
        "api.bap.microsoft.scloud",
    }
)
# Power Platform API per cloud (the per-environment hosts are `<id>.environment.<this host>`).
API_HOSTS = frozenset(
    {
        "api.powerplatform.com",
        "api.gov.powerplatform.microsoft.us",
        "api.high.powerplatform.microsoft.us",
        "api.appsplatform.us",
        "api.powerplatform.partner.microsoftonline.cn",
        "api.powerplatform.eaglex.ic.gov",
        "api.powerplatform.microsoft.scloud",
    }
)
# Teams Workflows webhooks: the Logic Apps trigger hosts (prod-NN.<region>.logic.azure.com and the
# Azure Government / China equivalents) and the newer per-environment Power Platform API hosts.
WEBHOOK_SUFFIXES = (
    ".logic.azure.com",
    ".logic.azure.us",
    ".logic.azure.cn",
    *sorted(f".environment.{host}" for host in API_HOSTS),
)
PATTERN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class HostOverride:
    """The operator's extra hosts: exact names, or `*.suffix` for any host below the suffix."""

    patterns: tuple[str, ...] = ()

    def allows(self, host: str) -> bool:
        return any(matches(pattern, host) for pattern in self.patterns)


def matches(pattern: str, host: str) -> bool:
    """`*.example.test` matches `a.example.test` and `a.b.example.test`, never `example.test`."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def parse_override(raw: str, problems: list[str]) -> HostOverride:
    """LOCKSTEP_ALLOWED_HOSTS as patterns; every malformed entry is a problem (never guessed at)."""
    patterns = []
    for entry in (part.strip().lower() for part in raw.split(",")):
        if not entry:
            continue
        if not PATTERN.match(entry) or entry.count("*") > 1:
            problems.append(
                f"{OVERRIDE_SETTING}: {entry!r} is not a host name or '*.suffix' "
                "(no scheme, port, path or inner wildcard)"
            )
            continue
        patterns.append(entry)
    return HostOverride(tuple(dict.fromkeys(patterns)))


def is_webhook_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host.endswith(suffix) and len(host) > len(suffix) for suffix in WEBHOOK_SUFFIXES)


def describe(hosts: frozenset[str] | tuple[str, ...]) -> str:
    return ", ".join(sorted(hosts))
