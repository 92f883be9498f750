"""The Teams card names agents: published ones in the stage rows, the rest under Needs attention."""

from __future__ import annotations

from sync.card import build_card
from sync.models import AgentOutcome, AgentResult, Outcome
from tests.unit.test_card import run, target, text, valid

UNPUBLISHED = "has unpublished changes; publish it to pick up the new value"


def test_agents_are_named_per_environment_and_once_each() -> None:
    published = AgentResult(id="a1", name="Help desk", outcome=AgentOutcome.PUBLISHED)
    draft = AgentResult(id="a2", name="Travel agent", outcome=AgentOutcome.NEEDS_ACTION, reason=UNPUBLISHED)
    left = AgentResult(id="a3", name="Sketch", outcome=AgentOutcome.LEFT_ALONE, reason="never published")
    card = valid(
        build_card(
            run(
                target("dev", 1, Outcome.UPDATED, agents=(published, draft, left)),
                target("dev", 1, Outcome.UPDATED, agents=(draft,)),  # a second variable feeding it
                target("test", 2, Outcome.UPDATED, agents=(published,)),
            )
        )
    )
    body = text(card)
    lines = [block["text"] for block in card["body"] if block.get("type") == "TextBlock"]
    assert lines.count(f'**Agent "Travel agent"** in dev: {UNPUBLISHED}') == 1
    assert "1 agent(s) must be published by hand" in body and card["body"][0]["style"] == "attention"
    # Republished agents are named, as refreshed flows are (makers know them by name).
    assert "agent republished: Help desk" in body and "Sketch" not in body


def test_near_expiry_names_the_agents_that_will_break() -> None:
    from sync.card import build_expiry_card

    card = valid(
        build_expiry_card(
            secret="sql-conn-password",
            event_type="Microsoft.KeyVault.SecretNearExpiry",
            expires="2026-12-01",
            targets=["dev/contoso_Sql"],
            correlation_id="cid",
            agents={"dev/contoso_Sql": ["Help desk"], "prod/contoso_Sql": []},
        )
    )
    body = text(card)
    assert "Agents that will break" in body and "Help desk" in body and "prod/contoso_Sql" not in body
