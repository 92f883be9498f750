"""A throw-away CA (trustme) and the server certificate for every emulated host."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from ._state import ADMIN_HOST, CRM_SUFFIX, MONITOR_HOST, TEAMS_HOST, VAULT_SUFFIX

SERVER_NAMES = (f"*{VAULT_SUFFIX}", f"*{CRM_SUFFIX}", ADMIN_HOST, TEAMS_HOST, MONITOR_HOST)


@dataclass(frozen=True, slots=True)
class Certificates:
    ca_cert_path: Path
    server_context: ssl.SSLContext


def make_certificates(directory: Path) -> Certificates:
    """Write the CA certificate (PEM) into ``directory``; the keys stay in memory only."""
    ca = trustme.CA(organization_name="Lockstep emulator (throw-away)")
    leaf = ca.issue_cert(*SERVER_NAMES)
    ca_cert_path = directory / "lockstep-emulator-ca.pem"
    ca.cert_pem.write_to_path(str(ca_cert_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    leaf.configure_cert(context)
    return Certificates(ca_cert_path=ca_cert_path, server_context=context)
