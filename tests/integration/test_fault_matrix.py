"""Every service through every fault, through the real function entry point.

Each case scripts one fault in the emulator, delivers a rotation event, and checks the end state:
either every target holds the latest value (the fault was retried away), or the event raised for
Event Grid's redelivery and the redelivery finishes the job. Attempts are counted in the
emulator's request log. No case may leave two value rows for one variable.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from demo.scenario import SQL_SECRET, SQL_VAR, Scenario, canary
from emulator import Emulator
from sync.errors import SyncIncompleteError
from sync.runtime import close_runtime

from .conftest import deliver

# Extra attempts over a clean run, and whether the event had to be redelivered; (1, False) unless
# listed: the faulted request failed once and was tried again within the same delivery.
# A truncated 200 is not retried in place (the request "succeeded"): the target fails
# transiently, the event raises, and the redelivery repeats that environment's reads.
EXPECTED: dict[str, tuple[int, bool]] = {
    "dataverse-truncated-environmentvariabledefinitions": (1, True),
    "admin-truncated": (3, True),
}


@dataclass(frozen=True)
class Case:
    service: str
    kind: str
    status: int = 503
    path: str | None = None
    method: str | None = None
    retry_after: float | None = None
    date: bool = False
    times: int = 1

    @property
    def id(self) -> str:
        where = f"-{self.method or ''}{self.path or ''}".rstrip("-")
        extra = "-date" if self.date else ""
        return f"{self.service}-{self.kind}{'' if self.kind != 'status' else self.status}{extra}{where}"


READ = "environmentvariabledefinitions"
WRITE = "environmentvariablevalues("
SERVICES = {
    "identity": None,
    "keyvault": None,
    "dataverse-read": READ,
    "dataverse-write": WRITE,
    "admin": None,
    "teams": None,
}
CASES = [
    case
    for name, path in SERVICES.items()
    for case in (
        Case(name.split("-")[0], "status", 503, path),
        Case(name.split("-")[0], "status", 429, path, retry_after=1),
        Case(name.split("-")[0], "status", 429, path, retry_after=1, date=True),
        Case(name.split("-")[0], "html", path=path),
        Case(name.split("-")[0], "drop_before", path=path),
    )
] + [
    Case("dataverse", "truncated", path=READ),
    Case("admin", "truncated"),
    Case("dataverse", "drop_after", path=WRITE, method="PATCH"),
    Case("teams", "drop_after"),
]


def attempts(emulator: Emulator, case: Case) -> int:
    """Requests that the case's fault could have hit (its service, path and method)."""
    return sum(
        1
        for r in emulator.requests
        if r.service == case.service
        and (case.path is None or case.path in r.host + r.path)
        and (case.method is None or r.method == case.method)
        and r.status != 401  # Key Vault's authentication challenge is not an attempt
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_fault_is_retried_or_redelivered_and_ends_in_sync(
    case: Case, scenario: Scenario, emulator: Emulator
) -> None:
    # A clean rotation first, on a fresh runtime, counts the attempts the fault's endpoint needs.
    await deliver(scenario.rotate(SQL_SECRET, canary("clean-")))
    baseline = attempts(emulator, case)
    await close_runtime()
    emulator.expire_tokens()
    new = canary("fault-")
    event = scenario.rotate(SQL_SECRET, new)
    emulator.reset_requests()
    emulator.inject_fault(
        case.service,
        case.status,
        kind=case.kind,
        path_contains=case.path,
        method=case.method,
        retry_after=case.retry_after,
        retry_after_date=case.date,
        times=case.times,
    )
    redelivered = False
    try:
        await deliver(event)
    except SyncIncompleteError:
        redelivered = True
        await deliver(event)  # Event Grid's redelivery
    assert scenario.values(SQL_VAR) == {"dev": new, "test": new, "prod": new}
    for env in scenario.environments.values():
        assert env.value_row_count(SQL_VAR) == 1
    seen = attempts(emulator, case)
    assert (seen - baseline, redelivered) == EXPECTED.get(case.id, (1, False)), (baseline, seen)


async def test_lost_answer_on_create_leaves_one_row(scenario: Scenario, emulator: Emulator) -> None:
    """test has no value row: the create is applied, its answer lost, the retry meets the row."""
    new = canary("lost-create-")
    event = scenario.rotate(SQL_SECRET, new)
    emulator.inject_fault(
        "dataverse", 200, kind="drop_after", path_contains="contoso-test.crm", method="PATCH"
    )
    emulator.reset_requests()
    await deliver(event)
    test = scenario.environments["test"]
    assert test.value_row_count(SQL_VAR) == 1 and test.value_of(SQL_VAR) == new
    creates = [r for r in emulator.requests if "contoso-test" in r.host and r.method == "PATCH"]
    assert [r.status for r in creates][-1] == 412  # the retry met the row it had created


async def test_persistent_outage_is_reported_and_redelivery_finishes(
    scenario: Scenario, emulator: Emulator
) -> None:
    new = canary("outage-")
    event = scenario.rotate(SQL_SECRET, new)
    emulator.inject_fault("dataverse", 503, times=100, path_contains="contoso-test.crm")
    with pytest.raises(SyncIncompleteError):
        await deliver(event)
    assert scenario.values(SQL_VAR)["prod"] != new  # held back behind the failing stage
    emulator.clear_faults()
    await deliver(event)
    assert scenario.values(SQL_VAR) == {"dev": new, "test": new, "prod": new}
