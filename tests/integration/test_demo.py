"""The README's demo command, run as a user would: it must pass and never print a value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from demo.scenario import canary

ROOT = Path(__file__).resolve().parents[2]


def test_demo_passes_and_keeps_the_secret() -> None:
    value = canary("demo-")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HTTPS_PROXY", "https_proxy", "SSL_CERT"))
    }
    env["LOCKSTEP_DEMO_SECRET_VALUE"] = value
    done = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Demo passed" in done.stdout
    # Piped, it is laid out for 80 columns: nothing wraps mid-word in a narrow terminal.
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    assert "✘" not in done.stdout
    for outcome in ("updated", "created", "unchanged"):
        assert outcome in done.stdout
    assert value not in output
    assert "LOCKSTEP-CANARY" not in output  # no value of any kind: initial, rotated or tampered
