// Lockstep: keeps Power Platform environment variables in lockstep with Key Vault secrets.
//
// One resource group with the function app (Flex Consumption, user-assigned identity), its
// storage, monitoring and the Event Grid plumbing; the vault is new or an existing one (possibly
// in another resource group). Least privilege: the identity reads only the secrets named in
// keyVaultSecretNames (vault scope only with keyVaultSecretsUserOnVault), and the operator gets
// Key Vault Secrets Officer only with grantOperatorSecretsOfficer. Deploy with 'azd up' or 'az deployment sub create'; see
// docs/deployment.md for the two-pass flow (deployEventSubscription) and the steps Bicep cannot do.
//
// Kept to Bicep syntax pycep-parser and checkov can read offline: no user-defined types, no
// imports, no registry modules (see docs/deployment.md, "Why plain resources").

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Environment name (azd environment); makes resource names unique.')
param environmentName string

@minLength(1)
@description('Region for all resources except the system topic, which follows the vault.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse. Default: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Name of an existing Key Vault (RBAC authorization) to read. Empty: create a new vault.')
param existingKeyVaultName string = ''

@description('Resource group of the existing Key Vault. Default: Lockstep\'s resource group.')
param existingKeyVaultResourceGroupName string = ''

@description('Name for a new Key Vault (ignored with existingKeyVaultName). Default: generated.')
@maxLength(24)
param keyVaultName string = ''

@description('Name of an existing Event Grid system topic on the vault (only one may exist per vault). Empty: create one.')
param existingSystemTopicName string = ''

@description('Resource group of the existing system topic. Default: the vault\'s resource group.')
param existingSystemTopicResourceGroupName string = ''

@description('LOCKSTEP_MAPPING as inline JSON text. Use this or lockstepMappingBase64.')
param lockstepMapping string = ''

@description('LOCKSTEP_MAPPING as base64 of the JSON (safe through azd\'s text substitution). Wins over lockstepMapping.')
param lockstepMappingBase64 string = ''

@description('Vault secret holding the Teams Workflows webhook URL (TEAMS_WEBHOOK_URL is a reference to it). Empty: no Teams notifications.')
param teamsWebhookSecretName string = 'teams-webhook-url'

@description('POWER_PLATFORM_ADMIN_URL (sovereign clouds differ). Empty: the public cloud default.')
param powerPlatformAdminUrl string = ''

@description('RECONCILE_SCHEDULE: NCRONTAB of the nightly reconcile. Empty: 0 0 2 * * * (02:00 UTC).')
param reconcileSchedule string = ''

@description('FLOW_ACTIVATION_AS_OWNER: turn flows back on as their owner (CallerObjectId). The application user then needs the Delegate privilege.')
param flowActivationAsOwner bool = false

@description('Create the Event Grid subscription. It needs the on_secret_event function to exist: false on the first pass, true once the code is deployed.')
param deployEventSubscription bool = false

@description('Optional comma-separated secret-name prefixes (no spaces) for the subscription\'s subject filter, e.g. sql-,graph-. Empty: events for every secret in the vault.')
param eventSubjectPrefixes string = ''

@description('Event Grid delivery attempts before dead-lettering.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 10

@description('Minutes Event Grid keeps retrying an event before dead-lettering it.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Upper bound on function instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Comma-separated names (no spaces) of the vault secrets the function identity may read: every secret the mapping names, plus teamsWebhookSecretName. Each gets its own Key Vault Secrets User assignment and must exist before deployment.')
param keyVaultSecretNames string = ''

@description('Grant the function identity Key Vault Secrets User on the whole vault instead of on each secret in keyVaultSecretNames (for a vault that holds only Lockstep\'s secrets).')
param keyVaultSecretsUserOnVault bool = false

@description('Optional principal (object) id of the operator (azd passes the signed-in user); gets Key Vault Secrets Officer only with grantOperatorSecretsOfficer.')
param operatorPrincipalId string = ''

@description('Give operatorPrincipalId Key Vault Secrets Officer on the vault, to store the mapped secrets and the webhook URL. Off by default; remove it when done (docs/deployment.md).')
param grantOperatorSecretsOfficer bool = false

@description('Principal type of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'lockstep'
}
var rgName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName

var createKeyVault = empty(existingKeyVaultName)
var vaultName = createKeyVault ? (empty(keyVaultName) ? 'kvlock${resourceToken}' : keyVaultName) : existingKeyVaultName
var vaultResourceGroupName = createKeyVault || empty(existingKeyVaultResourceGroupName) ? rgName : existingKeyVaultResourceGroupName
// KEY_VAULT_URI: https://<vault>.vault.azure.net/ (the suffix follows the cloud).
var keyVaultUri = 'https://${vaultName}${environment().suffixes.keyvaultDns}/'

var createSystemTopic = empty(existingSystemTopicName)
var systemTopicName = createSystemTopic ? 'evgt-${vaultName}' : existingSystemTopicName
var systemTopicResourceGroupName = createSystemTopic ? rgName : (empty(existingSystemTopicResourceGroupName) ? vaultResourceGroupName : existingSystemTopicResourceGroupName)

// Empty strings (what azd substitutes for unset variables) fall back to the contract defaults.
var adminUrl = empty(powerPlatformAdminUrl) ? 'https://api.bap.microsoft.com' : powerPlatformAdminUrl
var schedule = empty(reconcileSchedule) ? '0 0 2 * * *' : reconcileSchedule

var subjectPrefixes = empty(eventSubjectPrefixes) ? [] : split(eventSubjectPrefixes, ',')
var appSecretNames = empty(keyVaultSecretNames) ? [] : split(keyVaultSecretNames, ',')

var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'

// json() fails the deployment early when the mapping is not JSON (or empty); string() stores it compact.
var mappingText = empty(lockstepMappingBase64) ? lockstepMapping : base64ToString(lockstepMappingBase64)
var mappingJson = string(json(mappingText))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
  scope: resourceGroup(vaultResourceGroupName)
}

resource existingSystemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
  scope: resourceGroup(systemTopicResourceGroupName)
}

module identity 'modules/identity.bicep' = {
  name: 'lockstep-identity'
  scope: rg
  params: {
    name: 'id-lockstep-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'lockstep-monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-lockstep-${resourceToken}'
    applicationInsightsName: 'appi-lockstep-${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'lockstep-storage'
  scope: rg
  params: {
    name: 'stlock${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    identityPrincipalId: identity.outputs.principalId
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'modules/key-vault.bicep' = if (createKeyVault) {
  name: 'lockstep-key-vault'
  scope: rg
  params: {
    name: vaultName
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module keyVaultAccess 'modules/key-vault-access.bicep' = {
  name: 'lockstep-key-vault-access'
  scope: resourceGroup(vaultResourceGroupName)
  params: {
    keyVaultName: vaultName
    identityPrincipalId: identity.outputs.principalId
    secretNames: appSecretNames
    secretsUserOnVault: keyVaultSecretsUserOnVault
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    grantOperatorSecretsOfficer: grantOperatorSecretsOfficer
  }
  dependsOn: [
    keyVault
  ]
}

module functionApp 'modules/function-app.bicep' = {
  name: 'lockstep-function-app'
  scope: rg
  params: {
    name: 'func-lockstep-${resourceToken}'
    planName: 'plan-lockstep-${resourceToken}'
    location: location
    tags: tags
    maximumInstanceCount: maximumInstanceCount
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    keyVaultUri: keyVaultUri
    lockstepMapping: mappingJson
    teamsWebhookSecretName: teamsWebhookSecretName
    powerPlatformAdminUrl: adminUrl
    reconcileSchedule: schedule
    flowActivationAsOwner: flowActivationAsOwner
  }
  dependsOn: [
    // Vault access first, so the TEAMS_WEBHOOK_URL reference resolves on first start.
    keyVaultAccess
  ]
}

module eventGridTopic 'modules/event-grid-topic.bicep' = if (createSystemTopic) {
  name: 'lockstep-event-grid-topic'
  scope: rg
  params: {
    name: systemTopicName
    location: keyVaultAccess.outputs.location
    tags: tags
    keyVaultId: vault.id
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

var topicPrincipalId = createSystemTopic ? eventGridTopic.outputs.principalId : existingSystemTopic.identity.principalId

module deadLetterAccess 'modules/dead-letter-access.bicep' = {
  name: 'lockstep-dead-letter-access'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: topicPrincipalId
  }
}

module eventSubscription 'modules/event-subscription.bicep' = if (deployEventSubscription) {
  name: 'lockstep-event-subscription'
  scope: resourceGroup(systemTopicResourceGroupName)
  params: {
    systemTopicName: systemTopicName
    functionAppId: functionApp.outputs.id
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    subjectPrefixes: subjectPrefixes
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
  dependsOn: [
    eventGridTopic
    deadLetterAccess
  ]
}

// Outputs: azd stores them in the environment (.azure/<env>/.env) for the postdeploy hook and
// the manual steps in docs/deployment.md. (Never name one AZURE_CLIENT_ID: hooks would inherit it.)
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output LOCKSTEP_IDENTITY_NAME string = identity.outputs.name
output LOCKSTEP_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output LOCKSTEP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output KEY_VAULT_NAME string = vaultName
output KEY_VAULT_RESOURCE_GROUP string = vaultResourceGroupName
output KEY_VAULT_URI string = keyVaultUri
output KEY_VAULT_ID string = vault.id
output TEAMS_WEBHOOK_SECRET_NAME string = teamsWebhookSecretName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output EVENT_GRID_SYSTEM_TOPIC_NAME string = systemTopicName
output EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP string = systemTopicResourceGroupName
output EVENT_SUBSCRIPTION_DEPLOYED bool = deployEventSubscription
// Parameters of modules/event-subscription.bicep for the azd postdeploy hook's second pass
// ('az deployment group create --parameters @file'), as JSON text: the same values as the module
// call above (a test holds the two together).
output EVENT_SUBSCRIPTION_PARAMETERS string = string({
  systemTopicName: {
    value: systemTopicName
  }
  functionAppId: {
    value: functionApp.outputs.id
  }
  deadLetterStorageAccountId: {
    value: storage.outputs.id
  }
  deadLetterContainerName: {
    value: storage.outputs.deadLetterContainerName
  }
  subjectPrefixes: {
    value: subjectPrefixes
  }
  maxDeliveryAttempts: {
    value: maxDeliveryAttempts
  }
  eventTimeToLiveInMinutes: {
    value: eventTimeToLiveInMinutes
  }
})
