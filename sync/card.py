"""The Teams Adaptive Card for a run, read at a glance by a maker.

Top to bottom: a coloured status line; facts (secret, version, trigger, time, correlation id);
what needs attention first (failed, rolled back, held back, skipped targets, and flows a person
must turn back on), each with what to do; then the outcomes stage by stage with the flows
refreshed. Pure: built from a RunReport, which holds names and outcomes and never a value.

Text others control (flow names, remote error messages and the reasons built from them) goes
through `literal`: TextBlock and FactSet text is Markdown, and a flow named
`[Re-authorise here](https://…)` must not become a link inside a card people trust.

Adaptive Cards 1.4 (what Teams renders everywhere). Teams refuses messages over ~28 KB, so a big
run is summarised: per-target rows only up to MAX_TARGET_ROWS, counts per stage beyond that,
and at most MAX_ATTENTION_ROWS attention items (the log and `python -m sync status` have all).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sync.adaptive import adaptive_card as _card
from sync.adaptive import literal
from sync.adaptive import text_block as _text
from sync.card_expiry import build_expiry_card
from sync.models import AgentOutcome, FlowOutcome, Outcome, RunReport, TargetResult, Trigger

__all__ = ["MAX_FLOW_NAMES", "WHAT_TO_DO", "build_card", "build_expiry_card", "headline", "literal"]

MAX_TARGET_ROWS = 40
MAX_ATTENTION_ROWS = 25
MAX_FLOW_NAMES = 3  # refreshed flows named per target; the rest counted
OUTCOME_COLOUR = {
    Outcome.UPDATED: "Good",
    Outcome.CREATED: "Good",
    Outcome.UNCHANGED: "Default",
    Outcome.SKIPPED: "Warning",
    Outcome.FAILED: "Attention",
    Outcome.ROLLED_BACK: "Warning",
    Outcome.HELD_BACK: "Warning",
    Outcome.NEEDS_ACTION: "Warning",
}
WHAT_TO_DO = {
    Outcome.FAILED: "Fix the cause, then run `python -m sync sync <secret>` (or wait for the reconcile).",
    Outcome.ROLLED_BACK: "The previous value is back. Fix the stage's failing environment, then rotate.",
    Outcome.HELD_BACK: "Not touched: an earlier stage failed. It follows once that stage succeeds.",
    Outcome.NEEDS_ACTION: "Lockstep may not change it: do what the reason says; the reconcile follows.",
    Outcome.SKIPPED: "Not written yet: Event Grid redelivers, and the nightly reconcile catches up.",
}
FLOWS_NOT_REFRESHED = (
    "Cloud flows keep the previous value until each is turned off and on again; flow refresh is "
    "off for some of these variables (refresh_flows: false), so turn their flows off and on."
)


def _label(result: TargetResult) -> str:
    """The target's name: a schema name is the operator's own validated identifier, shown as is; a
    connection's display name is someone else's text."""
    return result.env_var if result.connection is None else literal(result.label)


def headline(report: RunReport) -> str:
    """One line: what kind of run, and whether it needs attention."""
    verb = "rotated" if report.trigger is Trigger.EVENT else "reconciled"
    names = ", ".join(secret.secret for secret in report.secrets[:3])
    if len(report.secrets) > 3:
        names += f" and {len(report.secrets) - 3} more"
    if report.failed:
        return f"⚠️ Lockstep: {names} {verb} with failures"
    return f"✅ Lockstep: {names} {verb}"


def _status(report: RunReport) -> dict[str, Any]:
    attention = sum(result.needs_attention for result in report.results)
    flows = _flows_needing_action(report)
    agents = _agents_needing_action(report)
    detail = "everything is in sync" if not attention else f"{attention} target(s) need attention"
    if flows:
        detail += f", {len(flows)} flow(s) must be turned back on"
    if agents:
        detail += f", {len(agents)} agent(s) must be published by hand"
    style = "attention" if report.failed or flows or agents else "good"
    return {
        "type": "Container",
        "style": style,
        "items": [
            _text(headline(report), size="Medium", weight="Bolder"),
            _text(detail, spacing="None", isSubtle=True),
        ],
    }


def _facts(report: RunReport) -> dict[str, Any]:
    if len(report.secrets) == 1:  # the Secret fact names it already
        versions = [s.version for s in report.secrets if s.version]
    else:
        versions = [f"{s.secret}: {s.version}" for s in report.secrets[:5] if s.version]
    counts = ", ".join(f"{count} {outcome}" for outcome, count in report.counts().items() if count)
    facts = [
        {"title": "Secret", "value": ", ".join(s.secret for s in report.secrets[:5]) or "-"},
        {"title": "Version", "value": "; ".join(versions) or "-"},
        {"title": "Trigger", "value": report.trigger.value},
        {"title": "Time", "value": report.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")},
        {"title": "Outcome", "value": counts or "nothing to do"},
        {"title": "Correlation id", "value": report.correlation_id},
    ]
    if len(report.secrets) > 5:
        facts[0]["value"] += f" and {len(report.secrets) - 5} more"
    return {"type": "FactSet", "facts": facts}


def _flows_needing_action(report: RunReport) -> list[tuple[TargetResult, str, str]]:
    return [
        (result, flow.name, flow.reason)
        for result in report.results
        for flow in result.flows
        if flow.outcome in (FlowOutcome.NEEDS_ACTION, FlowOutcome.FAILED)
    ]


def _agents_needing_action(report: RunReport) -> list[tuple[TargetResult, str, str]]:
    """Agents left on the old value: a maker's unpublished changes, or a publish that failed."""
    seen: set[tuple[str, str]] = set()  # one agent fed by several variables is named once
    found = []
    for result in report.results:
        for agent in result.agents:
            key = (result.environment, agent.id)
            if agent.outcome in (AgentOutcome.NEEDS_ACTION, AgentOutcome.FAILED) and key not in seen:
                seen.add(key)
                found.append((result, agent.name, agent.reason))
    return found


def _detail(result: TargetResult) -> str:
    """The reason and what to do, each said once: a gate's reason (rolled back, held back) already
    says what to do, a failure's reason says only what went wrong."""
    if not result.reason:
        return WHAT_TO_DO[result.outcome]
    if result.outcome in (Outcome.ROLLED_BACK, Outcome.HELD_BACK):
        return literal(result.reason)
    return f"{literal(result.reason)} — {WHAT_TO_DO[result.outcome]}"


def _attention(report: RunReport) -> list[dict[str, Any]]:
    """Failures first, each with what to do; flows a person must turn on, named."""
    items: list[dict[str, Any]] = []
    rows = [(s.secret, r) for s in report.secrets for r in s.results if r.needs_attention]
    for secret, result in rows[:MAX_ATTENTION_ROWS]:
        items.append(
            _text(
                f"**{result.environment}** (stage {result.stage}) · {_label(result)} ({secret}): "
                f"{result.outcome.value.replace('_', ' ')}",
                color=OUTCOME_COLOUR[result.outcome],
                weight="Bolder",
                spacing="Medium",
            )
        )
        items.append(_text(_detail(result), size="Small", spacing="None"))
    named = [("Flow", *item) for item in _flows_needing_action(report)]
    named += [("Agent", *item) for item in _agents_needing_action(report)]
    for what, result, name, reason in named[:MAX_ATTENTION_ROWS]:
        items.append(
            _text(
                f'**{what} "{literal(name)}"** in {result.environment}: {literal(reason)}',
                color="Attention",
                size="Small",
                spacing="Small",
            )
        )
    left_off = (
        len(rows) + len(named) - min(len(rows), MAX_ATTENTION_ROWS) - min(len(named), MAX_ATTENTION_ROWS)
    )
    if left_off > 0:
        items.append(
            _text(f"…and {left_off} more: see the run's log or `python -m sync status`.", isSubtle=True)
        )
    if items:
        items.insert(0, _text("Needs attention", weight="Bolder", spacing="Large"))
    return items


def _flow_summary(result: TargetResult) -> str:
    """The refreshed flows and republished agents by name (makers know them by name)."""
    summary = ""
    for what, verb, names in (
        ("flow", "refreshed", [flow.name for flow in result.flows if flow.outcome is FlowOutcome.REFRESHED]),
        ("agent", "republished", [a.name for a in result.agents if a.outcome is AgentOutcome.PUBLISHED]),
    ):
        if not names:
            continue
        shown = ", ".join(literal(name) for name in names[:MAX_FLOW_NAMES])
        if len(names) > MAX_FLOW_NAMES:
            shown += f" and {len(names) - MAX_FLOW_NAMES} more"
        summary += f"; {what}{'s' if len(names) != 1 else ''} {verb}: {shown}"
    return summary


def _stages(report: RunReport) -> list[dict[str, Any]]:
    """Every target when the run is small; counts per stage and environment when it is big."""
    results = sorted(report.results, key=lambda r: (r.stage, r.environment, r.label))
    items: list[dict[str, Any]] = []
    for stage in sorted({r.stage for r in results}):
        in_stage = [r for r in results if r.stage == stage]
        items.append(_text(f"Stage {stage}", weight="Bolder", spacing="Large"))
        if len(results) <= MAX_TARGET_ROWS:
            facts = [
                {
                    "title": f"{r.environment} · {_label(r)}",
                    "value": f"{r.outcome.value}{_flow_summary(r)}",
                }
                for r in in_stage
            ]
        else:
            facts = []
            for environment in sorted({r.environment for r in in_stage}):
                counts = Counter(r.outcome.value for r in in_stage if r.environment == environment)
                refreshed = sum(
                    f.outcome is FlowOutcome.REFRESHED
                    for r in in_stage
                    if r.environment == environment
                    for f in r.flows
                )
                summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
                if refreshed:
                    summary += f", {refreshed} flows refreshed"
                facts.append({"title": environment, "value": summary})
        items.append({"type": "FactSet", "facts": facts, "spacing": "Small"})
    return items


def build_card(report: RunReport) -> dict[str, Any]:
    body: list[dict[str, Any]] = [_status(report), _facts(report), *_attention(report), *_stages(report)]
    if any(not r.refresh_flows for r in report.results):
        body.append(_text(FLOWS_NOT_REFRESHED, isSubtle=True, size="Small", spacing="Large"))
    return _card(body)
