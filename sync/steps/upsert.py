"""Step 3: make one target hold the secret — read, decide (pure, sync.plan), write, verify.

Updates carry the row's etag and creates refuse to overwrite, so a concurrent writer surfaces as
WriteConflict; the step then re-reads and re-plans (the other writer may have written the same
value already, which makes this target `unchanged`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from sync.adapters.dataverse import WriteConflict
from sync.errors import PermanentError, TransientError
from sync.models import Definition, Outcome, SecretSnapshot, Target
from sync.plan import Create, NoChange, Refuse, Update, plan_write
from sync.steps.prefetch import NotPrefetched
from sync.steps.verify import verify_readback

WRITE_ATTEMPTS = 2


@dataclass(frozen=True)
class Change:
    """What this run did to one target, kept in memory only, so a failed stage can be undone.

    `previous` is the value the row held before (a SecretStr: it may be the old credential);
    None with outcome CREATED means there was no row, so undoing deletes the row.
    """

    outcome: Outcome
    definition_id: str | None = None
    row_id: str | None = None
    etag: str | None = None
    previous: SecretStr | None = None

    @property
    def wrote(self) -> bool:
        return self.outcome in (Outcome.UPDATED, Outcome.CREATED)


class EnvironmentValues(Protocol):
    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None: ...
    async def update_value(self, org_url: str, row_id: str, etag: str, value: SecretStr) -> None: ...
    async def create_value(
        self, org_url: str, definition_id: str, schema_name: str, value: SecretStr
    ) -> None: ...
    async def delete_value(self, org_url: str, row_id: str, etag: str) -> None: ...


async def upsert(
    values: EnvironmentValues,
    target: Target,
    snapshot: SecretSnapshot,
    first_read: Definition | NotPrefetched | None,
) -> Change:
    """UPDATED, CREATED or UNCHANGED; raises PermanentError (refused) or TransientError."""
    url = target.environment.url
    definition = first_read
    for _attempt in range(WRITE_ATTEMPTS):
        if isinstance(definition, NotPrefetched):
            definition = await values.get_definition(url, target.env_var)
        action = plan_write(definition, target.env_var, snapshot.value)
        try:
            match action:
                case Refuse(reason=reason):
                    raise PermanentError(reason)
                case NoChange():
                    return Change(Outcome.UNCHANGED)
                case Update(row_id=row_id, etag=etag):
                    previous = (
                        definition.value_row.value
                        if isinstance(definition, Definition) and definition.value_row
                        else None
                    )
                    await values.update_value(url, row_id, etag, snapshot.value)
                    outcome = Outcome.UPDATED
                    written = definition.id if isinstance(definition, Definition) else None
                case Create(definition_id=definition_id, schema_name=schema_name):
                    previous = None
                    await values.create_value(url, definition_id, schema_name, snapshot.value)
                    outcome = Outcome.CREATED
                    written = definition_id
        except WriteConflict:
            definition = NotPrefetched()  # someone else wrote in between: read again and re-plan
            continue
        row = await verify_readback(values, target, snapshot)
        return Change(outcome, definition_id=written, row_id=row.id, etag=row.etag, previous=previous)
    raise TransientError("the value row kept changing under us; another writer is active")
