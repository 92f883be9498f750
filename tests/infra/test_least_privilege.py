"""Least privilege and audit in infra/: the findings of the security review (issue 15), one test each.

- The function identity reads only the secrets it is given (Key Vault Secrets User per secret);
  the whole vault only when asked for.
- The operator's Key Vault Secrets Officer is opt-in, and the guide says how to remove it.
- No Storage Blob Data Owner on the storage account: the running app cannot reach the dead letters,
  and its blob roles sit on the containers the host and the deployment use.
- Diagnostic settings send every resource's logs to the Log Analytics workspace.
"""

from __future__ import annotations

import json
import re

from tests.infra.test_bicep import (
    INFRA,
    KEY_VAULT_SECRETS_OFFICER,
    KEY_VAULT_SECRETS_USER,
    REPO,
    STORAGE_BLOB_DATA_OWNER,
    STORAGE_QUEUE_DATA_CONTRIBUTOR,
    default,
    doc,
    loop,
    module,
    render,
    resources,
    role_assignments,
    unwrap,
    variable,
)

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
DIAGNOSTIC_SETTING = "Microsoft.Insights/diagnosticSettings"
GUIDE = REPO / "docs" / "deployment.md"


def assignments(name: str) -> dict[str, dict[str, object]]:
    return resources(doc(name), ROLE_ASSIGNMENT)


def role_of(name: str, body: dict[str, object]) -> str:
    """The role definition id a role assignment in file ``name`` grants."""
    function = body["properties"]["roleDefinitionId"]["function"]  # type: ignore[index]
    return str(variable(doc(name), function["parameters"]["resource_name_1"]))


# --- Key Vault: secret scope by default ---------------------------------------------------------


def test_secrets_user_is_granted_per_secret_on_existing_secrets() -> None:
    parsed = doc("modules/key-vault-access.bicep")
    secrets = parsed["resources"]["secrets"]
    assert secrets["type"] == "Microsoft.KeyVault/vaults/secrets"
    assert secrets["existing"] is True, "Lockstep never creates or writes a secret"
    assert loop(secrets) == {"item_name": "name", "array_name": "secretNames"}
    assert unwrap(secrets)[0] == {"parent": "vault", "name": "name"}

    per_secret = parsed["resources"]["secretsUser"]
    body, condition = unwrap(per_secret)
    assert condition is None
    assert render(body["scope"]) == "secrets[i]"
    assert body["properties"]["principalId"] == "identityPrincipalId"
    detail = loop(per_secret)
    assert detail is not None
    assert render(detail["array_name"]) == "secretsUserOnVault ? [] : secretNames"
    assert detail["index_name"] == "i"


def test_no_vault_scope_secrets_user_unless_asked_for() -> None:
    parsed = doc("modules/key-vault-access.bicep")
    vault_scoped = [
        (symbol, condition)
        for symbol, entry in assignments("modules/key-vault-access.bicep").items()
        for body, condition in [unwrap(entry)]
        if render(body["scope"]) == "vault"
        and role_of("modules/key-vault-access.bicep", body) == KEY_VAULT_SECRETS_USER
    ]
    assert vault_scoped == [("secretsUserVault", "secretsUserOnVault")]
    assert default(parsed, "secretsUserOnVault") is False
    assert default(doc("main.bicep"), "keyVaultSecretsUserOnVault") is False


def test_main_passes_the_named_secrets_and_the_vault_flag() -> None:
    body, _ = module("keyVaultAccess")
    assert body["params"]["secretNames"] == "appSecretNames"
    assert body["params"]["secretsUserOnVault"] == "keyVaultSecretsUserOnVault"
    main = doc("main.bicep")
    assert render(variable(main, "appSecretNames")) == (
        "empty(keyVaultSecretNames) ? [] : split(keyVaultSecretNames, ,)"
    )
    assert default(main, "keyVaultSecretNames") == ""


# --- the operator's Secrets Officer: opt-in ------------------------------------------------------


def test_operator_secrets_officer_only_when_opted_in() -> None:
    parsed = doc("modules/key-vault-access.bicep")
    officer = [
        unwrap(entry)
        for entry in assignments("modules/key-vault-access.bicep").values()
        if role_of("modules/key-vault-access.bicep", unwrap(entry)[0]) == KEY_VAULT_SECRETS_OFFICER
    ]
    assert len(officer) == 1
    body, condition = officer[0]
    assert body["properties"]["principalId"] == "operatorPrincipalId"
    assert render(condition) == "grantOperatorSecretsOfficer && !empty(operatorPrincipalId)"
    assert default(parsed, "grantOperatorSecretsOfficer") is False
    assert default(doc("main.bicep"), "grantOperatorSecretsOfficer") is False
    call, _ = module("keyVaultAccess")
    assert call["params"]["grantOperatorSecretsOfficer"] == "grantOperatorSecretsOfficer"
    # azd passes the signed-in user as operatorPrincipalId; that alone must grant nothing.
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert given["grantOperatorSecretsOfficer"]["value"] == "${LOCKSTEP_GRANT_OPERATOR_SECRETS_OFFICER=false}"
    assert given["keyVaultSecretsUserOnVault"]["value"] == "${LOCKSTEP_KEY_VAULT_SECRETS_USER_ON_VAULT=false}"
    assert given["keyVaultSecretNames"]["value"] == "${LOCKSTEP_KEY_VAULT_SECRET_NAMES}"


def test_guide_says_how_to_remove_the_operators_secrets_officer() -> None:
    text = GUIDE.read_text()
    assert re.search(r"az role assignment delete[^\n]*--role \"Key Vault Secrets Officer\"", text)


# --- storage: no account-wide blob ownership ------------------------------------------------------


def test_no_storage_blob_data_owner_or_queue_role_on_the_account() -> None:
    for _, role, scope_type, _, _ in role_assignments():
        if scope_type == "Microsoft.Storage/storageAccounts":
            assert role not in {STORAGE_BLOB_DATA_OWNER, STORAGE_QUEUE_DATA_CONTRIBUTOR}, role


def test_the_app_identity_has_no_role_on_the_dead_letter_container() -> None:
    on_dead_letters = {
        principal for file, _, _, scope, principal in role_assignments() if scope == "deadLetterContainer"
    }
    assert on_dead_letters == {"topicPrincipalId"}
    storage = doc("modules/storage.bicep")
    for entry in assignments("modules/storage.bicep").values():
        assert render(unwrap(entry)[0]["scope"]) != "deadLetterContainer"
    assert variable(storage, "hostLocksContainerName") == "azure-webjobs-hosts"
    assert variable(storage, "hostSecretsContainerName") == "azure-webjobs-secrets"


# --- diagnostic settings ----------------------------------------------------------------------------

DIAGNOSED = {
    ("modules/function-app.bicep", "site"),
    ("modules/storage.bicep", "storage"),
    ("modules/storage.bicep", "blobService"),
    ("modules/key-vault.bicep", "vault"),
    ("modules/event-grid-topic.bicep", "topic"),
}


def test_every_resource_sends_diagnostics_to_the_workspace() -> None:
    found = set()
    for name in {name for name, _ in DIAGNOSED}:
        for entry in resources(doc(name), DIAGNOSTIC_SETTING).values():
            body, condition = unwrap(entry)
            assert condition is None
            assert body["properties"]["workspaceId"] == "logAnalyticsWorkspaceId"
            assert body["properties"].get("logs") or body["properties"].get("metrics")
            found.add((name, render(body["scope"])))
    assert found == DIAGNOSED


def test_blob_reads_writes_and_deletes_are_logged() -> None:
    for entry in resources(doc("modules/storage.bicep"), DIAGNOSTIC_SETTING).values():
        body, _ = unwrap(entry)
        if render(body["scope"]) == "blobService":
            categories = {log["category"] for log in body["properties"]["logs"] if log["enabled"]}
            assert categories == {"StorageRead", "StorageWrite", "StorageDelete"}
            return
    raise AssertionError("no diagnostic setting on the blob service")


def test_modules_get_the_workspace_from_monitoring() -> None:
    for name in ("storage", "functionApp", "keyVault", "eventGridTopic"):
        body, _ = module(name)
        assert render(body["params"]["logAnalyticsWorkspaceId"]) == "monitoring.outputs.workspaceId", name
