"""The command line itself: arguments, help texts and exit codes (the work is in sync.cli.commands)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import UsageError  # the base of the public typer.BadParameter
from typer.core import TyperGroup

from sync.cli import commands
from sync.cli.doctor import doctor as run_doctor
from sync.cli.exit_codes import ExitCode
from sync.cli.output import Output
from sync.cli.session import CommandError, Options, configure_logging, load, run
from sync.runtime import Runtime
from sync.telemetry import correlation, new_correlation_id


class LockstepGroup(TyperGroup):
    """Usage errors (unknown option or command, missing argument, a value out of range) exit 3.

    click's usage errors exit 2, which here means "failures": a script branching on the exit code
    would read a typo as an unreachable environment. Parsing the group's own arguments
    (`make_context`) and the command's (inside `invoke`) is where every usage error is raised.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_exits_3():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_exits_3():
            return super().invoke(ctx)


@contextmanager
def _usage_exits_3() -> Iterator[None]:
    try:
        yield
    except UsageError as error:
        error.exit_code = int(ExitCode.INVALID_CONFIGURATION)
        raise


app = typer.Typer(
    name="lockstep",
    cls=LockstepGroup,
    help=(
        "Operate Lockstep: check the configuration, see what a sync would change, sync on demand, "
        "diagnose environments.\n\nExit codes: 0 in sync / done, 1 changes pending, 2 failures, "
        "3 invalid configuration or usage (an unknown option, a missing argument, a bad value)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SettingsFile = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        metavar="FILE",
        help="A Core Tools local.settings.json; its Values are applied to the environment first.",
        dir_okay=False,
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (with a 'targets' list) instead of tables.")
]
Verbose = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="Show the run's log (-vv: libraries too).")
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1.0,
        metavar="SECONDS",
        help="Seconds allowed per environment (read commands) or per run.",
    ),
]
Secrets = Annotated[
    list[str] | None, typer.Option("--secret", metavar="SECRET", help="Only this secret (repeatable).")
]
Environments = Annotated[
    list[str] | None, typer.Option("--env", metavar="ENV", help="Only this environment (repeatable).")
]


def _finish(code: ExitCode) -> None:
    raise typer.Exit(int(code))


def _run(
    name: str,
    settings: Path | None,
    json: bool,
    verbose: int,
    timeout: float,
    work: Callable[[Runtime, Output], Awaitable[ExitCode]],
) -> None:
    output = Output(name, as_json=json)
    options = Options(settings_file=settings, json=json, verbose=verbose, timeout=timeout)
    _finish(run(options, output, lambda runtime: work(runtime, output)))


@app.command()
def validate(settings: SettingsFile = None, json: Json = False, verbose: Verbose = 0) -> None:
    """Check the settings and the mapping without contacting anything; list every problem with its field."""
    output = Output("validate", as_json=json)
    configure_logging(verbose)
    with correlation(new_correlation_id()):
        try:
            loaded = load(Options(settings_file=settings, json=json, verbose=verbose, timeout=0))
        except CommandError as error:
            output.problems(error.problems, error.code)
            _finish(error.code)
        _finish(commands.validate(loaded, output))


@app.command()
def plan(
    secret: Secrets = None,
    env: Environments = None,
    settings: SettingsFile = None,
    json: Json = False,
    verbose: Verbose = 0,
    timeout: Timeout = 60.0,
) -> None:
    """Dry run: each target's state (in_sync, differs, missing_value, missing_definition, refused, error)."""
    _run(
        "plan", settings, json, verbose, timeout, lambda rt, out: commands.plan(rt, out, timeout, secret, env)
    )


@app.command("sync")
def sync_command(
    secret: Annotated[
        str, typer.Argument(metavar="SECRET", help="The Key Vault secret name, as in the mapping.")
    ],
    env: Environments = None,
    settings: SettingsFile = None,
    json: Json = False,
    verbose: Verbose = 0,
    timeout: Timeout = 120.0,
) -> None:
    """Sync one secret now, exactly as its rotation event would (stages, gate, rollback, card). Writes."""
    _run(
        "sync",
        settings,
        json,
        verbose,
        timeout,
        lambda rt, out: commands.sync_one(rt, out, timeout, secret, env),
    )


@app.command()
def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change (same as plan).")
    ] = False,
    settings: SettingsFile = None,
    json: Json = False,
    verbose: Verbose = 0,
    timeout: Timeout = 600.0,
) -> None:
    """Run the nightly reconcile now: every mapped secret to every target. Writes unless --dry-run."""
    _run(
        "reconcile",
        settings,
        json,
        verbose,
        timeout,
        lambda rt, out: commands.reconcile(rt, out, timeout, dry_run),
    )


@app.command()
def status(
    env: Environments = None,
    settings: SettingsFile = None,
    json: Json = False,
    verbose: Verbose = 0,
    timeout: Timeout = 60.0,
) -> None:
    """Per environment: each mapped variable's state, and its secret's current version and date."""
    _run("status", settings, json, verbose, timeout, lambda rt, out: commands.status(rt, out, timeout, env))


@app.command()
def doctor(
    settings: SettingsFile = None, json: Json = False, verbose: Verbose = 0, timeout: Timeout = 30.0
) -> None:
    """Check tokens, WhoAmI, the admin API, definitions, vault access and Teams; say what to fix."""
    _run("doctor", settings, json, verbose, timeout, lambda rt, out: run_doctor(rt, out, timeout))


@app.command()
def inventory(
    env: Environments = None,
    settings: SettingsFile = None,
    json: Json = False,
    verbose: Verbose = 0,
    timeout: Timeout = 60.0,
) -> None:
    """Per environment: each mapped variable, the cloud flows using it (state, owner), their connections."""
    _run(
        "inventory",
        settings,
        json,
        verbose,
        timeout,
        lambda rt, out: commands.inventory(rt, out, timeout, env),
    )
