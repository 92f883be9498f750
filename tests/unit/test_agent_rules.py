"""Pure agent rules: who uses a variable, who may be published, in what order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.agent_rules import (
    NEVER_PUBLISHED,
    UNPUBLISHED,
    Agent,
    Draft,
    env_reference,
    names_in,
    names_pattern,
    publish_order,
    publish_verdict,
)
from sync.models import AgentOutcome

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "uses"),
    [
        ("value: =Env.contoso_ApiKey", True),
        ('=Concatenate(Env.contoso_ApiKey, "x")', True),
        ("{Env.contoso_ApiKey}", True),
        ("=Env.'contoso_ApiKey'", True),
        ("=Env.CONTOSO_APIKEY", True),
        ("=Env.contoso_ApiKeySuffix", False),
        ("=Env.contoso_ApiKey2", False),
        ("=MyEnv.contoso_ApiKey", False),
        ("=Topic.Env.contoso_ApiKey", False),
        ("=env.contoso_ApiKey", False),  # Power Fx names are case-sensitive: Env
        ("contoso_ApiKey without Env", False),
    ],
)
def test_env_reference_is_a_whole_identifier(text: str, uses: bool) -> None:
    assert bool(env_reference("contoso_ApiKey").search(text)) is uses


def test_names_in_finds_whole_names_only() -> None:
    pattern = names_pattern(["cr1_Beta", "cr1_BetaTwo"])
    assert names_in("a cr1_betatwo b", pattern) == {"cr1_betatwo"}
    assert names_in("cr1_Beta.topic.X and cr1_Betas", pattern) == {"cr1_beta"}
    assert names_in("anything", names_pattern([])) == set()


def agent(name: str, published: datetime | None = T0) -> Agent:
    return Agent(id=f"id-{name}", name=name, schema_name=f"cr1_{name}", published_on=published)


def test_never_published_is_left_alone() -> None:
    assert publish_verdict(agent("A", None), Draft(T0, frozenset())) == (
        AgentOutcome.LEFT_ALONE,
        NEVER_PUBLISHED,
    )


def test_a_component_edited_after_the_publish_means_unpublished_changes() -> None:
    draft = Draft(T0 + timedelta(seconds=1), frozenset())
    assert publish_verdict(agent("A"), draft) == (AgentOutcome.NEEDS_ACTION, UNPUBLISHED)
    assert "unpublished changes" in UNPUBLISHED and "publish it" in UNPUBLISHED


@pytest.mark.parametrize("modified", [T0, T0 - timedelta(days=1), None])
def test_nothing_edited_since_the_publish_may_be_published(modified: datetime | None) -> None:
    assert publish_verdict(agent("A"), Draft(modified, frozenset())) is None


def test_an_agent_named_by_another_is_published_first() -> None:
    a, b, c = agent("A"), agent("B"), agent("C")
    drafts = {
        a.id: Draft(None, frozenset({"cr1_c"})),  # A calls C
        c.id: Draft(None, frozenset({"cr1_b"})),  # C calls B
        b.id: Draft(None, frozenset({"cr1_unknown"})),
    }
    assert [x.name for x in publish_order([a, b, c], drafts)] == ["B", "C", "A"]


def test_independent_agents_go_by_name_and_each_once() -> None:
    a, b = agent("A"), agent("B")
    assert [x.name for x in publish_order([b, a, b], {})] == ["A", "B"]


def test_a_cycle_is_broken_by_name_and_keeps_every_agent() -> None:
    a, b, c = agent("A"), agent("B"), agent("C")
    drafts = {
        a.id: Draft(None, frozenset({"cr1_b"})),
        b.id: Draft(None, frozenset({"cr1_a"})),
        c.id: Draft(None, frozenset({"cr1_a"})),
    }
    assert [x.name for x in publish_order([c, b, a], drafts)] == ["A", "B", "C"]
