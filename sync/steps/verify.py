"""Step 4: read the value back. A write that did not stick is a failure, not a success.

A read-back that does not hold the new value is permanent for the run: something in the
environment (a plugin, a policy, another tool) refuses or reverts the value, and writing again
would not change that. With staged rollout it fails the stage's gate.
"""

from __future__ import annotations

from typing import Protocol

from sync.errors import PermanentError
from sync.models import Definition, SecretSnapshot, Target, ValueRow


class ReadbackMismatch(PermanentError):
    """The value read back after a successful write is not the value written."""


class DefinitionReader(Protocol):
    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None: ...


async def verify_readback(values: DefinitionReader, target: Target, snapshot: SecretSnapshot) -> ValueRow:
    """The value row as read back (its etag guards a rollback); raises ReadbackMismatch."""
    readback = await values.get_definition(target.environment.url, target.env_var)
    row = readback.value_row if readback else None
    if row is None or row.value is None or row.value.get_secret_value() != snapshot.value.get_secret_value():
        raise ReadbackMismatch(
            "read-back after the write does not hold the new value (something in the environment "
            "reverted or refused it)"
        )
    return row
