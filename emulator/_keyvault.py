"""Key Vault secrets data plane: get (current or a version), list versions, set (new version)."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from aiohttp import web

from ._http import (
    JSON,
    check_bearer,
    error_response,
    fault_response,
    json_response,
    media_type,
    parse_json_object,
    take_fault,
)
from ._keyvault_versions import list_versions
from ._state import (
    FAKE_TENANT_ID,
    KEY_VAULT_AUDIENCE,
    VAULT_SUFFIX,
    SecretRecord,
    SecretVersion,
    State,
    VaultState,
)

SERVICE = "keyvault"
CHALLENGE = (
    f'Bearer authorization="https://login.microsoftonline.com/{FAKE_TENANT_ID}", '
    f'resource="{KEY_VAULT_AUDIENCE}"'
)
# Both the classic "7.x" versions and the date-style versions newer SDKs send by default.
API_VERSION = re.compile(r"^(7\.\d+|\d{4}-\d{2}-\d{2})(-preview(\.\d+)?)?$")
SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
VERSION = re.compile(r"^[0-9a-fA-F]{32}$")
SECRET_PATH = re.compile(r"^/secrets/([^/]+)(?:/([^/]*))?$")
RECOVERY_LEVEL = "Recoverable+Purgeable"
SET_KEYS = {"value", "contentType", "attributes", "tags"}
ATTRIBUTE_KEYS = {"enabled", "nbf", "exp"}


def new_version() -> str:
    return secrets.token_hex(16)


def vault_host(vault: str) -> str:
    return f"{vault}{VAULT_SUFFIX}"


def secret_id(vault: str, name: str, version: str) -> str:
    return f"https://{vault_host(vault)}/secrets/{name}/{version}"


def bundle(vault: str, record: SecretRecord, version: SecretVersion) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": RECOVERY_LEVEL,
    }
    if version.not_before is not None:
        attributes["nbf"] = version.not_before
    if version.expires is not None:
        attributes["exp"] = version.expires
    body: dict[str, Any] = {
        "value": version.value,
        "id": secret_id(vault, record.name, version.version),
        "attributes": attributes,
        "tags": dict(version.tags),
    }
    if version.content_type is not None:
        body["contentType"] = version.content_type
    return body


def add_version(
    vault: VaultState,
    name: str,
    value: str,
    *,
    enabled: bool = True,
    not_before: int | None = None,
    expires: int | None = None,
    content_type: str | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[SecretRecord, SecretVersion]:
    """Create a new current version (caller holds the state lock)."""
    record = vault.find(name)
    if record is None:
        record = SecretRecord(name=name)
        vault.secrets[name.lower()] = record
    now = int(time.time())
    version = SecretVersion(
        version=new_version(),
        value=value,
        enabled=enabled,
        created=now,
        updated=now,
        not_before=not_before,
        expires=expires,
        content_type=content_type,
        tags=dict(tags or {}),
    )
    record.versions[version.version] = version
    record.current = version.version
    return record, version


def _not_found(label: str) -> web.Response:
    return error_response(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {label} was not found in this key vault. If you recently deleted this "
        "secret you may be able to recover it using the correct recovery command. For help resolving this "
        "issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def _bad_parameter(message: str) -> web.Response:
    return error_response(400, "BadParameter", message)


async def handle(state: State, request: web.Request, host: str) -> web.Response:
    vault_name = host[: -len(VAULT_SUFFIX)]
    problem = check_bearer(state, request, KEY_VAULT_AUDIENCE)
    if problem is not None:
        code = "Unauthorized" if "Authorization" not in request.headers else "InvalidAuthenticationToken"
        return error_response(401, code, problem.message, headers={"WWW-Authenticate": CHALLENGE})
    fault = take_fault(state, SERVICE, request)
    if fault is not None:
        return fault_response(fault, request)

    api_version = request.query.get("api-version")
    if api_version is None:
        return _bad_parameter("The api-version query parameter is required.")
    if not API_VERSION.match(api_version):
        return _bad_parameter(f"The specified version ({api_version}) is not recognized.")

    match = SECRET_PATH.match(request.path)
    if match is None:
        return error_response(404, "NotFound", "The requested resource does not exist in this key vault.")
    name, version = match.group(1), match.group(2) or None
    if not SECRET_NAME.match(name):
        return _bad_parameter("The secret name is invalid: it may contain only 0-9, a-z, A-Z and '-'.")

    if request.method == "GET" and version == "versions":
        with state.lock:
            vault = state.vaults.get(vault_name)
            if vault is None:
                return error_response(404, "VaultNotFound", f"The vault {vault_name} does not exist.")
            return list_versions(vault, name, request, host)
    if request.method == "GET":
        with state.lock:
            vault = state.vaults.get(vault_name)
            if vault is None:
                return error_response(404, "VaultNotFound", f"The vault {vault_name} does not exist.")
            return _get(vault, name, version)
    if request.method == "PUT" and match.group(2) is None:
        return await _set(state, request, vault_name, name)
    return error_response(405, "MethodNotAllowed", f"The method {request.method} is not allowed here.")


def _get(vault: VaultState, name: str, version: str | None) -> web.Response:
    record = vault.find(name)
    if record is None or record.current is None:
        return _not_found(name if version is None else f"{name}/{version}")
    wanted = record.current if version is None else version.lower()
    if version is not None and not VERSION.match(version):
        return _not_found(f"{name}/{version}")
    found = record.versions.get(wanted)
    if found is None:
        return _not_found(f"{name}/{version}")
    if not found.enabled:
        return json_response(
            403,
            {
                "error": {
                    "code": "Forbidden",
                    "message": "Operation get is not allowed on a disabled secret.",
                    "innererror": {"code": "SecretDisabled"},
                }
            },
        )
    return json_response(200, bundle(vault.name, record, found))


async def _set(state: State, request: web.Request, vault_name: str, name: str) -> web.Response:
    if media_type(request) != JSON:
        return _bad_parameter("The request Content-Type must be application/json.")
    body = parse_json_object(await request.read())
    if body is None:
        return _bad_parameter("The request body is not a JSON object.")
    unknown = sorted(set(body) - SET_KEYS)
    if unknown:
        return _bad_parameter(f"Unknown property in the request body: {unknown[0]}.")
    value = body.get("value")
    if not isinstance(value, str):
        return _bad_parameter("The property 'value' is required and must be a string.")
    content_type = body.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        return _bad_parameter("The property 'contentType' must be a string.")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        return _bad_parameter("The property 'tags' must be an object of strings.")
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict) or set(attributes) - ATTRIBUTE_KEYS - {"created", "updated"}:
        return _bad_parameter("The property 'attributes' may only hold enabled, nbf and exp.")
    enabled = attributes.get("enabled", True)
    not_before = attributes.get("nbf")
    expires = attributes.get("exp")
    if not isinstance(enabled, bool):
        return _bad_parameter("The attribute 'enabled' must be a boolean.")
    for label, stamp in (("nbf", not_before), ("exp", expires)):
        if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int)):
            return _bad_parameter(f"The attribute '{label}' must be an integer (seconds since the epoch).")
    with state.lock:
        vault = state.vaults.get(vault_name)
        if vault is None:
            return error_response(404, "VaultNotFound", f"The vault {vault_name} does not exist.")
        record, version = add_version(
            vault,
            name,
            value,
            enabled=enabled,
            not_before=not_before,
            expires=expires,
            content_type=content_type,
            tags=tags,
        )
        return json_response(200, bundle(vault.name, record, version))
