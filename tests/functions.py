"""The indexed functions, built once: `app.get_functions()` may be called only once per app object."""

from __future__ import annotations

from typing import Any

import function_app

FUNCTIONS: dict[str, Any] = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
