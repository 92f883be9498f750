"""Local emulator for Lockstep: Key Vault, Dataverse, Power Platform admin API, managed identity, Teams.

Production code is pointed at it only through standard environment variables
(``Emulator.client_environment()``); see ``emulator/README.md``.
"""

from ._core import Emulator
from ._environment import Environment
from ._seed import SeedError, apply_seed, load_seed
from ._state import RecordedRequest
from ._vault import KeyVault

__all__ = ["Emulator", "Environment", "KeyVault", "RecordedRequest", "SeedError", "apply_seed", "load_seed"]
