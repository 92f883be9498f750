"""`doctor`: every precondition of a sync, checked read-only, each failure with what to do.

Per environment: a token for its Dataverse, WhoAmI (is the identity an application user there?),
the admin API's view (ready, and at the URL the mapping says), and each mapped definition
(present, of a type a secret can be copied into). For the vault: each mapped secret readable.
For Teams: the webhook setting resolved. Checks run concurrently, each environment bounded in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from azure.core.exceptions import ClientAuthenticationError
from pydantic import BaseModel, ConfigDict

from sync.cli.exit_codes import ExitCode
from sync.cli.output import Output
from sync.deadline import time_budget, within_budget
from sync.errors import LockstepError
from sync.inspection import select_targets
from sync.mapping import Environment
from sync.models import DefinitionType
from sync.plan import readiness_problem
from sync.redact import scrub
from sync.runtime import Runtime

COPYABLE = {DefinitionType.STRING, DefinitionType.NUMBER, DefinitionType.BOOLEAN, DefinitionType.JSON}
APP_USER_FIX = (
    "add the managed identity as an application user of this environment (Power Platform admin "
    "center > environment > Settings > Application users) with a security role that can read and "
    "write environment variable values"
)


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    scope: str
    check: str
    ok: bool
    detail: str = ""
    fix: str = ""


async def _attempt(budget: float, awaitable: Awaitable[Any]) -> tuple[Any, str | None]:
    """(result, None) or (None, a message safe to print)."""
    try:
        with time_budget(budget):
            return await within_budget(awaitable), None
    except ClientAuthenticationError as error:
        return None, scrub(str(error.message).splitlines()[0] if error.message else type(error).__name__)
    except LockstepError as error:
        return None, scrub(str(error))


async def _environment_checks(
    runtime: Runtime, environment: Environment, env_vars: list[str], budget: float
) -> tuple[list[Check], dict[str, tuple[str, str]]]:
    scope = f"environment {environment.name}"
    checks: list[Check] = []
    states: dict[str, tuple[str, str]] = {}
    _, problem = await _attempt(budget, runtime.credential.get_token(f"{environment.url}/.default"))
    checks.append(
        Check(
            scope=scope,
            check="token",
            ok=problem is None,
            detail=problem or f"for {environment.url}",
            fix=""
            if problem is None
            else "check the managed identity (AZURE_CLIENT_ID) and its network path",
        )
    )
    status, problem = await _attempt(budget, runtime.admin.get_environment(environment.id))
    if status is not None:
        not_ready = readiness_problem(status, environment)
        problem = not_ready[0] if not_ready else None
    checks.append(
        Check(
            scope=scope,
            check="admin API",
            ok=problem is None,
            detail=problem or f"Ready and Enabled at {environment.url}",
            fix="" if problem is None else "fix the environment or the mapping's id/url for it",
        )
    )
    who, problem = await _attempt(budget, runtime.dataverse.who_am_i(environment.url))
    checks.append(
        Check(
            scope=scope,
            check="WhoAmI",
            ok=problem is None,
            detail=problem if problem is not None else f"application user {who['UserId']}",
            fix="" if problem is None else APP_USER_FIX,
        )
    )
    if problem is not None:
        return checks, {name: ("error", "WhoAmI failed") for name in env_vars}
    definitions, problem = await _attempt(
        budget, runtime.dataverse.get_definitions(environment.url, env_vars)
    )
    if problem is not None:
        checks.append(
            Check(
                scope=scope,
                check="definitions",
                ok=False,
                detail=problem,
                fix="check the application user's security role (read environmentvariabledefinition)",
            )
        )
        return checks, {name: ("error", problem) for name in env_vars}
    for name in env_vars:
        definition = definitions.get(name.lower())
        if definition is None:
            single, single_problem = await _attempt(
                budget, runtime.dataverse.get_definition(environment.url, name)
            )
            if single_problem is not None:
                states[name] = ("refused", single_problem)
                checks.append(
                    Check(
                        scope=scope,
                        check=f"definition {name}",
                        ok=False,
                        detail=single_problem,
                        fix="delete the extra value rows so one remains",
                    )
                )
                continue
            definition = single
        if definition is None:
            states[name] = ("missing_definition", "no such environment variable definition")
            checks.append(
                Check(
                    scope=scope,
                    check=f"definition {name}",
                    ok=False,
                    detail="no environment variable definition with this schema name",
                    fix="import the solution that defines it, or fix env_var in the mapping",
                )
            )
        elif definition.type not in COPYABLE:
            kind = (
                DefinitionType(definition.type).name
                if definition.type in DefinitionType._value2member_map_
                else definition.type
            )
            states[name] = ("refused", f"type {kind} cannot hold a copied secret")
            checks.append(
                Check(
                    scope=scope,
                    check=f"definition {name}",
                    ok=False,
                    detail=f"of type {kind}, which cannot hold a copied secret value",
                    fix="map a String definition instead (a Secret-type variable resolves Key Vault itself)",
                )
            )
        else:
            states[name] = ("ok", "")
    if all(state == "ok" for state, _ in states.values()):
        checks.append(
            Check(scope=scope, check="definitions", ok=True, detail=f"{len(env_vars)} present and copyable")
        )
    return checks, states


async def _vault_checks(
    runtime: Runtime, secrets: list[str], budget: float
) -> tuple[list[Check], dict[str, str]]:
    async def one(name: str) -> Check:
        snapshot, problem = await _attempt(budget, runtime.secrets.get_current(name))
        if problem is None and not snapshot.enabled:
            problem = "its current version is disabled"
        return Check(
            scope="vault",
            check=f"secret {name}",
            ok=problem is None,
            detail=problem or f"readable, version {snapshot.version}",
            fix=""
            if problem is None
            else "grant the identity 'Key Vault Secrets User' and check the secret exists and is enabled",
        )

    checks = list(await asyncio.gather(*(one(name) for name in secrets)))
    return checks, {check.check.removeprefix("secret "): check.detail for check in checks if not check.ok}


def _teams_check(runtime: Runtime) -> Check:
    settings = runtime.service.settings
    problem = getattr(settings, "teams_webhook_problem", None)
    if problem:
        return Check(
            scope="teams",
            check="TEAMS_WEBHOOK_URL",
            ok=False,
            detail=problem,
            fix="fix the setting (Key Vault reference or https URL); syncing continues without cards",
        )
    if settings.teams_webhook_url is None:
        return Check(
            scope="teams", check="TEAMS_WEBHOOK_URL", ok=True, detail="not set: no cards will be posted"
        )
    return Check(
        scope="teams", check="TEAMS_WEBHOOK_URL", ok=True, detail="set and resolved (value not shown)"
    )


async def doctor(runtime: Runtime, output: Output, budget: float) -> ExitCode:
    mapping = runtime.service.settings.mapping
    targets = select_targets(mapping)
    env_vars: dict[str, list[str]] = {}
    for target in targets:
        env_vars.setdefault(target.environment.name, [])
        if target.env_var not in env_vars[target.environment.name]:
            env_vars[target.environment.name].append(target.env_var)
    vault, environments = await asyncio.gather(
        _vault_checks(runtime, mapping.secret_names(), budget),
        asyncio.gather(
            *(
                _environment_checks(runtime, mapping.environment(name), names, budget)
                for name, names in env_vars.items()
            )
        ),
    )
    checks = [
        *vault[0],
        *(check for env_checks, _ in environments for check in env_checks),
        _teams_check(runtime),
    ]
    states = dict(zip(env_vars, (env_states for _, env_states in environments), strict=True))
    rows = []
    for target in targets:
        state, reason = states[target.environment.name].get(target.env_var, ("error", "not checked"))
        if target.secret in vault[1] and state == "ok":
            state, reason = "error", f"secret not readable: {vault[1][target.secret]}"
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
