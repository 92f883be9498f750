"""Kind: a Secret-type (Key Vault-backed) environment variable — checked, never written.

A Secret-type definition holds no value of its own: its value row holds a Key Vault reference
(`/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<vault>/secrets/<name>`)
that Power Platform resolves at run time with its own identity. Copying the secret into it would
be wrong, so Lockstep checks instead: that the reference names the configured vault and the
row's secret, that the secret's current version is enabled and not expired, and, where the
tenant permits it, that Power Platform actually resolves it to the current version (by digest,
never by value). Nothing is written, so nothing is rolled back, and no flow or agent is refreshed
(both read Secret-type variables at run time).

`check_reference` is the pure decision; the environment-variable kind hands every Secret-type
definition it reads to it (or to `ReferenceKind.observe`, which adds Power Platform's resolution).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sync.adapters.references import (
    REFERENCE,
    ActionCaller,
    NotVerifiable,
    Resolution,
    Resolved,
    Unchecked,
    Unresolved,
    VaultUnreadable,
    digest,
    resolve,
)
from sync.errors import PermanentError
from sync.models import Definition, DefinitionType, Outcome, SecretSnapshot, Target
from sync.redact import scrub, shorten
from sync.targets.base import Change, Decision, InSync, Refuse, TargetState, Write
from sync.telemetry import get_logger

log = get_logger(__name__)

NOT_CHECKED = Unchecked("not attempted")
GRANT = (
    "grant the Dataverse service principal the 'Key Vault Secrets User' role on the vault (and, "
    "for agents, tag the secret AllowedEnvironments / AllowedBots), and register the "
    "Microsoft.PowerPlatform resource provider in the vault's subscription"
)


@dataclass(frozen=True)
class KeyVaultReference:
    subscription: str
    resource_group: str
    vault: str
    secret: str


def parse_reference(value: str) -> KeyVaultReference | None:
    """A Key Vault secret reference without a version, or None for anything else."""
    match = REFERENCE.match(value.strip())
    if match is None:
        return None
    return KeyVaultReference(match["subscription"], match["group"], match["vault"], match["secret"])


def expected_reference(vault: str, secret: str) -> str:
    return (
        "/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.KeyVault"
        f"/vaults/{vault}/secrets/{secret}"
    )


def same_value(resolved: bytes, snapshot: SecretSnapshot) -> bool:
    """Compares digests in constant time; the values themselves are never compared or kept."""
    return hmac.compare_digest(resolved, digest(snapshot.value.get_secret_value()))


def check_reference(
    target: Target,
    definition: Definition | None,
    snapshot: SecretSnapshot,
    *,
    vault: str,
    resolution: Resolution = NOT_CHECKED,
    now: datetime | None = None,
) -> Decision:
    """Pure: is this Secret-type variable a sound reference to the row's secret in our vault?"""
    if definition is None:
        return Refuse(
            f"no environment variable definition named {target.env_var!r} in this environment",
            TargetState.MISSING_DEFINITION,
        )
    if definition.type != DefinitionType.SECRET:
        return Refuse(
            f"the definition is not of type Secret (type {definition.type}): not a Key Vault reference"
        )
    wanted = expected_reference(vault, target.secret)
    row = definition.value_row
    raw = row.value.get_secret_value() if row is not None and row.value is not None else ""
    if not raw.strip():
        return Refuse(f"the Secret-type variable has no value: set it to the Key Vault reference {wanted}")
    reference = parse_reference(raw)
    if reference is None:  # never echoed: whatever it holds, it is not a reference
        return Refuse(f"its value is not a Key Vault secret reference without a version; expected {wanted}")
    if reference.vault.lower() != vault.lower() or reference.secret.lower() != target.secret.lower():
        return Refuse(
            f"the Key Vault reference points at secret {reference.secret!r} in vault {reference.vault!r}, "
            f"not at {target.secret!r} in {vault!r}"
        )
    if not snapshot.enabled:
        return Refuse(f"the current version of {target.secret!r} is disabled: Power Platform cannot read it")
    moment = now or datetime.now(UTC)
    if snapshot.expires is not None and snapshot.expires <= moment:
        return Refuse(
            f"the current version of {target.secret!r} expired on {snapshot.expires:%Y-%m-%d %H:%M} UTC: "
            "Power Platform cannot use it"
        )
    checked = f"Key Vault reference to {reference.vault}/{reference.secret}, current version enabled"
    match resolution:
        case Resolved(digest=resolved) if same_value(resolved, snapshot):
            return InSync(
                f"{checked}; Power Platform resolves it to the current version", TargetState.REFERENCE
            )
        case Resolved():
            return Refuse(
                f"{checked}, but Power Platform resolves it to another value (a cached previous version?); "
                "the nightly reconcile checks again"
            )
        case VaultUnreadable(reason=reason):
            return Refuse(
                f"Power Platform cannot read the secret from the vault ({_safe(reason, snapshot)}): {GRANT}"
            )
        case Unresolved(reason=reason):
            return Refuse(
                f"{checked}, but Power Platform cannot resolve it ({_safe(reason, snapshot)}): check the "
                "subscription and resource group in the reference and that the vault and secret exist there"
            )
        case NotVerifiable(reason=reason):
            return InSync(
                f"{checked}; resolution not verifiable from outside a flow ({_safe(reason, snapshot)})",
                TargetState.REFERENCE,
            )
        case Unchecked(reason=reason):
            return InSync(
                f"{checked}; resolution not checked ({_safe(reason, snapshot)})", TargetState.REFERENCE
            )
    raise AssertionError(f"unknown resolution {resolution!r}")  # pragma: no cover


def _safe(reason: str, snapshot: SecretSnapshot) -> str:
    return shorten(scrub(reason, snapshot.value), 200)


@dataclass(frozen=True)
class ReferenceObservation:
    definition: Definition | None
    resolution: Resolution


class Definitions(Protocol):
    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None: ...


class ReferenceKind:
    """sync.targets.base.TargetKind for Secret-type variables, bound to one run.

    `resolver` (by default `dataverse` itself, when it can call actions) makes Power Platform's
    resolution part of the check; without one the check stops at the reference and the version.
    """

    def __init__(self, dataverse: Definitions, vault: str, resolver: ActionCaller | None = None) -> None:
        self._dataverse = dataverse
        self._vault = vault
        if resolver is None and isinstance(dataverse, ActionCaller):
            resolver = dataverse
        self._resolver = resolver
        self._refused: dict[str, NotVerifiable] = {}  # per organisation: asked once per run
        self._answered: set[str] = set()
        self._asked: dict[str, asyncio.Lock] = {}  # per organisation: the first question is alone

    async def expand(self, target: Target) -> list[Target]:
        return [target]

    async def read(self, target: Target) -> ReferenceObservation:
        definition = await self._dataverse.get_definition(target.environment.url, target.env_var)
        return await self.observe(target, definition)

    async def observe(self, target: Target, definition: Definition | None) -> ReferenceObservation:
        """Adds Power Platform's resolution to a definition already read, when it is worth asking.

        Asked only for a reference that names the right secret; a refusal (the action is meant
        for flows) is remembered for the organisation, so each run asks each environment once.
        """
        row = definition.value_row if definition is not None else None
        reference = parse_reference(row.value.get_secret_value()) if row and row.value else None
        if (
            self._resolver is None
            or definition is None
            or definition.type != DefinitionType.SECRET
            or reference is None
            or reference.vault.lower() != self._vault.lower()
            or reference.secret.lower() != target.secret.lower()
        ):
            return ReferenceObservation(definition, NOT_CHECKED)
        org = target.environment.url
        resolver = self._resolver
        if org not in self._answered:  # until the organisation has answered once, ask one at a time
            async with self._asked.setdefault(org, asyncio.Lock()):
                return ReferenceObservation(definition, await self._resolve(target, definition, resolver))
        return ReferenceObservation(definition, await self._resolve(target, definition, resolver))

    async def _resolve(self, target: Target, definition: Definition, resolver: ActionCaller) -> Resolution:
        org = target.environment.url
        if org in self._refused:
            return self._refused[org]
        resolution = await resolve(resolver, org, definition.schema_name)
        self._answered.add(org)
        if isinstance(resolution, NotVerifiable):
            self._refused[org] = resolution
            log.warning(
                "%s: resolution of Key Vault references not verifiable from outside a flow: %s",
                target.environment.name,
                resolution.reason,
            )
        return resolution

    def decide(self, target: Target, observed: Any, snapshot: SecretSnapshot) -> Decision:
        assert isinstance(observed, ReferenceObservation)
        return check_reference(
            target, observed.definition, snapshot, vault=self._vault, resolution=observed.resolution
        )

    async def write(self, target: Target, observed: Any, decision: Write, snapshot: SecretSnapshot) -> None:
        raise PermanentError("a Key Vault reference is never written")

    async def verify(
        self, target: Target, observed: Any, decision: Write, snapshot: SecretSnapshot
    ) -> Change:
        raise PermanentError("a Key Vault reference is never written")

    async def restore(self, target: Target, change: Change, snapshot: SecretSnapshot) -> tuple[Outcome, str]:
        return Outcome.UNCHANGED, "a Key Vault reference is never written: nothing to restore"

    def close(self) -> None:
        return None


class ReferenceKinds:
    """sync.targets.base.TargetKinds: opens a ReferenceKind per run."""

    def __init__(self, dataverse: Definitions, vault: str, resolver: ActionCaller | None = None) -> None:
        self._dataverse = dataverse
        self._vault = vault
        self._resolver = resolver

    def open(self, targets: Sequence[Target], *, bulk: bool) -> ReferenceKind:
        return ReferenceKind(self._dataverse, self._vault, self._resolver)
