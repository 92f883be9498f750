"""The seed format's app registrations and connections: what `seed.connections.json` sets up."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator import Emulator
from emulator._seed import SeedError, apply_seed, load_seed

SEED = Path(__file__).resolve().parents[2] / "emulator" / "seed.connections.json"


def test_the_connections_seed_creates_apps_and_shared_connections() -> None:
    with Emulator() as emu:
        load_seed(emu, SEED)
        app = emu.app_registration("5b7e0c1d-2f3a-4b5c-8d6e-7f8091a2b3c4")
        assert app.is_valid("initial-spn-secret")
        dev = emu.environment("dev")
        [dev_id] = [c for c in dev._env.connections]
        dev_connection = dev.connection(dev_id)
        assert dev_connection["display_name"] == "Flows SPN dev" and dev_connection["status"] == "Error"
        assert list(dev_connection["shares"].values()) == ["CanEdit"]
        assert dev_connection["client_id"] == app.client_id
        prod = {
            c["display_name"]: c
            for c in map(emu.environment("prod").connection, emu.environment("prod")._env.connections)
        }
        assert (
            prod["Maker's mailbox"]["parameter_set"] == "Oauth"
            and prod["Flows SPN prod"]["status"] == "Connected"
        )


def test_a_connection_naming_an_unknown_app_is_refused_with_its_path() -> None:
    with Emulator() as emu, pytest.raises(SeedError) as refused:
        apply_seed(emu, {"environments": {"dev": {"connections": {"X": {"app": "nope", "colour": 1}}}}})
    assert "$.environments.dev.connections.X.app: no app registration 'nope'" in refused.value.problems
    assert "$.environments.dev.connections.X.colour: unknown key" in refused.value.problems
