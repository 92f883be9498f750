"""The agent-refresh consumer over a fake agents client: who is published, when, how often."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sync.agent_rules import Agent, Draft
from sync.errors import TransientError
from sync.mapping import Environment
from sync.models import AgentOutcome, Outcome, Target, TargetKindName, TargetResult
from sync.steps.agent_refresh import AgentRefresh
from sync.targets.base import Change

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
DEV = Environment(
    name="dev", id="6a1b2c3d-0000-4000-8000-000000000001", url="https://dev.crm.dynamics.com", stage=1
)
TEST = Environment(
    name="test", id="9c2d3e4f-0000-4000-8000-000000000002", url="https://test.crm.dynamics.com", stage=2
)


def agent(name: str, published: datetime | None = T0) -> Agent:
    return Agent(id=f"id-{name}", name=name, schema_name=f"cr1_{name}", published_on=published)


class FakeAgents:
    def __init__(self, uses: dict[str, list[Agent]], drafts: dict[str, Draft] | None = None) -> None:
        self.uses = uses
        self.drafts = drafts or {}
        self.published: list[tuple[str, str]] = []
        self.fail_publish: set[str] = set()
        self.listing_error: Exception | None = None
        self.active: dict[str, int] = {}
        self.most_at_once = 0

    async def agents_using(self, org: str, schema_name: str, definition_id: str | None) -> list[Agent]:
        if self.listing_error:
            raise self.listing_error
        return self.uses.get(schema_name, [])

    async def draft(self, org: str, agent: Agent, others: Collection[str]) -> Draft:
        return self.drafts.get(agent.id, Draft(T0 - timedelta(hours=1), frozenset()))

    async def publish(self, org: str, agent: Agent) -> datetime:
        self.active[org] = self.active.get(org, 0) + 1
        self.most_at_once = max(self.most_at_once, self.active[org])
        await asyncio.sleep(0.01)
        self.active[org] -= 1
        if agent.name in self.fail_publish:
            raise TransientError("publishing was throttled (HTTP 429) after 6 attempt(s)")
        self.published.append((org, agent.name))
        return T0 + timedelta(minutes=1)


def target(env_var: str, environment: Environment = DEV, **fields: object) -> Target:
    return Target(environment=environment, env_var=env_var, secret="s", **fields)  # type: ignore[arg-type]


def result(env_var: str, environment: Environment = DEV) -> TargetResult:
    return TargetResult(
        environment=environment.name, stage=environment.stage, env_var=env_var, outcome=Outcome.UPDATED
    )


WROTE = Change(outcome=Outcome.UPDATED, subject_id="def-1")


def consumer(fake: FakeAgents) -> AgentRefresh:
    return AgentRefresh(fake, settle_seconds=0.05)  # type: ignore[arg-type]


async def test_agents_using_a_written_variable_are_published() -> None:
    fake = FakeAgents({"cr1_Var": [agent("Alpha")]})
    done = await consumer(fake).refresh(target("cr1_Var"), WROTE, result("cr1_Var"))
    assert fake.published == [(DEV.url, "Alpha")]
    assert [(a.name, a.outcome) for a in done.agents] == [("Alpha", AgentOutcome.PUBLISHED)]
    assert done.outcome is Outcome.UPDATED


async def test_nothing_written_nothing_published() -> None:
    fake = FakeAgents({"cr1_Var": [agent("Alpha")]})
    refresh = consumer(fake)
    unchanged = Change(outcome=Outcome.UNCHANGED, subject_id="def-1")
    await refresh.refresh(target("cr1_Var"), unchanged, result("cr1_Var"))
    await refresh.refresh(target("cr1_Var", refresh_agents=False), WROTE, result("cr1_Var"))
    await refresh.refresh(target("cr1_Var", kind=TargetKindName.REFERENCE), WROTE, result("cr1_Var"))
    assert fake.published == []


async def test_unpublished_changes_and_never_published_are_not_published() -> None:
    draft, fresh, old = agent("Draft"), agent("Fresh"), agent("New", published=None)
    fake = FakeAgents(
        {"cr1_Var": [draft, fresh, old]}, {draft.id: Draft(T0 + timedelta(seconds=5), frozenset())}
    )
    done = await consumer(fake).refresh(target("cr1_Var"), WROTE, result("cr1_Var"))
    outcomes = {a.name: (a.outcome, a.reason) for a in done.agents}
    assert outcomes["Draft"] == (
        AgentOutcome.NEEDS_ACTION,
        "has unpublished changes; publish it to pick up the new value",
    )
    assert outcomes["New"][0] is AgentOutcome.LEFT_ALONE
    assert outcomes["Fresh"][0] is AgentOutcome.PUBLISHED
    assert fake.published == [(DEV.url, "Fresh")]


async def test_several_variables_feeding_one_agent_publish_it_once_used_agent_first() -> None:
    caller, helper = agent("Caller"), agent("Helper")
    fake = FakeAgents(
        {"cr1_One": [caller], "cr1_Two": [caller, helper], "cr1_Three": [helper]},
        {caller.id: Draft(T0, frozenset({"cr1_helper"}))},
    )
    refresh = consumer(fake)
    results = await asyncio.gather(
        *(refresh.refresh(target(name), WROTE, result(name)) for name in ("cr1_One", "cr1_Two", "cr1_Three")),
        refresh.refresh(target("cr1_One", TEST), WROTE, result("cr1_One", TEST)),
    )
    # One at a time within an environment; environments are independent of each other.
    assert [name for org, name in fake.published if org == DEV.url] == ["Helper", "Caller"]
    assert [name for org, name in fake.published if org == TEST.url] == ["Caller"]
    assert fake.most_at_once == 1
    assert [[a.name for a in r.agents] for r in results] == [
        ["Caller"],
        ["Caller", "Helper"],
        ["Helper"],
        ["Caller"],
    ]


async def test_a_variable_changed_after_the_publish_started_publishes_again() -> None:
    fake = FakeAgents({"cr1_One": [agent("Alpha")], "cr1_Two": [agent("Alpha")]})
    refresh = consumer(fake)
    await refresh.refresh(target("cr1_One"), WROTE, result("cr1_One"))
    await refresh.refresh(target("cr1_Two"), WROTE, result("cr1_Two"))
    assert fake.published == [(DEV.url, "Alpha"), (DEV.url, "Alpha")]


async def test_a_failed_publish_is_a_result_of_that_agent_only() -> None:
    fake = FakeAgents({"cr1_Var": [agent("Alpha"), agent("Beta")]})
    fake.fail_publish = {"Alpha"}
    done = await consumer(fake).refresh(target("cr1_Var"), WROTE, result("cr1_Var"))
    outcomes = {a.name: (a.outcome, a.reason) for a in done.agents}
    assert outcomes["Alpha"][0] is AgentOutcome.FAILED and "throttled" in outcomes["Alpha"][1]
    assert outcomes["Beta"][0] is AgentOutcome.PUBLISHED and done.outcome is Outcome.UPDATED


async def test_agents_that_cannot_be_listed_leave_a_reason_not_a_failure() -> None:
    fake = FakeAgents({})
    fake.listing_error = TransientError("Dataverse https://dev answered HTTP 503 after retries")
    done = await consumer(fake).refresh(target("cr1_Var"), WROTE, result("cr1_Var"))
    assert done.outcome is Outcome.UPDATED and done.agents == ()
    assert done.reason.startswith("agent refresh failed: ") and "503" in done.reason
