"""`doctor`: every precondition of a sync, checked read-only, each failure with what to do.

Per environment: a token for its Dataverse, WhoAmI (is the identity an application user there?),
the admin API's view (ready, and at the URL the mapping says), and each mapped definition
(present, of a type a secret can be copied into). A Secret-type definition is a Key Vault
reference instead: checked with the same rules a sync uses (sync.targets.references) — it names
the configured vault and the row's secret, the current version is enabled and unexpired, and
Power Platform resolves it (or the resolution is not verifiable from outside a flow, reported
once per environment). Each mapped connection: found, readable, editable and Connected
(sync.cli.doctor_connections). For the vault: each mapped secret readable. For Teams: the webhook
setting resolved. Checks run concurrently, each environment bounded in time. Nothing is changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from sync.cli.doctor_checks import Check, attempt, make_check
from sync.cli.doctor_connections import ConnectionDoctor
from sync.cli.doctor_references import reference_checks
from sync.cli.exit_codes import ExitCode
from sync.cli.output import Output
from sync.deadline import time_budget
from sync.inspection import select_targets
from sync.mapping import Environment
from sync.models import Definition, DefinitionType, SecretSnapshot, Target
from sync.plan import readiness_problem
from sync.runtime import Runtime

COPYABLE = {DefinitionType.STRING, DefinitionType.NUMBER, DefinitionType.BOOLEAN, DefinitionType.JSON}
T = TypeVar("T")
APP_USER_FIX = (
    "add the managed identity as an application user of this environment (Power Platform admin "
    "center > environment > Settings > Application users) with a security role that can read and "
    "write environment variable values"
)


async def _definition_check(
    runtime: Runtime, environment: Environment, name: str, bulk: dict[str, Any]
) -> tuple[Check | Definition, tuple[str, str]]:
    """One mapped definition: present (the bulk read leaves out ones with several value rows), copyable.

    A Secret-type definition comes back as itself: its reference is checked per target later.
    """
    scope, check = f"environment {environment.name}", f"definition {name}"
    definition = bulk.get(name.lower())
    if definition is None:
        definition, problem = await attempt(runtime.dataverse.get_definition(environment.url, name))
        if problem is not None:
            fix = (
                "delete the extra value rows so exactly one remains"
                if "value rows" in problem
                else "see the detail"
            )
            return make_check(scope, check, problem, "", fix), ("refused", problem)
    if definition is not None and definition.type == DefinitionType.SECRET:
        return definition, ("reference", "")
    if definition is None:
        problem = "no environment variable definition with this schema name"
        fix = "import the solution that defines it, or fix env_var in the mapping"
        return make_check(scope, check, problem, "", fix), ("missing_definition", problem)
    if definition.type not in COPYABLE:
        kind = (
            DefinitionType(definition.type).name
            if definition.type in list(DefinitionType)
            else str(definition.type)
        )
        problem = f"of type {kind}, which cannot hold a copied secret value"
        fix = "map a String definition, or a Secret-type one referencing the secret in the vault"
        return make_check(scope, check, problem, "", fix), ("refused", problem)
    return make_check(scope, check, None, "present and copyable", ""), ("ok", "")


Found = tuple[list[Check], dict[str, tuple[str, str]], dict[str, Definition]]


async def _environment_checks(runtime: Runtime, environment: Environment, env_vars: list[str]) -> Found:
    """Token, admin API, WhoAmI, then each definition; stops early where later checks cannot run."""
    scope = f"environment {environment.name}"
    _, problem = await attempt(runtime.credential.get_token(f"{environment.url}/.default"))
    checks = [
        make_check(
            scope,
            "token",
            problem,
            f"for {environment.url}",
            "check the managed identity (AZURE_CLIENT_ID) and the network path to Entra ID",
        )
    ]
    status, problem = await attempt(runtime.admin.get_environment(environment.id))
    if status is not None:
        not_ready = readiness_problem(status, environment)
        problem = not_ready[0] if not_ready else None
    checks.append(
        make_check(
            scope,
            "admin API",
            problem,
            f"Ready and Enabled at {environment.url}",
            "fix the environment, or the mapping's id/url for it",
        )
    )
    who, problem = await attempt(runtime.dataverse.who_am_i(environment.url))
    checks.append(
        make_check(scope, "WhoAmI", problem, f"application user {who['UserId'] if who else ''}", APP_USER_FIX)
    )
    if problem is not None:
        return checks, {name: ("error", f"WhoAmI failed: {problem}") for name in env_vars}, {}
    if not env_vars:  # only connections mapped here: doctor_connections checks them
        return checks, {}, {}
    bulk, problem = await attempt(runtime.dataverse.get_definitions(environment.url, env_vars))
    if problem is not None:
        checks.append(
            make_check(
                scope,
                "definitions",
                problem,
                "",
                "check the application user's security role (read environmentvariabledefinition)",
            )
        )
        return checks, {name: ("error", problem) for name in env_vars}, {}
    results = [await _definition_check(runtime, environment, name, bulk) for name in env_vars]
    checks.extend(check for check, _ in results if isinstance(check, Check))
    references = {
        name: found
        for name, (found, _) in zip(env_vars, results, strict=True)
        if isinstance(found, Definition)
    }
    return checks, {name: state for name, (_, state) in zip(env_vars, results, strict=True)}, references


Vault = tuple[list[Check], dict[str, str], dict[str, SecretSnapshot]]


async def _vault_checks(runtime: Runtime, secrets: list[str]) -> Vault:
    """Each mapped secret readable (and enabled) by this identity. The snapshots are kept in
    memory for the reference checks (expiry, and the digest of Power Platform's resolution)."""
    snapshots: dict[str, SecretSnapshot] = {}

    async def one(name: str) -> Check:
        snapshot, problem = await attempt(runtime.secrets.get_current(name))
        if snapshot is not None:
            snapshots[name] = snapshot
        if problem is None and not snapshot.enabled:
            problem = "its current version is disabled"
        return make_check(
            "vault",
            f"secret {name}",
            problem,
            f"readable, version {snapshot.version if snapshot else ''}",
            "grant the identity 'Key Vault Secrets User' and check the secret exists and is enabled",
        )

    checks = list(await asyncio.gather(*(one(name) for name in secrets)))
    unreadable = {check.check.removeprefix("secret "): check.detail for check in checks if not check.ok}
    return checks, unreadable, snapshots


def _teams_check(runtime: Runtime) -> Check:
    """Notifications are optional, but a setting that is there and unusable is a finding."""
    settings = runtime.service.settings
    problem = settings.teams_webhook_problem
    detail = "set and resolved (value not shown)"
    if settings.teams_webhook_url is None and not problem:
        detail = "not set: no cards will be posted"
    return make_check(
        "teams",
        "TEAMS_WEBHOOK_URL",
        problem or None,
        detail,
        "fix the setting (a resolvable Key Vault reference or an https URL); syncing continues without cards",
    )


async def _bounded(budget: float, awaitable: Awaitable[T]) -> T:
    with time_budget(budget):
        return await awaitable


def _env_vars_by_environment(targets: list[Target]) -> dict[str, list[str]]:
    """Each mapped environment (connection targets' too) with its variables."""
    found: dict[str, list[str]] = {}
    for target in targets:
        names = found.setdefault(target.environment.name, [])
        if target.connection is None and target.env_var not in names:
            names.append(target.env_var)
    return found


async def _connection_checks(
    runtime: Runtime, targets: list[Target], budget: float
) -> tuple[list[Check], list[dict[str, Any]]]:
    """Every mapped connection, per environment (concurrently, each bounded), read only."""
    by_environment: dict[str, list[Target]] = {}
    for target in targets:
        if target.connection is not None:
            by_environment.setdefault(target.environment.name, []).append(target)
    doctor = ConnectionDoctor(runtime)
    mapping = runtime.service.settings.mapping
    found = await asyncio.gather(
        *(
            _bounded(budget, doctor.environment(mapping.environment(name), mine))
            for name, mine in by_environment.items()
        )
    )
    return [c for checks, _ in found for c in checks], [r for _, rows in found for r in rows]


async def doctor(runtime: Runtime, output: Output, budget: float) -> ExitCode:
    """Runs every check (each environment, and the vault, within `budget` seconds) and reports."""
    mapping = runtime.service.settings.mapping
    targets = select_targets(mapping)
    env_vars = _env_vars_by_environment(targets)
    (
        (vault_checks, unreadable, snapshots),
        environments,
        (connection_checks, connection_rows),
    ) = await asyncio.gather(
        _bounded(budget, _vault_checks(runtime, mapping.secret_names())),
        asyncio.gather(
            *(
                _bounded(budget, _environment_checks(runtime, mapping.environment(name), names))
                for name, names in env_vars.items()
            )
        ),
        _connection_checks(runtime, targets, budget),
    )
    found = dict(zip(env_vars, (definitions for _, _, definitions in environments), strict=True))
    pairs = [
        (target, found[target.environment.name][target.env_var])
        for target in targets
        if target.env_var in found[target.environment.name]
    ]
    found_checks, reference_states = await _bounded(budget, reference_checks(runtime, pairs, snapshots))
    checks = [
        *vault_checks,
        *(check for env_checks, _, _ in environments for check in env_checks),
        *found_checks,
        *connection_checks,
        _teams_check(runtime),
    ]
    states = dict(zip(env_vars, (env_states for _, env_states, _ in environments), strict=True))
    rows = []
    for target in targets:
        if target.connection is not None:
            continue
        state, reason = reference_states.get(
            (target.environment.name, target.env_var), states[target.environment.name][target.env_var]
        )
        if target.secret in unreadable and state in ("ok", "reference"):
            state, reason = "error", f"secret not readable: {unreadable[target.secret]}"
        rows.append(
            {
                "secret": target.secret,
                "environment": target.environment.name,
                "stage": target.environment.stage,
                "env_var": target.env_var,
                "state": state,
                "reason": reason,
            }
        )
    rows.extend(
        {**row, "state": "error", "reason": f"secret not readable: {unreadable[row['secret']]}"}
        if row["secret"] in unreadable and row["state"] == "ok"
        else row
        for row in connection_rows
    )
    output.table(
        "Doctor",
        ["scope", "check", "state", "detail"],
        [[c.scope, c.check, "ok" if c.ok else "FAIL", c.detail] for c in checks],
    )
    findings = [check for check in checks if not check.ok]
    for finding in findings:
        output.say(f"to fix ({finding.scope}, {finding.check}): {finding.fix}")
    if not findings:
        output.say("Everything Lockstep needs is in place.")
    code = ExitCode.FAILURES if findings else ExitCode.OK
    return output.finish(code, rows, checks=[check.model_dump() for check in checks], findings=len(findings))
