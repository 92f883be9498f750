"""Seed an emulator from a JSON document (format described in emulator/README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import Emulator

FAKE_TENANT_ID = "00000000-0000-0000-0000-000000000000"
STRING_TYPE = 100000000
SECRET_KEYS = {"value", "enabled", "content_type", "expires", "not_before"}
ENVIRONMENT_KEYS = {
    "org",
    "id",
    "stage",
    "management_state",
    "runtime_state",
    "instance_url",
    "definitions",
    "connections",
}
APP_KEYS = {"client_id", "tenant_id", "secrets"}
CONNECTION_KEYS = {"connector", "parameter_set", "app", "shared_with_lockstep", "status", "id"}
DEFINITION_KEYS = {"type", "value"}


class SeedError(ValueError):
    """Every problem found in a seed document, each with its JSON path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid seed:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def _moment(raw: Any, path: str, problems: list[str]) -> datetime | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return datetime.fromtimestamp(raw, UTC)
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    problems.append(f"{path}: expected an ISO 8601 time or epoch seconds")
    return None


def _object(raw: Any, path: str, problems: list[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected an object")
        return {}
    return raw


def _unknown(raw: dict[str, Any], allowed: set[str], path: str, problems: list[str]) -> None:
    problems.extend(f"{path}.{key}: unknown key" for key in sorted(set(raw) - allowed))


def apply_seed(emulator: Emulator, document: Any) -> None:
    """Create the vaults, secrets, environments and definitions a seed document describes.

    The whole document is validated first; nothing is created when any part is invalid.
    """
    problems: list[str] = []
    actions: list[Any] = []
    root = _object(document, "$", problems)
    _unknown(root, {"vaults", "app_registrations", "environments", "mapping"}, "$", problems)
    mapping = _object(root.get("mapping"), "$.mapping", problems)
    _unknown(mapping, {"secrets"}, "$.mapping", problems)
    if not isinstance(mapping.get("secrets", []), list):
        problems.append("$.mapping.secrets: expected a list of Lockstep mapping rows")
    for vault_name, vault_raw in _object(root.get("vaults"), "$.vaults", problems).items():
        vault_path = f"$.vaults.{vault_name}"
        vault = _object(vault_raw, vault_path, problems)
        _unknown(vault, {"secrets"}, vault_path, problems)
        secrets = _object(vault.get("secrets"), f"{vault_path}.secrets", problems)
        actions.append(("vault", vault_name, _secrets(secrets, f"{vault_path}.secrets", problems)))
    apps = _object(root.get("app_registrations"), "$.app_registrations", problems)
    for app_name, app_raw in apps.items():
        app = _object(app_raw, f"$.app_registrations.{app_name}", problems)
        _unknown(app, APP_KEYS, f"$.app_registrations.{app_name}", problems)
        secrets = app.get("secrets", [])
        if not isinstance(secrets, list) or not all(isinstance(v, str) for v in secrets):
            problems.append(f"$.app_registrations.{app_name}.secrets: expected a list of strings")
        actions.append(("app", app_name, app))
    for env_name, env_raw in _object(root.get("environments"), "$.environments", problems).items():
        env_path = f"$.environments.{env_name}"
        env = _object(env_raw, env_path, problems)
        _unknown(env, ENVIRONMENT_KEYS, env_path, problems)
        for key in ("org", "id", "management_state", "runtime_state", "instance_url"):
            if env.get(key) is not None and not isinstance(env[key], str):
                problems.append(f"{env_path}.{key}: expected a string")
        stage = env.get("stage", 1)
        if isinstance(stage, bool) or not isinstance(stage, int) or stage < 1:
            problems.append(f"{env_path}.stage: expected a rollout stage number (1, 2, ...)")
        definitions = _object(env.get("definitions"), f"{env_path}.definitions", problems)
        actions.append(("environment", env_name, env, _definitions(definitions, env_path, problems)))
        for name, raw in _object(env.get("connections"), f"{env_path}.connections", problems).items():
            spec = _object(raw, f"{env_path}.connections.{name}", problems)
            _unknown(spec, CONNECTION_KEYS, f"{env_path}.connections.{name}", problems)
            if spec.get("app") is not None and spec["app"] not in apps:
                problems.append(f"{env_path}.connections.{name}.app: no app registration {spec['app']!r}")
            actions.append(("connection", env_name, name, spec))
    if problems:
        raise SeedError(problems)
    try:
        _apply(emulator, actions)
    except (ValueError, KeyError) as exc:
        raise SeedError([str(exc)]) from exc


def _secrets(secrets: dict[str, Any], path: str, problems: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for name, raw in secrets.items():
        item_path = f"{path}.{name}"
        spec = {"value": raw} if isinstance(raw, str) else _object(raw, item_path, problems)
        _unknown(spec, SECRET_KEYS, item_path, problems)
        if not isinstance(spec.get("value"), str):
            problems.append(f"{item_path}.value: expected a string")
        if not isinstance(spec.get("enabled", True), bool):
            problems.append(f"{item_path}.enabled: expected true or false")
        if spec.get("content_type") is not None and not isinstance(spec["content_type"], str):
            problems.append(f"{item_path}.content_type: expected a string")
        parsed.append(
            {
                "name": name,
                "value": spec.get("value"),
                "enabled": spec.get("enabled", True),
                "content_type": spec.get("content_type"),
                "expires": _moment(spec.get("expires"), f"{item_path}.expires", problems),
                "not_before": _moment(spec.get("not_before"), f"{item_path}.not_before", problems),
            }
        )
    return parsed


def _definitions(definitions: dict[str, Any], env_path: str, problems: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for schema_name, raw in definitions.items():
        item_path = f"{env_path}.definitions.{schema_name}"
        if raw is None or isinstance(raw, str):
            spec: dict[str, Any] = {"value": raw}
        else:
            spec = _object(raw, item_path, problems)
        _unknown(spec, DEFINITION_KEYS, item_path, problems)
        kind = spec.get("type", STRING_TYPE)
        if isinstance(kind, bool) or not isinstance(kind, int):
            problems.append(f"{item_path}.type: expected an integer such as 100000000")
        if spec.get("value") is not None and not isinstance(spec["value"], str):
            problems.append(f"{item_path}.value: expected a string or null")
        parsed.append({"schema_name": schema_name, "type": kind, "value": spec.get("value")})
    return parsed


def _apply(emulator: Emulator, actions: list[Any]) -> None:
    client_ids: dict[str, str] = {}
    for action in actions:
        if action[0] == "app":
            _, name, spec = action
            secrets = spec.get("secrets") or []
            app = emulator.add_app_registration(
                spec.get("client_id"),
                tenant_id=spec.get("tenant_id") or FAKE_TENANT_ID,
                display_name=name,
                secret=secrets[0] if secrets else None,
            )
            for value in secrets[1:]:
                app.add_secret(value)
            client_ids[name] = app.client_id
        elif action[0] == "connection":
            _, env_name, name, spec = action
            app_name = spec.get("app")
            emulator.environment(env_name).add_connection(
                spec.get("connector", "shared_commondataserviceforapps"),
                spec.get("parameter_set", "ServicePrincipalOauth" if app_name else "Oauth"),
                client_id=client_ids.get(app_name) if app_name else None,
                display_name=name,
                shared_with_lockstep=spec.get("shared_with_lockstep"),
                status=spec.get("status"),
                connection_id=spec.get("id"),
            )
        elif action[0] == "vault":
            _, vault_name, secrets = action
            vault = emulator.key_vault(vault_name)
            for secret in secrets:
                vault.set_secret(
                    secret["name"],
                    secret["value"],
                    enabled=secret["enabled"],
                    expires=secret["expires"],
                    not_before=secret["not_before"],
                    content_type=secret["content_type"],
                )
        else:
            _, env_name, env_spec, definitions = action
            env = emulator.environment(
                env_name,
                org=env_spec.get("org"),
                environment_id=env_spec.get("id"),
                management_state=env_spec.get("management_state"),
                runtime_state=env_spec.get("runtime_state"),
            )
            if env_spec.get("instance_url") is not None:
                env.set_instance_url(env_spec["instance_url"])
            for definition in definitions:
                env.add_definition(definition["schema_name"], definition["type"], definition["value"])


def load_seed(emulator: Emulator, path: str | Path) -> None:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SeedError([f"{path}: not JSON ({exc.msg} at line {exc.lineno})"]) from exc
    apply_seed(emulator, document)
