"""Builds the service on first use and keeps it for the life of the worker's event loop.

Nothing happens at import: settings are read and clients created the first time a trigger
runs, inside the worker's loop (async clients belong to the loop that created them). A new loop
(tests, the CLI) gets fresh clients. A bad configuration is raised on every invocation until it
is fixed, and is never cached.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import httpx
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from sync.adapters.admin import PowerPlatformAdmin
from sync.adapters.agents import AgentsClient
from sync.adapters.connections import ConnectivityClient
from sync.adapters.dataverse import DataverseClient
from sync.adapters.dependencies import Dependencies
from sync.adapters.flows import FlowsClient
from sync.adapters.keyvault import KeyVaultReader, OneFetchPerScope
from sync.adapters.pools import pooled_client
from sync.adapters.teams import TeamsNotifier
from sync.engine import SyncEngine
from sync.inventory import Inventory
from sync.models import TargetKindName
from sync.service import LockstepService
from sync.settings import Settings, load_settings
from sync.steps.agent_refresh import AgentRefresh
from sync.steps.flow_refresh import FlowRefresh
from sync.targets.base import TargetKinds
from sync.targets.connections import ConnectionKinds
from sync.targets.env_vars import EnvVarTargets
from sync.telemetry import get_logger, quiet_noisy_loggers
from sync.tls import ssl_context

log = get_logger(__name__)
USER_AGENT = "lockstep/0.1"
KEY_VAULT_CONNECTIONS = 32
Credential = DefaultAzureCredential | ManagedIdentityCredential
# How long an idle connection stays open for the next request. httpx's default (5 s) and aiohttp's
# (15 s) close connections between a reconcile's bulk reads and its writes, and under load between
# one write and the next; Azure's front ends keep idle connections for minutes.
KEEPALIVE_SECONDS = 60.0


def http_limits() -> httpx.Limits:
    """No cap on pooled connections: concurrency is bounded where requests start, not here.

    The engine bounds requests per environment (and per secret); a pool cap below that makes
    httpcore close an idle connection to one organisation to open one to another, and httpcore
    1.0.x compares the keep-alive cap with *all* connections, idle or not (encode/httpcore#1000),
    so every connection that went idle while more than 16 were open was closed. With 10
    environments x 8 concurrent writes that was nearly one new TLS connection per repair.
    """
    return httpx.Limits(
        max_connections=None, max_keepalive_connections=None, keepalive_expiry=KEEPALIVE_SECONDS
    )


@dataclass
class Runtime:
    """The service and the adapters behind it; the CLI's read-only commands use the adapters directly."""

    service: LockstepService
    loop: asyncio.AbstractEventLoop
    secrets: KeyVaultReader
    dataverse: DataverseClient
    admin: PowerPlatformAdmin
    credential: Credential
    inventory: Inventory
    # Every kind of target, for the engine and for read-only inspection (plan, status).
    kinds: dict[TargetKindName, TargetKinds]
    connectivity: ConnectivityClient  # connections, read directly by doctor
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()


def key_vault_transport() -> AioHttpTransport:
    """The Azure SDK's aiohttp transport over one TLS context, so Key Vault connections are reused.

    Given `connection_verify=<CA file>`, azure-core builds a new SSLContext for every request (and
    re-reads the CA file); aiohttp keys pooled connections by that context, so every secret read
    opened a new TLS connection and the old ones piled up until their keep-alive ran out. A
    connector that owns the context keeps a handful of connections for the whole run. The session
    trusts the environment (HTTPS_PROXY / NO_PROXY), as azure-core's own session does.
    """
    connector = aiohttp.TCPConnector(
        ssl=ssl_context(), limit=KEY_VAULT_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS
    )
    session = aiohttp.ClientSession(connector=connector, trust_env=True)
    return AioHttpTransport(session=session, session_owner=True)


def in_azure(environ: Mapping[str, str]) -> bool:
    """Whether the Functions host runs us in Azure, judged by what the platform itself sets:
    WEBSITE_INSTANCE_ID (App Service and the plans built on it; the host's own test), the site
    name together with the managed-identity endpoint, or the Flex Consumption SKU."""
    return bool(
        environ.get("WEBSITE_INSTANCE_ID")
        or (environ.get("WEBSITE_SITE_NAME") and environ.get("IDENTITY_ENDPOINT"))
        or environ.get("WEBSITE_SKU") == "FlexConsumption"
    )


def make_credential(client_id: str | None, environ: Mapping[str, str]) -> Credential:
    """The managed identity alone in Azure; the developer chain elsewhere.

    DefaultAzureCredential tries environment variables (a service principal's secret) and workload
    identity before the managed identity, so in Azure a stray AZURE_CLIENT_SECRET app setting
    would quietly replace the identity the deployment granted. Locally (Core Tools, the CLI, the
    emulator) the chain is what lets a developer's own sign-in or the emulated endpoint work.
    """
    if in_azure(environ):
        log.info("running in Azure: authenticating with the managed identity only")
        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def caches_tokens(credential: Credential, environ: Mapping[str, str]) -> bool:
    """Whether a token fetched ahead lands where the Key Vault SDK's own request will find it.

    The managed identity caches its tokens (DefaultAzureCredential reaches it when the identity
    endpoint is set, as in Azure and over the emulator). The developer tools the local chain may
    end at (Azure CLI, azd, PowerShell) cache nothing: there a prefetch is one more tool run.
    """
    return isinstance(credential, ManagedIdentityCredential) or bool(environ.get("IDENTITY_ENDPOINT"))


def build_runtime(
    settings: Settings, loop: asyncio.AbstractEventLoop, environ: Mapping[str, str] | None = None
) -> Runtime:
    """Wires the adapters to the engine. Synchronous, so two first invocations cannot race."""
    quiet_noisy_loggers()
    if settings.allowed_hosts:
        log.warning(
            "LOCKSTEP_ALLOWED_HOSTS allows hosts beyond the documented Power Platform and Teams "
            "Workflows hosts (%s); in use: %s",
            ", ".join(settings.allowed_hosts),
            "; ".join(settings.overridden_hosts) or "none",
        )
    verify = ssl_context()  # first: a trust store that cannot load is a ConfigurationError, nothing to close
    environ = os.environ if environ is None else environ
    credential = make_credential(settings.azure_client_id, environ)
    http = pooled_client(verify, http_limits(), {"User-Agent": USER_AGENT})
    vault_tokens = OneFetchPerScope(credential)  # lets KeyVaultReader.prepare overlap the challenge
    secret_client = SecretClient(
        settings.key_vault_uri,
        vault_tokens,
        transport=key_vault_transport(),
        retry_total=2,
        retry_backoff_factor=0.5,
        retry_backoff_max=4,
        connection_timeout=5,
        read_timeout=10,
    )
    notifier = TeamsNotifier(http, settings.teams_webhook_url) if settings.teams_webhook_url else None
    if notifier is None and settings.teams_webhook_problem is None:
        log.warning("TEAMS_WEBHOOK_URL is not set: runs will not be announced in Teams")
    secrets = KeyVaultReader(secret_client, vault_tokens if caches_tokens(credential, environ) else None)
    dataverse = DataverseClient(http, credential)
    admin = PowerPlatformAdmin(http, credential, settings.admin_url)
    dependencies = Dependencies(dataverse)  # one dependency listing per environment, flows and agents
    flows_client = FlowsClient(dataverse, dependencies)
    connectivity = ConnectivityClient(http, credential, settings.power_platform_api_url)
    flows = FlowRefresh(flows_client, connections=connectivity, as_owner=settings.flow_activation_as_owner)
    kinds: dict[TargetKindName, TargetKinds] = {
        # Secret-type variables are checked as references to the configured vault, never written.
        TargetKindName.ENV_VAR: EnvVarTargets(dataverse, vault=settings.vault_name),
        TargetKindName.CONNECTION: ConnectionKinds(connectivity, secrets),
    }
    agents_client = AgentsClient(dataverse, dependencies)
    engine = SyncEngine(
        settings.mapping,
        secrets,
        dataverse,
        admin,
        notifier,
        flows=flows,
        kinds=kinds,
        consumers=[AgentRefresh(agents_client)],
    )
    inventory = Inventory(dataverse, flows_client, agents_client, connectivity)
    return Runtime(
        service=LockstepService(settings, engine, notifier, inventory),
        inventory=inventory,
        loop=loop,
        secrets=secrets,
        dataverse=dataverse,
        admin=admin,
        credential=credential,
        kinds=kinds,
        connectivity=connectivity,
        closers=[credential.close, http.aclose, secret_client.close],
    )


_runtime: Runtime | None = None


async def get_runtime(environ: Mapping[str, str] | None = None) -> Runtime:
    """The process-wide runtime for the running loop; raises ConfigurationError when misconfigured."""
    global _runtime
    loop = asyncio.get_running_loop()
    if _runtime is not None and _runtime.loop is loop:
        return _runtime
    settings = load_settings(os.environ if environ is None else environ)
    _runtime = build_runtime(settings, loop, os.environ if environ is None else environ)
    return _runtime


async def get_service(environ: Mapping[str, str] | None = None) -> LockstepService:
    """The process-wide service for the running loop; raises ConfigurationError when misconfigured.

    A Teams setting that cannot be used is logged as an error on every invocation (the sync runs
    anyway: notifications must never stop it), so it shows up in every run's log until fixed.
    """
    runtime = await get_runtime(environ)
    problem = runtime.service.settings.teams_webhook_problem
    if problem:
        log.error("%s; this run is not announced in Teams", problem)
    return runtime.service


async def close_runtime() -> None:
    """Closes the clients (tests, the CLI, the demo); the Functions worker simply exits."""
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is not None and runtime.loop is asyncio.get_running_loop():
        await runtime.aclose()
