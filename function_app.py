"""Azure Functions entry points (Python v2 model). Thin on purpose: decode, call `sync`, return.

Importing this module reads no setting and opens no connection, so the host can always index
the functions; configuration is validated on first invocation (see sync/runtime.py).
"""

from __future__ import annotations

import azure.functions as func

from sync.entrypoints import handle_event_grid_event, run_reconcile

app = func.FunctionApp()


@app.function_name("on_secret_event")
@app.event_grid_trigger(arg_name="event")
async def on_secret_event(event: func.EventGridEvent) -> None:
    """Key Vault secret events via Event Grid. Raising makes Event Grid redeliver."""
    await handle_event_grid_event(
        event_id=event.id,
        event_type=event.event_type,
        subject=event.subject,
        topic=event.topic,
        data=event.get_json(),
    )


@app.function_name("reconcile_nightly")
@app.timer_trigger(schedule="%RECONCILE_SCHEDULE%", arg_name="timer", use_monitor=True)
async def reconcile_nightly(timer: func.TimerRequest) -> None:
    """The backstop: brings every mapped secret in line, whatever events were lost."""
    await run_reconcile(past_due=timer.past_due)
