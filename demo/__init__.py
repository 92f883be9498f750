"""The local demo: the emulator, a seeded Contoso tenant, and Lockstep's real functions."""
