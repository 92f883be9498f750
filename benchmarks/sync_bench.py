"""Measures Lockstep against the emulator: wall time and HTTP requests per scenario.

    .venv/bin/python -m benchmarks.sync_bench [--environments 5] [--secrets 20] [--repeat 3]

Prints figures; asserts nothing (tests check correctness, this script measures). Each scenario
runs through the production entry points (sync.entrypoints) over loopback HTTPS, so the numbers
include TLS, the proxy hop and token acquisition, not just Python.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from demo.scenario import canary
from emulator import Emulator
from sync.entrypoints import handle_event_grid_event, run_reconcile
from sync.errors import LockstepError
from sync.runtime import close_runtime

STRING = 100000000


def seed(emulator: Emulator, environments: int, secrets: int) -> tuple[list[str], dict[str, str]]:
    vault = emulator.key_vault("lockstep-bench")
    envs = [emulator.environment(f"env{i}", org=f"bench-{i}") for i in range(environments)]
    names = [f"secret-{n}" for n in range(secrets)]
    for name in names:
        value = canary(f"{name}-")
        vault.set_secret(name, value)
        for env in envs:
            env.add_definition(f"bench_{name.replace('-', '_')}", type=STRING, value=value)
    mapping = {
        "environments": [
            {"name": env.name, "id": env.id, "url": env.url, "stage": 1 + i % 3} for i, env in enumerate(envs)
        ],
        "secrets": [{"secret": name, "env_var": f"bench_{name.replace('-', '_')}"} for name in names],
    }
    settings = {
        **emulator.client_environment(),
        "KEY_VAULT_URI": vault.url,
        "LOCKSTEP_MAPPING": json.dumps(mapping),
        "TEAMS_WEBHOOK_URL": emulator.teams_webhook_url(),
    }
    return names, settings


async def measure(
    emulator: Emulator,
    label: str,
    repeat: int,
    prepare: Callable[[], None],
    action: Callable[[], Awaitable[object]],
) -> None:
    timings: list[float] = []
    requests: Counter[str] = Counter()
    for _ in range(repeat):
        prepare()
        emulator.reset_requests()
        started = time.perf_counter()
        try:
            await action()
        except LockstepError as error:
            print(f"  ! {label}: {type(error).__name__}")
        timings.append(time.perf_counter() - started)
        requests = Counter(r.service for r in emulator.requests if r.service != "proxy")
    per_service = ", ".join(f"{service} {count}" for service, count in sorted(requests.items()))
    print(
        f"{label:<34} median {statistics.median(timings) * 1000:8.1f} ms  "
        f"(min {min(timings) * 1000:.1f}, max {max(timings) * 1000:.1f})  "
        f"requests {sum(requests.values()):5d}: {per_service}"
    )


async def main(environments: int, secrets: int, repeat: int) -> None:
    with Emulator() as emulator:
        names, settings = seed(emulator, environments, secrets)
        os.environ.update(settings)
        os.environ.pop("LOCKSTEP_MAPPING_FILE", None)
        vault = emulator.key_vault("lockstep-bench")
        targets = environments * secrets
        print(f"Lockstep benchmark: {environments} environments x {secrets} secrets = {targets} targets\n")

        def rotate() -> None:
            vault.set_secret(names[0], canary("rotated-"))

        def nothing() -> None:
            return None

        def drift_everywhere() -> None:
            for env in emulator.environments():
                for name in names:
                    env.set_value(f"bench_{name.replace('-', '_')}", canary("drift-"))

        def event() -> dict[str, object]:
            return vault.secret_event(names[0])

        async def deliver() -> object:
            payload = event()
            return await handle_event_grid_event(
                event_id=str(payload["id"]),
                event_type=str(payload["eventType"]),
                subject=str(payload["subject"]),
                topic=str(payload["topic"]),
                data=payload["data"],
            )

        await measure(emulator, "event: rotation (1 secret)", repeat, rotate, deliver)
        await measure(emulator, "event: duplicate (no change)", repeat, nothing, deliver)
        await measure(emulator, f"reconcile: in sync ({targets})", repeat, nothing, run_reconcile)
        await measure(
            emulator, f"reconcile: all drifted ({targets})", repeat, drift_everywhere, run_reconcile
        )
        await close_runtime()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--environments", type=int, default=5)
    parser.add_argument("--secrets", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.environments, args.secrets, args.repeat))
