"""python -m demo — Lockstep end to end on this machine, against the local emulator.

1. starts the emulator (Key Vault, three Dataverse environments, the admin API, a managed-identity
   endpoint, a Teams webhook) on loopback with a throw-away CA;
2. rotates a secret and delivers the real-shape SecretNewVersionCreated event to the Event Grid
   function, then prints the per-environment results and the Teams card it posted;
3. tampers with one environment's value and runs the nightly timer function to repair the drift.

It checks every claim it prints against the emulator's state and exits non-zero if any is false.
Secret values are never printed: the demo checks its own output for them before it exits.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from typing import Any

from azure.functions.timer import TimerRequest

from demo.scenario import SQL_SECRET, SQL_VAR, Scenario, canary, function_event, seed
from emulator import Emulator


class ReportCatcher(logging.Handler):
    """Picks the structured run summary out of Lockstep's log, as an operator would in App Insights."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reports: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        report = getattr(record, "lockstep_report", None)
        if report is not None:
            self.reports.append(report)


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


class Demo:
    def __init__(self, out: GuardedOutput) -> None:
        self.out = out
        self.problems: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def check(self, claim: str, holds: bool) -> None:
        self.say(f"  {'✔' if holds else '✘'} {claim}")
        if not holds:
            self.problems.append(claim)

    def table(self, report: dict[str, Any]) -> None:
        rows = [
            (
                r["environment"],
                str(r["stage"]),
                r["env_var"],
                r["outcome"],
                f"{r['duration_ms']:.0f} ms",
                r["reason"],
            )
            for secret in report["secrets"]
            for r in secret["results"]
        ]
        header = ("environment", "stage", "env var", "outcome", "duration", "reason")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for index, row in enumerate([header, *rows]):
            self.say(
                "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )
            if index == 0:
                self.say("  " + "  ".join("-" * width for width in widths))
        self.say(
            f"  correlation id {report['correlation_id']} · Teams notification: {report['notification']}"
        )


def render_card(post: dict[str, Any]) -> list[str]:
    """A plain-text rendering of the Adaptive Card: roughly what makers see in the channel."""
    lines: list[str] = []

    def walk(element: dict[str, Any]) -> None:
        kind = element.get("type")
        if kind == "TextBlock":
            lines.append(element["text"])
        elif kind == "FactSet":
            lines.extend(f"{fact['title']}: {fact['value']}" for fact in element["facts"])
        elif kind == "ColumnSet":
            cells = [item["text"] for column in element["columns"] for item in column["items"]]
            lines.append(" | ".join(cells))

    for element in post["attachments"][0]["content"]["body"]:
        walk(element)
    return lines


async def run(demo: Demo, scenario: Scenario, catcher: ReportCatcher, new_value: str, tampered: str) -> None:
    import function_app
    from sync.runtime import close_runtime

    # The same indexing the Functions host performs at start-up.
    functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
    emulator = scenario.emulator
    on_event = functions["on_secret_event"].get_user_function()
    reconcile = functions["reconcile_nightly"].get_user_function()

    demo.say("\n▶ 1. Rotate the secret in Key Vault and deliver the Event Grid event")
    event = scenario.rotate(SQL_SECRET, new_value)
    demo.say(f"  Key Vault: {SQL_SECRET} now at version {event['data']['Version']}")
    demo.say(f"  Event Grid → on_secret_event: {event['eventType']} (subject {event['subject']})")
    await on_event(function_event(event))
    report = catcher.reports[-1]
    demo.table(report)
    demo.say("\n  Teams card posted to the Workflows webhook (Adaptive Card 1.4, rendered as text):")
    for line in render_card(emulator.teams_posts[-1]):
        demo.say("    │ " + line)
    demo.say("\n  Checks against the emulator's state:")
    for name, value in scenario.values(SQL_VAR).items():
        demo.check(f"{name} holds the new version of {SQL_SECRET}", value == new_value)
    demo.check(
        "every target reported updated or created",
        all(r["outcome"] in ("updated", "created") for r in report["secrets"][0]["results"]),
    )
    demo.check("exactly one Teams card was posted", len(emulator.teams_posts) == 1)
    demo.check(
        "the card names the secret and the correlation id",
        all(text in json.dumps(emulator.teams_posts[-1]) for text in (SQL_SECRET, report["correlation_id"])),
    )
    demo.check(
        "the card does not contain the secret value", new_value not in json.dumps(emulator.teams_posts)
    )

    demo.say("\n▶ 2. The same event again (Event Grid delivers at least once)")
    emulator.reset_requests()
    await on_event(function_event(event))
    demo.table(catcher.reports[-1])
    dataverse_writes = [
        r for r in emulator.requests if r.service == "dataverse" and r.method in ("PATCH", "POST")
    ]
    demo.check("no Dataverse writes for a duplicate event", not dataverse_writes)

    demo.say("\n▶ 3. Someone edits the value in the test environment by hand; the nightly timer runs")
    emulator.environment("test").set_value(SQL_VAR, tampered)
    demo.check("test has drifted from Key Vault", scenario.values(SQL_VAR)["test"] != new_value)
    await reconcile(TimerRequest(past_due=False))
    report = catcher.reports[-1]
    demo.table(report)
    repaired = {
        (r["environment"], r["env_var"]): r["outcome"] for s in report["secrets"] for r in s["results"]
    }
    demo.check("the reconcile updated test", repaired.get(("test", SQL_VAR)) == "updated")
    demo.check("test holds the Key Vault value again", scenario.values(SQL_VAR)["test"] == new_value)
    demo.check(
        "dev and prod were left unchanged",
        all(repaired.get((name, SQL_VAR)) == "unchanged" for name in ("dev", "prod")),
    )
    await close_runtime()


def main() -> int:
    new_value = os.environ.get("LOCKSTEP_DEMO_SECRET_VALUE") or canary("rotated-")
    initial_sql, initial_graph, tampered = (
        canary("initial-sql-"),
        canary("initial-graph-"),
        canary("tampered-"),
    )
    out = GuardedOutput([new_value, initial_sql, initial_graph, tampered])
    demo = Demo(out)

    # Lockstep's own log lines (with their correlation ids) stream through the same guard.
    logging.basicConfig(level=logging.ERROR)
    log_handler = logging.StreamHandler(out)
    log_handler.setFormatter(logging.Formatter("    · log %(levelname)s %(message)s"))
    catcher = ReportCatcher()
    lockstep_log = logging.getLogger("sync")
    lockstep_log.setLevel(logging.INFO)
    lockstep_log.propagate = False
    lockstep_log.addHandler(log_handler)
    lockstep_log.addHandler(catcher)

    with Emulator() as emulator:
        scenario = seed(emulator, sql_value=initial_sql, graph_value=initial_graph)
        os.environ.update(scenario.app_settings())
        os.environ.pop("LOCKSTEP_MAPPING_FILE", None)
        demo.say("Lockstep local demo: everything below runs on loopback against the emulator")
        demo.say(f"  Key Vault      {scenario.vault.url}")
        for env in scenario.environments.values():
            demo.say(f"  {env.name:<5} env      {env.url}  (id {env.id})")
        demo.say(f"  Admin API      {emulator.admin_url}")
        demo.say(f"  Teams webhook  https://webhook.lockstep.test{emulator.teams_webhook_path()}?…")
        demo.say(f"  Identity       {emulator.identity_endpoint} (App Service managed-identity protocol)")
        try:
            asyncio.run(run(demo, scenario, catcher, new_value, tampered))
        except Exception as error:  # report, never a traceback that might carry state
            demo.problems.append(f"the demo stopped: {type(error).__name__}: {error}")

    if out.leaks:
        demo.problems.append(f"{out.leaks} output line(s) carried a secret value and were withheld")
    if demo.problems:
        demo.say(f"\nDEMO FAILED: {len(demo.problems)} claim(s) did not hold:")
        for problem in demo.problems:
            demo.say(f"  - {problem}")
        return 1
    demo.say("\nDemo passed: every claim above was checked against the emulator's state.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
