// The Lockstep function app on Flex Consumption (FC1), running as the user-assigned identity.
// Configuration follows the app-settings contract in the README (Configuration). On Flex Consumption the worker
// runtime and version live in functionAppConfig.runtime; FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION are not app settings there.

@description('Function app name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the resources (the site also gets azd-service-name).')
param tags object = {}

@description('azd service name in azure.yaml; azd finds the app by this tag.')
param serviceName string = 'lockstep'

@description('Python version of the Functions worker; matches the version the tests run on.')
param pythonVersion string = '3.11'

@description('Upper bound on instances. Keeps concurrent Dataverse calls well inside service-protection limits.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Instance memory size in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Name of the host storage account (identity-based AzureWebJobsStorage).')
param storageAccountName string

@description('Blob endpoint of the host storage account, e.g. https://<account>.blob.core.windows.net/.')
param storageBlobEndpoint string

@description('Blob container that holds the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (local auth is disabled; ingestion needs the identity).')
param applicationInsightsConnectionString string

@description('Log Analytics workspace that receives the app\'s platform logs and metrics.')
param logAnalyticsWorkspaceId string

@description('KEY_VAULT_URI: https://<vault>.vault.azure.net/')
param keyVaultUri string

@description('LOCKSTEP_MAPPING: the mapping as inline JSON.')
param lockstepMapping string

@description('Name of the vault secret holding the Teams Workflows webhook URL. Empty: no TEAMS_WEBHOOK_URL setting.')
param teamsWebhookSecretName string = ''

@description('POWER_PLATFORM_ADMIN_URL: Power Platform admin API base URL.')
param powerPlatformAdminUrl string = 'https://api.bap.microsoft.com'

@description('RECONCILE_SCHEDULE: NCRONTAB of the nightly reconcile timer.')
param reconcileSchedule string = '0 0 2 * * *'

@description('FLOW_ACTIVATION_AS_OWNER: turn flows back on as their owner (needs the Delegate privilege).')
param flowActivationAsOwner bool = false

var contractSettings = [
  {
    name: 'KEY_VAULT_URI'
    value: keyVaultUri
  }
  {
    name: 'LOCKSTEP_MAPPING'
    value: lockstepMapping
  }
  {
    name: 'POWER_PLATFORM_ADMIN_URL'
    value: powerPlatformAdminUrl
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'RECONCILE_SCHEDULE'
    value: reconcileSchedule
  }
  {
    name: 'FLOW_ACTIVATION_AS_OWNER'
    value: flowActivationAsOwner ? 'true' : 'false'
  }
]

// The webhook URL is a credential (its sig= parameter): the setting is a Key Vault reference,
// resolved by the platform with the user-assigned identity (keyVaultReferenceIdentity below).
// A versionless SecretUri (trailing slash) follows new secret versions.
var teamsSettings = empty(teamsWebhookSecretName) ? [] : [
  {
    name: 'TEAMS_WEBHOOK_URL'
    value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${teamsWebhookSecretName}/)'
  }
]

// Identity-based host storage and Entra-authenticated telemetry: no keys anywhere.
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccountName
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD;ClientId=${identityClientId}'
  }
  {
    // With host.json telemetryMode OpenTelemetry: the Python worker streams its own OpenTelemetry
    // data (configured by the app), instead of the host duplicating its log entries.
    name: 'PYTHON_ENABLE_OPENTELEMETRY'
    value: 'true'
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy is a paid Flex Consumption option that needs always-ready instances; a scale-to-zero sync job does not warrant it, and the nightly reconcile covers missed events.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the AzureFunction destination over the app's public endpoint; there is no VNet or private endpoint in this template. The only HTTP surface is the Event Grid webhook, protected by its system key.
  // checkov:skip=CKV_AZURE_17: Client certificates would break Event Grid delivery, which authenticates with the Functions system key, not a client certificate.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per trigger; there is no instance minimum to set for failover.
  // checkov:skip=CKV_AZURE_213: The app serves no HTTP traffic of its own, so there is nothing for an HTTP health-check path to probe; host health is visible in Application Insights.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat(contractSettings, teamsSettings, hostSettings)
    }
  }
}

// No publishing with user names and passwords: azd and 'az functionapp deployment' use Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// Platform logs and metrics to Log Analytics (the app's own telemetry goes to Application Insights).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'function-app-to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
