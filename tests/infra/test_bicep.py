"""Structural checks of infra/**/*.bicep without the Bicep CLI.

pycep-parser turns each file into JSON; these tests assert the facts the deployment depends on:
least-privilege role assignments (role id, scope, principal), the Event Grid subscription's
destination and filters, the app-settings contract, Flex Consumption settings, and that no key or
key-bearing connection string appears anywhere. Expressions are rendered back to compact Bicep-like
text (``render``) so assertions read like the template.
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULES = INFRA / "modules"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Built-in role definition ids (the same in every tenant).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

KEY_VAULT_EVENT_TYPES = {
    "Microsoft.KeyVault.SecretNewVersionCreated",
    "Microsoft.KeyVault.SecretNearExpiry",
    "Microsoft.KeyVault.SecretExpired",
}

# The app settings the README lists, plus the identity-based host settings;
# LOCKSTEP_MAPPING_FILE is the local alternative.
CONTRACT_SETTINGS = {
    "KEY_VAULT_URI",
    "LOCKSTEP_MAPPING",
    "TEAMS_WEBHOOK_URL",
    "POWER_PLATFORM_ADMIN_URL",
    "AZURE_CLIENT_ID",
    "RECONCILE_SCHEDULE",
    "FLOW_ACTIVATION_AS_OWNER",
}
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_ENABLE_OPENTELEMETRY",
}
# Key-based or not valid on Flex Consumption (runtime lives in functionAppConfig.runtime).
FORBIDDEN_SETTINGS = {
    "AzureWebJobsStorage",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
}


# --- helpers -----------------------------------------------------------------------------------


@cache
def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def doc(name: str) -> dict[str, Any]:
    return parse(INFRA / name)


def render(node: Any) -> str:
    """Renders a pycep expression as compact Bicep-like text (references stay bare names)."""
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int | float | str):
        return str(node)
    if isinstance(node, list):
        return "[" + ", ".join(render(item) for item in node) + "]"
    if "operator" in node:
        kind, operands = node["operator"]["type"], node["operator"]["operands"]
        if kind == "property_accessor":
            return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
        if kind == "nested_resource_accessor":
            return f"{render(operands['operand_1'])}::{render(operands['operand_2'])}"
        if kind == "conditional":
            parts = (operands["condition"], operands["true_value"], operands["false_value"])
            return "{} ? {} : {}".format(*map(render, parts))
        if kind == "not":
            return f"!{render(operands['bool_value'])}"
        if kind == "index_accessor":
            return f"{render(operands['operand_1'])}[{render(operands['operand_2'])}]"
        if kind == "and":
            return " && ".join(render(value) for value in operands.values())
        return f"{kind}(" + ", ".join(render(value) for value in operands.values()) + ")"
    if "function" in node:
        function = node["function"]
        args = [render(value) for value in function["parameters"].values() if value is not None]
        return f"{function['type']}(" + ", ".join(args) + ")"
    return "{" + ", ".join(f"{key}: {render(value)}" for key, value in node.items()) + "}"


def unwrap(entry: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The body and the condition (None when unconditional) of a resource or module."""
    config = entry["config"]
    if "condition" in config and set(config) <= {"condition", "config", "loop_type"}:
        return config["config"], config["condition"]
    return config, None


def loop(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A resource loop's item, index and array (None for a single resource)."""
    loop_type = entry["config"].get("loop_type")
    return None if loop_type is None else loop_type["detail"]


def resources(parsed: dict[str, Any], rtype: str | None = None) -> dict[str, dict[str, Any]]:
    return {
        symbol: entry
        for symbol, entry in parsed.get("resources", {}).items()
        if rtype is None or entry["type"] == rtype
    }


def resource(parsed: dict[str, Any], symbol: str) -> dict[str, Any]:
    return unwrap(parsed["resources"][symbol])[0]


def module(symbol: str) -> tuple[dict[str, Any], Any]:
    return unwrap(doc("main.bicep")["modules"][symbol])


def variable(parsed: dict[str, Any], name: str) -> Any:
    return parsed["variables"][name]["value"]


def default(parsed: dict[str, Any], name: str) -> Any:
    return parsed["parameters"][name]["default"]


def strings(node: Any) -> list[str]:
    """Every string (keys and values) anywhere inside a parsed document."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*strings(key), *strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def app_settings() -> dict[str, str]:
    """The function app's settings: name -> rendered value, with concat() of the variables resolved."""
    parsed = doc("modules/function-app.bicep")
    expression = resource(parsed, "site")["properties"]["siteConfig"]["appSettings"]
    assert expression["function"]["type"] == "concat"
    settings: dict[str, str] = {}
    for part in expression["function"]["parameters"].values():
        value = variable(parsed, part)
        if isinstance(value, dict) and value["operator"]["type"] == "conditional":
            operands = value["operator"]["operands"]
            # Optional group: empty(x) ? [] : [...]
            assert operands["true_value"] == []
            value = operands["false_value"]
        for setting in value:
            assert setting["name"] not in settings, f"duplicate app setting {setting['name']}"
            settings[setting["name"]] = render(setting["value"])
    return settings


# --- every file parses, in syntax the offline tools can read -----------------------------------


def test_infra_has_the_expected_files() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
    assert names == {
        "main.bicep",
        "modules/dead-letter-access.bicep",
        "modules/event-grid-topic.bicep",
        "modules/event-subscription.bicep",
        "modules/function-app.bicep",
        "modules/identity.bicep",
        "modules/key-vault-access.bicep",
        "modules/key-vault.bicep",
        "modules/monitoring.bicep",
        "modules/storage.bicep",
    }


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name}: nothing declared"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_syntax_the_offline_scanners_cannot_read(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"^\s*(type|import|func)\s", text, re.MULTILINE), "user-defined types/imports"
    assert not re.search(r"\b(string|int|bool|object)\[\]", text), "typed arrays"
    assert "br/public:" not in text and "br:" not in text, "registry modules cannot be resolved offline"
    assert not re.search(r"^@(export|sealed|discriminator)", text, re.MULTILINE)


def test_every_module_reference_points_at_a_file() -> None:
    for path in BICEP_FILES:
        for symbol, entry in parse(path).get("modules", {}).items():
            assert entry["type"] == "local", f"{symbol}: only local modules"
            assert (path.parent / entry["detail"]["path"]).is_file(), symbol


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_checkov_skip_is_justified_inline(path: Path) -> None:
    for line in path.read_text().splitlines():
        if "checkov:skip" in line:
            match = re.fullmatch(r"\s*// checkov:skip=CKV2?_AZURE_\d+: (?P<reason>.+)", line)
            assert match, f"malformed skip: {line.strip()}"
            assert len(match["reason"]) >= 40, f"skip without a real reason: {line.strip()}"


# --- least privilege: every role assignment, its role, scope and principal --------------------


def role_assignments() -> set[tuple[str, str, str, str, str]]:
    """(file, role id, scope type, scope symbol, principal) for every role assignment."""
    found = set()
    for path in BICEP_FILES:
        parsed = parse(path)
        for symbol, entry in resources(parsed, "Microsoft.Authorization/roleAssignments").items():
            body, _ = unwrap(entry)
            role = body["properties"]["roleDefinitionId"]["function"]
            assert role["type"] == "subscription_resource_id", symbol
            assert role["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
            role_id = variable(parsed, role["parameters"]["resource_name_1"])
            scope = render(body["scope"])
            scope_symbol = scope.split("[")[0].replace("::", "__")
            scope_type = parsed["resources"][scope_symbol]["type"]
            principal = render(body["properties"]["principalId"])
            # Idempotent, unique per (scope, principal, role).
            assert render(body["name"]) == (
                f"guid({scope}.id, {principal}, {role['parameters']['resource_name_1']})"
            ), symbol
            found.add((path.name, role_id, scope_type, scope, principal))
    return found


def test_role_assignments_are_exactly_the_least_privilege_set() -> None:
    assert role_assignments() == {
        (
            "monitoring.bicep",
            MONITORING_METRICS_PUBLISHER,
            "Microsoft.Insights/components",
            "applicationInsights",
            "identityPrincipalId",
        ),
        # Host storage: blob roles on the containers the host and the deployment use, table data
        # for the host's diagnostic events; no queue role, nothing on the dead-letter container.
        (
            "storage.bicep",
            STORAGE_BLOB_DATA_OWNER,
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "hostLocksContainer",
            "identityPrincipalId",
        ),
        (
            "storage.bicep",
            STORAGE_BLOB_DATA_OWNER,
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "hostSecretsContainer",
            "identityPrincipalId",
        ),
        (
            "storage.bicep",
            STORAGE_BLOB_DATA_CONTRIBUTOR,
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "deploymentContainer",
            "identityPrincipalId",
        ),
        (
            "storage.bicep",
            STORAGE_TABLE_DATA_CONTRIBUTOR,
            "Microsoft.Storage/storageAccounts",
            "storage",
            "identityPrincipalId",
        ),
        (
            "key-vault-access.bicep",
            KEY_VAULT_SECRETS_USER,
            "Microsoft.KeyVault/vaults/secrets",
            "secrets[i]",
            "identityPrincipalId",
        ),
        (
            "key-vault-access.bicep",
            KEY_VAULT_SECRETS_USER,
            "Microsoft.KeyVault/vaults",
            "vault",
            "identityPrincipalId",
        ),
        (
            "key-vault-access.bicep",
            KEY_VAULT_SECRETS_OFFICER,
            "Microsoft.KeyVault/vaults",
            "vault",
            "operatorPrincipalId",
        ),
        (
            "dead-letter-access.bicep",
            STORAGE_BLOB_DATA_CONTRIBUTOR,
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "deadLetterContainer",
            "topicPrincipalId",
        ),
    }


def test_identity_role_assignments_are_for_a_service_principal() -> None:
    for path in BICEP_FILES:
        for symbol, entry in resources(parse(path), "Microsoft.Authorization/roleAssignments").items():
            body, condition = unwrap(entry)
            if body["properties"]["principalId"] == "operatorPrincipalId":
                assert render(condition) == "grantOperatorSecretsOfficer && !empty(operatorPrincipalId)"
                continue
            assert body["properties"]["principalType"] == "ServicePrincipal", symbol


def test_roles_are_granted_to_the_function_identity_and_the_topic_identity() -> None:
    for name in ("monitoring", "storage", "keyVaultAccess"):
        body, _ = module(name)
        assert render(body["params"]["identityPrincipalId"]) == "identity.outputs.principalId", name
    body, _ = module("deadLetterAccess")
    assert body["params"]["topicPrincipalId"] == "topicPrincipalId"
    assert render(variable(doc("main.bicep"), "topicPrincipalId")) == (
        "createSystemTopic ? eventGridTopic.outputs.principalId : existingSystemTopic.identity.principalId"
    )


def test_vault_access_is_deployed_in_the_vaults_own_resource_group() -> None:
    body, condition = module("keyVaultAccess")
    assert condition is None
    assert render(body["scope"]) == "resource_group(vaultResourceGroupName)"
    assert body["params"]["keyVaultName"] == "vaultName"
    vault = resource(doc("modules/key-vault-access.bicep"), "vault")
    assert doc("modules/key-vault-access.bicep")["resources"]["vault"]["existing"] is True
    assert vault["name"] == "keyVaultName"


def test_dead_letter_role_is_on_the_container_the_subscription_writes_to() -> None:
    parsed = doc("modules/dead-letter-access.bicep")
    container = resource(parsed, "deadLetterContainer")
    assert container["name"] == "deadLetterContainerName"
    access, _ = module("deadLetterAccess")
    subscription, _ = module("eventSubscription")
    assert render(access["params"]["deadLetterContainerName"]) == "storage.outputs.deadLetterContainerName"
    assert (
        render(subscription["params"]["deadLetterContainerName"]) == "storage.outputs.deadLetterContainerName"
    )
    assert render(subscription["params"]["deadLetterStorageAccountId"]) == "storage.outputs.id"


# --- Event Grid ------------------------------------------------------------------------------


def test_system_topic_is_on_the_vault_with_a_system_assigned_identity() -> None:
    topic = resource(doc("modules/event-grid-topic.bicep"), "topic")
    assert topic["properties"] == {"source": "keyVaultId", "topicType": "Microsoft.KeyVault.vaults"}
    assert topic["identity"] == {"type": "SystemAssigned"}
    body, condition = module("eventGridTopic")
    assert condition == "createSystemTopic"
    assert render(body["params"]["keyVaultId"]) == "vault.id"
    # A system topic lives in its source's region: the vault's, which may differ from the app's.
    assert render(body["params"]["location"]) == "keyVaultAccess.outputs.location"


def test_only_one_topic_per_vault_an_existing_one_is_reused() -> None:
    main = doc("main.bicep")
    assert render(variable(main, "createSystemTopic")) == "empty(existingSystemTopicName)"
    existing = main["resources"]["existingSystemTopic"]
    assert existing["existing"] is True
    assert existing["type"] == "Microsoft.EventGrid/systemTopics"


def test_event_subscription_targets_the_event_grid_function() -> None:
    parsed = doc("modules/event-subscription.bicep")
    properties = resource(parsed, "subscription")["properties"]
    destination = properties["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == "${functionAppId}/functions/${functionName}"
    assert destination["properties"]["maxEventsPerBatch"] == 1
    assert default(parsed, "functionName") == "on_secret_event"
    assert properties["eventDeliverySchema"] == "EventGridSchema"


def test_the_targeted_function_exists_in_function_app_py() -> None:
    source = (REPO / "function_app.py").read_text()
    name = default(doc("modules/event-subscription.bicep"), "functionName")
    assert re.search(rf"""@app\.function_name\(\s*(name\s*=\s*)?["']{name}["']""", source), name
    assert re.search(r"@app\.event_grid_trigger\(", source)


def test_event_subscription_filters_key_vault_secret_events() -> None:
    parsed = doc("modules/event-subscription.bicep")
    event_filter = resource(parsed, "subscription")["properties"]["filter"]
    assert set(event_filter["includedEventTypes"]) == KEY_VAULT_EVENT_TYPES
    assert len(event_filter["includedEventTypes"]) == len(KEY_VAULT_EVENT_TYPES)
    assert event_filter["advancedFilters"] == "subjectFilters"
    assert render(variable(parsed, "subjectFilters")) == (
        "empty(subjectPrefixes) ? [] : "
        "[{operatorType: StringBeginsWith, key: subject, values: subjectPrefixes}]"
    )
    assert default(parsed, "subjectPrefixes") == []
    # main.bicep takes the prefixes as comma-separated text: arrays cannot pass through azd's
    # textual substitution of main.parameters.json.
    body, _ = module("eventSubscription")
    assert body["params"]["subjectPrefixes"] == "subjectPrefixes"
    split = variable(doc("main.bicep"), "subjectPrefixes")["operator"]["operands"]["false_value"]
    assert split["function"]["type"] == "split"
    assert list(split["function"]["parameters"].values()) == ["eventSubjectPrefixes", ","]


def test_event_subscription_retries_then_dead_letters_with_the_topic_identity() -> None:
    parsed = doc("modules/event-subscription.bicep")
    properties = resource(parsed, "subscription")["properties"]
    assert properties["retryPolicy"] == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    assert default(parsed, "maxDeliveryAttempts") == 10
    assert default(parsed, "eventTimeToLiveInMinutes") == 1440
    # Key-less dead-lettering only: the topic's managed identity, never the key-based property.
    assert "deadLetterDestination" not in properties
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert dead_letter["deadLetterDestination"] == {
        "endpointType": "StorageBlob",
        "properties": {
            "resourceId": "deadLetterStorageAccountId",
            "blobContainerName": "deadLetterContainerName",
        },
    }


def test_event_subscription_is_the_second_pass() -> None:
    main = doc("main.bicep")
    assert default(main, "deployEventSubscription") is False
    body, condition = module("eventSubscription")
    assert condition == "deployEventSubscription"
    assert render(body["scope"]) == "resource_group(systemTopicResourceGroupName)"
    assert set(body["dependsOn"]) == {"eventGridTopic", "deadLetterAccess"}


def test_postdeploy_parameters_output_matches_the_module_call() -> None:
    """The azd hook deploys the module with this output; it must say what the main template says."""
    main = doc("main.bicep")
    body, _ = module("eventSubscription")
    output_expression = main["outputs"]["EVENT_SUBSCRIPTION_PARAMETERS"]["value"]["function"]
    assert output_expression["type"] == "string", "azd stores string outputs verbatim"
    output = output_expression["parameters"]["value_to_convert"]
    assert {key: render(value["value"]) for key, value in output.items()} == {
        key: render(value) for key, value in body["params"].items()
    }
    declared = doc("modules/event-subscription.bicep")["parameters"]
    assert set(output) <= set(declared)
    required = {name for name, param in declared.items() if param["default"] is None}
    assert required <= set(output)


# --- function app: Flex Consumption, identity, settings ------------------------------------------


def test_plan_is_flex_consumption() -> None:
    plan = resource(doc("modules/function-app.bicep"), "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"] == {"reserved": True}


def test_python_runtime_matches_the_tests() -> None:
    parsed = doc("modules/function-app.bicep")
    runtime = resource(parsed, "site")["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "pythonVersion"}
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    target = pyproject["tool"]["ruff"]["target-version"]  # e.g. py311
    assert default(parsed, "pythonVersion") == f"{target[2]}.{target[3:]}"
    assert pyproject["project"]["requires-python"] == f">={default(parsed, 'pythonVersion')}"


def test_site_runs_as_the_user_assigned_identity() -> None:
    site = resource(doc("modules/function-app.bicep"), "site")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {"'${identityId}'": {}}}
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert deployment["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }


def test_site_is_https_only_tls12_and_ftp_off() -> None:
    parsed = doc("modules/function-app.bicep")
    site = resource(parsed, "site")
    assert site["properties"]["httpsOnly"] is True
    config = site["properties"]["siteConfig"]
    assert config["minTlsVersion"] == "1.2"
    assert config["scmMinTlsVersion"] == "1.2"
    assert config["ftpsState"] == "Disabled"
    policies = resources(parsed, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {unwrap(p)[0]["name"]: unwrap(p)[0]["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


def test_app_settings_are_exactly_the_contract() -> None:
    settings = app_settings()
    assert set(settings) == CONTRACT_SETTINGS | HOST_SETTINGS
    assert not set(settings) & FORBIDDEN_SETTINGS


def test_app_setting_values() -> None:
    settings = app_settings()
    assert settings["KEY_VAULT_URI"] == "keyVaultUri"
    assert settings["LOCKSTEP_MAPPING"] == "lockstepMapping"
    assert settings["POWER_PLATFORM_ADMIN_URL"] == "powerPlatformAdminUrl"
    assert settings["RECONCILE_SCHEDULE"] == "reconcileSchedule"
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["TEAMS_WEBHOOK_URL"] == (
        "@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${teamsWebhookSecretName}/)"
    )
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"
    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "Authorization=AAD;ClientId=${identityClientId}"
    )


def test_teams_setting_is_optional() -> None:
    parsed = doc("modules/function-app.bicep")
    condition = variable(parsed, "teamsSettings")["operator"]["operands"]["condition"]
    assert render(condition) == "empty(teamsWebhookSecretName)"


def test_main_feeds_the_contract() -> None:
    main = doc("main.bicep")
    body, _ = module("functionApp")
    params = {key: render(value) for key, value in body["params"].items()}
    assert params["keyVaultUri"] == "keyVaultUri"
    assert variable(main, "keyVaultUri") == "https://${vaultName}${environment().suffixes.keyvaultDns}/"
    assert params["identityClientId"] == "identity.outputs.clientId"
    assert params["identityId"] == "identity.outputs.id"
    assert params["lockstepMapping"] == "mappingJson"
    assert render(variable(main, "mappingJson")) == "string(json(mappingText))"
    assert render(variable(main, "mappingText")) == (
        "empty(lockstepMappingBase64) ? lockstepMapping : base64_to_string(lockstepMappingBase64)"
    )
    assert params["powerPlatformAdminUrl"] == "adminUrl"
    assert render(variable(main, "adminUrl")) == (
        "empty(powerPlatformAdminUrl) ? https://api.bap.microsoft.com : powerPlatformAdminUrl"
    )
    assert params["reconcileSchedule"] == "schedule"
    assert render(variable(main, "schedule")) == "empty(reconcileSchedule) ? 0 0 2 * * * : reconcileSchedule"
    assert default(main, "teamsWebhookSecretName") == "teams-webhook-url"
    assert params["teamsWebhookSecretName"] == "teamsWebhookSecretName"


def test_azd_finds_the_app_by_its_service_tag() -> None:
    parsed = doc("modules/function-app.bicep")
    tags = resource(parsed, "site")["tags"]
    assert render(tags) == "union(tags, {'azd-service-name': serviceName})"
    service = default(parsed, "serviceName")
    assert re.search(rf"^  {service}:\n", (REPO / "azure.yaml").read_text(), re.MULTILINE), service


# --- storage, monitoring, vault --------------------------------------------------------------------


def test_storage_accepts_only_entra_id() -> None:
    parsed = doc("modules/storage.bicep")
    properties = resource(parsed, "storage")["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    containers = resources(parsed, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert {unwrap(c)[0]["name"] for c in containers.values()} == {
        "deploymentContainerName",
        "deadLetterContainerName",
        "hostLocksContainerName",
        "hostSecretsContainerName",
    }
    for entry in containers.values():
        assert unwrap(entry)[0]["properties"]["publicAccess"] == "None"


def test_monitoring_has_local_auth_disabled() -> None:
    parsed = doc("modules/monitoring.bicep")
    assert resource(parsed, "applicationInsights")["properties"]["DisableLocalAuth"] is True
    assert resource(parsed, "workspace")["properties"]["features"]["disableLocalAuth"] is True


def test_new_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    vault = resource(doc("modules/key-vault.bicep"), "vault")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault
    _, condition = module("keyVault")
    assert condition == "createKeyVault"
    assert render(variable(doc("main.bicep"), "createKeyVault")) == "empty(existingKeyVaultName)"


# --- no keys, anywhere ---------------------------------------------------------------------------

KEY_MARKERS = (
    "listkeys",
    "listconnectionstrings",
    "listaccountsas",
    "listservicesas",
    "accountkey=",
    "sharedaccesskey",
    "sharedaccesssignature",
    "defaultendpointsprotocol",
    "primarykey",
    "secondarykey",
    "instrumentationkey",
    "storageaccountconnectionstring",
)


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_keys_or_key_based_connection_strings(path: Path) -> None:
    text = path.read_text().lower()
    parsed_text = " ".join(strings(parse(path))).lower()
    for marker in KEY_MARKERS:
        assert marker not in text, marker
        assert marker not in parsed_text, marker
    for symbol, entry in resources(parse(path), "Microsoft.Storage/storageAccounts").items():
        if not entry["existing"]:
            assert unwrap(entry)[0]["properties"]["allowSharedKeyAccess"] is False, symbol


def test_no_keys_in_deployment_inputs() -> None:
    for path in (INFRA / "main.parameters.json", REPO / "azure.yaml", *sorted((INFRA / "hooks").iterdir())):
        text = path.read_text().lower()
        for marker in KEY_MARKERS:
            assert marker not in text, f"{path.name}: {marker}"


# --- deployment inputs --------------------------------------------------------------------------


def test_parameters_file_matches_main() -> None:
    declared = doc("main.bicep")["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(given) <= set(declared), set(given) - set(declared)
    required = {name for name, param in declared.items() if param["default"] is None}
    assert required == {"environmentName", "location"}
    assert required <= set(given)
    assert given["deployEventSubscription"]["value"] == "${DEPLOY_EVENT_SUBSCRIPTION=false}"
    # JSON text cannot pass through azd's textual substitution into a JSON string: base64 can.
    assert "lockstepMapping" not in given
    assert given["lockstepMappingBase64"]["value"] == "${LOCKSTEP_MAPPING_BASE64}"


def test_azure_yaml_deploys_the_repo_root_as_a_python_function() -> None:
    text = (REPO / "azure.yaml").read_text()
    assert re.search(r"^    project: \.\n", text, re.MULTILINE)
    assert re.search(r"^    language: python\n", text, re.MULTILINE)
    assert re.search(r"^    host: function\n", text, re.MULTILINE)
    hook = re.search(r"^  postdeploy:\n(?:    .*\n)*?    run: (?P<run>\S+)", text, re.MULTILINE)
    assert hook, "postdeploy hook"
    assert (REPO / hook["run"]).is_file()
