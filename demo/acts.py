"""The demo's acts, each driving the real function entry points and checking the emulator's state."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from azure.functions.timer import TimerRequest

from demo.render import Narrator
from demo.scenario import SQL_SECRET, SQL_VAR, VAULT, Scenario, function_event
from sync.cli.commands import inspect
from sync.runtime import close_runtime, get_runtime

SQL_REF = "contoso_SqlRef"


class ReportCatcher(logging.Handler):
    """Picks the structured run summary out of Lockstep's log, as an operator would in App Insights."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reports: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        report = getattr(record, "lockstep_report", None)
        if report is not None:
            self.reports.append(report)


EventFunction = Callable[[Any], Awaitable[None]]


class Acts:
    def __init__(self, narrator: Narrator, scenario: Scenario, catcher: ReportCatcher) -> None:
        import function_app

        # The same indexing the Functions host performs at start-up.
        functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
        self.on_event: EventFunction = functions["on_secret_event"].get_user_function()
        self.reconcile: EventFunction = functions["reconcile_nightly"].get_user_function()
        self.n = narrator
        self.scenario = scenario
        self.emulator = scenario.emulator
        self.catcher = catcher

    def outcomes(self) -> dict[tuple[str, str], str]:
        report = self.catcher.reports[-1]
        return {
            (r["environment"], r["env_var"]): r["outcome"] for s in report["secrets"] for r in s["results"]
        }

    def show_last_card(self) -> None:
        self.n.say("  The Teams card it posted (Adaptive Card 1.4, as text):")
        self.n.card(self.emulator.teams_posts[-1])

    async def rotation(self, new_value: str) -> None:
        self.n.act("1. A secret is rotated in Key Vault; Event Grid delivers SecretNewVersionCreated")
        event = self.scenario.rotate(SQL_SECRET, new_value)
        self.n.say(f"  {SQL_SECRET} is now at version {event['data']['Version']} → on_secret_event")
        await self.on_event(function_event(event))
        self.n.report(self.catcher.reports[-1])
        self.show_last_card()
        for name, value in self.scenario.values(SQL_VAR).items():
            self.n.check(f"{name} holds the new version of {SQL_SECRET}", value == new_value)
        self.n.check(
            "every target was updated or created",
            set(self.outcomes().values()) <= {"updated", "created"},
        )
        self.n.check("exactly one Teams card was posted", len(self.emulator.teams_posts) == 1)
        post = json.dumps(self.emulator.teams_posts[-1])
        self.n.check(
            "the card names the secret and the correlation id",
            SQL_SECRET in post and self.catcher.reports[-1]["correlation_id"] in post,
        )
        self.n.check("the card does not contain the secret value", new_value not in post)
        self.event = event

    async def duplicate(self) -> None:
        self.n.act("2. The same event again (Event Grid delivers at least once)")
        self.emulator.reset_requests()
        await self.on_event(function_event(self.event))
        self.n.report(self.catcher.reports[-1])
        writes = [
            r for r in self.emulator.requests if r.service == "dataverse" and r.method in ("PATCH", "POST")
        ]
        self.n.check("no Dataverse writes for a duplicate event", not writes)

    async def drift(self, new_value: str, tampered: str) -> None:
        self.n.act("3. Someone edits the value in test by hand; the nightly timer runs")
        self.emulator.environment("test").set_value(SQL_VAR, tampered)
        self.n.check("test has drifted from Key Vault", self.scenario.values(SQL_VAR)["test"] != new_value)
        await self.reconcile(TimerRequest(past_due=False))
        self.n.report(self.catcher.reports[-1])
        self.show_last_card()
        outcomes = self.outcomes()
        self.n.check("the reconcile updated test", outcomes.get(("test", SQL_VAR)) == "updated")
        self.n.check(
            "test holds the Key Vault value again", self.scenario.values(SQL_VAR)["test"] == new_value
        )
        self.n.check(
            "dev and prod were left unchanged",
            all(outcomes.get((name, SQL_VAR)) == "unchanged" for name in ("dev", "prod")),
        )

    async def staged_rollout(self, previous: str, bad_value: str) -> None:
        self.n.act("4. A stage fails: staged rollout rolls it back, holds prod back, and refreshes flows")
        uat = self.scenario.add_environment("uat", "contoso-uat", 2, {SQL_VAR: previous})
        os.environ["LOCKSTEP_MAPPING"] = json.dumps(self.scenario.mapping)
        await close_runtime()  # the mapping changed: the next invocation reads it again
        uat.refuse_writes()
        dev = self.scenario.environments["dev"]
        active = dev.add_flow("Invoice export", uses=[SQL_VAR])
        retired = dev.add_flow("Retired report", uses=[SQL_VAR], on=False)
        self.n.say("  uat (stage 2, next to test) now refuses value writes, as a missing privilege would;")
        self.n.say(
            "  dev has two cloud flows using the variable: 'Invoice export' (on), 'Retired report' (off)"
        )
        event = self.scenario.rotate(SQL_SECRET, bad_value)
        await self.on_event(function_event(event))
        self.n.report(self.catcher.reports[-1])
        self.show_last_card()
        outcomes = self.outcomes()
        values = self.scenario.values(SQL_VAR)
        self.n.check("dev (stage 1) keeps the new value", values["dev"] == bad_value)
        self.n.check(
            "test was rolled back to the value it held before",
            outcomes.get(("test", SQL_VAR)) == "rolled_back" and values["test"] == previous,
        )
        self.n.check("uat is reported failed", outcomes.get(("uat", SQL_VAR)) == "failed")
        self.n.check(
            "prod (stage 3) was held back, untouched",
            outcomes.get(("prod", SQL_VAR)) == "held_back" and values["prod"] == previous,
        )
        self.n.check(
            "'Invoice export' was turned off and on again", dev.flow_history(active) == ["off", "on"]
        )
        self.n.check("'Retired report', off by its owner, was left off", dev.flow_history(retired) == [])
        post = json.dumps(self.emulator.teams_posts[-1])
        self.n.check("the card names the refreshed flow", "flow refreshed: Invoice export" in post)
        self.n.check("the card does not contain either value", bad_value not in post and previous not in post)

    async def agents_and_references(self, value: str) -> None:
        self.n.act("5. Agents republished (drafts left alone), a Key Vault reference verified")
        self.scenario.environments["uat"].refuse_writes(False)
        dev, prod = self.scenario.environments["dev"], self.scenario.environments["prod"]
        desk = dev.add_bot("Help Desk")
        dev.add_bot_component(desk, "Reset password", uses=[SQL_VAR])
        draft = dev.add_bot("Draft Desk")
        dev.edit_bot_component(dev.add_bot_component(draft, "Escalate", uses=[SQL_VAR]))
        prod.add_secret_reference(SQL_REF, VAULT, SQL_SECRET)
        self.scenario.mapping["secrets"].append(
            {"secret": SQL_SECRET, "env_var": SQL_REF, "environments": ["prod"]}
        )
        os.environ["LOCKSTEP_MAPPING"] = json.dumps(self.scenario.mapping)
        await close_runtime()  # the mapping changed: the next invocation reads it again
        self.n.say("  dev has two Copilot Studio agents reading Env.contoso_SqlConnectionPassword:")
        self.n.say("  'Help Desk' (published) and 'Draft Desk' (a maker's unpublished edit);")
        self.n.say(f"  prod's Secret-type {SQL_REF} references {VAULT}/{SQL_SECRET}")
        before = dev.bot(desk)["published_on"]
        etag = prod.value_etag(SQL_REF)
        event = self.scenario.rotate(SQL_SECRET, value)
        await self.on_event(function_event(event))
        self.n.report(self.catcher.reports[-1])
        self.show_last_card()
        inspection = await inspect(await get_runtime(), 30.0, [SQL_SECRET], ["prod"])
        planned = {t.env_var: t.state.value for t in inspection.targets}
        self.n.say(f"  plan: prod/{SQL_REF} is in state '{planned.get(SQL_REF)}'")
        after = dev.bot(desk)["published_on"]
        self.n.check(
            "'Help Desk' was republished (publishedon moved forward)",
            before is not None and after is not None and after > before,
        )
        self.n.check("'Draft Desk' was not published", draft not in dev.publishes())
        result = next(
            r
            for s in self.catcher.reports[-1]["secrets"]
            for r in s["results"]
            if (r["environment"], r["env_var"]) == ("dev", SQL_VAR)
        )
        agents = {a["name"]: a["outcome"] for a in result["agents"]}
        self.n.check(
            "'Draft Desk' is reported needs_action",
            agents == {"Help Desk": "published", "Draft Desk": "needs_action"},
        )
        outcomes = self.outcomes()
        self.n.check(
            f"prod/{SQL_REF} was verified and not written",
            outcomes.get(("prod", SQL_REF)) == "unchanged" and prod.value_etag(SQL_REF) == etag,
        )
        self.n.check(f"plan shows prod/{SQL_REF} as 'reference'", planned.get(SQL_REF) == "reference")
        post = json.dumps(self.emulator.teams_posts[-1])
        self.n.check("the card names 'Draft Desk'", "Draft Desk" in post)
        self.n.check("the card does not contain the value", value not in post)
