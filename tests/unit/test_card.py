"""The Teams card: the right facts, valid Adaptive Card 1.4 structure, never a value."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sync.card import build_card, build_expiry_card
from sync.models import Outcome, RunReport, SecretReport, TargetResult, Trigger


def report(*outcomes: Outcome) -> RunReport:
    results = tuple(
        TargetResult(
            environment=f"env{i}",
            stage=i + 1,
            env_var="contoso_Secret",
            outcome=o,
            reason=f"why {i}",
            duration_ms=12.3,
        )
        for i, o in enumerate(outcomes)
    )
    return RunReport(
        correlation_id="cid-123",
        trigger=Trigger.EVENT,
        started_at=datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC),
        secrets=(SecretReport(secret="sql-conn-password", version="abc123", results=results),),
    )


def texts(card: dict[str, object]) -> str:
    return json.dumps(card)


def test_card_names_secret_version_trigger_environments_and_correlation_id() -> None:
    card = build_card(report(Outcome.UPDATED, Outcome.CREATED, Outcome.FAILED))
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    body = texts(card)
    for expected in (
        "sql-conn-password",
        "abc123",
        "event",
        "cid-123",
        "env0 (stage 1)",
        "env2 (stage 3)",
        "updated",
        "created",
        "failed",
        "why 2",
    ):
        assert expected in body
    assert "why 0" not in body  # reasons shown only for failures
    assert "with failures" in body
    assert "turned off and on" in body  # cloud flows need a nudge after a change


def test_facts_summarise_counts() -> None:
    card = build_card(report(Outcome.UPDATED, Outcome.UPDATED, Outcome.UNCHANGED))
    facts = next(item for item in card["body"] if item["type"] == "FactSet")["facts"]  # type: ignore[index]
    assert {"title": "Outcome", "value": "2 updated, 1 unchanged"} in facts


def test_expiry_card() -> None:
    card = build_expiry_card(
        secret="sql-conn-password",
        event_type="Microsoft.KeyVault.SecretExpired",
        expires="2026-12-01 00:00 UTC",
        targets=["dev/contoso_Secret"],
        correlation_id="cid",
    )
    assert "has expired" in texts(card) and "dev/contoso_Secret" in texts(card)
