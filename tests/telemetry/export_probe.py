"""Run in a fresh process by test_export.py: one rotation through the real function, then flush.

A separate process because exporting installs process-wide OpenTelemetry providers, which the
rest of the test suite must not inherit (and which it has already set, which export respects).
"""

from __future__ import annotations

import asyncio
import json
import sys

from demo.scenario import function_event


async def main(event: dict[str, object]) -> None:
    import function_app

    functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
    await functions["on_secret_event"].get_user_function()(function_event(event))
    from sync.runtime import close_runtime

    await close_runtime()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
    from sync.telemetry_export import configure_export, flush

    print(configure_export())
    flush()
