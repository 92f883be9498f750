"""Where a CLI command gets its settings, its clients, its logging and its exit code.

The CLI is an operator's view of the same app the functions run: it reads the same settings (the
process environment, like the Functions host, or a Core Tools `local.settings.json` whose Values
are applied to the environment first, since azure-identity and the TLS trust store read the
environment themselves) and builds the same runtime. Expected failures end in a message and an
exit code, never a traceback. Like each trigger's invocation, each command is one run with its own
correlation id: its log lines, its --json document, its report and its Teams card all carry it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sync.cli.exit_codes import ExitCode
from sync.cli.output import Output
from sync.errors import ConfigurationError
from sync.mapping import Mapping
from sync.runtime import Runtime, close_runtime, get_runtime
from sync.settings import Settings, load_settings
from sync.telemetry import correlation, new_correlation_id, quiet_noisy_loggers

T = TypeVar("T")


class CommandError(Exception):
    """An expected failure of a command: printed as-is, then the process exits with `code`."""

    def __init__(self, code: ExitCode, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.code = code
        self.problems = problems


@dataclass(frozen=True)
class Options:
    settings_file: Path | None
    json: bool
    verbose: int
    timeout: float


def configure_logging(verbose: int) -> None:
    """Quiet by default (the tables say what happened); -v shows the run's log, -vv the libraries'."""
    level = logging.ERROR if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    if verbose < 2:
        for name in ("azure", "msal", "urllib3", "aiohttp"):
            logging.getLogger(name).setLevel(logging.WARNING)
    quiet_noisy_loggers()


def apply_settings_file(path: Path) -> None:
    """Applies a Core Tools settings file's Values to this process's environment."""
    where = f"--settings {path}"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CommandError(
            ExitCode.INVALID_CONFIGURATION, [f"{where}: cannot read it: {error.strerror}"]
        ) from None
    except json.JSONDecodeError as error:
        raise CommandError(
            ExitCode.INVALID_CONFIGURATION,
            [f"{where}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"],
        ) from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise CommandError(ExitCode.INVALID_CONFIGURATION, [f"{where}: has no 'Values' object"])
    bad = sorted(str(key) for key, value in values.items() if not isinstance(value, str))
    if bad:
        raise CommandError(
            ExitCode.INVALID_CONFIGURATION, [f"{where}: Values.{key}: must be a string" for key in bad]
        )
    os.environ.update(values)


def load(options: Options) -> Settings:
    """The validated settings, or CommandError(3) listing every problem."""
    if options.settings_file is not None:
        apply_settings_file(options.settings_file)
    try:
        return load_settings(os.environ)
    except ConfigurationError as error:
        raise CommandError(ExitCode.INVALID_CONFIGURATION, error.problems) from None


def check_names(
    mapping: Mapping,
    secrets: Collection[str] | None,
    environments: Collection[str] | None,
    spelled: str = "--secret",
) -> None:
    """Arguments must name mapped secrets and environments: a typo must not look like 'in sync'.

    `spelled` is how the command line spells the secret (`sync` takes it as its SECRET
    argument, not as --secret), so the message points at what the operator actually typed.
    """
    problems = []
    known_secrets = set(mapping.secret_names())
    for name in secrets or ():
        if name not in known_secrets:
            problems.append(
                f"{spelled} {name}: not in the mapping (mapped: {', '.join(sorted(known_secrets))})"
            )
    known_environments = {environment.name for environment in mapping.environments}
    for name in environments or ():
        if name not in known_environments:
            problems.append(
                f"--env {name}: not in the mapping (mapped: {', '.join(sorted(known_environments))})"
            )
    if problems:
        raise CommandError(ExitCode.INVALID_CONFIGURATION, problems)


def run(options: Options, output: Output, command: Callable[[Runtime], Awaitable[ExitCode]]) -> ExitCode:
    """Loads settings, runs `command` with the runtime in a fresh loop, and closes the clients."""

    async def main() -> ExitCode:
        try:
            runtime = await get_runtime(os.environ)
            return await command(runtime)
        finally:
            await close_runtime()

    configure_logging(options.verbose)
    # asyncio.run copies this context, so the id reaches the engine, the report and the card.
    with correlation(new_correlation_id()):
        try:
            load(options)  # settings problems are reported before any client is built
            return asyncio.run(main())
        except CommandError as error:
            output.problems(error.problems, error.code)
            return error.code
        except ConfigurationError as error:
            output.problems(error.problems, ExitCode.INVALID_CONFIGURATION)
            return ExitCode.INVALID_CONFIGURATION
        except KeyboardInterrupt:
            output.problems(["interrupted"], ExitCode.FAILURES)
            return ExitCode.FAILURES
