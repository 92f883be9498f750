"""`python -m sync <command>`: the operator CLI (see sync.cli)."""

from sync.cli import main

main()
