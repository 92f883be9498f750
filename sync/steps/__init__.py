"""The steps of a sync, one module each, in the order a target goes through them.

- `readiness`: is the environment Ready/Enabled at the mapped URL (once per environment per run)
- `prefetch`: the reconcile's bulk read of every mapped definition, once per environment
- `upsert`: read → decide (sync.plan) → update or create, re-planning after a lost race
- `verify`: read the value back
- `rollback`: staged rollout only — undo a stage that failed its gate (the gate itself is the pure
  `sync.rollout`)
- `notify`: post the run's Teams card

`context` holds what one run shares. `sync.engine` runs the steps stage by stage, row by row;
each step is testable on its own over in-memory fakes.
"""
