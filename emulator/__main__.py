"""``python -m emulator [--seed FILE] [--write-settings FILE]``: run the emulator until SIGINT/SIGTERM.

``python -m emulator rotate SECRET --settings local.settings.json``: rotate a secret in the running
emulator and print the Event Grid event (a JSON array, ready to POST to the function) on stdout.

``python -m emulator cards [--json] --settings local.settings.json``: print the Teams cards the
running emulator has recorded (the running emulator also prints a one-line summary of each).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ._control import cards_request, rotate_request
from ._core import Emulator
from ._seed import SeedError, load_seed
from ._settings import write_core_tools_settings
from ._state import TEAMS_HOST
from ._teams import card_lines, card_summary

WEBHOOK_FILE = "teams-webhook-url"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description="Loopback Key Vault, Dataverse, admin API, managed identity and Teams webhook.",
    )
    parser.add_argument("--seed", metavar="FILE", help="JSON seed file (see emulator/README.md)")
    parser.add_argument("--proxy-port", type=int, default=0, help="CONNECT proxy port (default: any free)")
    parser.add_argument(
        "--identity-port", type=int, default=0, help="managed-identity port (default: any free)"
    )
    parser.add_argument("--verbose", action="store_true", help="log requests (method, host, path) at DEBUG")
    parser.add_argument(
        "--write-settings",
        metavar="FILE",
        help="write a Core Tools local.settings.json for this run (needs --seed with mapping.secrets)",
    )
    return parser


def _rotate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator rotate",
        description="Rotate a secret in the running emulator; print the Event Grid event on stdout.",
    )
    parser.add_argument("secret", help="the secret's name")
    parser.add_argument("--vault", help="the vault (optional when the emulator has one)")
    parser.add_argument(
        "--settings",
        metavar="FILE",
        default="local.settings.json",
        help="the settings file --write-settings wrote (default: local.settings.json)",
    )
    return parser


def rotate(argv: Sequence[str]) -> int:
    args = _rotate_parser().parse_args(argv)
    try:
        values = json.loads(Path(args.settings).read_text(encoding="utf-8"))["Values"]
        answer = rotate_request(
            values["IDENTITY_ENDPOINT"], values["IDENTITY_HEADER"], args.secret, args.vault
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"python -m emulator rotate: {exc}", file=sys.stderr)
        return 2
    print(
        f"# rotated {answer['secret']} in vault {answer['vault']}: version {answer['version']}",
        file=sys.stderr,
    )
    print(json.dumps([answer["event"]], indent=2))
    return 0


def cards(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator cards", description="Print the Teams cards the running emulator recorded."
    )
    parser.add_argument("--json", action="store_true", help="the messages as posted, as a JSON array")
    parser.add_argument("--settings", metavar="FILE", default="local.settings.json", help="as for rotate")
    args = parser.parse_args(argv)
    try:
        values = json.loads(Path(args.settings).read_text(encoding="utf-8"))["Values"]
        posted = cards_request(values["IDENTITY_ENDPOINT"], values["IDENTITY_HEADER"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"python -m emulator cards: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(posted, indent=2))
        return 0
    print(f"# {len(posted)} Teams card(s) recorded", file=sys.stderr)
    for number, message in enumerate(posted, 1):
        print(f"--- card {number}")
        print("\n".join(f"  {line}" for line in card_lines(message)))
    return 0


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["rotate"]:
        return rotate(argv[1:])
    if argv[:1] == ["cards"]:
        return cards(argv[1:])
    args = _parser().parse_args(argv)
    if args.write_settings and not args.seed:
        print("python -m emulator: --write-settings needs --seed", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:  # the emulator's own DEBUG lines only (method, host, path; never a query or body)
        logging.getLogger("emulator").setLevel(logging.DEBUG)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    emulator = Emulator(proxy_port=args.proxy_port, identity_port=args.identity_port)
    try:
        if args.seed:
            load_seed(emulator, args.seed)
    except (OSError, SeedError) as exc:
        print(f"python -m emulator: {exc}", file=sys.stderr)
        return 2
    with emulator:
        if args.write_settings:
            try:
                document = json.loads(Path(args.seed).read_text(encoding="utf-8"))
                write_core_tools_settings(args.write_settings, emulator, document)
            except (OSError, ValueError) as exc:
                print(f"python -m emulator: --write-settings: {exc}", file=sys.stderr)
                return 2
            print(f"# Core Tools settings for this run written to {args.write_settings} (mode 0600)")
        webhook_file = str(emulator.ca_cert_path.parent / WEBHOOK_FILE)
        _write_private(webhook_file, emulator.teams_webhook_url())
        print("# Lockstep emulator is running; stop it with Ctrl-C (SIGINT) or SIGTERM.")
        for key, value in emulator.client_environment().items():
            print(f"export {key}={shlex.quote(value)}")
        print(f"# Teams webhook: https://{TEAMS_HOST}{emulator.teams_webhook_path()}")
        print(f"#   the full URL (it carries the sig) is in {webhook_file} (mode 0600)")
        for vault in emulator.key_vaults():
            print(f"# Key Vault {vault.name}: {vault.url}")
        for env in emulator.environments():
            print(f"# Environment {env.name}: id={env.id} url={env.url}")
        print("# Teams cards are summarised here as they arrive; `python -m emulator cards` prints them.")
        sys.stdout.flush()
        shown = 0
        while not stop.wait(0.2):
            posted = emulator.teams_posts
            for message in posted[shown:]:
                print(f"# Teams card: {card_summary(message)}", flush=True)
            shown = len(posted)
    print("# Lockstep emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
