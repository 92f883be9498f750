"""Scenario (e): a service principal's client secret rotated to 5 connections in each of 3 stages.

One app registration signs in 5 Dataverse connections in each of 3 environments (one per rollout
stage), found by client id (no pinned ids). Entra issues a new secret, it is stored in Key Vault,
and the event runs through the production entry point, cold (a fresh runtime: tokens, Key Vault's
challenge) and then warm. Printed: requests per connection by service and verb, and the wall time
against the critical path.

The critical path, in request latencies: the secret read (1; every stage's readiness check runs
alongside it), then per stage, one after the other: the environment's connection listing (1),
then each connection's PUT and its read back (2; a stage's 5 connections run concurrently, so they
add no latency of their own), then the Teams card (1). 1 + 3 x 3 + 1 = 11 latencies. Token
requests (cold), TLS handshakes, CPU and the emulator's own work come on top: the ratio shows them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from datetime import UTC, datetime

from benchmarks.measure import deliver_event, measure
from demo.scenario import canary
from emulator import Emulator, Environment
from sync.runtime import close_runtime

SECRET = "bench-spn-secret"  # noqa: S105 - a secret name, not a value
VAULT = "lockstep-bench-spn"
CONNECTOR = "shared_commondataserviceforapps"
PER_ENVIRONMENT = 5
STAGES = 3
CRITICAL_LATENCIES = 1 + STAGES * 3 + 1


async def _next_second() -> None:
    """Key Vault keeps whole seconds: a rotation must start in a later second than the last PUT,
    or the connections count as changed with the new version (the documented edge)."""
    await asyncio.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)


async def deliver(emulator: Emulator, secret: str) -> object:
    return await deliver_event(emulator.key_vault(VAULT).secret_event(secret))


async def run(latency: float) -> None:
    """Scenario (e) on an emulator of its own, in this process (the reconcile scenarios run theirs
    in another process); the environment variables point Lockstep at it for the scenario only."""
    saved = dict(os.environ)
    await close_runtime()
    try:
        with Emulator() as emulator:
            chosen = [emulator.environment(f"spn{i}", org=f"bench-spn-{i}") for i in range(STAGES)]
            mapping = {
                "environments": [
                    {"name": env.name, "id": env.id, "url": env.url, "stage": i + 1}
                    for i, env in enumerate(chosen)
                ],
                "secrets": [],
            }
            os.environ.update(
                {
                    **emulator.client_environment(),
                    "KEY_VAULT_URI": emulator.key_vault(VAULT).url,
                    "LOCKSTEP_MAPPING": json.dumps(mapping),
                    "TEAMS_WEBHOOK_URL": emulator.teams_webhook_url(),
                }
            )
            os.environ.pop("LOCKSTEP_MAPPING_FILE", None)
            emulator.set_latency(latency)
            await connection_rotation(emulator, chosen, latency)
    finally:
        await close_runtime()
        os.environ.clear()
        os.environ.update(saved)


async def connection_rotation(emulator: Emulator, chosen: list[Environment], latency: float) -> None:
    vault = emulator.key_vault(VAULT)
    app = emulator.add_app_registration(display_name="Bench SPN", secret=canary("spn-"))
    vault.set_secret(SECRET, canary("spn-stored-"))
    ids = {
        env.name: [
            env.add_connection(
                CONNECTOR,
                "ServicePrincipalOauth",
                client_id=app.client_id,
                display_name=f"Bench SPN {env.name} {i}",
                shared_with_lockstep="CanEdit",
            )
            for i in range(PER_ENVIRONMENT)
        ]
        for env in chosen
    }
    mapping = json.loads(os.environ["LOCKSTEP_MAPPING"])
    mapping["secrets"].append(
        {
            "secret": SECRET,
            "connection": {"connector": CONNECTOR, "client_id": app.client_id, "tenant_id": app.tenant_id},
            "environments": [env.name for env in chosen],
        }
    )
    os.environ["LOCKSTEP_MAPPING"] = json.dumps(mapping)
    await close_runtime()  # the mapping changed: the next event builds a fresh runtime
    count = PER_ENVIRONMENT * len(chosen)
    critical = CRITICAL_LATENCIES * latency
    for label in ("cold", "warm"):
        await _next_second()
        new = app.rotate_secret(canary("spn-new-"))
        vault.set_secret(SECRET, new)
        result = await measure(
            emulator,
            f"(e) SPN secret to {PER_ENVIRONMENT} connections x {len(chosen)} stages, {label}",
            count,
            lambda: deliver(emulator, SECRET),
        )
        connected = sum(
            env.connection_holds(cid, new) and env.connection(cid)["status"] == "Connected"
            for env in chosen
            for cid in ids[env.name]
        )
        per_connection = Counter(
            {key: value / count for key, value in result.by_verb.items() if not key.startswith("identity")}
        )
        shown = ", ".join(f"{key} {value:.2f}" for key, value in sorted(per_connection.items()))
        print(
            f"{'':46}{connected} of {count} connections hold the new secret and report Connected\n"
            f"{'':46}requests per connection {sum(per_connection.values()):.2f} (tokens apart): {shown}\n"
            f"{'':46}critical path {critical:.2f} s ({CRITICAL_LATENCIES} latencies: secret read, per stage "
            f"listing, PUT, read back, then the card); ratio {result.seconds / critical:.2f}\n"
        )
