"""Environment variables: the secret lands in the Dataverse `environmentvariablevalue` row.

The first kind of target behind sync.targets.base. Reading costs one request per target (the
definition with its value row, `$expand`), or, for the reconcile, one request per ~200 targets
of an environment (sync.steps.prefetch). Updates carry the row's etag and creates refuse to
overwrite, so a concurrent writer surfaces as WriteConflict and the engine re-reads and
re-decides. A write is verified against the row as stored: a value that did not stick is a
failure, not a success. The write's own answer carries that row (`Prefer: return=representation`),
so verifying costs no request; when a server answers without it, the row is read back instead.
Restoring puts back the value the row held before (kept in memory only), or deletes the row this
run created, each guarded by the etag of the row as stored after our own write.

A Secret-type definition holds a Key Vault reference, not a value: given the configured vault,
its read is handed to the reference check (sync.targets.references), which decides `reference`
(verified, or not verifiable from outside a flow) or a failure saying what it points at. Such a
target is never written, so it is never rolled back and no consumer refreshes anything for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from sync.errors import LockstepError, PermanentError
from sync.models import Definition, DefinitionType, Outcome, SecretSnapshot, Target, ValueRow
from sync.plan import Create, NoChange, Refuse, Update, plan_write
from sync.steps.prefetch import NOT_PREFETCHED, BulkDefinitions, DefinitionPrefetch, NotPrefetched
from sync.targets import base
from sync.targets.base import Change, Decision, InSync, TargetState, Write
from sync.targets.references import ReferenceKind, ReferenceObservation


class EnvironmentValues(Protocol):
    """The Dataverse calls this kind makes (sync.adapters.dataverse.DataverseClient)."""

    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None: ...
    async def update_value(
        self, org_url: str, row_id: str, etag: str, value: SecretStr
    ) -> ValueRow | None: ...
    async def create_value(
        self, org_url: str, definition_id: str, schema_name: str, value: SecretStr
    ) -> ValueRow | None: ...
    async def delete_value(self, org_url: str, row_id: str, etag: str) -> None: ...


@runtime_checkable
class _Bulk(BulkDefinitions, Protocol):
    pass


class ReadbackMismatch(PermanentError):
    """The row as stored after a successful write does not hold the value written.

    Permanent for the run: something in the environment (a plug-in, a policy, another tool)
    refuses or reverts the value, and writing again would not change that.
    """


@dataclass(frozen=True)
class Written:
    """What restore needs: the row as stored after our write, and the value it held before.

    `previous` is a SecretStr (it may be the old credential); None for a row this run created,
    which restoring deletes.
    """

    row_id: str
    etag: str
    previous: SecretStr | None


NO_VAULT = (
    "the definition is of type Secret: its Key Vault reference is checked against the configured "
    "vault (KEY_VAULT_URI), and none was given to this check"
)


def decide(definition: Definition | None, env_var: str, snapshot: SecretSnapshot) -> Decision:
    """The planner's answer (sync.plan.plan_write) in the vocabulary every kind shares.

    A Secret-type definition reaches here only without a vault to check its reference against.
    """
    if definition is not None and definition.type == DefinitionType.SECRET:
        return base.Refuse(NO_VAULT)
    action = plan_write(definition, env_var, snapshot.value)
    match action:
        case NoChange():
            return InSync()
        case Update():
            return Write(Outcome.UPDATED, action, "holds a value other than the secret's current version")
        case Create():
            return Write(Outcome.CREATED, action, "the definition has no value row yet")
        case Refuse(reason=reason) if definition is None:
            return base.Refuse(reason, TargetState.MISSING_DEFINITION)
        case Refuse(reason=reason):
            return base.Refuse(reason)
    raise AssertionError(f"unplanned action {action!r}")  # pragma: no cover


class EnvVarTargets:
    """TargetKinds for environment variables, over one Dataverse client.

    `vault` is the configured Key Vault's name (settings.vault_name): Secret-type definitions
    are checked as references to it. Without it they are refused (nothing to check against).
    """

    def __init__(self, values: EnvironmentValues, *, vault: str | None = None) -> None:
        self._values = values
        self._vault = vault

    def open(self, targets: Sequence[Target], *, bulk: bool) -> EnvVarRun:
        prefetch = None
        if bulk and isinstance(self._values, _Bulk):
            names: dict[str, list[str]] = {}
            for target in targets:
                names.setdefault(target.environment.url, []).append(target.env_var)
            prefetch = DefinitionPrefetch(self._values, names)
        references = ReferenceKind(self._values, self._vault) if self._vault else None
        return EnvVarRun(self._values, prefetch, references)


Observed = Definition | ReferenceObservation | None


class EnvVarRun:
    """One run's environment-variable targets; the first read may come from the bulk prefetch."""

    def __init__(
        self,
        values: EnvironmentValues,
        prefetch: DefinitionPrefetch | None,
        references: ReferenceKind | None = None,
    ) -> None:
        self._values = values
        self._prefetch = prefetch
        self._references = references
        self._prefetched: set[tuple[str, str]] = set()
        # The row as each write's answer carried it (None: answered without it), until verify.
        self._stored: dict[tuple[str, str], ValueRow | None] = {}

    async def expand(self, target: Target) -> list[Target]:
        return [target]

    async def read(self, target: Target) -> Observed:
        """The definition with its value row (a Secret-type one with its reference observed)."""
        definition = await self._definition(target)
        if definition is not None and definition.type == DefinitionType.SECRET and self._references:
            return await self._references.observe(target, definition)
        return definition

    async def _definition(self, target: Target) -> Definition | None:
        """The prefetch answers a target's first read only (a re-read after a lost race must see
        the row as it is now)."""
        key = (target.environment.url, target.env_var.lower())
        if self._prefetch is not None and key not in self._prefetched:
            self._prefetched.add(key)
            found: Definition | NotPrefetched | None = await self._prefetch.definition(
                target.environment, target.env_var
            )
            if found is not NOT_PREFETCHED and not isinstance(found, NotPrefetched):
                return found
        return await self._values.get_definition(target.environment.url, target.env_var)

    def decide(self, target: Target, observed: Observed, snapshot: SecretSnapshot) -> Decision:
        if isinstance(observed, ReferenceObservation) and self._references is not None:
            return self._references.decide(target, observed, snapshot)
        assert not isinstance(observed, ReferenceObservation)
        return decide(observed, target.env_var, snapshot)

    async def write(
        self, target: Target, observed: Observed, decision: Write, snapshot: SecretSnapshot
    ) -> None:
        url = target.environment.url
        match decision.plan:
            case Update(row_id=row_id, etag=etag):
                stored = await self._values.update_value(url, row_id, etag, snapshot.value)
            case Create(definition_id=definition_id, schema_name=schema_name):
                stored = await self._values.create_value(url, definition_id, schema_name, snapshot.value)
            case other:  # pragma: no cover - decide() only plans the two
                raise AssertionError(f"unplanned write {other!r}")
        self._stored[(url, target.env_var.lower())] = stored

    async def verify(
        self, target: Target, observed: Observed, decision: Write, snapshot: SecretSnapshot
    ) -> Change:
        """Checks the row as the write's answer carried it, or as read back when it did not."""
        url = target.environment.url
        row = self._stored.pop((url, target.env_var.lower()), None)
        definition_id = observed.id if isinstance(observed, Definition) else None
        if row is None:
            readback = await self._values.get_definition(url, target.env_var)
            row = readback.value_row if readback else None
            definition_id = readback.id if readback else None
        if (
            row is None
            or row.value is None
            or row.value.get_secret_value() != snapshot.value.get_secret_value()
        ):
            raise ReadbackMismatch(
                "read-back after the write does not hold the new value (something in the environment "
                "reverted or refused it)"
            )
        before = observed.value_row if isinstance(observed, Definition) else None
        previous = before.value if before is not None and decision.outcome is Outcome.UPDATED else None
        return Change(
            decision.outcome,
            subject_id=definition_id,
            memento=Written(row_id=row.id, etag=row.etag, previous=previous),
        )

    async def restore(self, target: Target, change: Change, snapshot: SecretSnapshot) -> tuple[Outcome, str]:
        written = change.memento
        if not change.wrote or not isinstance(written, Written):
            raise ValueError("only a target this run wrote can be rolled back")
        url = target.environment.url
        try:
            if change.outcome is Outcome.CREATED:
                await self._values.delete_value(url, written.row_id, written.etag)
                return Outcome.ROLLED_BACK, "rolled back: the value row this run created was removed"
            if written.previous is None:
                raise ValueError("an updated target always has a previous value")
            await self._values.update_value(url, written.row_id, written.etag, written.previous)
            return Outcome.ROLLED_BACK, "rolled back: the previous value was restored"
        except base.WriteConflict:
            return (
                Outcome.FAILED,
                "rollback skipped: someone changed the variable after this run wrote it; their value stays",
            )
        except LockstepError as error:
            return Outcome.FAILED, f"rollback failed, the new value is still in place: {error}"

    def close(self) -> None:
        if self._prefetch is not None:
            self._prefetch.close()
