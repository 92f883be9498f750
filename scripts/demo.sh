#!/usr/bin/env bash
# The local demo (README): emulator up, secret rotated, event delivered, drift repaired.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m demo "$@"
