"""How the benchmark measures a scenario: wall time, requests by service and verb, TLS connections,
Lockstep's own CPU (the process's minus the emulator thread's) and peak RSS."""

from __future__ import annotations

import resource
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from emulator import Emulator
from sync.entrypoints import handle_event_grid_event
from sync.errors import LockstepError


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def deliver_event(payload: dict[str, Any]) -> object:
    """An Event Grid event, as the emulator's vault emits it, through the production entry point."""
    return await handle_event_grid_event(
        event_id=str(payload["id"]),
        event_type=str(payload["eventType"]),
        subject=str(payload["subject"]),
        topic=str(payload["topic"]),
        data=payload["data"],
    )


def emulator_cpu() -> float:
    """CPU seconds of the emulator's own thread (it serves every request in this process)."""
    for thread in threading.enumerate():
        if thread.name == "lockstep-emulator" and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


@dataclass
class Measured:
    """One scenario's figures. `cpu` is Lockstep's own (the emulator's CPU is kept apart)."""

    seconds: float
    cpu: float
    connections: int
    writes: int
    by_verb: Counter[str]

    @property
    def requests(self) -> int:
        return sum(self.by_verb.values())


def tally(recorded: Iterable[tuple[str, str]]) -> tuple[int, int, Counter[str]]:
    """(TLS connections, Dataverse writes, requests by "service verb") of the (service, method) of
    every request the emulator recorded. Every TLS connection Lockstep opens to a service is one
    CONNECT through the emulator's proxy."""
    recorded = list(recorded)
    connections = sum(1 for service, method in recorded if service == "proxy" and method == "CONNECT")
    writes = sum(1 for service, method in recorded if service == "dataverse" and method in ("PATCH", "POST"))
    return (
        connections,
        writes,
        Counter(f"{service} {method}" for service, method in recorded if service != "proxy"),
    )


def print_figures(label: str, mappings: int, result: Measured, emulator_cpu_note: str) -> None:
    """The scenario's three lines: time, requests, connections and writes; CPU; requests by verb."""
    dataverse = sum(count for key, count in result.by_verb.items() if key.startswith("dataverse"))
    verbs = ", ".join(f"{key} {count}" for key, count in sorted(result.by_verb.items()))
    cpu = result.cpu
    print(
        f"{label:<44} {result.seconds:7.2f} s  requests {result.requests:6d}  "
        f"TLS connections {result.connections:4d}  writes {result.writes:5d}\n{'':46}CPU {cpu:6.2f} s "
        f"({cpu * 1000 / max(mappings, 1):.3f} ms per mapping; {emulator_cpu_note})  "
        f"dataverse/mapping {dataverse / max(mappings, 1):.4f}  peak RSS {peak_rss_mb():4.0f} MB\n"
        f"{'':46}{verbs}"
    )


async def measure(
    emulator: Emulator, label: str, mappings: int, action: Callable[[], Awaitable[object]]
) -> Measured:
    """Runs `action` against an emulator in this process (its thread's CPU is subtracted)."""
    emulator.reset_requests()
    cpu_started, emulator_started = time.process_time(), emulator_cpu()
    started = time.perf_counter()
    try:
        await action()
    except LockstepError as error:
        print(f"  ! {label}: {type(error).__name__}: {str(error)[:120]}")
    seconds = time.perf_counter() - started
    emulator_seconds = emulator_cpu() - emulator_started
    cpu = time.process_time() - cpu_started - emulator_seconds
    result = Measured(seconds, cpu, *tally((r.service, r.method) for r in emulator.requests))
    print_figures(label, mappings, result, f"emulator {emulator_seconds:.2f} s apart")
    return result
