"""The public ``Emulator``: lifecycle (one background thread, one event loop) and the synchronous API."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from . import _control, _identity, _teams, _tls
from ._certs import make_certificates
from ._environment import Environment
from ._proxy import ConnectProxy
from ._state import (
    ADMIN_HOST,
    CRM_SUFFIX,
    DOMAIN,
    FAULT_KINDS,
    FAULTABLE_SERVICES,
    MONITOR_HOST,
    TEAMS_HOST,
    EnvironmentState,
    Fault,
    RecordedRequest,
    State,
    VaultState,
)
from ._tls import LABEL
from ._vault import KeyVault

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
NO_PROXY = "127.0.0.1,localhost"
# LOCKSTEP_ALLOWED_HOSTS for a Lockstep pointed here: the admin API and webhook hosts, and the
# Power Platform API hosts (base and per-environment) the emulator answers for.
ALLOWED_HOSTS = ",".join(
    (ADMIN_HOST, TEAMS_HOST, f"api.powerplatform.{DOMAIN}", f"*.environment.api.powerplatform.{DOMAIN}")
)
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0
VAULT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


def _quiet_disconnects(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A client that hangs up mid-handshake (or a tunnel torn down at stop) is routine, not an error."""
    if isinstance(context.get("exception"), ConnectionError | ssl.SSLError):
        log.debug("connection ended early: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


@dataclass(frozen=True, slots=True)
class _Endpoints:
    ca_cert_path: Path
    proxy_port: int
    identity_port: int


class Emulator:
    """Loopback Key Vault, Dataverse, Power Platform admin API, managed identity and Teams webhook.

    The public API is synchronous and thread-safe; the servers run on a private event loop in a
    background thread. State (vaults, environments, faults) may be set up before ``start()``.
    """

    def __init__(self, *, proxy_port: int = 0, identity_port: int = 0, latency: float = 0.0) -> None:
        self._state = State()
        if latency:
            self.set_latency(latency)
        self._proxy_port_wanted = proxy_port
        self._identity_port_wanted = identity_port
        self._lifecycle = threading.Lock()
        self._started = False
        self._stopped = False
        self._tmpdir: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._endpoints: _Endpoints | None = None
        self._runners: list[web.AppRunner] = []
        self._proxy: ConnectProxy | None = None

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
        with self._lifecycle:
            if self._started:
                raise RuntimeError("an Emulator can be started only once")
            self._started = True
            self._tmpdir = Path(tempfile.mkdtemp(prefix="lockstep-emulator-"))
            try:
                certificates = make_certificates(self._tmpdir)
                loop = asyncio.new_event_loop()
                self._loop = loop
                self._thread = threading.Thread(
                    target=self._run_loop, args=(loop,), name="lockstep-emulator", daemon=True
                )
                self._thread.start()
                ports = asyncio.run_coroutine_threadsafe(
                    self._serve(certificates.server_context), loop
                ).result(STARTUP_TIMEOUT)
                self._endpoints = _Endpoints(certificates.ca_cert_path, *ports)
            except BaseException:
                self._teardown()
                raise

    def stop(self) -> None:
        """Stop every listener, end the thread and remove the temp dir. Idempotent."""
        with self._lifecycle:
            if self._stopped:
                return
            self._stopped = True
            self._teardown()

    def _teardown(self) -> None:
        loop, thread = self._loop, self._thread
        try:
            if loop is not None and thread is not None and thread.is_alive():
                try:
                    asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(SHUTDOWN_TIMEOUT)
                finally:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join(SHUTDOWN_TIMEOUT)
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_disconnects)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _serve(self, server_context: ssl.SSLContext) -> tuple[int, int]:
        tls_sock = _listening_socket(0)
        tls_port = tls_sock.getsockname()[1]
        await self._start_app(_tls.make_app(self._state), tls_sock, server_context)

        identity_sock = _listening_socket(self._identity_port_wanted)
        identity_port = identity_sock.getsockname()[1]
        control = _control.make_handler(self, self._state.identity_header)
        await self._start_app(_identity.make_app(self._state, control), identity_sock, None)

        proxy_sock = _listening_socket(self._proxy_port_wanted)
        proxy_port = proxy_sock.getsockname()[1]
        self._proxy = ConnectProxy(self._state, tls_port)
        await self._proxy.start(proxy_sock)
        return proxy_port, identity_port

    async def _start_app(
        self, app: web.Application, sock: socket.socket, server_context: ssl.SSLContext | None
    ) -> None:
        # access_log=None: aiohttp's access log would print request lines, query strings (sig) included.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        try:
            await web.SockSite(runner, sock, ssl_context=server_context).start()
        except BaseException:
            sock.close()
            raise

    async def _shutdown(self) -> None:
        if self._proxy is not None:
            await self._proxy.close()
        for runner in reversed(self._runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()

    def _require_endpoints(self) -> _Endpoints:
        if self._endpoints is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._endpoints

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

    # --- diagnostics and faults ---

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def reset_requests(self) -> None:
        with self._state.lock:
            self._state.requests.clear()

    def inject_fault(
        self,
        service: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        path_contains: str | None = None,
        kind: str = "status",
        method: str | None = None,
        retry_after_date: bool = False,
    ) -> None:
        """The next ``times`` matching requests to ``service`` misbehave as ``kind`` says.

        ``status`` answers ``status`` without touching state (``Retry-After`` in seconds, or as an
        HTTP-date with ``retry_after_date``); ``html`` a 502 gateway page; ``truncated`` a 200 with
        a cut-off JSON body; ``drop_before`` hangs up without applying the request; ``drop_after``
        (Dataverse) applies it, then hangs up, so the client never learns it succeeded.
        ``path_contains`` is a substring of host + path (no query string), so ``"contoso-test"``
        targets one Dataverse org and ``"environmentvariablevalues("`` one kind of request;
        ``method`` narrows it to one HTTP method.
        A fault applies after the credential check (bearer token, identity header, webhook sig),
        so a request the service would reject as unauthenticated does not consume it.
        """
        if service not in FAULTABLE_SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(FAULTABLE_SERVICES)}")
        if not 200 <= status <= 599:
            raise ValueError("status must be a final HTTP status (200-599)")
        if times < 1:
            raise ValueError("times must be at least 1")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        fault = Fault(
            service,
            status,
            times,
            retry_after,
            path_contains,
            kind,
            method.upper() if method else None,
            retry_after_date,
        )
        with self._state.lock:
            self._state.faults.append(fault)

    def monitor_connection_string(self) -> str:
        """An Application Insights connection string whose ingestion endpoint is this emulator."""
        return f"InstrumentationKey={uuid.UUID(int=0)};IngestionEndpoint=https://{MONITOR_HOST}/"

    def telemetry_items(self) -> list[dict[str, Any]]:
        """Copies of the Application Insights envelopes received, in order."""
        with self._state.lock:
            return copy.deepcopy(self._state.telemetry)

    def set_latency(self, seconds: float, service: str | None = None) -> None:
        """Every later request to ``service`` (all services when None) waits ``seconds`` first.

        For benchmarks: loopback answers in microseconds, which hides the cost of each request
        that a real network and service (tens of milliseconds) would make visible.
        """
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        if service is not None and service not in FAULTABLE_SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {', '.join(FAULTABLE_SERVICES)}")
        with self._state.lock:
            if service is None:
                self._state.latency = {"*": seconds}
            else:
                self._state.latency[service] = seconds

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()
