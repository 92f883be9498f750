"""Target kinds: one module per kind of place a secret lands, behind one contract (base).

- `base`: the TargetKind / Consumer contract the engine drives, and the decisions it understands
- `env_vars`: environment-variable value rows in Dataverse
"""
