"""Lockstep: keep Power Platform environment variables in lockstep with Azure Key Vault secrets.

The package is framework-free on purpose: `function_app.py` (Azure Functions), the tests and the
demo all drive the same entry points in :mod:`sync.entrypoints`, so every trigger exercises one path.
"""
