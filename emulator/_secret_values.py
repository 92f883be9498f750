"""``RetrieveEnvironmentVariableSecretValue``: how Power Platform resolves a Secret-type variable.

An unbound Dataverse action: ``POST RetrieveEnvironmentVariableSecretValue`` with
``{"EnvironmentVariableName": "<schema name>"}`` answers ``{"EnvironmentVariableSecretValue": …}``
(the ``RetrieveEnvironmentVariableSecretValueResponse`` complex type), read from the vault the value
row's Key Vault reference names (its current version). Microsoft documents it for flows; the
per-environment knobs model a tenant that refuses it to application users and a vault Power
Platform's identity may not read. The value goes into the answer only: never a log line or an
error message.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ._odata import CODE_BAD_REQUEST, CODE_NOT_FOUND, CODE_PRIVILEGE, ODataError, _query_options, _response
from ._state import FAKE_SUBSCRIPTION_ID, TYPE_SECRET, EnvironmentState, State

SEGMENT = "RetrieveEnvironmentVariableSecretValue"
REFERENCE = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/([^/]+)/secrets/([^/]+)$",
    re.IGNORECASE,
)
CODE_KEY_VAULT = "0x80048d0b"


def reference(
    vault: str, secret: str, resource_group: str, subscription_id: str = FAKE_SUBSCRIPTION_ID
) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.KeyVault/vaults/{vault}/secrets/{secret}"
    )


def retrieve(
    state: State, env: EnvironmentState, request: web.Request, body: dict[str, Any] | None, base: str
) -> web.Response:
    """Resolve the variable's Key Vault reference as Dataverse would (the caller holds ``state.lock``)."""
    _query_options(request, set())
    name = (body or {}).get("EnvironmentVariableName")
    if not isinstance(name, str) or set(body or {}) != {"EnvironmentVariableName"}:
        raise ODataError(
            400, CODE_BAD_REQUEST, "Send exactly {'EnvironmentVariableName': '<schema name>'} (a string)."
        )
    if env.secret_retrieval_refused:
        raise ODataError(
            403,
            CODE_PRIVILEGE,
            f"Principal user (Id={env.user_id}, type=8) is not allowed to retrieve environment variable "
            "secret values: RetrieveEnvironmentVariableSecretValue is available to Power Automate flows "
            "only.",
        )
    definition = env.definition_by_schema(name)
    if definition is None:
        raise ODataError(404, CODE_NOT_FOUND, f"Environment variable '{name}' does not exist.")
    if definition.type != TYPE_SECRET:
        raise ODataError(400, CODE_BAD_REQUEST, f"Environment variable '{name}' is not of type Secret.")
    rows = env.rows_of(definition.id)
    match = REFERENCE.match(rows[0].value or "") if rows else None
    if match is None:
        raise ODataError(
            400, CODE_BAD_REQUEST, f"Environment variable '{name}' has no Key Vault secret reference."
        )
    subscription, vault_name, secret_name = match.groups()
    vault = state.vaults.get(vault_name.lower()) if subscription.lower() == FAKE_SUBSCRIPTION_ID else None
    if vault is None:
        raise ODataError(
            400,
            CODE_KEY_VAULT,
            f"Azure Key Vault '{vault_name}' in subscription '{subscription}' was not found.",
        )
    if env.vault_unreadable:
        raise ODataError(
            403,
            CODE_KEY_VAULT,
            f"Access to Azure Key Vault '{vault_name}' was denied (403 Forbidden) for the Power Platform "
            "service principal. Grant it the 'Key Vault Secrets User' role on the vault and register the "
            "Microsoft.PowerPlatform resource provider in the subscription.",
        )
    record = vault.find(secret_name)
    if record is None or record.current is None:
        raise ODataError(
            404, CODE_KEY_VAULT, f"Secret '{secret_name}' was not found in Azure Key Vault '{vault_name}'."
        )
    if not record.versions[record.current].enabled:
        raise ODataError(
            400,
            CODE_KEY_VAULT,
            f"The current version of secret '{secret_name}' in Azure Key Vault '{vault_name}' is disabled.",
        )
    context = f"{base}$metadata#Microsoft.Dynamics.CRM.RetrieveEnvironmentVariableSecretValueResponse"
    return _response(
        200,
        {
            "@odata.context": context,
            "EnvironmentVariableSecretValue": record.versions[record.current].value,
        },
    )
