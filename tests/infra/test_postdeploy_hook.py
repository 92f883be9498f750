"""The azd postdeploy hook (infra/hooks/postdeploy.sh), run against stub `az` and `azd` commands.

The stubs log their arguments; `az resource show` succeeds once the "function" exists (after a
given number of polls), and `az deployment group create` copies its parameters file aside so the
test can compare it with what main.bicep handed over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "infra" / "hooks" / "postdeploy.sh"
SITE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-test"
    "/providers/Microsoft.Web/sites/func-lockstep-test"
)
PARAMETERS = {
    "systemTopicName": {"value": "evgt-kvlocktest"},
    "functionAppId": {"value": SITE_ID},
    "deadLetterStorageAccountId": {"value": "/subscriptions/0/resourceGroups/rg-test/providers/x/y"},
    "deadLetterContainerName": {"value": "eventgrid-deadletter"},
    "subjectPrefixes": {"value": []},
    "maxDeliveryAttempts": {"value": 10},
    "eventTimeToLiveInMinutes": {"value": 1440},
}

STUB = """#!/bin/sh
echo "$(basename "$0") $*" >>"$STUB_LOG"
if [ "$(basename "$0")" = az ] && [ "$1" = resource ] && [ "$2" = show ]; then
  count=$(cat "$STUB_DIR/polls" 2>/dev/null || echo 0)
  count=$((count + 1))
  echo "$count" >"$STUB_DIR/polls"
  [ "$count" -gt "$POLLS_BEFORE_FOUND" ] || exit 3
fi
if [ "$(basename "$0")" = az ] && [ "$1" = deployment ]; then
  for arg in "$@"; do
    case "$arg" in @*) cp "${arg#@}" "$STUB_DIR/parameters.json" ;; esac
  done
fi
exit 0
"""


def run_hook(tmp_path: Path, polls_before_found: int = 0, **env: str) -> tuple[int, list[str], str]:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("az", "azd"):
        (stubs / name).write_text(STUB)
        (stubs / name).chmod(0o755)
    log = tmp_path / "calls.log"
    environment = {
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "STUB_DIR": str(tmp_path),
        "POLLS_BEFORE_FOUND": str(polls_before_found),
        "LOCKSTEP_FUNCTION_POLL_SECONDS": "0",
        "AZURE_FUNCTION_APP_ID": SITE_ID,
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP": "rg-vault",
        "EVENT_SUBSCRIPTION_PARAMETERS": json.dumps(PARAMETERS),
        **env,
    }
    sh = shutil.which("sh")
    assert sh
    result = subprocess.run(  # noqa: S603 - fixed script, stubbed commands
        [sh, str(HOOK)], env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, calls, result.stdout + result.stderr


def test_waits_for_the_function_then_deploys_the_subscription_module(tmp_path: Path) -> None:
    code, calls, output = run_hook(tmp_path, polls_before_found=2)
    assert code == 0, output
    show = f"az resource show --ids {SITE_ID}/functions/on_secret_event --output none"
    assert calls[:3] == [show, show, show]
    deploy = calls[3].split()
    assert deploy[:4] == ["az", "deployment", "group", "create"]
    assert deploy[deploy.index("--resource-group") + 1] == "rg-vault"
    assert deploy[deploy.index("--subscription") + 1] == "00000000-0000-0000-0000-000000000000"
    template = Path(deploy[deploy.index("--template-file") + 1]).resolve()
    assert template == REPO / "infra" / "modules" / "event-subscription.bicep"
    assert json.loads((tmp_path / "parameters.json").read_text()) == PARAMETERS
    assert calls[4:] == ["azd env set DEPLOY_EVENT_SUBSCRIPTION true"]


def test_does_nothing_once_provision_manages_the_subscription(tmp_path: Path) -> None:
    code, calls, output = run_hook(tmp_path, DEPLOY_EVENT_SUBSCRIPTION="true")
    assert code == 0, output
    assert calls == []


def test_gives_up_when_the_function_never_appears(tmp_path: Path) -> None:
    code, calls, output = run_hook(tmp_path, polls_before_found=99, LOCKSTEP_FUNCTION_WAIT_SECONDS="0")
    assert code != 0
    assert "azd hooks run postdeploy" in output
    assert [call for call in calls if "deployment" in call or call.startswith("azd")] == []


@pytest.mark.parametrize("missing", ["AZURE_FUNCTION_APP_ID", "EVENT_SUBSCRIPTION_PARAMETERS"])
def test_refuses_to_run_before_provision(tmp_path: Path, missing: str) -> None:
    code, calls, output = run_hook(tmp_path, **{missing: ""})
    assert code != 0
    assert missing in output
    assert calls == []
