"""How the benchmark measures a scenario: wall time, requests by service and verb, TLS connections,
Lockstep's own CPU (the process's minus the emulator thread's) and peak RSS."""

from __future__ import annotations

import resource
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from emulator import Emulator
from sync.errors import LockstepError


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def dataverse_writes(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests if r.service == "dataverse" and r.method in ("PATCH", "POST"))


def emulator_cpu() -> float:
    """CPU seconds of the emulator's own thread (it serves every request in this process)."""
    for thread in threading.enumerate():
        if thread.name == "lockstep-emulator" and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


@dataclass
class Measured:
    """One scenario's figures. `cpu` is Lockstep's own: the process's CPU minus the emulator thread's."""

    seconds: float
    cpu: float
    connections: int
    by_verb: Counter[str]

    @property
    def requests(self) -> int:
        return sum(self.by_verb.values())


async def measure(
    emulator: Emulator, label: str, mappings: int, action: Callable[[], Awaitable[object]]
) -> Measured:
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
    recorded = emulator.requests
    # Every TLS connection Lockstep opens to a service is one CONNECT through the emulator's proxy.
    connections = sum(1 for r in recorded if r.service == "proxy" and r.method == "CONNECT")
    by_verb = Counter(f"{r.service} {r.method}" for r in recorded if r.service != "proxy")
    result = Measured(seconds, cpu, connections, by_verb)
    dataverse = sum(count for key, count in by_verb.items() if key.startswith("dataverse"))
    verbs = ", ".join(f"{key} {count}" for key, count in sorted(by_verb.items()))
    print(
        f"{label:<44} {seconds:7.2f} s  requests {result.requests:6d}  TLS connections {connections:4d}  "
        f"writes {dataverse_writes(emulator):5d}\n{'':46}CPU {cpu:6.2f} s "
        f"({cpu * 1000 / max(mappings, 1):.3f} ms per mapping; emulator {emulator_seconds:.2f} s apart)  "
        f"dataverse/mapping {dataverse / max(mappings, 1):.4f}  peak RSS {peak_rss_mb():4.0f} MB\n"
        f"{'':46}{verbs}"
    )
    return result
