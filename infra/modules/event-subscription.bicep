// The Event Grid subscription that delivers Key Vault secret events to the on_secret_event
// function. It can only be created once the function exists (Event Grid validates the
// destination), so it is deployed after the code: by the azd postdeploy hook
// (infra/hooks/postdeploy.sh), or by a second 'az deployment' pass with deployEventSubscription=true.
// Deployed into the system topic's resource group.

@description('Name of the Event Grid system topic on the vault.')
param systemTopicName string

@description('Event subscription name.')
param eventSubscriptionName string = 'lockstep-secret-events'

@description('Resource id of the function app (Microsoft.Web/sites).')
param functionAppId string

@description('Name of the Event Grid triggered function.')
param functionName string = 'on_secret_event'

@description('Resource id of the storage account that holds the dead-letter container.')
param deadLetterStorageAccountId string

@description('Dead-letter container name.')
param deadLetterContainerName string

@description('Optional subject (secret name) prefixes; empty delivers events for every secret in the vault.')
@maxLength(25)
param subjectPrefixes array = []

@description('Delivery attempts before an event is dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 10

@description('Minutes an undelivered event is retried before it is dead-lettered.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

var subjectFilters = empty(subjectPrefixes) ? [] : [
  {
    operatorType: 'StringBeginsWith'
    key: 'subject'
    values: subjectPrefixes
  }
]

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: eventSubscriptionName
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        // The Python trigger takes one event per invocation.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNewVersionCreated'
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
      advancedFilters: subjectFilters
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Dead-lettering authenticates as the topic's system-assigned identity (no storage keys).
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = subscription.id
output name string = subscription.name
