"""A seeded Contoso set-up on the emulator, shared by the demo and the integration tests.

Three environments (dev → test → prod) with their definitions, a vault with two secrets, and
the app settings that point the unchanged production code at all of it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from emulator import Emulator, Environment, KeyVault

VAULT = "lockstep-demo"
SQL_SECRET = "sql-conn-password"
SQL_VAR = "contoso_SqlConnectionPassword"
GRAPH_SECRET = "graph-client-secret"
GRAPH_VAR = "contoso_GraphSecret"
STRING = 100000000
CLIENT_ID = "11111111-2222-4333-8444-555555555555"  # the (emulated) user-assigned identity
ENVIRONMENTS = (("dev", "contoso-dev", 1), ("test", "contoso-test", 2), ("prod", "contoso", 3))


def canary(label: str = "") -> str:
    """A distinctive secret value: if it shows up anywhere it must not, a grep finds it."""
    return f"LOCKSTEP-CANARY-{label}{secrets.token_hex(8)}"


@dataclass
class Scenario:
    emulator: Emulator
    vault: KeyVault
    environments: dict[str, Environment]
    mapping: dict[str, Any]

    def app_settings(self) -> dict[str, str]:
        """Exactly the settings an operator would put in local.settings.json for Core Tools."""
        return {
            **self.emulator.client_environment(),
            "KEY_VAULT_URI": self.vault.url,
            "LOCKSTEP_MAPPING": json.dumps(self.mapping),
            "TEAMS_WEBHOOK_URL": self.emulator.teams_webhook_url(),
            "AZURE_CLIENT_ID": CLIENT_ID,
            "RECONCILE_SCHEDULE": "0 0 2 * * *",
        }

    def rotate(self, secret: str, value: str) -> dict[str, Any]:
        """Sets a new version and returns the Event Grid event Key Vault would publish for it."""
        version = self.vault.set_secret(secret, value)
        return self.vault.secret_event(secret, version)

    def add_environment(self, name: str, org: str, stage: int, values: dict[str, str]) -> Environment:
        """A new environment with definitions (and values), added to the mapping; the caller must
        apply `app_settings()` again and rebuild the runtime for Lockstep to see it."""
        env = self.emulator.environment(name, org=org)
        for env_var, value in values.items():
            env.add_definition(env_var, type=STRING, value=value)
        self.environments[name] = env
        self.mapping["environments"].append({"name": name, "id": env.id, "url": env.url, "stage": stage})
        return env

    def values(self, env_var: str) -> dict[str, str | None]:
        """Each environment's stored value (None: no value row, or no definition at all)."""
        found: dict[str, str | None] = {}
        for name, env in self.environments.items():
            try:
                found[name] = env.value_of(env_var)
            except KeyError:
                found[name] = None
        return found


def function_event(payload: dict[str, Any]) -> func.EventGridEvent:
    """What the Functions host hands `on_secret_event` for one Event Grid schema event."""
    return func.EventGridEvent(
        id=payload["id"],
        data=payload["data"],
        topic=payload["topic"],
        subject=payload["subject"],
        event_type=payload["eventType"],
        event_time=None,
        data_version=payload["dataVersion"],
    )


def seed(emulator: Emulator, *, sql_value: str, graph_value: str) -> Scenario:
    """Seeds the vault and environments. The SQL variable has no value row yet in test."""
    vault = emulator.key_vault(VAULT)
    vault.set_secret(SQL_SECRET, sql_value)
    vault.set_secret(GRAPH_SECRET, graph_value)
    environments = {name: emulator.environment(name, org=org) for name, org, _stage in ENVIRONMENTS}
    for name, env in environments.items():
        env.add_definition(SQL_VAR, type=STRING, value=None if name == "test" else sql_value)
        if name != "prod":
            env.add_definition(GRAPH_VAR, type=STRING, value=graph_value)
    mapping = {
        "environments": [
            {"name": name, "id": environments[name].id, "url": environments[name].url, "stage": stage}
            for name, _org, stage in ENVIRONMENTS
        ],
        "secrets": [
            {"secret": SQL_SECRET, "env_var": SQL_VAR},
            {"secret": GRAPH_SECRET, "env_var": GRAPH_VAR, "environments": ["dev", "test"]},
        ],
    }
    return Scenario(emulator=emulator, vault=vault, environments=environments, mapping=mapping)
