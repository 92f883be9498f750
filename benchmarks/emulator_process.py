"""The benchmark's emulator, seeded and served from a process of its own.

In the benchmark's process the emulator's thread competed with Lockstep for the GIL and the
caches, and its CPU had to be subtracted from the process's; in a process of its own, the
benchmark process's CPU time is Lockstep's alone. The parent drives it over a pipe with the few
commands the scenarios need; nothing secret crosses it except the canary values the seed made.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from demo.scenario import canary
from emulator import Emulator, Environment

STRING = 100000000
VAULT = "lockstep-bench"
ROTATED = "rotated"
ROTATION_ENVIRONMENTS = 9


def env_var(secret: str) -> str:
    return f"bench_{secret.replace('-', '_')}"


@dataclass(frozen=True)
class Env:
    name: str
    id: str
    url: str


@dataclass(frozen=True)
class Seeded:
    names: list[str]
    environments: list[Env]
    settings: dict[str, str]
    ca_cert_path: str
    proxy_url: str


def seed(emulator: Emulator, environments: int, secrets: int) -> tuple[Seeded, dict[str, Environment]]:
    """`secrets` secrets mapped to every environment, plus one secret mapped to 9 environments in
    3 stages (scenario a); environments are spread over stages 1-3. Also the environments' handles."""
    vault = emulator.key_vault(VAULT)
    count = max(environments, ROTATION_ENVIRONMENTS)
    envs = [emulator.environment(f"env{i}", org=f"bench-{i}") for i in range(count)]
    names = [f"secret-{n}" for n in range(secrets)]
    for name in [*names, ROTATED]:
        value = canary(f"{name}-")
        vault.set_secret(name, value)
        for env in envs:
            env.add_definition(env_var(name), type=STRING, value=value)
    rotation = [env.name for env in envs[:ROTATION_ENVIRONMENTS]]
    mapping = {
        "environments": [
            {"name": env.name, "id": env.id, "url": env.url, "stage": 1 + i * 3 // count}
            for i, env in enumerate(envs)
        ],
        "secrets": [
            {"secret": name, "env_var": env_var(name), "environments": [e.name for e in envs[:environments]]}
            for name in names
        ]
        + [{"secret": ROTATED, "env_var": env_var(ROTATED), "environments": rotation}],
    }
    settings = {
        **emulator.client_environment(),
        "KEY_VAULT_URI": vault.url,
        "LOCKSTEP_MAPPING": json.dumps(mapping),
        "TEAMS_WEBHOOK_URL": emulator.teams_webhook_url(),
    }
    seeded = Seeded(
        names,
        [Env(env.name, env.id, env.url) for env in envs],
        settings,
        str(emulator.ca_cert_path),
        emulator.proxy_url,
    )
    return seeded, {env.name: env for env in envs}


class _Clock(logging.Handler):
    """When the emulator answered each request: it logs every one at DEBUG as it records it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.answered: list[tuple[float, str, str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s %s %s%s -> %d" and isinstance(record.args, tuple):
            service, method, _host, _path, status = record.args
            # perf_counter is CLOCK_MONOTONIC on Linux: comparable with the parent's.
            self.answered.append((time.perf_counter(), str(service), str(method), int(status)))


def _serve(conn: Connection, environments: int, secrets: int) -> None:
    clock = _Clock()
    logger = logging.getLogger("emulator")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(clock)
    with Emulator() as emulator:
        seeded, envs = seed(emulator, environments, secrets)
        conn.send(seeded)
        while True:
            command, *args = conn.recv()
            answer: Any = None
            if command == "stop":
                conn.send(None)
                return
            if command == "latency":
                emulator.set_latency(args[0])
            elif command == "reset":
                emulator.reset_requests()
                clock.answered.clear()
            elif command == "requests":
                answer = ([(r.service, r.method, r.status) for r in emulator.requests], list(clock.answered))
            elif command == "cpu":
                answer = time.process_time()
            elif command == "rotate":
                emulator.key_vault(VAULT).set_secret(args[0], args[1])
            elif command == "event":
                answer = emulator.key_vault(VAULT).secret_event(args[0])
            elif command == "token":
                answer = emulator.issue_token(args[0])
            elif command in ("drift", "values"):
                values = []
                for env_name, secret in args[0]:
                    env = envs[env_name]
                    if command == "drift":
                        env.set_value(env_var(secret), canary("drift-"))
                    else:
                        values.append(env.value_of(env_var(secret)))
                answer = values
            conn.send(answer)


class EmulatorProcess:
    """The emulator in a child process, with the calls the benchmark makes."""

    def __init__(self, environments: int, secrets: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, environments, secrets), name="lockstep-emulator", daemon=True
        )
        self._process.start()
        self.seeded: Seeded = self._conn.recv()

    def call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, *args))
        return self._conn.recv()

    def close(self) -> None:
        if self._process.is_alive():
            self.call("stop")
        self._process.join(10)
