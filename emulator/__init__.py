"""Local emulator for Lockstep: Key Vault, Dataverse, Power Platform admin and connectivity APIs, Teams.

Production code is pointed at it only through standard environment variables
(``Emulator.client_environment()``); see ``emulator/README.md``.
"""

from ._core import Emulator
from ._environment import Environment
from ._seed import SeedError, apply_seed, load_seed
from ._state import RecordedRequest
from ._tenant import AppRegistration
from ._vault import KeyVault

__all__ = [
    "AppRegistration",
    "Emulator",
    "Environment",
    "KeyVault",
    "RecordedRequest",
    "SeedError",
    "apply_seed",
    "load_seed",
]
