"""How a command speaks: a table for people, one JSON document for scripts, never a value.

Every command ends by handing `finish` its targets (dicts with at least secret, environment,
env_var and state) and any other fields. With --json that is the whole of stdout; otherwise a
table goes to stdout and messages to stderr, so `lockstep plan > plan.txt` keeps just the plan.
Colour only on a terminal; rich honours NO_COLOR.

Names and reasons come from others (flow names, remote error messages): they are printed as
plain text, never as rich markup (`[link=…]` would become a hyperlink), with terminal control
characters and escape sequences removed (`ESC ]8;;` hyperlinks, `ESC [2J` clear screen).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sync.cli.exit_codes import ExitCode
from sync.telemetry import current_correlation_id

STATE_STYLES = {
    "in_sync": "green",
    "unchanged": "green",
    "updated": "cyan",
    "created": "cyan",
    "differs": "yellow",
    "missing_value": "yellow",
    "ok": "green",
}
PIPED_WIDTH = 160
# CSI and OSC sequences whole (so no "[2J" debris), then any control or bidi-override character.
_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain(text: str) -> Text:
    """Others' text as rich shows it literally: no markup, no control characters."""
    text = _SEQUENCE.sub("", text)
    cleaned = "".join(
        " " if char in "\t\r\n" else char
        for char in text
        if char in "\t\r\n" or (unicodedata.category(char) != "Cc" and char not in _BIDI)
    )
    return Text(cleaned)


def _console(stream: Any) -> Console:
    terminal = stream.isatty()
    return Console(
        file=stream, highlight=False, width=None if terminal else PIPED_WIDTH, soft_wrap=not terminal
    )


class Output:
    def __init__(self, command: str, *, as_json: bool) -> None:
        self.command = command
        self.as_json = as_json
        self.out = _console(sys.stdout)
        self.err = _console(sys.stderr)

    def say(self, text: str) -> None:
        """A line for people (stdout); nothing in JSON mode."""
        if not self.as_json:
            self.out.print(plain(text))

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.as_json:
            return
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(self._styled(column, cell) for column, cell in zip(columns, row, strict=True)))
        self.out.print(table)

    @staticmethod
    def _styled(column: str, cell: str) -> Text:
        text = plain(cell)
        if column in ("state", "outcome"):
            text.stylize(STATE_STYLES.get(cell, "red"))
        return text

    def finish(self, code: ExitCode, targets: Sequence[dict[str, Any]], **fields: Any) -> ExitCode:
        """Writes the JSON document (JSON mode), with the run's correlation id, and returns the exit code."""
        if self.as_json:
            document = {
                "command": self.command,
                "exit_code": int(code),
                "correlation_id": current_correlation_id(),
                **fields,
                "targets": list(targets),
            }
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        return code

    def problems(self, problems: Sequence[str], code: ExitCode) -> None:
        """An expected failure: each problem on its own line (stderr), or the JSON document."""
        if self.as_json:
            self.finish(code, [], problems=list(problems))
            return
        heading = "invalid configuration" if code is ExitCode.INVALID_CONFIGURATION else "error"
        self.err.print(f"[bold red]{heading}:[/bold red]", markup=True)
        for problem in problems:
            self.err.print(Text("  - ") + plain(problem))

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[Any]:
        """A progress bar on a terminal (stderr); a no-op when piped or in JSON mode."""
        if self.as_json or not self.err.is_terminal:
            yield lambda *_: None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.err, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda *_: bar.advance(task)
