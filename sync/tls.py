"""One trust store for every outbound TLS connection.

httpx honours SSL_CERT_FILE, aiohttp (under the Azure SDK) only OpenSSL's defaults, and neither
honours REQUESTS_CA_BUNDLE, which many corporate set-ups use. Resolving the bundle once here
keeps Key Vault, Dataverse, the admin API and Teams on the same, explicit trust store. There is
deliberately no way to turn verification off.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

import certifi


def ca_bundle_path(environ: Mapping[str, str] | None = None) -> str:
    """SSL_CERT_FILE, else REQUESTS_CA_BUNDLE, else certifi's Mozilla bundle."""
    env = os.environ if environ is None else environ
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        path = env.get(name, "").strip()
        if path:
            return path
    return certifi.where()


def ssl_context(environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A verifying client context over the resolved bundle (TLS 1.2 minimum)."""
    context = ssl.create_default_context(cafile=ca_bundle_path(environ))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
