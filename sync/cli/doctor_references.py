"""`doctor`'s check of Key Vault references (Secret-type variables).

A reference is checked by the same rules a sync decides with (sync.targets.references), so
`doctor`, `plan` and a sync cannot disagree; only the fix to print is added here.
"""

from __future__ import annotations

from sync.adapters.references import NotVerifiable
from sync.cli.doctor_checks import Check, attempt, make_check
from sync.models import Definition, SecretSnapshot, Target
from sync.redact import scrub
from sync.runtime import Runtime
from sync.targets.base import InSync
from sync.targets.references import GRANT, ReferenceKind, check_reference, expected_reference


async def reference_checks(
    runtime: Runtime, pairs: list[tuple[Target, Definition]], snapshots: dict[str, SecretSnapshot]
) -> tuple[list[Check], dict[tuple[str, str], tuple[str, str]]]:
    """Each Secret-type target's reference, as a sync would decide it; the resolution is asked
    once per environment when it is refused (one ReferenceKind for the whole doctor run)."""
    vault = runtime.service.settings.vault_name
    kind = ReferenceKind(runtime.dataverse, vault)
    checks: list[Check] = []
    states: dict[tuple[str, str], tuple[str, str]] = {}
    told: set[str] = set()
    for target, definition in pairs:
        scope, name = f"environment {target.environment.name}", f"reference {target.env_var}"
        snapshot = snapshots.get(target.secret)
        if snapshot is None:
            continue  # the vault check already says the secret is not readable
        observed, problem = await attempt(kind.observe(target, definition))
        if problem is not None:
            checks.append(make_check(scope, name, problem, "", "see the detail"))
            states[(target.environment.name, target.env_var)] = ("error", problem)
            continue
        resolution = observed.resolution
        if isinstance(resolution, NotVerifiable) and scope not in told:
            told.add(scope)
            detail = f"not verifiable from outside a flow ({scrub(resolution.reason)})"
            checks.append(make_check(scope, "reference resolution", None, detail, ""))
        decision = check_reference(target, definition, snapshot, vault=vault, resolution=resolution)
        reason = scrub(decision.reason, snapshot.value)
        if isinstance(decision, InSync):
            checks.append(make_check(scope, name, None, reason, ""))
            states[(target.environment.name, target.env_var)] = ("reference", reason)
            continue
        if "cannot read the secret from the vault" in reason:
            fix = GRANT
        elif (
            "points at" in reason or "not a Key Vault secret reference" in reason or "has no value" in reason
        ):
            fix = f"set the variable's value to {expected_reference(vault, target.secret)}"
        else:
            fix = "rotate or re-enable the secret, or fix the reference (see the detail)"
        checks.append(make_check(scope, name, reason, "", fix))
        states[(target.environment.name, target.env_var)] = (decision.state.value, reason)
    return checks, states
