"""The CLI prints others' text (flow names, variable reasons, remote messages) as plain text:
no rich markup, no terminal control sequences (security review: text others control)."""

from __future__ import annotations

import pytest

from sync.cli.exit_codes import ExitCode
from sync.cli.output import Output, plain

HOSTILE = (
    "Payroll [link=https://x]y[/link] [bold]loud[/bold] "
    "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[2J\x07\rforged\nline \x9b2J \u202eevil"
)


def test_others_text_is_printed_literally_without_control_characters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = Output("inventory", as_json=False)
    output.table("flows", ["flow", "state", "reason"], [[HOSTILE, "failed", HOSTILE]])
    output.say(f"warning: {HOSTILE}")
    output.problems([HOSTILE], ExitCode.FAILURES)
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert "[link=https://x]y[/link]" in stream  # the markup shown as text, not interpreted
        assert "[bold]loud[/bold]" in stream
        assert "click" in stream and "evil.example" not in stream  # the OSC 8 hyperlink is gone whole
        for control in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
            assert control not in stream


def test_a_terminal_gets_no_hyperlink_either() -> None:
    console_text = plain(HOSTILE)
    assert console_text.spans == [] and "\x1b" not in console_text.plain
    assert "\n" not in console_text.plain  # a reason cannot forge a second output line
