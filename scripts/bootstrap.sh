#!/usr/bin/env bash
# Creates (or reuses) .venv with Python >= 3.11 and installs the pinned runtime and dev requirements.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again (pip skips what is installed).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

pick_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: Lockstep needs Python 3.11 or newer (the Azure Functions runtime it targets is 3.11)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python="$(pick_python)"
  echo "==> creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
  echo "==> installing pinned requirements into .venv (log: .venv/pip.log)"
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
    .venv/bin/python -m pip install --disable-pip-version-check -r requirements.txt -r requirements-dev.txt; } \
    >.venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    echo "error: pip install failed (full log: .venv/pip.log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
