"""Usage errors exit 3 ("invalid configuration or usage"), never 2, which means "failures".

In process (typer's runner drives the same click entry point as `python -m sync`): no settings and
no emulator are needed, because a usage error is found before either is read.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.cli.exit_codes import ExitCode

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--bogus"], "No such option: --bogus"),
        (["--bogus"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
        (["sync"], "Missing argument 'SECRET'"),
        (["sync", "x", "--env"], "Option '--env' requires an argument"),
        (["plan", "--timeout", "0"], "Invalid value for '--timeout'"),
        (["reconcile", "--timeout", "soon"], "Invalid value for '--timeout'"),
        (["sync", "--secret", "x"], "No such option: --secret"),
    ],
)
def test_usage_errors_exit_3_with_clicks_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == int(ExitCode.INVALID_CONFIGURATION) == 3, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_help_documents_exit_code_3_for_usage_errors_and_exits_0() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "3 invalid configuration or usage" in " ".join(result.output.split())
    sync_help = runner.invoke(app, ["sync", "--help"])
    assert sync_help.exit_code == 0 and "sync [OPTIONS] {SECRET}" in sync_help.output
