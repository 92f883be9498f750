"""Measures Lockstep against the emulator: wall time, requests, TLS connections, CPU, peak RSS.

    .venv/bin/python -m benchmarks.sync_bench [--latency 0.05] [--secrets 1000] [--environments 10]
    .venv/bin/python -m benchmarks.sync_bench --quick            # 200 secrets, fewer events
    .venv/bin/python -m benchmarks.sync_bench --scenarios b,c    # only the reconciles

Prints figures; asserts nothing (tests check correctness, this script measures). Every scenario
runs through the production entry points (sync.entrypoints) over loopback HTTPS, so the numbers
include TLS, the proxy hop and token acquisition. The emulator adds `--latency` seconds to every
request, as a real network would.

Per scenario: wall time; requests by service and verb; TLS connections Lockstep opened (one
CONNECT each through the emulator's proxy); Lockstep's own CPU, in all and per mapping: this
process's CPU time, the emulator running in a process of its own (benchmarks.emulator_process),
so a shared, busy machine inflates wall time far more than these counts and CPU figures. (c) also
prints CPU per repair: its CPU over (b)'s, per drifted target.

Scenarios:
  (a) one rotation to 9 environments in 3 stages, against its critical path
      (secret read, then per stage: read → write, whose answer is the read-back, then the Teams
      card, which carries every stage's outcome and so can only follow the last); also when each
      identity and Key Vault request was answered, in round trips from the start (the cold
      process's challenge and token fetch). `--rotation-latency 1` runs it with latency far above
      Lockstep's CPU, so the ratio counts round trips on a loaded machine too.
  (b) reconcile of secrets x environments, all in sync
  (c) the same with 5 % drifted
  (d) 100 duplicate events for the rotated secret
  naive: what the flow Lockstep replaces did per target (get secret, get definition, get value,
      write, get environment), sequentially, on a sample and extrapolated to (b)'s size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from benchmarks.emulator_process import ROTATED, ROTATION_ENVIRONMENTS, EmulatorProcess, Env, env_var
from benchmarks.measure import Measured, deliver_event, print_figures, tally
from demo.scenario import canary
from sync.entrypoints import run_reconcile
from sync.errors import LockstepError
from sync.runtime import close_runtime, get_runtime

Answered = list[
    tuple[float, str, str, int]
]  # when the emulator answered: (perf_counter, service, verb, status)


def vault_path(answered: Answered, started: float, latency: float) -> str:
    """When identity and Key Vault requests were answered, in round trips since the run started."""

    def at(moment: float) -> str:
        return f"{(moment - started) / latency:.1f}"

    identity = [moment for moment, service, _, _ in answered if service == "identity"]
    vault = [(moment, status) for moment, service, _, status in answered if service == "keyvault"]
    challenge = next((moment for moment, status in vault if status == 401), None)
    after = sum(1 for moment in identity if challenge is not None and moment > challenge)
    return (
        f"Key Vault answered {', '.join(f'{status} at {at(moment)}' for moment, status in vault)} "
        f"round trips in; identity requests {len(identity)} ({after} answered after the challenge)"
    )


@dataclass
class Timed(Measured):
    """A scenario's figures, with when it started and when the emulator answered each request
    (the rotation's round trips). The emulator runs in a process of its own: `cpu` is this one's."""

    started: float
    answered: Answered


async def measure(
    emulator: EmulatorProcess, label: str, mappings: int, action: Callable[[], Awaitable[object]]
) -> Timed:
    emulator.call("reset")
    cpu_started, emulator_started = time.process_time(), emulator.call("cpu")
    started = time.perf_counter()
    try:
        await action()
    except LockstepError as error:
        print(f"  ! {label}: {type(error).__name__}: {str(error)[:120]}")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    emulator_seconds = emulator.call("cpu") - emulator_started
    recorded, answered = emulator.call("requests")
    counts = tally((service, method) for service, method, _ in recorded)
    result = Timed(seconds, cpu, *counts, started=started, answered=answered)
    print_figures(label, mappings, result, f"emulator's process {emulator_seconds:.2f} s")
    return result


async def deliver(emulator: EmulatorProcess, secret: str) -> object:
    return await deliver_event(emulator.call("event", secret))


async def naive_target(http: httpx.AsyncClient, emulator: EmulatorProcess, secret: str, env: Env) -> None:
    """The replaced flow, per target: get secret, definition, value row, write, environment."""
    runtime = await get_runtime()
    snapshot = await runtime.secrets.get_current(secret)
    definition = await runtime.dataverse.get_definition(env.url, env_var(secret))
    if definition is None or definition.value_row is None:
        raise LockstepError(f"naive flow: {env.name}/{env_var(secret)} has no value row")
    headers = {
        "Authorization": f"Bearer {emulator.call('token', env.url)}",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "Accept": "application/json",
    }
    row = definition.value_row.id
    await http.get(f"{env.url}/api/data/v9.2/environmentvariablevalues({row})", headers=headers)
    await runtime.dataverse.update_value(env.url, row, "*", SecretStr(snapshot.value.get_secret_value()))
    await runtime.admin.get_environment(env.id)


async def main(options: argparse.Namespace) -> None:
    scenarios = set(options.scenarios)
    emulator = EmulatorProcess(options.environments, options.secrets)
    try:
        await run_scenarios(emulator, options, scenarios)
    finally:
        await close_runtime()
        emulator.close()
    if "e" in scenarios:
        from benchmarks.connections_bench import run as connection_rotation

        await connection_rotation(options.latency)


async def run_scenarios(emulator: EmulatorProcess, options: argparse.Namespace, scenarios: set[str]) -> None:
    latency, environments, secrets = options.latency, options.environments, options.secrets
    seeded = emulator.seeded
    os.environ.update(seeded.settings)
    os.environ.pop("LOCKSTEP_MAPPING_FILE", None)
    emulator.call("latency", latency)
    mappings = environments * secrets
    print(
        f"Lockstep benchmark: {secrets} secrets x {environments} environments = {mappings} mappings, "
        f"{latency * 1000:.0f} ms latency per request\n"
    )

    if "a" in scenarios:
        # One rotation to 9 environments in 3 stages: first on a cold process (tokens, Key
        # Vault's auth challenge), then again warm. The critical path is the secret read, then
        # per stage read -> write (the write's answer carries the row as stored: no read-back),
        # then the card (it reports every stage, so nothing can overlap it).
        rotation_latency = options.rotation_latency or latency
        emulator.call("latency", rotation_latency)
        critical = (1 + 3 * 2 + 1) * rotation_latency
        for label in ("cold", "warm"):
            emulator.call("rotate", ROTATED, canary("rotated-"))
            result = await measure(
                emulator,
                f"(a) rotation to {ROTATION_ENVIRONMENTS} envs in 3 stages, {label}",
                ROTATION_ENVIRONMENTS,
                lambda: deliver(emulator, ROTATED),
            )
            print(
                f"{'':46}{vault_path(result.answered, result.started, rotation_latency)}\n"
                f"{'':46}critical path {critical:.2f} s (secret, 3 stages x read, write, card: "
                f"{rotation_latency * 1000:.0f} ms each); ratio {result.seconds / critical:.2f}\n"
            )
        emulator.call("latency", latency)

    in_sync: Timed | None = None
    if "b" in scenarios or "c" in scenarios:
        in_sync = await measure(emulator, f"(b) reconcile, all {mappings} in sync", mappings, run_reconcile)
        print()

    if "c" in scenarios and in_sync is not None:
        rng = random.Random(7)  # noqa: S311 - picks which rows drift, not a secret
        mapped = [(env.name, name) for env in seeded.environments[:environments] for name in seeded.names]
        drifted = rng.sample(mapped, max(1, mappings // 20))
        emulator.call("drift", drifted)
        repair = await measure(
            emulator, f"(c) reconcile, {len(drifted)} drifted (5 %)", mappings, run_reconcile
        )
        values = emulator.call("values", drifted)
        still_drifted = sum((value or "").startswith("LOCKSTEP-CANARY-drift-") for value in values)
        per_repair = (repair.cpu - in_sync.cpu) / len(drifted)
        print(
            f"{'':46}repaired {len(drifted) - still_drifted} of {len(drifted)} drifted targets; "
            f"CPU per repair {per_repair * 1000:.2f} ms (over (b)); TLS connections opened "
            f"{repair.connections} after (b) ({repair.connections / len(drifted):.3f} per repair)\n"
        )

    if "d" in scenarios:

        async def duplicates() -> None:
            for _ in range(options.duplicates):
                await deliver(emulator, ROTATED)

        await measure(
            emulator,
            f"(d) {options.duplicates} duplicate events",
            ROTATION_ENVIRONMENTS * options.duplicates,
            duplicates,
        )
        print()

    if "naive" in scenarios:
        sample = [(env, name) for name in seeded.names for env in seeded.environments][: options.naive_sample]
        async with httpx.AsyncClient(verify=seeded.ca_cert_path, proxy=seeded.proxy_url) as http:

            async def naive() -> None:
                for env, name in sample:
                    await naive_target(http, emulator, name, env)

            baseline = await measure(emulator, f"naive flow, sample of {len(sample)}", len(sample), naive)
        per_target = baseline.seconds / len(sample)
        requests_per_target = baseline.requests / len(sample)
        line = (
            f"{'':46}extrapolated to {mappings} mappings: {per_target * mappings:,.0f} s, "
            f"{requests_per_target * mappings:,.0f} requests"
        )
        if in_sync is not None:
            line += (
                f" — Lockstep (b) is {per_target * mappings / in_sync.seconds:,.0f}x faster with "
                f"{requests_per_target * mappings / max(in_sync.requests, 1):,.0f}x fewer requests"
            )
        print(line)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument(
        "--rotation-latency",
        type=float,
        default=None,
        help="latency for scenario (a) only (default: --latency); 1 counts round trips despite a busy CPU",
    )
    parser.add_argument("--environments", type=int, default=10)
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--duplicates", type=int, default=100, help="events in scenario (d)")
    parser.add_argument("--naive-sample", type=int, default=50)
    parser.add_argument(
        "--scenarios",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=["a", "b", "c", "d", "e", "naive"],
        help=(
            "comma-separated subset of a,b,c,d,e,naive (c runs b first: repairs are measured against "
            "it; e, the connection rotation, runs last on an emulator of its own)"
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="200 secrets, 20 duplicate events, a naive sample of 10"
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.secrets, options.duplicates, options.naive_sample = 200, 20, 10
    return options


if __name__ == "__main__":
    asyncio.run(main(parse_arguments()))
