"""One trust store for every outbound TLS connection.

httpx honours SSL_CERT_FILE, aiohttp (under the Azure SDK) only OpenSSL's defaults, and neither
honours REQUESTS_CA_BUNDLE, which many corporate set-ups use. Resolving the bundle once here
keeps Key Vault, Dataverse, the admin API and Teams on the same, explicit trust store. There is
deliberately no way to turn verification off.

A trust store that cannot be loaded (a stale settings file naming the CA of an emulator that has
stopped, a typo, a file that is not PEM) is a configuration error naming the setting, found with
the other settings' problems, never a traceback from deep inside client construction.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

import certifi

from sync.errors import ConfigurationError

TRUST_STORE_SETTINGS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def _configured(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(setting, path) for each trust-store setting that is set, in order of precedence."""
    found = []
    for name in TRUST_STORE_SETTINGS:
        path = env.get(name, "").strip()
        if path:
            found.append((name, path))
    return found


def ca_bundle_path(environ: Mapping[str, str] | None = None) -> str:
    """SSL_CERT_FILE, else REQUESTS_CA_BUNDLE, else certifi's Mozilla bundle."""
    configured = _configured(os.environ if environ is None else environ)
    return configured[0][1] if configured else certifi.where()


def _load(name: str, path: str) -> tuple[ssl.SSLContext | None, str | None]:
    """(a verifying context over `path`, None) or (None, why not, naming the setting)."""
    try:
        context = ssl.create_default_context(cafile=path)
    except ssl.SSLError:  # readable but not PEM certificates (SSLError is an OSError: first)
        return None, f"{name}: {path!r} is not a PEM certificate bundle"
    except OSError as error:  # missing, unreadable, a directory
        reason = error.strerror or type(error).__name__
        return None, f"{name}: cannot read the trust store {path!r}: {reason}"
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context, None


def trust_store_problems(environ: Mapping[str, str]) -> list[str]:
    """One problem per trust-store setting that is set but cannot be loaded as a CA bundle.

    Both settings are checked, not just the one in force: REQUESTS_CA_BUNDLE is also read by
    `requests` (under MSAL's token requests), so a stale one breaks sign-in even behind a good
    SSL_CERT_FILE.
    """
    return [problem for name, path in _configured(environ) if (problem := _load(name, path)[1])]


def ssl_context(environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A verifying client context over the resolved bundle (TLS 1.2 minimum).

    Raises ConfigurationError naming the setting if the bundle cannot be loaded (for example when
    the file vanished after the settings were checked).
    """
    configured = _configured(os.environ if environ is None else environ)
    name, path = configured[0] if configured else ("certifi", certifi.where())
    context, problem = _load(name, path)
    if context is None:
        raise ConfigurationError([problem or f"{name}: the trust store {path!r} cannot be loaded"])
    return context
