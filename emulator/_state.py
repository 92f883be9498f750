"""In-memory state of the emulator: plain objects guarded by one ``threading.Lock``.

Every access from a request handler (emulator thread) or from the public API (any thread) holds
``State.lock`` for the whole read-modify-write and never awaits while holding it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._agents import AgentsState
from ._connections import MANAGED_IDENTITY, AppRegistrationState, Connection
from ._tokens import TOKEN_LIFETIME_SECONDS, Token, normalize_audience, unsigned_jwt

log = logging.getLogger("emulator")

SERVICES = ("keyvault", "dataverse", "admin", "connectivity", "teams", "identity", "monitor", "proxy")
FAULTABLE_SERVICES = ("keyvault", "dataverse", "admin", "connectivity", "teams", "identity", "monitor")
# status: answer `status` (Retry-After in seconds or as an HTTP-date); html: a gateway's HTML error
# page; truncated: 200 with a cut-off JSON body; drop_before: hang up before the request is
# applied; drop_after: apply it, then hang up without answering (the answer is lost).
FAULT_KINDS = ("status", "html", "truncated", "drop_before", "drop_after")

DOMAIN = "lockstep.test"
VAULT_SUFFIX = f".vault.{DOMAIN}"
CRM_SUFFIX = f".crm.{DOMAIN}"
ADMIN_HOST = f"api.bap.{DOMAIN}"
TEAMS_HOST = f"webhook.{DOMAIN}"
MONITOR_HOST = f"ingest.{DOMAIN}"
POWER_PLATFORM_API_HOST = f"api.powerplatform.{DOMAIN}"
# Per environment: <compact id but the last two characters>.<last two>.environment.api.powerplatform…
ENVIRONMENT_API_SUFFIX = f".environment.{POWER_PLATFORM_API_HOST}"

KEY_VAULT_AUDIENCE = f"https://vault.{DOMAIN}"
ADMIN_AUDIENCE = "https://service.powerapps.com"
POWER_PLATFORM_API_AUDIENCE = f"https://{POWER_PLATFORM_API_HOST}"
FAKE_TENANT_ID = "00000000-0000-0000-0000-000000000000"
FAKE_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
FAKE_CLIENT_ID = "11111111-1111-1111-1111-111111111111"

VALUE_MAX_LENGTH = 2000
TYPE_SECRET = 100000005


def dataverse_audience(org: str) -> str:
    return f"https://{org}{CRM_SUFFIX}"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request seen by the emulator. ``path`` never includes the query string."""

    service: str
    method: str
    host: str
    path: str
    status: int


@dataclass(slots=True)
class SecretVersion:
    version: str
    value: str
    enabled: bool
    created: int
    updated: int
    not_before: int | None
    expires: int | None
    content_type: str | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SecretRecord:
    name: str
    versions: dict[str, SecretVersion] = field(default_factory=dict)
    current: str | None = None


@dataclass(slots=True)
class VaultState:
    name: str
    secrets: dict[str, SecretRecord] = field(default_factory=dict)  # keyed by lower-case name

    def find(self, name: str) -> SecretRecord | None:
        return self.secrets.get(name.lower())


@dataclass(slots=True)
class Definition:
    id: str
    schema_name: str
    type: int
    row_version: int


@dataclass(slots=True)
class ValueRow:
    id: str
    definition_id: str
    schema_name: str
    value: str | None
    row_version: int


@dataclass(slots=True)
class Workflow:
    """A cloud flow (workflow, category 5). `history` records each state change it went through."""

    id: str
    name: str
    owner_id: str
    clientdata: str
    statecode: int = 1
    statuscode: int = 2
    category: int = 5
    modernflowtype: int = 0  # 0 cloud flow, 1 agent flow (Copilot Studio)
    connections_shared: bool = True
    history: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SystemUser:
    id: str
    fullname: str
    azure_object_id: str


@dataclass(slots=True)
class ConnectionReference:
    id: str
    logical_name: str
    connector_id: str
    connection_id: str


@dataclass(slots=True)
class EnvironmentState:
    name: str
    id: str
    org: str
    management: str
    runtime: str
    instance_url: str
    definitions: dict[str, Definition] = field(default_factory=dict)  # keyed by id
    values: dict[str, ValueRow] = field(default_factory=dict)  # keyed by id
    version_counter: int = 1000
    business_unit_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    user_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    organization_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    workflows: dict[str, Workflow] = field(default_factory=dict)  # keyed by id
    systemusers: dict[str, SystemUser] = field(default_factory=dict)  # keyed by id
    connection_references: dict[str, ConnectionReference] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)  # connectivity API, keyed by id
    # Connectivity knob: list and read only the connections the caller owns or was given a share of.
    hide_unshared_connections: bool = False
    agents: AgentsState = field(default_factory=AgentsState)  # bots, bot components, publishing
    # RetrieveEnvironmentVariableSecretValue knobs: refused for application users; vault unreadable.
    secret_retrieval_refused: bool = False
    vault_unreadable: bool = False
    # Scripted failures: value writes refused (as a missing privilege), or accepted and undone.
    refuse_writes: bool = False
    revert_writes: bool = False

    @property
    def url(self) -> str:
        return f"https://{self.org}{CRM_SUFFIX}"

    def next_version(self) -> int:
        """Dataverse row versions come from one increasing counter per organization."""
        self.version_counter += 1
        return self.version_counter

    def definition_by_schema(self, schema_name: str) -> Definition | None:
        # Dataverse string comparison is case-insensitive.
        wanted = schema_name.lower()
        for definition in self.definitions.values():
            if definition.schema_name.lower() == wanted:
                return definition
        return None

    def add_systemuser(self, fullname: str) -> SystemUser:
        user = SystemUser(id=str(uuid.uuid4()), fullname=fullname, azure_object_id=str(uuid.uuid4()))
        self.systemusers[user.id] = user
        return user

    def rows_of(self, definition_id: str) -> list[ValueRow]:
        return [row for row in self.values.values() if row.definition_id == definition_id]


@dataclass(slots=True)
class Fault:
    """A scripted misbehaviour; `kind` is one of FAULT_KINDS."""

    service: str
    status: int
    remaining: int
    retry_after: float | None
    path_contains: str | None
    kind: str = "status"
    method: str | None = None
    retry_after_date: bool = False


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.vaults: dict[str, VaultState] = {}
        self.environments: dict[str, EnvironmentState] = {}  # keyed by name
        self.tokens: dict[str, Token] = {}
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.teams_posts: list[dict[str, Any]] = []
        self.telemetry: list[dict[str, Any]] = []  # Application Insights envelopes received
        self.identity_header = secrets.token_urlsafe(24)
        self.teams_workflow_id = secrets.token_hex(16)
        self.teams_sig = secrets.token_urlsafe(32)
        # Seconds each request waits before it is handled: per service, "*" for every service.
        self.latency: dict[str, float] = {}
        # Entra app registrations (keyed by lower-case client id) whose secrets connections hold, and the
        # client ids registered as Power Platform management applications (the emulator's identity is).
        self.app_registrations: dict[str, AppRegistrationState] = {}
        self.management_apps: set[str] = {MANAGED_IDENTITY}
        # Lockstep's managed identity: each client id the identity endpoint served, latest last (_principals).
        self.identity_client_ids: list[str] = [FAKE_CLIENT_ID]
        # Connectivity PUT with a client secret Entra refuses: "status" saves it and reports an Error
        # status (200); "refuse" answers 400 Unauthenticated and keeps the connection as it was.
        self.invalid_secret_answer = "status"

    def latency_of(self, service: str) -> float:
        """Injected latency for one request to ``service`` (a plain read; no lock needed)."""
        return self.latency.get(service, self.latency.get("*", 0.0))

    # --- helpers below expect the caller to hold ``self.lock`` ---

    def environment_by_org(self, org: str) -> EnvironmentState | None:
        for env in self.environments.values():
            if env.org == org.lower():
                return env
        return None

    def environment_by_id(self, environment_id: str) -> EnvironmentState | None:
        for env in self.environments.values():
            if env.id.lower() == environment_id.lower():
                return env
        return None

    def environment_by_compact_id(self, compact: str) -> EnvironmentState | None:
        """The environment whose id, dashes removed, is ``compact`` (case-insensitive)."""
        for env in self.environments.values():
            if env.id.replace("-", "").lower() == compact.lower():
                return env
        return None

    def caller_of(self, authorization: str | None) -> str | None:
        """The object id behind a bearer token this emulator issued (the emulator's ids double as both)."""
        _, _, token = (authorization or "").partition(" ")
        issued = self.tokens.get(token.strip())
        return None if issued is None else issued.client_id.lower()

    def take_fault(self, service: str, where: str, method: str = "") -> Fault | None:
        """``where`` is host + path (never the query string)."""
        for fault in self.faults:
            if fault.service != service:
                continue
            if fault.method is not None and fault.method != method.upper():
                continue
            if fault.path_contains is not None and fault.path_contains not in where:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            return fault
        return None

    def issue_token(self, resource: str, client_id: str | None) -> tuple[str, Token]:
        """A JWT-shaped token (as Entra issues them; azure-identity peeks at the claims to log the
        identity) whose unsigned payload names audience and expiry; the services still look the
        token up in this table, so a forged or altered token is unknown and refused."""
        token = Token(
            audience=normalize_audience(resource),
            expires_at=time.time() + TOKEN_LIFETIME_SECONDS,
            client_id=client_id or FAKE_CLIENT_ID,
        )
        access_token = unsigned_jwt(token, FAKE_TENANT_ID)
        self.tokens[access_token] = token
        return access_token, token

    # --- these take the lock themselves ---

    def record(self, service: str, method: str, host: str, path: str, status: int) -> None:
        log.debug("%s %s %s%s -> %d", service, method, host, path, status)  # path has no query string
        with self.lock:
            self.requests.append(RecordedRequest(service, method, host, path, status))
