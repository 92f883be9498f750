"""The gate of scripts/check-infra.sh (``--gate REPORT``) on crafted checkov JSON reports.

checkov exits 0 when it cannot parse a file, so the script trusts only the report's summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check-infra.sh"
# What checkov prints when it finds nothing to scan.
BARE_SUMMARY = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}


def report(
    passed: int = 3, failed: int = 0, parsing_errors: int = 0, check_type: str = "bicep"
) -> dict[str, Any]:
    failed_checks = [
        {
            "check_id": "CKV_AZURE_35",
            "check_name": "Ensure default network access rule for Storage Accounts is set to deny",
            "resource": "Microsoft.Storage/storageAccounts.storage",
            "file_path": "/modules/storage.bicep",
        }
    ] * failed
    return {
        "check_type": check_type,
        "results": {
            "passed_checks": [],
            "failed_checks": failed_checks,
            "skipped_checks": [],
            "parsing_errors": ["/modules/broken.bicep"] * parsing_errors,
        },
        "summary": {
            "passed": passed,
            "failed": failed,
            "skipped": 0,
            "parsing_errors": parsing_errors,
            "resource_count": 5,
            "checkov_version": "3.3.30",
        },
    }


def gate(tmp_path: Path, content: Any) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "report.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(  # noqa: S603 - fixed script
        [bash, str(SCRIPT), "--gate", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "content",
    [report(), [report(), report(check_type="secrets", failed=2)]],
    ids=["dict", "list-with-other-frameworks"],
)
def test_clean_report_passes_and_prints_the_summary(tmp_path: Path, content: Any) -> None:
    result = gate(tmp_path, content)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checkov 3.3.30 (bicep): passed=3 failed=0 skipped=0 parsing_errors=0 resources=5" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (report(failed=1), "1 failed check(s)"),
        (report(parsing_errors=1), "1 file(s) checkov could not parse"),
        (report(passed=0), "no check passed"),
        ([report(), report(failed=2)], "2 failed check(s)"),
        (BARE_SUMMARY, "no check passed"),
        ([report(check_type="secrets")], "no bicep results"),
        ("checkov crashed before writing JSON", "no usable checkov JSON report"),
    ],
    ids=["failed", "parse-error", "nothing-passed", "list-failed", "bare-summary", "no-bicep", "not-json"],
)
def test_bad_report_fails_the_gate(tmp_path: Path, content: Any, message: str) -> None:
    result = gate(tmp_path, content)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
