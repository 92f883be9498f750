"""The demo's connections act: a service principal's client secret rotates, and its connections follow.

An app registration's secret feeds three Dataverse connections (dev, test, prod) shared with
Lockstep as Can edit, plus one in prod that its maker never shared. Entra issues a new secret,
the administrator stores it in Key Vault, Event Grid calls the function: the shared connections
are updated and verified Connected, the unshared one is reported needs_action with what to do.
Every claim is checked against the emulator's state; secret values are canaries that the demo's
guarded output withholds should one ever reach it.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from demo.acts import Acts
from demo.render import OUTCOME_STYLE
from demo.scenario import canary, function_event
from sync.runtime import close_runtime

SECRET = "flows-spn-secret"
CONNECTOR = "shared_commondataserviceforapps"
UNSHARED = "Finance sync (Maria's)"
WHY = {
    "updated": "PUT with the complete parameter set, read back: Connected",
    "unchanged": "Connected and changed after the current version: nothing written",
    "needs_action": "Lockstep may not edit it: a person must share it",
}


def connection_lines(report: dict[str, Any]) -> list[tuple[Text, str]]:
    """Each connection target: a head line (environment, name, outcome) and its reason."""
    lines = []
    for secret in report["secrets"]:
        for result in secret["results"]:
            connection = result.get("connection") or {}
            name = connection.get("display_name") or connection.get("id") or "?"
            outcome = result["outcome"]
            head = Text.assemble(
                f"{result['environment']:<5} stage {result['stage']}  {name}  ",
                (outcome, OUTCOME_STYLE.get(outcome, "yellow")),
            )
            lines.append((head, result["reason"] or WHY.get(outcome, "")))
    return lines


async def connection_rotation(acts: Acts) -> None:
    n, scenario, emulator = acts.n, acts.scenario, acts.emulator
    n.act("6. A service principal's client secret rotates: its connections follow")
    old, new = canary("spn-old-"), canary("spn-new-")
    radioactive = getattr(n.console.file, "radioactive", None)
    if isinstance(radioactive, list):  # the demo's guarded output withholds lines carrying these
        radioactive.extend([old, new])
    app = emulator.add_app_registration(display_name="Flows SPN", secret=old)
    scenario.vault.set_secret(SECRET, old)
    envs = {name: scenario.environments[name] for name in ("dev", "test", "prod")}
    ids = {
        name: env.add_connection(
            CONNECTOR,
            "ServicePrincipalOauth",
            client_id=app.client_id,
            display_name=f"Flows SPN {name}",
            shared_with_lockstep="CanEdit",
        )
        for name, env in envs.items()
    }
    maria = envs["prod"].add_user("Maria Lopez")
    unshared = envs["prod"].add_connection(
        CONNECTOR, "ServicePrincipalOauth", client_id=app.client_id, display_name=UNSHARED, owner=maria
    )
    scenario.mapping["secrets"].append(
        {
            "secret": SECRET,
            "connection": {"connector": CONNECTOR, "client_id": app.client_id, "tenant_id": app.tenant_id},
            "environments": list(envs),
        }
    )
    os.environ["LOCKSTEP_MAPPING"] = json.dumps(scenario.mapping)
    await close_runtime()  # the mapping changed: the next invocation reads it again
    n.say(f"  App registration 'Flows SPN', client id {app.client_id},")
    n.say("  signs in 4 Dataverse connections: 'Flows SPN dev/test/prod', shared with")
    n.say(f"  Lockstep as Can edit, and '{UNSHARED}' in prod, never shared.")
    n.say(f"  Mapping row: {SECRET} → the Dataverse connections of that client id")
    await asyncio.sleep(1.1 - datetime.now(UTC).microsecond / 1e6)  # Key Vault keeps whole seconds

    app.rotate_secret(new)
    event = scenario.rotate(SECRET, new)
    n.say(f"  Entra issues a new client secret; {SECRET} is now at version")
    n.say(f"  {event['data']['Version']} → on_secret_event")
    emulator.reset_requests()
    await acts.on_event(function_event(event))
    report = acts.catcher.reports[-1]
    for head, reason in connection_lines(report):
        n.wrapped(head, 2)
        if reason:
            n.wrapped(Text(f"reason: {reason}", style="dim"), 6)
    n.say(f"  correlation id {report['correlation_id']} · Teams: {report['notification']}", style="dim")
    acts.show_last_card()

    outcomes = {
        (r["connection"] or {}).get("id"): r
        for s in report["secrets"]
        for r in s["results"]
        if r.get("connection")
    }
    puts = [r for r in emulator.requests if r.service == "connectivity" and r.method == "PUT"]
    accepted = [r.path for r in puts if r.status == 200]
    for name, env in envs.items():
        state = env.connection(ids[name])
        n.check(
            f"Flows SPN {name} holds the new secret and reports Connected",
            env.connection_holds(ids[name], new) and state["status"] == "Connected",
        )
    n.check(
        "each was written once: 3 PUTs accepted, 1 refused (403)",
        len(accepted) == 3
        and all(any(ids[name] in path for path in accepted) for name in ids)
        and [r.status for r in puts if unshared in r.path] == [403],
    )
    needs = outcomes.get(unshared, {})
    n.check(
        f"'{UNSHARED}': needs_action, share it as Can edit",
        needs.get("outcome") == "needs_action" and "Can edit" in needs.get("reason", ""),
    )
    n.check(
        f"'{UNSHARED}' still holds the old secret",
        envs["prod"].connection(unshared)["puts"] == 0 and envs["prod"].connection_holds(unshared, old),
    )
    n.check(
        "it did not hold back prod's shared connection",
        outcomes.get(ids["prod"], {}).get("outcome") == "updated",
    )
    post = json.dumps(emulator.teams_posts[-1], ensure_ascii=False)
    n.check("the card names the connection that needs action", "Finance sync" in post)
    n.check("the card carries neither client secret", old not in post and new not in post)
    app.revoke_secret(old)
    n.say("  The administrator then revokes the old client secret in Entra:")
    n.check(
        f"'{UNSHARED}' now reports Error: it needed that share",
        envs["prod"].connection(unshared)["status"] == "Error",
    )
    n.check(
        "the three connections Lockstep updated stay Connected",
        all(env.connection(ids[name])["status"] == "Connected" for name, env in envs.items()),
    )
