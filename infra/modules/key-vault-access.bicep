// Data-plane access to the vault, deployed into the vault's own resource group (which is not
// necessarily Lockstep's when an existing vault is used). The vault must use RBAC authorization.
//
// The function identity reads only the secrets it is given: one Key Vault Secrets User assignment
// per secret, scoped to that secret. Microsoft recommends vault-scope assignments for a vault that
// belongs to one application, and secret-scope ones when individual secrets are shared between
// applications ("Best Practices for individual keys, secrets, and certificates role assignments",
// https://learn.microsoft.com/azure/key-vault/general/rbac-guide): the vault Lockstep reads is
// usually a shared one, so secret scope is the default and vault scope an explicit opt-in.
// A role assignment needs its scope to exist: every named secret must exist before deployment
// (they are declared 'existing' here; Lockstep never creates or writes a secret).

@description('Name of the Key Vault (in the resource group this module is deployed to).')
param keyVaultName string

@description('Principal (object) id of the function app identity: gets Key Vault Secrets User.')
param identityPrincipalId string

@description('Secrets the function identity may read (Key Vault Secrets User on each secret). They must exist.')
param secretNames array = []

@description('Grant Key Vault Secrets User on the whole vault instead of on each named secret.')
param secretsUserOnVault bool = false

@description('Optional operator principal (object) id: gets Key Vault Secrets Officer when grantOperatorSecretsOfficer is true.')
param operatorPrincipalId string = ''

@description('Principal type of the operator.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Give the operator Key Vault Secrets Officer on the vault (to store secrets). Off unless asked for; remove it afterwards (docs/deployment.md).')
param grantOperatorSecretsOfficer bool = false

// Key Vault Secrets User: read secret values and metadata (get, list versions), nothing else.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
// Key Vault Secrets Officer: manage secrets (for the human or pipeline that stores them).
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [for name in secretNames: {
  parent: vault
  name: name
}]

// With vault scope on, the per-secret loop is empty (a filtered loop the offline parsers can read).
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in (secretsUserOnVault ? [] : secretNames): {
  name: guid(secrets[i].id, identityPrincipalId, keyVaultSecretsUserRoleId)
  scope: secrets[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource secretsUserVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (secretsUserOnVault) {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantOperatorSecretsOfficer && !empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

output location string = vault.location
