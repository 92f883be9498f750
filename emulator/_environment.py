"""A handle on one emulated Power Platform environment: admin-API entry, Dataverse org, flows."""

from __future__ import annotations

import json
import uuid

from ._environment_agents import AgentsMixin
from ._environment_connections import ConnectionsMixin
from ._secret_values import reference
from ._state import TYPE_SECRET, ConnectionReference, Definition, EnvironmentState, State, ValueRow, Workflow

STRING_TYPE = 100000000


class Environment(ConnectionsMixin, AgentsMixin):
    """A handle on one Power Platform environment: admin-API entry, Dataverse org, connections."""

    def __init__(self, state: State, env: EnvironmentState) -> None:
        self._state = state
        self._env = env
        self.name = env.name
        self.id = env.id
        self.org = env.org
        self.url = env.url

    def __repr__(self) -> str:
        return f"Environment({self.name!r}, org={self.org!r}, id={self.id!r})"

    def _definition(self, schema_name: str) -> Definition:
        definition = self._env.definition_by_schema(schema_name)
        if definition is None:
            raise KeyError(f"no environment variable definition {schema_name!r} in {self.name!r}")
        return definition

    def set_state(self, management: str = "Ready", runtime: str = "Enabled") -> None:
        with self._state.lock:
            self._env.management = management
            self._env.runtime = runtime

    def set_instance_url(self, url: str) -> None:
        """What the admin API reports as ``linkedEnvironmentMetadata.instanceUrl``."""
        with self._state.lock:
            self._env.instance_url = url

    def add_definition(self, schema_name: str, type: int = STRING_TYPE, value: str | None = None) -> str:
        """Create a definition (and a value row when ``value`` is given); returns the definition id."""
        with self._state.lock:
            if self._env.definition_by_schema(schema_name) is not None:
                raise ValueError(f"definition {schema_name!r} already exists in {self.name!r}")
            definition = Definition(
                id=str(uuid.uuid4()), schema_name=schema_name, type=type, row_version=self._env.next_version()
            )
            self._env.definitions[definition.id] = definition
            if value is not None:
                self._add_row(definition, value)
            return definition.id

    def _add_row(self, definition: Definition, value: str) -> ValueRow:
        row = ValueRow(
            id=str(uuid.uuid4()),
            definition_id=definition.id,
            schema_name=definition.schema_name,
            value=value,
            row_version=self._env.next_version(),
        )
        self._env.values[row.id] = row
        return row

    def add_secret_reference(
        self, schema_name: str, vault: str, secret: str, *, resource_group: str = "lockstep-demo"
    ) -> str:
        """A Secret-type definition whose value row references ``vault``/``secret``; returns its id."""
        return self.add_definition(schema_name, TYPE_SECRET, reference(vault, secret, resource_group))

    def refuse_secret_retrieval(self, refuse: bool = True) -> None:
        """RetrieveEnvironmentVariableSecretValue answers 403 (a tenant that keeps it to flows)."""
        with self._state.lock:
            self._env.secret_retrieval_refused = refuse

    def set_vault_unreadable(self, unreadable: bool = True) -> None:
        """RetrieveEnvironmentVariableSecretValue answers 403 naming Key Vault access (no role granted)."""
        with self._state.lock:
            self._env.vault_unreadable = unreadable

    def definition_id(self, schema_name: str) -> str:
        with self._state.lock:
            return self._definition(schema_name).id

    def value_of(self, schema_name: str) -> str | None:
        """The value row's value, or None when the definition has no value row."""
        with self._state.lock:
            rows = self._env.rows_of(self._definition(schema_name).id)
            return rows[0].value if rows else None

    def value_etag(self, schema_name: str) -> str | None:
        """The value row's current ``@odata.etag`` (``W/"<n>"``), or None when there is no row."""
        with self._state.lock:
            rows = self._env.rows_of(self._definition(schema_name).id)
            return f'W/"{rows[0].row_version}"' if rows else None

    def value_row_count(self, schema_name: str) -> int:
        with self._state.lock:
            return len(self._env.rows_of(self._definition(schema_name).id))

    def set_value(self, schema_name: str, value: str) -> None:
        """Tamper out of band: update (or create) the value row and bump its etag."""
        with self._state.lock:
            definition = self._definition(schema_name)
            rows = self._env.rows_of(definition.id)
            if not rows:
                self._add_row(definition, value)
                return
            rows[0].value = value
            rows[0].row_version = self._env.next_version()

    def remove_definition(self, schema_name: str) -> None:
        """Delete the definition and its value rows."""
        with self._state.lock:
            definition = self._definition(schema_name)
            for row in self._env.rows_of(definition.id):
                del self._env.values[row.id]
            del self._env.definitions[definition.id]

    # --- cloud flows (emulator/_flows.py serves them) ---

    def add_user(self, fullname: str) -> str:
        """A systemuser with an Entra object id; returns the systemuser id."""
        with self._state.lock:
            return self._env.add_systemuser(fullname).id

    def user_object_id(self, user_id: str) -> str:
        with self._state.lock:
            return self._env.systemusers[user_id].azure_object_id

    def add_connection_reference(
        self, logical_name: str, connector: str = "shared_sql", connection_id: str | None = None
    ) -> str:
        """A connection reference bound to ``connection_id`` (a new, unknown id when omitted)."""
        with self._state.lock:
            ref = ConnectionReference(
                id=str(uuid.uuid4()),
                logical_name=logical_name,
                connector_id=f"/providers/Microsoft.PowerApps/apis/{connector}",
                connection_id=(connection_id or uuid.uuid4().hex).lower(),
            )
            self._env.connection_references[ref.id] = ref
            return ref.id

    def add_flow(
        self,
        name: str,
        uses: list[str],
        *,
        on: bool = True,
        owner: str | None = None,
        connections_shared: bool = True,
        connection_references: list[str] | None = None,
        agent_flow: bool = False,
    ) -> str:
        """A cloud flow whose parameters name the environment variables in `uses`; returns its id.

        `owner` is a systemuser id (one is created when omitted). With `connections_shared=False`
        the flow can be turned on only by its owner (or by impersonating them). `agent_flow` makes it
        a Copilot Studio agent flow (`modernflowtype` 1; still category 5).
        """
        owner_id = owner or self.add_user(f"Owner of {name}")
        parameters = {
            f"{schema} (env var)": {"defaultValue": "", "type": "String", "metadata": {"schemaName": schema}}
            for schema in uses
        }
        references = {
            logical: {
                "connection": {"connectionReferenceLogicalName": logical},
                "api": {"name": "shared_sql"},
            }
            for logical in connection_references or []
        }
        clientdata = json.dumps(
            {
                "properties": {
                    "connectionReferences": references,
                    "definition": {"parameters": parameters, "triggers": {}, "actions": {}},
                },
                "schemaVersion": "1.0.0.0",
            }
        )
        with self._state.lock:
            flow = Workflow(
                id=str(uuid.uuid4()),
                name=name,
                owner_id=owner_id,
                clientdata=clientdata,
                statecode=1 if on else 0,
                statuscode=2 if on else 1,
                connections_shared=connections_shared,
                modernflowtype=1 if agent_flow else 0,
            )
            self._env.workflows[flow.id] = flow
            return flow.id

    def flow_is_on(self, flow_id: str) -> bool:
        with self._state.lock:
            return self._env.workflows[flow_id].statecode == 1

    def flow_history(self, flow_id: str) -> list[str]:
        """Each state change the flow went through ("off", "on"), oldest first."""
        with self._state.lock:
            return list(self._env.workflows[flow_id].history)

    def refuse_writes(self, refuse: bool = True) -> None:
        """Value writes answer 403 (a missing privilege): a permanent failure of this environment."""
        with self._state.lock:
            self._env.refuse_writes = refuse

    def revert_writes(self, revert: bool = True) -> None:
        """Value writes answer 204 but leave the old value: the read-back will not match."""
        with self._state.lock:
            self._env.revert_writes = revert
