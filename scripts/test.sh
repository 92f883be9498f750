#!/usr/bin/env bash
# The test command (README, CI): lint, types, the test suite, then the offline infra checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "==> ruff"
ruff check .
ruff format --check .
echo "==> mypy (sync/)"
mypy
echo "==> pytest"
pytest "$@"
echo "==> infra (checkov)"
bash scripts/check-infra.sh
