"""A Secret-type definition read by the environment-variable kind goes to the reference check.

Before issue 13 every Secret-type definition was refused ("nothing to copy"); now, given the
configured vault, it is a `reference` target: checked, never written.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from sync.adapters.references import NotVerifiable, Unresolved, VaultUnreadable, classify
from sync.mapping import Environment
from sync.models import Definition, DefinitionType, SecretSnapshot, Target, ValueRow
from sync.targets.base import InSync, Refuse, TargetState
from sync.targets.env_vars import EnvVarTargets
from sync.targets.references import ReferenceObservation

CANARY = "CANARY-envref-41d2-do-not-leak"
ORG = "https://contoso-dev.crm.dynamics.com"
DEV = Environment(name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url=ORG, stage=1)
TARGET = Target(environment=DEV, env_var="contoso_ApiKey", secret="api-key")
SNAPSHOT = SecretSnapshot(name="api-key", version="v2", value=SecretStr(CANARY))
REFERENCE = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg"
    "/providers/Microsoft.KeyVault/vaults/contoso-lockstep/secrets/{}"
)


class Values:
    """A Dataverse client that can call actions: resolution answers with `answer`."""

    def __init__(self, secret: str, answer: httpx.Response) -> None:
        row = ValueRow(id="row-1", value=SecretStr(REFERENCE.format(secret)), etag='W/"1"')
        self.definition = Definition(
            id="def-1", schema_name="contoso_ApiKey", type=DefinitionType.SECRET, value_row=row
        )
        self.answer = answer
        self.actions: list[str] = []
        self.writes = 0

    async def get_definition(self, org_url: str, schema_name: str) -> Definition | None:
        return self.definition

    async def request(self, org_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.actions.append(path)
        return self.answer

    async def update_value(self, *args: Any) -> None:
        self.writes += 1

    async def create_value(self, *args: Any) -> None:
        self.writes += 1

    async def delete_value(self, *args: Any) -> None:
        self.writes += 1


def resolved(value: str) -> httpx.Response:
    return httpx.Response(200, json={"EnvironmentVariableSecretValue": value})


def refused(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": "0x80040220", "message": message}})


async def decide(values: Values, vault: str | None = "contoso-lockstep") -> Any:
    run = EnvVarTargets(values, vault=vault).open([TARGET], bulk=False)
    observed = await run.read(TARGET)
    return observed, run.decide(TARGET, observed, SNAPSHOT)


async def test_a_verified_reference_is_in_sync_in_the_reference_state() -> None:
    values = Values("api-key", resolved(CANARY))
    observed, decision = await decide(values)
    assert isinstance(observed, ReferenceObservation)
    assert isinstance(decision, InSync) and decision.state is TargetState.REFERENCE
    assert "resolves it to the current version" in decision.reason
    assert values.actions == ["RetrieveEnvironmentVariableSecretValue"] and values.writes == 0
    assert CANARY not in repr(observed) and CANARY not in decision.reason


async def test_a_reference_elsewhere_is_refused_naming_what_it_points_at() -> None:
    values = Values("other-key", resolved(CANARY))
    _, decision = await decide(values)
    assert isinstance(decision, Refuse) and decision.state is TargetState.REFUSED
    assert "points at secret 'other-key' in vault 'contoso-lockstep'" in decision.reason
    assert values.actions == []  # not worth asking Power Platform about the wrong secret


async def test_a_refused_resolution_is_a_reference_not_verifiable_from_outside_a_flow() -> None:
    values = Values("api-key", refused(403, "RetrieveEnvironmentVariableSecretValue is for flows only"))
    _, decision = await decide(values)
    assert isinstance(decision, InSync) and decision.state is TargetState.REFERENCE
    assert "not verifiable from outside a flow" in decision.reason


async def test_an_unreadable_vault_is_a_failure_saying_what_to_grant() -> None:
    message = (
        "User is not authorized to read secrets from '/subscriptions/1/resourceGroups/rg/providers/"
        "Microsoft.KeyVault/vaults/contoso-lockstep/secrets/api-key' resource."
    )
    _, decision = await decide(Values("api-key", refused(403, message)))
    assert isinstance(decision, Refuse) and "Key Vault Secrets User" in decision.reason


async def test_without_a_vault_a_secret_type_definition_is_refused_not_written() -> None:
    values = Values("api-key", resolved(CANARY))
    observed, decision = await decide(values, vault=None)
    assert isinstance(observed, Definition)
    assert isinstance(decision, Refuse) and "configured vault" in decision.reason
    assert values.actions == []


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        # Microsoft's documented wording for a vault Power Platform may not read
        # (troubleshoot/power-platform/dataverse/.../environment-variable-key-vault-auth-error).
        (
            "User is not authorized to read secrets from '/subscriptions/1/resourceGroups/rg/providers/"
            "Microsoft.KeyVault/vaults/kv/secrets/s' resource.",
            VaultUnreadable,
        ),
        (
            "Caller is not authorized to perform action 'Microsoft.KeyVault/vaults/secrets/getSecret/action' "
            "on resource '/subscriptions/1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv'",
            VaultUnreadable,
        ),
        ("User is not authorized to read secrets from this resource.", VaultUnreadable),
        # The emulator's wordings.
        (
            "Access to Azure Key Vault 'kv' was denied (403 Forbidden) for the Power Platform service "
            "principal. Grant it the 'Key Vault Secrets User' role on the vault.",
            VaultUnreadable,
        ),
        ("Secret 's' was not found in Azure Key Vault 'kv'.", Unresolved),
        ("Azure Key Vault 'kv' in subscription '1' was not found.", Unresolved),
        ("The current version of secret 's' in Azure Key Vault 'kv' is disabled.", Unresolved),
        # A refusal of the action itself names secrets but not the vault: not a finding.
        (
            "Principal user (Id=1, type=8) is not allowed to retrieve environment variable secret values: "
            "RetrieveEnvironmentVariableSecretValue is available to Power Automate flows only.",
            NotVerifiable,
        ),
        ("This API is limited to being called within a Power Automate Flow", NotVerifiable),
    ],
)
def test_dataverse_answers_are_sorted_by_their_words(message: str, kind: type) -> None:
    assert isinstance(classify("HTTP 403", message), kind)


async def test_a_secret_power_platform_cannot_find_is_a_failure_not_a_refusal() -> None:
    answer = refused(404, "Secret 'api-key' was not found in Azure Key Vault 'contoso-lockstep'.")
    _, decision = await decide(Values("api-key", answer))
    assert isinstance(decision, Refuse) and "Power Platform cannot resolve it" in decision.reason
    assert "subscription and resource group" in decision.reason


def test_a_key_vault_reference_is_not_covered_as_a_secret_value_but_a_typed_value_is() -> None:
    from sync.adapters.references import held_value
    from sync.redact import register, scrub

    values = Values("other-key", resolved(CANARY))
    reference = values.definition
    assert held_value(reference) is None
    register(held_value(reference))
    reason = "the Key Vault reference points at secret 'other-key' in vault 'contoso-lockstep'"
    assert scrub(reason) == reason  # the names a failure must show survive redaction
    typed = reference.model_copy(
        update={"value_row": ValueRow(id="r", value=SecretStr(CANARY), etag='W/"1"')}
    )
    held = held_value(typed)
    assert held is not None and held.get_secret_value() == CANARY
    register(held)
    assert CANARY not in scrub(f"echo {CANARY}")
