"""Key Vault reader: the current version carries its creation time, and the previous enabled
version is found among the versions (what a connection is rolled back to)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from sync.adapters.keyvault import KeyVaultReader
from sync.errors import PermanentError, TransientError

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def version(name: str, minutes: int, enabled: bool = True) -> SimpleNamespace:
    created = T0 + timedelta(minutes=minutes)
    return SimpleNamespace(
        version=name, enabled=enabled, created_on=created, updated_on=created, expires_on=None
    )


class FakeSecrets:
    def __init__(self, versions: list[SimpleNamespace], fail: Exception | None = None) -> None:
        self.versions = versions
        self.fail = fail
        self.read: list[str | None] = []

    async def get_secret(self, name: str, version: str | None = None) -> Any:
        self.read.append(version)
        if self.fail:
            raise self.fail
        chosen = (
            self.versions[-1] if version is None else next(v for v in self.versions if v.version == version)
        )
        return SimpleNamespace(value=f"value-{chosen.version}", properties=chosen)

    def list_properties_of_secret_versions(self, name: str) -> AsyncIterator[SimpleNamespace]:
        async def listing() -> AsyncIterator[SimpleNamespace]:
            if self.fail:
                raise self.fail
            for item in reversed(self.versions):  # the service promises no order
                yield item

        return listing()


async def test_the_current_version_carries_when_it_was_created() -> None:
    reader = KeyVaultReader(FakeSecrets([version("v1", 0), version("v2", 5)]))  # type: ignore[arg-type]
    snapshot = await reader.get_current("s")
    assert snapshot.version == "v2" and snapshot.created == T0 + timedelta(minutes=5)


async def test_previous_is_the_newest_enabled_version_created_before_the_current() -> None:
    versions = [
        version("v1", 0),
        version("v2", 1),
        version("v3", 2, enabled=False),
        version("v4", 3),
        version("v5", 4),
    ]
    fake = FakeSecrets(versions)
    previous = await KeyVaultReader(fake).get_previous("s", "v4")  # type: ignore[arg-type]
    assert previous is not None and previous.version == "v2"  # v3 is disabled, v5 is newer
    assert previous.value.get_secret_value() == "value-v2"
    assert fake.read == ["v2"]  # only the chosen version's value is read


async def test_no_previous_version_is_none() -> None:
    reader = KeyVaultReader(FakeSecrets([version("v1", 0, enabled=False), version("v2", 1)]))  # type: ignore[arg-type]
    assert await reader.get_previous("s", "v2") is None


async def test_an_unknown_current_version_is_permanent() -> None:
    reader = KeyVaultReader(FakeSecrets([version("v1", 0)]))  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match="not in the vault"):
        await reader.get_previous("s", "v9")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ServiceRequestError("down"), TransientError),
        (HttpResponseError(response=SimpleNamespace(status_code=403, reason="Forbidden")), PermanentError),  # type: ignore[arg-type]
    ],
)
async def test_listing_errors_are_ours(error: Exception, expected: type[Exception]) -> None:
    reader = KeyVaultReader(FakeSecrets([version("v1", 0)], fail=error))  # type: ignore[arg-type]
    with pytest.raises(expected):
        await reader.get_previous("s", "v1")
