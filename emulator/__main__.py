"""``python -m emulator [--seed FILE]``: run the emulator for Core Tools or a demo until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._core import Emulator
from ._seed import SeedError, load_seed
from ._state import TEAMS_HOST

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
    return parser


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    print("# Lockstep emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
