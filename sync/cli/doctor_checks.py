"""A doctor check and the way each is attempted: a read within the time budget, its failure a
message safe to print (the service's text scrubbed), never an exception."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from azure.core.exceptions import ClientAuthenticationError
from pydantic import BaseModel, ConfigDict

from sync.deadline import within_budget
from sync.errors import LockstepError
from sync.redact import scrub


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    scope: str
    check: str
    ok: bool
    detail: str = ""
    fix: str = ""


def make_check(scope: str, name: str, problem: str | None, ok_detail: str, fix: str) -> Check:
    if problem is None:
        return Check(scope=scope, check=name, ok=True, detail=ok_detail)
    return Check(scope=scope, check=name, ok=False, detail=problem, fix=fix)


async def attempt(awaitable: Awaitable[Any]) -> tuple[Any, str | None]:
    """(result, None) or (None, a message safe to print), within the caller's time budget."""
    try:
        return await within_budget(awaitable), None
    except ClientAuthenticationError as error:
        return None, scrub(str(error.message).splitlines()[0] if error.message else type(error).__name__)
    except LockstepError as error:
        return None, scrub(str(error))
