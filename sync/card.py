"""The Teams Adaptive Card for a run: what changed, where, the outcome and the correlation id.

Pure: built from a RunReport, which holds names and outcomes and no values, so the card cannot
leak one. Adaptive Cards 1.4 (what Teams renders everywhere): ColumnSets rather than Table.
"""

from __future__ import annotations

from typing import Any

from sync.models import Outcome, RunReport, SecretReport, TargetResult, Trigger

OUTCOME_COLOUR = {
    Outcome.UPDATED: "Good",
    Outcome.CREATED: "Good",
    Outcome.UNCHANGED: "Default",
    Outcome.SKIPPED: "Warning",
    Outcome.FAILED: "Attention",
    Outcome.ROLLED_BACK: "Warning",
    Outcome.HELD_BACK: "Warning",
}
FLOW_NOTE = (
    "Cloud flows keep using the previous value until each flow is turned off and on again "
    "(or saved): environment variables changed outside a solution import are not picked up."
)


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _column(item: dict[str, Any], width: str = "stretch") -> dict[str, Any]:
    return {"type": "Column", "width": width, "items": [item]}


def _row(cells: list[dict[str, Any]], separator: bool = False) -> dict[str, Any]:
    return {"type": "ColumnSet", "separator": separator, "columns": [_column(cell) for cell in cells]}


def _result_row(result: TargetResult) -> list[dict[str, Any]]:
    row = [
        _row(
            [
                _text(f"{result.environment} (stage {result.stage})"),
                _text(result.env_var),
                _text(result.outcome.value, color=OUTCOME_COLOUR[result.outcome], weight="Bolder"),
                _text(f"{result.duration_ms:.0f} ms", horizontalAlignment="Right"),
            ],
            separator=True,
        )
    ]
    if result.reason and result.needs_attention:
        row.append(_text(result.reason, isSubtle=True, size="Small", spacing="None"))
    return row


def _secret_section(report: SecretReport) -> list[dict[str, Any]]:
    version = f" · version {report.version}" if report.version else ""
    items: list[dict[str, Any]] = [_text(f"{report.secret}{version}", weight="Bolder", spacing="Large")]
    items.append(
        _row(
            [
                _text("Environment", isSubtle=True),
                _text("Environment variable", isSubtle=True),
                _text("Outcome", isSubtle=True),
                _text("Duration", isSubtle=True, horizontalAlignment="Right"),
            ]
        )
    )
    for result in report.results:
        items.extend(_result_row(result))
    return items


def headline(report: RunReport) -> str:
    """One line: what kind of run, and whether it needs attention."""
    verb = "rotated" if report.trigger is Trigger.EVENT else "reconciled"
    names = ", ".join(secret.secret for secret in report.secrets)
    if report.failed:
        return f"⚠️ Lockstep: {names} {verb} with failures"
    return f"✅ Lockstep: {names} {verb}"


def build_card(report: RunReport) -> dict[str, Any]:
    counts = report.counts()
    summary = ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count)
    body: list[dict[str, Any]] = [
        _text(headline(report), size="Medium", weight="Bolder"),
        {
            "type": "FactSet",
            "facts": [
                {"title": "Trigger", "value": report.trigger.value},
                {"title": "Outcome", "value": summary or "nothing to do"},
                {"title": "Started", "value": report.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")},
                {"title": "Correlation id", "value": report.correlation_id},
            ],
        },
    ]
    for secret in report.secrets:
        body.extend(_secret_section(secret))
    if report.changed:
        body.append(_text(FLOW_NOTE, isSubtle=True, size="Small", spacing="Large"))
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    }


def build_expiry_card(
    *, secret: str, event_type: str, expires: str, targets: list[str], correlation_id: str
) -> dict[str, Any]:
    """A heads-up for SecretNearExpiry / SecretExpired: nothing was written, someone must rotate."""
    expired = event_type.endswith("SecretExpired")
    title = f"⏰ Key Vault secret {secret} {'has expired' if expired else 'expires soon'}"
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            _text(title, size="Medium", weight="Bolder", color="Attention" if expired else "Warning"),
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Expires", "value": expires},
                    {"title": "Feeds", "value": ", ".join(targets)},
                    {"title": "Correlation id", "value": correlation_id},
                ],
            },
            _text(
                "Rotate the secret in Key Vault; Lockstep copies the new version to these environments.",
                isSubtle=True,
                size="Small",
            ),
        ],
    }
