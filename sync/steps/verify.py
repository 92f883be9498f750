"""Step 4: read the value back. A write that did not stick is a failure, not a success."""

from __future__ import annotations

from typing import Protocol

from sync.errors import TransientError
from sync.models import Definition, SecretSnapshot, Target


class DefinitionReader(Protocol):
    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None: ...


async def verify_readback(values: DefinitionReader, target: Target, snapshot: SecretSnapshot) -> None:
    readback = await values.get_definition(target.environment.url, target.env_var)
    row = readback.value_row if readback else None
    if row is None or row.value is None or row.value.get_secret_value() != snapshot.value.get_secret_value():
        raise TransientError("read-back after the write does not hold the new value")
