"""How the demo shows things: result tables, Adaptive Cards as a maker would read them, checks.

Rich gives colour on a terminal and plain text when piped or when NO_COLOR is set. Lines are
laid out for 80 columns (the width when piped): short head lines, details indented below, so a
narrow terminal wraps between words rather than through a table's columns. Everything
printed goes through the demo's guarded output, which withholds any line carrying a secret value.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

OUTCOME_STYLE = {
    "updated": "green",
    "created": "green",
    "unchanged": "dim",
    "skipped": "yellow",
    "failed": "bold red",
    "rolled_back": "yellow",
    "held_back": "yellow",
    "needs_action": "yellow",
}
CARD_COLOUR = {"Good": "green", "Attention": "red", "Warning": "yellow", "Accent": "cyan"}
# One line per outcome: why a target ended this way.
WHY = {
    "updated": "its value row held another value: PATCHed under the row's etag, then read back",
    "created": (
        "the definition had no value row yet (flows used its default): a row was created, then read back"
    ),
    "unchanged": "it already held the current secret: nothing was written",
    "skipped": "the environment is not ready: Event Grid's redelivery or the reconcile will finish it",
    "failed": "see the reason: Lockstep wrote nothing it could not verify",
    "rolled_back": "this run wrote it, but its stage failed the gate: the previous value is back",
    "held_back": "an earlier stage failed: this stage was never touched",
    "needs_action": "Lockstep may not change it: a person must act (see the reason)",
}
# A Secret-type variable ends `unchanged` too, for another reason: it is never written.
REFERENCE_WHY = "a Key Vault reference: checked against the vault, never written"


def results_lines(report: dict[str, Any]) -> list[Text]:  # details are indented by the narrator
    """Each target as a short head line, then its flows and reason indented below: reads the same
    at 80 columns and when piped (a seven-column table wrapped mid-word at 80)."""
    lines: list[Text] = []
    for secret in report["secrets"]:
        for result in secret["results"]:
            outcome = result["outcome"]
            lines.append(
                Text.assemble(
                    f"{result['environment']:<5} stage {result['stage']}  {result['env_var']}  ",
                    (outcome, OUTCOME_STYLE.get(outcome, "")),
                    (f"  {result['duration_ms']:.0f} ms", "dim"),
                )
            )
            flows = ", ".join(f"{flow['name']} {flow['outcome']}" for flow in result.get("flows", []))
            if flows:
                lines.append(Text(f"flows: {flows}"))
            agents = ", ".join(f"{agent['name']} {agent['outcome']}" for agent in result.get("agents", []))
            if agents:
                lines.append(Text(f"agents: {agents}"))
            if result["reason"]:
                lines.append(Text(f"reason: {result['reason']}", style="dim"))
    return lines


def explain(report: dict[str, Any]) -> list[str]:
    """One line per target: why it ended as it did."""
    return [
        f"{r['environment']}: {r['outcome']} — "
        + (REFERENCE_WHY if r["reason"].startswith("Key Vault reference") else WHY.get(r["outcome"], ""))
        for secret in report["secrets"]
        for r in secret["results"]
    ]


def shown(markdown: str) -> str:
    """Card Markdown as a maker reads it: escapes resolved, invisible zero-width spaces gone."""
    return re.sub(r"\\([\\`*_\[\]<>~#|{}!.+-])", r"\1", markdown).replace("\u200b", "")


def _card_lines(element: dict[str, Any], lines: list[Text]) -> None:
    kind = element.get("type")
    if kind == "TextBlock":
        style = CARD_COLOUR.get(str(element.get("color", "")), "")
        if element.get("weight") == "Bolder":
            style = f"bold {style}".strip()
        if element.get("isSubtle"):
            style = f"dim {style}".strip()
        lines.append(Text(shown(str(element.get("text", ""))), style=style))
    elif kind == "FactSet":
        for fact in element.get("facts", []):
            lines.append(Text.assemble((f"{shown(fact['title'])}: ", "bold"), shown(str(fact["value"]))))
    elif kind == "ColumnSet":
        cells: list[Text] = []
        for column in element.get("columns", []):
            inner: list[Text] = []
            for item in column.get("items", []):
                _card_lines(item, inner)
            cells.append(Text(" ").join(inner))
        lines.append(Text(" | ").join(cells))
    elif kind in ("Container", "Column"):
        for item in element.get("items", []):
            _card_lines(item, lines)
    elif kind == "ActionSet":
        for action in element.get("actions", []):
            lines.append(Text(f"[{action.get('title', 'link')}]", style="underline"))
    for action in element.get("actions", []) if kind == "AdaptiveCard" else []:
        lines.append(Text(f"[{action.get('title', 'link')}]", style="underline"))


def card_panel(post: dict[str, Any]) -> Panel:
    """The Teams message's Adaptive Card, rendered as text: roughly what makers see in the channel."""
    card = post["attachments"][0]["content"]
    lines: list[Text] = []
    for element in card.get("body", []):
        _card_lines(element, lines)
    _card_lines({"type": "AdaptiveCard", "actions": card.get("actions", [])}, lines)
    return Panel(Text("\n").join(lines), title="Teams card", title_align="left", expand=False)


class Narrator:
    """Says, shows and checks; every claim is checked against the emulator's state."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.problems: list[str] = []

    def act(self, title: str) -> None:
        self.console.print()
        if len(title) + 6 <= self.console.width:
            self.console.rule(f"[bold]{title}", align="left")
        else:  # a rule would cut the title short: the title wrapped, the rule below it
            self.console.print(Text(title, style="bold"))
            self.console.rule()

    def say(self, text: str = "", style: str = "") -> None:
        """A line; when it wraps, the continuation keeps the line's indent."""
        indent = len(text) - len(text.lstrip(" "))
        self.wrapped(Text(text[indent:], style=style), indent)

    def wrapped(self, text: Text, indent: int) -> None:
        """Wraps between words at the console's width, every line indented (no trailing blanks)."""
        width = max(20, self.console.width - indent)
        offset = 0
        for paragraph in text.plain.split("\n"):
            position = 0
            for line in textwrap.wrap(paragraph, width, break_on_hyphens=False) or [""]:
                start = paragraph.index(line, position)
                position = start + len(line)
                piece = text[offset + start : offset + position]
                self.console.print(Text(" " * indent) + piece if line else Text(""), soft_wrap=True)
            offset += len(paragraph) + 1

    def report(self, report: dict[str, Any]) -> None:
        for line in results_lines(report):
            detail = line.plain.startswith(("flows: ", "agents: ", "reason: "))
            self.wrapped(line, 6 if detail else 2)
        for line in explain(report):
            self.wrapped(Text(f"· {line}", style="dim"), 2)
        self.say(
            f"  correlation id {report['correlation_id']} · Teams: {report['notification']}", style="dim"
        )

    def card(self, post: dict[str, Any]) -> None:
        self.console.print(card_panel(post))

    def check(self, claim: str, holds: bool) -> None:
        mark = Text("  ✔ ", style="green") if holds else Text("  ✘ ", style="bold red")
        self.console.print(mark + Text(claim), highlight=False)
        if not holds:
            self.problems.append(claim)
