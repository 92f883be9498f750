#!/bin/sh
# azd postdeploy hook: the second pass. Creates the Event Grid subscription (Key Vault secret
# events -> the on_secret_event function) once the code is deployed, because Event Grid refuses
# a destination function that does not exist yet. Deploys infra/modules/event-subscription.bicep
# with the parameters main.bicep output (EVENT_SUBSCRIPTION_PARAMETERS), then sets
# DEPLOY_EVENT_SUBSCRIPTION=true so every later 'azd provision' manages the subscription itself.
# Needs the Azure CLI, signed in to the same tenant as azd ('az login'). Re-run by hand with:
#   azd hooks run postdeploy
set -eu

if [ "${DEPLOY_EVENT_SUBSCRIPTION:-false}" = "true" ]; then
  echo "Event Grid subscription: managed by 'azd provision' (DEPLOY_EVENT_SUBSCRIPTION=true)."
  exit 0
fi

for name in AZURE_FUNCTION_APP_ID EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP EVENT_SUBSCRIPTION_PARAMETERS; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "error: $name is not in the azd environment; run 'azd provision' first" >&2
    exit 1
  fi
done
if ! command -v az >/dev/null 2>&1; then
  echo "error: the Azure CLI (az) is needed to create the Event Grid subscription" >&2
  exit 1
fi

here="$(cd "$(dirname "$0")" && pwd)"
template="$here/../modules/event-subscription.bicep"
function_id="$AZURE_FUNCTION_APP_ID/functions/on_secret_event"
wait_seconds="${LOCKSTEP_FUNCTION_WAIT_SECONDS:-600}"
poll_seconds="${LOCKSTEP_FUNCTION_POLL_SECONDS:-15}"

# The host indexes functions after the package lands; until then Event Grid cannot validate.
echo "Waiting for the on_secret_event function to be indexed (up to ${wait_seconds}s)..."
waited=0
until az resource show --ids "$function_id" --output none >/dev/null 2>&1; do
  if [ "$waited" -ge "$wait_seconds" ]; then
    echo "error: $function_id not found after ${wait_seconds}s." >&2
    echo "Check the deployment and the app's logs, then re-run: azd hooks run postdeploy" >&2
    exit 1
  fi
  sleep "$poll_seconds"
  waited=$((waited + poll_seconds))
done

params_file="$(mktemp)"
trap 'rm -f "$params_file"' EXIT
printf '%s\n' "$EVENT_SUBSCRIPTION_PARAMETERS" >"$params_file"

echo "Creating the Event Grid subscription in $EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP..."
set -- deployment group create \
  --name lockstep-event-subscription \
  --resource-group "$EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP" \
  --template-file "$template" \
  --parameters "@$params_file" \
  --output none
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
  set -- "$@" --subscription "$AZURE_SUBSCRIPTION_ID"
fi
az "$@"

azd env set DEPLOY_EVENT_SUBSCRIPTION true
echo "Event Grid subscription created; later 'azd provision' runs keep it (DEPLOY_EVENT_SUBSCRIPTION=true)."
