"""The operator CLI: `python -m sync <command>` or the `lockstep` console script.

Commands: validate, plan, sync, reconcile, status, doctor, inventory. Each reads the same app settings as
the functions (or a Core Tools `local.settings.json` via --settings), prints a table or, with
--json, one JSON document, and exits 0 (in sync / done), 1 (changes pending), 2 (failures) or
3 (invalid configuration or usage). Only `sync` and `reconcile` without --dry-run write anything.
"""

from __future__ import annotations

from sync.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
