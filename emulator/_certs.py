"""A throw-away CA (trustme) and the server certificates for every emulated host.

A wildcard covers one DNS label, and the Power Platform API puts the last two characters of the
environment id in a label of their own (``<id…>.<xy>.environment.api.powerplatform…``). A second
certificate carries ``*.<xy>.environment…`` for every pair of hex digits (any environment whose id
ends in hex, so also those added after start), and is chosen by SNI for those hosts only, so the
other services keep a small certificate and a cheap handshake.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from ._state import (
    ADMIN_HOST,
    CRM_SUFFIX,
    ENVIRONMENT_API_SUFFIX,
    MONITOR_HOST,
    POWER_PLATFORM_API_HOST,
    TEAMS_HOST,
    VAULT_SUFFIX,
)

SERVER_NAMES = (f"*{VAULT_SUFFIX}", f"*{CRM_SUFFIX}", ADMIN_HOST, TEAMS_HOST, MONITOR_HOST)
HEX = "0123456789abcdef"
CONNECTIVITY_NAMES = (
    POWER_PLATFORM_API_HOST,
    *(f"*.{a}{b}{ENVIRONMENT_API_SUFFIX}" for a in HEX for b in HEX),
)


@dataclass(frozen=True, slots=True)
class Certificates:
    ca_cert_path: Path
    server_context: ssl.SSLContext


def _server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    leaf.configure_cert(context)
    return context


def make_certificates(directory: Path) -> Certificates:
    """Write the CA certificate (PEM) into ``directory``; the keys stay in memory only."""
    ca = trustme.CA(organization_name="Lockstep emulator (throw-away)")
    ca_cert_path = directory / "lockstep-emulator-ca.pem"
    ca.cert_pem.write_to_path(str(ca_cert_path))
    context = _server_context(ca.issue_cert(*SERVER_NAMES))
    connectivity = _server_context(ca.issue_cert(*CONNECTIVITY_NAMES, common_name=POWER_PLATFORM_API_HOST))

    def choose(sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> None:
        name = (server_name or "").lower()
        if name == POWER_PLATFORM_API_HOST or name.endswith(ENVIRONMENT_API_SUFFIX):
            sock.context = connectivity

    context.sni_callback = choose
    return Certificates(ca_cert_path=ca_cert_path, server_context=context)
