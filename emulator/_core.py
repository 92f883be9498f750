"""The public ``Emulator``: the synchronous, thread-safe API over the emulated services' state.

The listeners that serve that state live in _listeners (this module starts and stops them); the
test-facing diagnostics (recorded requests, faults, latency, telemetry) in _diagnostics.
"""

from __future__ import annotations

import copy
import ssl
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import _identity, _teams
from ._diagnostics import Diagnostics
from ._environment import Environment
from ._listeners import LOOPBACK, Endpoints, Listeners
from ._state import (
    ADMIN_HOST,
    CRM_SUFFIX,
    DOMAIN,
    POWER_PLATFORM_API_HOST,
    TEAMS_HOST,
    EnvironmentState,
    State,
    VaultState,
)
from ._tenant import Tenant
from ._tls import LABEL
from ._vault import KeyVault

NO_PROXY = "127.0.0.1,localhost"
# LOCKSTEP_ALLOWED_HOSTS for a Lockstep pointed here: the admin API and webhook hosts, and the
# Power Platform API hosts (base and per-environment) the emulator answers for.
ALLOWED_HOSTS = ",".join(
    (ADMIN_HOST, TEAMS_HOST, f"api.powerplatform.{DOMAIN}", f"*.environment.api.powerplatform.{DOMAIN}")
)
VAULT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class Emulator(Diagnostics, Tenant):
    """Loopback Key Vault, Dataverse, Power Platform admin and connectivity APIs, managed identity, Teams.

    The public API is synchronous and thread-safe; the servers run on a private event loop in a
    background thread. State (vaults, environments, faults) may be set up before ``start()``.
    """

    def __init__(self, *, proxy_port: int = 0, identity_port: int = 0, latency: float = 0.0) -> None:
        self._state = State()
        if latency:
            self.set_latency(latency)
        self._listeners = Listeners(self._state, proxy_port=proxy_port, identity_port=identity_port)

    # --- lifecycle ---

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._listeners.start()

    def stop(self) -> None:
        """Stop every listener, end the thread and remove the temp dir. Idempotent."""
        self._listeners.stop()

    def _require_endpoints(self) -> Endpoints:
        endpoints = self._listeners.endpoints
        if endpoints is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return endpoints

    # --- connection facts ---

    @property
    def ca_cert_path(self) -> Path:
        return self._require_endpoints().ca_cert_path

    @property
    def proxy_url(self) -> str:
        return f"http://{LOOPBACK}:{self._require_endpoints().proxy_port}"

    @property
    def identity_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self._require_endpoints().identity_port}{_identity.PATH}"

    @property
    def identity_header(self) -> str:
        return self._state.identity_header

    @property
    def admin_url(self) -> str:
        return f"https://{ADMIN_HOST}"

    @property
    def power_platform_api_url(self) -> str:
        """The Power Platform API base (``POWER_PLATFORM_API_URL``); environments get hosts below it."""
        return f"https://{POWER_PLATFORM_API_HOST}"

    def client_environment(self) -> dict[str, str]:
        """The standard variables that point azure-identity, the Azure SDK and httpx at the emulator."""
        ca = str(self.ca_cert_path)
        return {
            "SSL_CERT_FILE": ca,
            "REQUESTS_CA_BUNDLE": ca,
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": NO_PROXY,
            "no_proxy": NO_PROXY,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "POWER_PLATFORM_ADMIN_URL": self.admin_url,
            "POWER_PLATFORM_API_URL": self.power_platform_api_url,
            # Lockstep accepts only Microsoft's hosts unless told otherwise: these are the emulator's.
            "LOCKSTEP_ALLOWED_HOSTS": ALLOWED_HOSTS,
        }

    def add_ca_to_aiohttp_default_context(self) -> None:
        """Trust the emulator CA in aiohttp's process-wide default ``SSLContext``.

        aiohttp builds that context once, when ``aiohttp.connector`` is first imported, so an
        ``SSL_CERT_FILE`` set later in the same process (monkeypatch in a test) never reaches the
        Azure SDK's aiohttp transport. Call this in in-process tests; a fresh process started with
        ``client_environment()`` (Core Tools, ``python -m sync``) needs nothing. The CA stays trusted
        in that context until the process ends (its private key is discarded at ``stop()``).
        """
        import aiohttp.connector

        context = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
        if not isinstance(context, ssl.SSLContext):
            raise RuntimeError("this aiohttp has no import-time default SSLContext; SSL_CERT_FILE is enough")
        context.load_verify_locations(cafile=str(self.ca_cert_path))

    # --- tokens (test conveniences; production code gets tokens from the identity endpoint) ---

    def issue_token(self, resource: str, client_id: str | None = None) -> str:
        """A bearer token for ``resource``, as the managed-identity endpoint would issue it."""
        with self._state.lock:
            access_token, _ = self._state.issue_token(resource, client_id)
            return access_token

    def expire_tokens(self) -> None:
        """Make every token issued so far expired (the services then answer 401)."""
        with self._state.lock:
            for token in self._state.tokens.values():
                token.expires_at = min(token.expires_at, time.time() - 1)

    # --- Key Vault ---

    def key_vault(self, name: str) -> KeyVault:
        """Get or create the vault ``https://<name>.vault.lockstep.test/``."""
        if not (3 <= len(name) <= 24 and set(name) <= VAULT_NAME_CHARS and name[0].isalpha()):
            raise ValueError(f"invalid vault name {name!r}: 3-24 lower-case letters, digits and '-'")
        if not LABEL.match(name):
            raise ValueError(f"invalid vault name {name!r}")
        with self._state.lock:
            self._state.vaults.setdefault(name, VaultState(name=name))
        return KeyVault(self._state, name)

    def key_vaults(self) -> list[KeyVault]:
        with self._state.lock:
            return [KeyVault(self._state, name) for name in self._state.vaults]

    # --- Power Platform ---

    def environment(
        self,
        name: str,
        org: str | None = None,
        environment_id: str | None = None,
        management_state: str | None = None,
        runtime_state: str | None = None,
    ) -> Environment:
        """Get or create an environment by name (defaults: org=name, a new uuid4, Ready/Enabled).

        For an existing environment, a given ``org`` or ``environment_id`` must match, and given
        states are applied.
        """
        with self._state.lock:
            env = self._state.environments.get(name)
            if env is not None:
                if org is not None and org.lower() != env.org:
                    raise ValueError(f"environment {name!r} already exists with org {env.org!r}")
                if environment_id is not None and environment_id.lower() != env.id.lower():
                    raise ValueError(f"environment {name!r} already exists with id {env.id!r}")
                if management_state is not None:
                    env.management = management_state
                if runtime_state is not None:
                    env.runtime = runtime_state
                return Environment(self._state, env)
            org = (org or name).lower()
            if not LABEL.match(org):
                raise ValueError(f"invalid org {org!r}: it must be one DNS label")
            environment_id = environment_id or str(uuid.uuid4())
            if self._state.environment_by_org(org) is not None:
                raise ValueError(f"org {org!r} is already used by another environment")
            if self._state.environment_by_id(environment_id) is not None:
                raise ValueError(f"environment id {environment_id!r} is already used")
            env = EnvironmentState(
                name=name,
                id=environment_id,
                org=org,
                management=management_state or "Ready",
                runtime=runtime_state or "Enabled",
                instance_url=f"https://{org}{CRM_SUFFIX}/",
            )
            self._state.environments[name] = env
            return Environment(self._state, env)

    def environments(self) -> list[Environment]:
        with self._state.lock:
            return [Environment(self._state, env) for env in self._state.environments.values()]

    # --- Teams ---

    def teams_webhook_url(self) -> str:
        """The Workflows webhook URL (a credential: it carries the ``sig``)."""
        return _teams.webhook_url(self._state)

    def teams_webhook_path(self) -> str:
        """Host-less, query-less part of the webhook URL, safe to print."""
        return _teams.webhook_path(self._state)

    @property
    def teams_posts(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return copy.deepcopy(self._state.teams_posts)
