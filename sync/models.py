"""Value objects shared by the planner, the adapters and the reports.

Every model that can hold a secret value holds it as `SecretStr`, so a repr, a log line or an
exception that formats one shows `**********`. Reports hold names and outcomes only.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict, SecretStr

from sync.mapping import Environment


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DefinitionType(IntEnum):
    """environmentvariabledefinition.type option set values."""

    STRING = 100000000
    NUMBER = 100000001
    BOOLEAN = 100000002
    JSON = 100000003
    DATA_SOURCE = 100000004
    SECRET = 100000005


class Outcome(StrEnum):
    """What happened to one (environment, environment variable) target."""

    UPDATED = "updated"
    CREATED = "created"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"
    # Staged rollout: this run wrote the new value, its stage failed the gate, the old value is back.
    ROLLED_BACK = "rolled_back"
    # Staged rollout: an earlier stage of this row failed, so this target was not touched.
    HELD_BACK = "held_back"
    # Lockstep may not change this target (a connection not shared with it): a person must act.
    NEEDS_ACTION = "needs_action"


class TargetKindName(StrEnum):
    """The kinds of target a mapping row can name."""

    ENV_VAR = "env_var"  # an environment variable's value row (String, Number, Boolean, JSON)
    CONNECTION = "connection"  # a service-principal connection's client secret
    REFERENCE = "reference"  # a Secret-type variable's Key Vault reference: checked, never written


class Trigger(StrEnum):
    """What started a run; shown in logs and on the Teams card."""

    EVENT = "event"
    RECONCILE = "reconcile"
    CLI = "cli"


class FlowOutcome(StrEnum):
    """What flow refresh did to one cloud flow that uses a changed environment variable."""

    REFRESHED = "refreshed"  # was on; turned off and on again, confirmed on
    LEFT_OFF = "left_off"  # its owner had turned it off: not touched
    NEEDS_ACTION = "needs_action"  # activation refused (connections not shared): a person must act
    FAILED = "failed"  # could not be cycled for another reason


class FlowResult(_Frozen):
    """One flow's refresh; names and ids only."""

    id: str
    name: str
    outcome: FlowOutcome
    reason: str = ""


class AgentOutcome(StrEnum):
    """What agent refresh did to one Copilot Studio agent that uses a changed variable."""

    PUBLISHED = "published"  # republished, publishedon confirmed to move forward
    NEEDS_ACTION = "needs_action"  # unpublished changes of a maker's: not published, a person must
    LEFT_ALONE = "left_alone"  # never published: nothing to refresh
    FAILED = "failed"  # publishing failed or could not be confirmed


class AgentResult(_Frozen):
    """One agent's refresh; names and ids only."""

    id: str
    name: str
    outcome: AgentOutcome
    reason: str = ""


class ConnectionTarget(_Frozen):
    """A service-principal connection a secret feeds (the client secret of an app registration).

    `id` is None for a mapped row that discovers its connections by client id; the connection kind
    expands such a target into one per connection found, with `id` and `display_name` set.
    """

    connector: str
    client_id: str
    tenant_id: str
    id: str | None = None
    display_name: str = ""


class SecretSnapshot(_Frozen):
    """The current version of a Key Vault secret, as read just now."""

    name: str
    version: str
    value: SecretStr
    enabled: bool = True
    expires: datetime | None = None
    updated: datetime | None = None
    created: datetime | None = None


class ValueRow(_Frozen):
    """An environmentvariablevalue row; its value may be the previous secret, so SecretStr too."""

    id: str
    value: SecretStr | None
    etag: str


class Definition(_Frozen):
    """An environmentvariabledefinition with its (at most one) value row."""

    id: str
    schema_name: str
    type: int
    value_row: ValueRow | None


class EnvironmentStatus(_Frozen):
    """What the Power Platform admin API says about an environment."""

    environment_id: str
    management_state: str
    runtime_state: str
    instance_url: str | None


class Target(_Frozen):
    """One place a secret's value must land (or, for a reference, be checked)."""

    environment: Environment
    env_var: str = ""
    secret: str = ""
    # Which mapping row the target comes from: rows roll out (and roll back) independently.
    row: int = 0
    rollout: str = "staged"
    refresh_flows: bool = True
    refresh_agents: bool = True
    kind: TargetKindName = TargetKindName.ENV_VAR
    connection: ConnectionTarget | None = None

    @property
    def label(self) -> str:
        """What a person calls this target: the variable's schema name, the connection's name."""
        if self.connection is not None:
            return self.connection.display_name or self.connection.id or self.connection.client_id
        return self.env_var


class TargetResult(_Frozen):
    """The outcome for one target, with the reason an operator needs (never a value)."""

    environment: str
    stage: int
    env_var: str
    outcome: Outcome
    reason: str = ""
    retryable: bool = False
    duration_ms: float = 0.0
    # Cloud flows refreshed (or not) after this target's value changed and its stage passed.
    flows: tuple[FlowResult, ...] = ()
    # False when the mapping row turned flow refresh off (its flows keep the old value).
    refresh_flows: bool = True
    # Copilot Studio agents republished (or not) after this target's value changed.
    agents: tuple[AgentResult, ...] = ()
    kind: TargetKindName = TargetKindName.ENV_VAR
    connection: ConnectionTarget | None = None
    secret: str = ""

    @property
    def label(self) -> str:
        """What a person calls this target: the variable's schema name, the connection's name."""
        if self.connection is not None:
            return self.connection.display_name or self.connection.id or self.connection.client_id
        return self.env_var

    @classmethod
    def of(
        cls, target: Target, outcome: Outcome, reason: str = "", retryable: bool = False, seconds: float = 0.0
    ) -> TargetResult:
        """The result for one target: what it is (kind, names) plus what happened to it."""
        return cls(
            environment=target.environment.name,
            stage=target.environment.stage,
            env_var=target.env_var,
            kind=target.kind,
            connection=target.connection,
            secret=target.secret,
            outcome=outcome,
            reason=reason,
            retryable=retryable,
            duration_ms=round(seconds * 1000, 1),
        )

    @property
    def needs_attention(self) -> bool:
        """Not in sync after this run: failed, skipped, rolled back, held back, or needs a person."""
        return self.outcome in (
            Outcome.FAILED,
            Outcome.SKIPPED,
            Outcome.ROLLED_BACK,
            Outcome.HELD_BACK,
            Outcome.NEEDS_ACTION,
        )


class SecretReport(_Frozen):
    """The outcome of syncing one secret to all its targets."""

    secret: str
    version: str | None
    results: tuple[TargetResult, ...]

    @property
    def changed(self) -> bool:
        return any(result.outcome in (Outcome.UPDATED, Outcome.CREATED) for result in self.results)

    @property
    def failed(self) -> bool:
        return any(result.needs_attention for result in self.results)

    @property
    def retryable(self) -> bool:
        return any(result.retryable for result in self.results)


class RunReport(_Frozen):
    """One run (an event, a reconcile): what the card and the summary log line are built from."""

    correlation_id: str
    trigger: Trigger
    started_at: datetime
    secrets: tuple[SecretReport, ...]
    notification: str = "not sent"

    @property
    def results(self) -> list[TargetResult]:
        return [result for report in self.secrets for result in report.results]

    @property
    def changed(self) -> bool:
        return any(report.changed for report in self.secrets)

    @property
    def failed(self) -> bool:
        return any(report.failed for report in self.secrets)

    @property
    def retryable(self) -> bool:
        return any(report.retryable for report in self.secrets)

    def counts(self) -> dict[str, int]:
        """Targets per outcome, every outcome present (zeros included) for stable log fields."""
        counts = {outcome.value: 0 for outcome in Outcome}
        for result in self.results:
            counts[result.outcome.value] += 1
        return counts
