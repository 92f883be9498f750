"""The commands' work: inspect or sync through the runtime, then hand rows to the output.

`plan`, `status` and `reconcile --dry-run` only read (sync.inspection); `sync` and `reconcile`
run the engine exactly as the event and the nightly timer do, with the trigger recorded as `cli`.

A target is an environment variable (its JSON carries `env_var`) or a connection (it carries
`connection: {id, display_name}` instead); tables name either in one column, a connection by its
display name (a maker's text: the output prints it plain).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sync.cli.exit_codes import ExitCode, worst
from sync.cli.output import Output
from sync.cli.session import check_names
from sync.deadline import time_budget
from sync.inspection import Inspection, Inspector, select_targets
from sync.models import RunReport, Target, Trigger
from sync.runtime import Runtime
from sync.settings import Settings


def identified(row: dict[str, Any]) -> dict[str, Any]:
    """A target's JSON: `env_var` for a variable, `connection: {id, display_name}` for a connection."""
    connection = row.pop("connection", None)
    if not connection:
        return row
    row.pop("env_var", None)
    row["connection"] = {"id": connection.get("id"), "display_name": connection.get("display_name") or ""}
    return row


def name_of(row: dict[str, Any]) -> str:
    """The table cell naming a target: the variable, or the connection's display name (else its id)."""
    connection = row.get("connection")
    if not connection:
        return str(row.get("env_var") or "")
    return str(connection["display_name"] or connection["id"] or "(connection not found)")


def target_column(rows: list[dict[str, Any]]) -> str:
    return "env_var / connection" if any(row.get("connection") for row in rows) else "env_var"


def _mapped(target: Target) -> str:
    """A mapped row as validate shows it: a pinned connection by id, a discovering one by client id."""
    spec = target.connection
    if spec is None:
        return target.env_var
    return f"{spec.connector} {spec.id}" if spec.id else f"{spec.connector} of client id {spec.client_id}"


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"


def inspection_code(inspection: Inspection) -> ExitCode:
    return worst(
        ExitCode.FAILURES if inspection.problems else ExitCode.OK,
        ExitCode.PENDING if inspection.pending else ExitCode.OK,
    )


async def inspect(
    runtime: Runtime, budget: float, secrets: Collection[str] | None, environments: Collection[str] | None
) -> Inspection:
    mapping = runtime.service.settings.mapping
    check_names(mapping, secrets, environments)
    inspector = Inspector(runtime.secrets, runtime.kinds, runtime.admin, timeout=budget)
    return await inspector.inspect(select_targets(mapping, secrets, environments))


def validate(settings: Settings, output: Output) -> ExitCode:
    mapping = settings.mapping
    targets = select_targets(mapping)
    stages = sorted({environment.stage for environment in mapping.environments})
    rows: list[dict[str, Any]] = [
        {
            "secret": target.secret,
            "environment": target.environment.name,
            "stage": target.environment.stage,
            "env_var": target.env_var,
            "connection": target.connection.model_dump(mode="json") if target.connection else None,
            "state": "mapped",
            "rollout": target.rollout,
            "refresh_flows": target.refresh_flows,
        }
        for target in targets
    ]
    rows = [identified(row) for row in rows]
    warnings = [settings.teams_webhook_problem] if settings.teams_webhook_problem else []
    if settings.teams_webhook_url is None and not warnings:
        warnings.append("TEAMS_WEBHOOK_URL is not set: runs will not be announced in Teams")
    output.say(
        f"Configuration is valid: {len(mapping.environments)} environment(s) in stage(s) "
        f"{', '.join(map(str, stages))}, {len(mapping.secrets)} mapping row(s), {len(targets)} target(s)."
    )
    for warning in warnings:
        output.say(f"warning: {warning}")
    output.table(
        "Targets",
        ["secret", "environment", "stage", target_column(rows), "rollout"],
        [
            [r["secret"], r["environment"], str(r["stage"]), _mapped(t), r["rollout"]]
            for t, r in zip(targets, rows, strict=True)
        ],
    )
    return output.finish(ExitCode.OK, rows, valid=True, warnings=warnings, problems=[])


async def plan(
    runtime: Runtime,
    output: Output,
    budget: float,
    secrets: Collection[str] | None = None,
    environments: Collection[str] | None = None,
) -> ExitCode:
    inspection = await inspect(runtime, budget, secrets, environments)
    rows = [identified(target.model_dump(mode="json")) for target in inspection.targets]
    counts: dict[str, int] = {}
    for target in inspection.targets:
        counts[target.state.value] = counts.get(target.state.value, 0) + 1
    output.table(
        "Plan (nothing written)",
        ["secret", "environment", "stage", target_column(rows), "state", "reason"],
        [[r["secret"], r["environment"], str(r["stage"]), name_of(r), r["state"], r["reason"]] for r in rows],
    )
    output.say(", ".join(f"{count} {state}" for state, count in sorted(counts.items())) or "nothing mapped")
    code = inspection_code(inspection)
    if code is ExitCode.PENDING:
        output.say("Changes pending: `sync SECRET` or `reconcile` would write them.")
    return output.finish(code, rows, summary=counts, secrets=_secrets(inspection))


async def status(
    runtime: Runtime, output: Output, budget: float, environments: Collection[str] | None
) -> ExitCode:
    inspection = await inspect(runtime, budget, None, environments)
    versions = {secret.secret: secret for secret in inspection.secrets}
    rows = []
    for target in inspection.targets:
        secret = versions[target.secret]
        rows.append(
            {
                **identified(target.model_dump(mode="json")),
                "version": secret.version,
                "version_updated": secret.updated.isoformat() if secret.updated else None,
            }
        )
    for environment in dict.fromkeys(row["environment"] for row in rows):
        mine = [row for row in rows if row["environment"] == environment]
        output.table(
            f"{environment} (stage {mine[0]['stage']})",
            [target_column(mine), "secret", "state", "secret version", "version date", "reason"],
            [
                [
                    name_of(r),
                    r["secret"],
                    r["state"],
                    (r["version"] or "-")[:12],
                    _when(versions[r["secret"]].updated),
                    r["reason"],
                ]
                for r in mine
            ],
        )
    return output.finish(inspection_code(inspection), rows, secrets=_secrets(inspection))


def _secrets(inspection: Inspection) -> list[dict[str, Any]]:
    return [secret.model_dump(mode="json") for secret in inspection.secrets]


def report_rows(report: RunReport) -> list[dict[str, Any]]:
    rows = [
        {
            "secret": secret.secret,
            "version": secret.version,
            "environment": result.environment,
            "stage": result.stage,
            "env_var": result.env_var,
            "connection": result.connection.model_dump(mode="json") if result.connection else None,
            "state": result.outcome.value,
            "reason": result.reason,
            "flows": [flow.model_dump(mode="json") for flow in result.flows],
        }
        for secret in report.secrets
        for result in secret.results
    ]
    return [identified(row) for row in rows]


def show_report(output: Output, report: RunReport) -> ExitCode:
    rows = report_rows(report)
    output.table(
        f"Run {report.correlation_id} ({report.trigger.value})",
        ["secret", "environment", "stage", target_column(rows), "outcome", "reason"],
        [[r["secret"], r["environment"], str(r["stage"]), name_of(r), r["state"], r["reason"]] for r in rows],
    )
    counts = {outcome: count for outcome, count in report.counts().items() if count}
    output.say(", ".join(f"{count} {outcome}" for outcome, count in counts.items()) or "nothing to do")
    output.say(f"Teams notification: {report.notification}")
    code = ExitCode.FAILURES if report.failed else ExitCode.OK
    return output.finish(
        code, rows, correlation_id=report.correlation_id, summary=counts, notification=report.notification
    )


async def sync_one(
    runtime: Runtime, output: Output, budget: float, secret: str, environments: Collection[str] | None
) -> ExitCode:
    check_names(runtime.service.settings.mapping, [secret], environments, spelled="SECRET")
    total = len(select_targets(runtime.service.settings.mapping, [secret], environments))
    with output.progress(total, f"syncing {secret}") as advance, time_budget(budget):
        report = await runtime.service.engine.sync_secrets(
            [secret], Trigger.CLI, environments=environments, on_result=advance
        )
    return show_report(output, report)


async def reconcile(runtime: Runtime, output: Output, budget: float, dry_run: bool) -> ExitCode:
    if dry_run:
        return await plan(runtime, output, budget)
    total = len(select_targets(runtime.service.settings.mapping))
    with output.progress(total, "reconciling") as advance, time_budget(budget):
        report = await runtime.service.reconcile(Trigger.CLI, on_result=advance)
    return show_report(output, report)


async def inventory(
    runtime: Runtime, output: Output, budget: float, environments: Collection[str] | None
) -> ExitCode:
    """Per environment, each mapped variable with the flows that use it and their connections; each
    mapped connection with its status, the references bound to it and the flows using those."""
    mapping = runtime.service.settings.mapping
    check_names(mapping, None, environments)
    with time_budget(budget):
        rows, uses = await runtime.inventory.collect_all(select_targets(mapping, None, environments))
    targets: list[dict[str, Any]] = [
        {**row.model_dump(mode="json", exclude={"secrets"}), "secret": secret}
        for row in rows
        for secret in row.secrets
    ] + [
        {**use.model_dump(mode="json", exclude={"secrets"}), "secret": secret}
        for use in uses
        for secret in use.secrets
    ]
    for environment in dict.fromkeys(row.environment for row in rows):
        mine = [row for row in rows if row.environment == environment]
        output.table(
            f"{environment} (stage {mine[0].stage})",
            ["env_var", "secret", "state", "flows (state, owner)", "connection references"],
            [
                [
                    row.env_var,
                    ", ".join(row.secrets),
                    row.state,
                    "; ".join(f"{f.name} ({f.state}, {f.owner})" for f in row.flows) or row.reason or "-",
                    ", ".join(ref["logical_name"] for ref in row.connection_references) or "-",
                ]
                for row in mine
            ],
        )
    for environment in dict.fromkeys(use.environment for use in uses):
        mine_uses = [use for use in uses if use.environment == environment]
        output.table(
            f"{environment}: connections",
            ["connection", "secret", "status", "connection references", "flows (state, owner)"],
            [
                [
                    use.name,
                    ", ".join(use.secrets),
                    f"{use.status} {use.error_code}".strip() or f"{use.state}: {use.reason}",
                    ", ".join(use.connection_references) or "-",
                    "; ".join(f"{f.name} ({f.state}, {f.owner})" for f in use.flows) or "-",
                ]
                for use in mine_uses
            ],
        )
    failed = any(row.state in ("error", "missing_definition") for row in rows) or any(
        use.state in ("error", "not_found") for use in uses
    )
    return output.finish(ExitCode.FAILURES if failed else ExitCode.OK, targets)
