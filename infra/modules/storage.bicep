// The function app's own storage account: host state (AzureWebJobsStorage), the Flex
// Consumption deployment container and the Event Grid dead-letter container. Shared keys are
// disabled, so every caller authenticates with Entra ID.
//
// The function identity gets what the Functions host needs, where it needs it, and nothing on the
// dead-letter container (Event Grid's own identity writes there, see dead-letter-access.bicep):
// - Storage Blob Data Owner on the host's two containers, azure-webjobs-hosts (locks, timer
//   schedule status) and azure-webjobs-secrets (function keys). Microsoft: "The Storage Blob Data
//   Owner role covers the basic needs of Functions host storage"; the timer and Event Grid
//   triggers add nothing ("Connecting to host storage with an identity",
//   https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
//   Microsoft's example grants it on the account; the containers are created here so the role can
//   be scoped to them.
// - Storage Blob Data Contributor on the deployment container: Flex Consumption reads (and, on a
//   deployment, writes) the package with this identity; Microsoft assigns that role for deployment
//   storage ("Create and manage function apps in the Flex Consumption plan", Configure deployment
//   settings, https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to).
// - Storage Table Data Contributor on the account: the host's diagnostic events (same Microsoft
//   table, "with support for diagnostic events"); their tables are created by the host, by month,
//   so they cannot be scoped in advance.
// - No queue role: queues are needed only by blob triggers and Durable Functions (same table).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Blob container that holds the deployment package (Flex Consumption).')
param deploymentContainerName string

@description('Blob container that receives undeliverable Event Grid events.')
param deadLetterContainerName string

@description('Principal (object) id of the function app identity.')
param identityPrincipalId string

@description('Log Analytics workspace that receives the storage diagnostics.')
param logAnalyticsWorkspaceId string

// Built-in role definition ids (identical in every tenant).
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

// The containers the Functions host uses in AzureWebJobsStorage (created here, not by the host,
// so that its role can be scoped to them).
var hostLocksContainerName = 'azure-webjobs-hosts'
var hostSecretsContainerName = 'azure-webjobs-secrets'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its host storage from public, non-trusted addresses; a deny-by-default firewall would stop the host. Access is Entra-only (shared keys off) and RBAC-scoped.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the account must stay reachable on its public endpoint without VNet integration; anonymous blob access and shared keys are both disabled.
  // checkov:skip=CKV_AZURE_206: Locally redundant storage is deliberate: the account holds only re-creatable host state, the deployment package and dead-lettered events (which the nightly reconcile makes redundant).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostLocksContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: hostLocksContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostSecretsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: hostSecretsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostLocksOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostLocksContainer.id, identityPrincipalId, storageBlobDataOwnerRoleId)
  scope: hostLocksContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource hostSecretsOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostSecretsContainer.id, identityPrincipalId, storageBlobDataOwnerRoleId)
  scope: hostSecretsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource packageContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, identityPrincipalId, storageBlobDataContributorRoleId)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageTableDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Diagnostics to Log Analytics: account transactions, and every blob read, write and delete (who
// touched the package, the host containers or the dead letters).
resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-to-log-analytics'
  scope: storage
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
output deadLetterContainerName string = deadLetterContainer.name
