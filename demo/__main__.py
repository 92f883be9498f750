"""python -m demo — Lockstep end to end on this machine, against the local emulator.

Starts the emulator (Key Vault, Dataverse environments, the admin API, a managed-identity
endpoint, a Teams webhook) on loopback with a throw-away CA, then drives the real function entry
points through a rotation, a duplicate delivery and a drift repair. Every claim it prints is
checked against the emulator's state; it exits non-zero if one is false or if a secret value
ever reached its output.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys

from rich.console import Console

from demo.act_connections import connection_rotation
from demo.acts import Acts, ReportCatcher
from demo.render import Narrator
from demo.scenario import canary, seed
from emulator import Emulator


class GuardedOutput(io.TextIOBase):
    """Writes to stdout line by line, withholding any line that carries a known secret value."""

    def __init__(self, radioactive: list[str]) -> None:
        self.radioactive = radioactive
        self.leaks = 0
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if any(value and value in line for value in self.radioactive):
                self.leaks += 1
                line = "  [line withheld: it contained a secret value]"
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return len(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Lockstep end to end against the local emulator: rotation, duplicate event, "
        "drift repair. Nothing leaves this machine; no Azure subscription needed.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also show Lockstep's own log lines")
    return parser.parse_args(argv)


async def run(acts: Acts, new_value: str, tampered: str, bad_value: str, agent_value: str) -> None:
    from sync.runtime import close_runtime

    try:
        await acts.rotation(new_value)
        await acts.duplicate()
        await acts.drift(new_value, tampered)
        await acts.staged_rollout(new_value, bad_value)
        await acts.agents_and_references(agent_value)
        await connection_rotation(acts)
    finally:
        await close_runtime()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    new_value = os.environ.get("LOCKSTEP_DEMO_SECRET_VALUE") or canary("rotated-")
    initial_sql, initial_graph, tampered, bad_value, agent_value = (
        canary("initial-sql-"),
        canary("initial-graph-"),
        canary("tampered-"),
        canary("staged-"),
        canary("agents-"),
    )
    out = GuardedOutput([new_value, initial_sql, initial_graph, tampered, bad_value, agent_value])
    console = Console(
        file=out,
        force_terminal=sys.stdout.isatty() and not os.environ.get("NO_COLOR"),
        width=min(Console().width, 100) if sys.stdout.isatty() else 80,  # piped: 80 columns
        highlight=False,
    )
    narrator = Narrator(console)

    # Lockstep's log: the run summaries are caught for the tables; the lines themselves only with -v.
    logging.basicConfig(level=logging.ERROR)
    catcher = ReportCatcher()
    lockstep_log = logging.getLogger("sync")
    lockstep_log.setLevel(logging.INFO)
    lockstep_log.propagate = False
    lockstep_log.addHandler(catcher)
    if args.verbose:
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("    · log %(levelname)s %(message)s"))
        lockstep_log.addHandler(handler)

    with Emulator() as emulator:
        scenario = seed(emulator, sql_value=initial_sql, graph_value=initial_graph)
        os.environ.update(scenario.app_settings())
        os.environ.pop("LOCKSTEP_MAPPING_FILE", None)
        narrator.say(
            "Lockstep local demo — everything below runs on loopback against the emulator", style="bold"
        )
        narrator.say(f"  Key Vault      {scenario.vault.url}")
        for env in scenario.environments.values():
            narrator.say(f"  {env.name:<5} env      {env.url}  (id {env.id})")
        narrator.say(f"  Admin API      {emulator.admin_url}")
        narrator.say(f"  Teams webhook  https://webhook.lockstep.test{emulator.teams_webhook_path()}?…")
        narrator.say(f"  Identity       {emulator.identity_endpoint} (App Service managed-identity protocol)")
        try:
            asyncio.run(run(Acts(narrator, scenario, catcher), new_value, tampered, bad_value, agent_value))
        except Exception as error:  # report, never a traceback that might carry state
            narrator.problems.append(f"the demo stopped: {type(error).__name__}: {error}")

    if out.leaks:
        narrator.problems.append(f"{out.leaks} output line(s) carried a secret value and were withheld")
    if narrator.problems:
        narrator.say(f"\nDEMO FAILED: {len(narrator.problems)} claim(s) did not hold:", style="bold red")
        for problem in narrator.problems:
            narrator.say(f"  - {problem}")
        return 1
    narrator.say(
        "\nDemo passed: every claim above was checked against the emulator's state.", style="bold green"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
