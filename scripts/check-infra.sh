#!/usr/bin/env bash
# Offline security scan of infra/**/*.bicep with checkov, gated on its JSON summary.
#
# checkov pins old dependencies, so it lives in its own virtual environment (.venv-checkov),
# created on first use and reused after (only python3 is needed). checkov exits 0 even when it
# cannot parse a file, so the exit code is not trusted: the gate reads the JSON report and
# requires passed > 0, failed == 0 and parsing_errors == 0. Skips are written inline in the Bicep
# ('// checkov:skip=CKV_...: reason'); tests/infra checks that each has a reason.
#
#   bash scripts/check-infra.sh                 # install if needed, scan, gate
#   bash scripts/check-infra.sh --gate REPORT   # only gate an existing checkov JSON report
set -euo pipefail
if [ "${1:-}" = "--gate" ] && [ -n "${2:-}" ]; then
  gate_report="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

CHECKOV_VERSION="3.3.30"
venv=".venv-checkov"
report="$venv/checkov-report.json"

gate() {
  python3 - "$1" <<'PY'
import json
import sys

path = sys.argv[1]
try:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
except (OSError, ValueError) as error:
    sys.exit(f"check-infra: no usable checkov JSON report at {path}: {error}")

# One framework gives a dict; several (or some versions) give a list of dicts; with nothing to
# scan, checkov prints a bare summary.
reports = data if isinstance(data, list) else [data]
reports = [{"summary": r} if isinstance(r, dict) and "passed" in r else r for r in reports]
reports = [r for r in reports if isinstance(r, dict) and r.get("check_type", "bicep") == "bicep"]
if not reports:
    sys.exit("check-infra: the report has no bicep results (no .bicep file scanned?)")

totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
for report in reports:
    summary = report.get("summary", {})
    for key in totals:
        totals[key] += int(summary.get(key, 0))
version = reports[0].get("summary", {}).get("checkov_version", "?")

print(
    "checkov {v} (bicep): passed={passed} failed={failed} skipped={skipped} "
    "parsing_errors={parsing_errors} resources={resource_count}".format(v=version, **totals)
)
for report in reports:
    results = report.get("results", {})
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        print(f"  skipped {check['check_id']} {check['resource']} (infra{check['file_path']}): {reason}")
    for check in results.get("failed_checks", []):
        print(f"  FAILED {check['check_id']} {check['resource']} (infra{check['file_path']}): {check['check_name']}")
    for error in results.get("parsing_errors", []):
        print(f"  PARSE ERROR {error}")

problems = []
if totals["passed"] <= 0:
    problems.append("no check passed (nothing scanned?)")
if totals["failed"] != 0:
    problems.append(f"{totals['failed']} failed check(s)")
if totals["parsing_errors"] != 0:
    problems.append(f"{totals['parsing_errors']} file(s) checkov could not parse")
if problems:
    sys.exit("check-infra: FAILED: " + "; ".join(problems))
print("check-infra: OK")
PY
}

if [ "${1:-}" = "--gate" ]; then
  gate "${gate_report:?usage: check-infra.sh --gate REPORT.json}"
  exit
fi

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "==> creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.checkov-$CHECKOV_VERSION"
if [ ! -f "$stamp" ]; then
  echo "==> installing checkov $CHECKOV_VERSION into $venv"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION" >"$venv/pip.log" 2>&1; then
    cat "$venv/pip.log" >&2
    echo "check-infra: installing checkov failed" >&2
    exit 1
  fi
  rm -f "$venv"/.checkov-*
  touch "$stamp"
fi

# Fully offline: no guideline download, no platform calls (nothing else is reachable here anyway).
export BC_SKIP_MAPPING=TRUE
echo "==> checkov --framework bicep -d infra"
set +e
"$venv/bin/checkov" --framework bicep --directory infra --output json --skip-download \
  --compact >"$report" 2>"$venv/checkov-stderr.log"
status=$?
set -e
# 0 = clean, 1 = failed checks (the gate reports them); anything else is a crash.
if [ "$status" -gt 1 ]; then
  cat "$venv/checkov-stderr.log" >&2
  echo "check-infra: checkov crashed (exit $status)" >&2
  exit 1
fi
gate "$report"
