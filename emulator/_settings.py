"""A ready Core Tools `local.settings.json` for a seeded emulator, so `func start` runs against it.

Values: the Functions worker settings, every variable that points azure-identity, the Azure SDK
and httpx at the emulator (`Emulator.client_environment()`), the vault URL, the Teams webhook URL
and the Lockstep mapping built from the seed's environments (with their stages) and its
`mapping.secrets` rows. The file holds the emulator's per-run credentials (identity header, webhook
sig), so it is written with mode 0600, and it is valid only while this emulator run lasts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import Emulator


def lockstep_mapping(emulator: Emulator, document: dict[str, Any]) -> dict[str, Any]:
    """The mapping for the seeded environments (ids and URLs as the emulator serves them)."""
    seeded = document.get("environments") or {}
    environments = [
        {
            "name": env.name,
            "id": env.id,
            "url": env.url,
            "stage": (seeded.get(env.name) or {}).get("stage", index + 1),
        }
        for index, env in enumerate(emulator.environments())
    ]
    rows = (document.get("mapping") or {}).get("secrets") or []
    if not rows:
        raise ValueError("the seed has no mapping.secrets rows: --write-settings needs them to map secrets")
    return {"environments": environments, "secrets": rows}


def core_tools_values(emulator: Emulator, document: dict[str, Any]) -> dict[str, str]:
    vaults = emulator.key_vaults()
    if len(vaults) != 1:
        raise ValueError(f"--write-settings needs exactly one vault in the seed, found {len(vaults)}")
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        **emulator.client_environment(),
        "KEY_VAULT_URI": vaults[0].url,
        "LOCKSTEP_MAPPING": json.dumps(lockstep_mapping(emulator, document)),
        "TEAMS_WEBHOOK_URL": emulator.teams_webhook_url(),
        "RECONCILE_SCHEDULE": "0 0 2 * * *",
    }


def write_core_tools_settings(path: str | Path, emulator: Emulator, document: dict[str, Any]) -> None:
    """Writes the file with mode 0600, also when it exists already: `os.open`'s mode applies only
    to a file it creates, so an existing (say 0644) file is narrowed before the credentials go in."""
    text = json.dumps({"IsEncrypted": False, "Values": core_tools_values(emulator, document)}, indent=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text + "\n")
