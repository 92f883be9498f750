// Lets the system topic's identity write undeliverable events into the dead-letter container:
// Storage Blob Data Contributor on that one container, nothing else.

@description('Name of the storage account that holds the dead-letter container.')
param storageAccountName string

@description('Dead-letter container name.')
param deadLetterContainerName string

@description('Principal (object) id of the system topic\'s system-assigned identity.')
param topicPrincipalId string

// Storage Blob Data Contributor: read/write/delete blobs.
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, topicPrincipalId, storageBlobDataContributorRoleId)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
  }
}
