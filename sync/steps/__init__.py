"""The steps of a sync, one module each, in the order a target goes through them.

- `readiness`: is the environment Ready/Enabled at the mapped URL (once per environment per run)
- `prefetch`: the reconcile's bulk read of every mapped definition, once per environment
- `expand`: the concrete targets of a stage (connections discovered by client id)
- `apply`: read → decide → write → verify through the target's kind (sync.targets), re-deciding
  after a lost race
- `rollback`: staged rollout only — undo a stage that failed its gate (the gate itself is the pure
  `sync.rollout`), each target through its kind's `restore`
- `consumers`: after a stage keeps a value, refresh what reads it (`flow_refresh`; agents next)
- `notify`: post the run's Teams card

`context` holds what one run shares. `sync.engine` runs the steps stage by stage, row by row;
each step is testable on its own over in-memory fakes.
"""
