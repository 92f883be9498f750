// The Event Grid system topic on the vault. Only one system topic may exist per source, so this
// module is used only when no existing topic is named. The topic gets a system-assigned identity
// so that its event subscription can dead-letter to blob storage without keys.

@description('System topic name.')
param name string

@description('Region of the vault (a system topic lives in its source\'s region).')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Resource id of the Key Vault whose events the topic carries.')
param keyVaultId string

@description('Log Analytics workspace that receives delivery failures.')
param logAnalyticsWorkspaceId string

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: keyVaultId
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource deliveryFailures 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'delivery-failures-to-log-analytics'
  scope: topic
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'DeliveryFailures'
        enabled: true
      }
    ]
  }
}

output name string = topic.name
output principalId string = topic.identity.principalId
