"""How Dataverse says "publish fewer agents at once": PvaPublish's throttling answers.

Rapid publishes are refused with a 429, a 400 whose error wraps a 429, or a bare 401 to a token
every other call accepts. Each is transient (retried with backoff); any other refusal is not.
"""

from __future__ import annotations

import httpx

from sync.adapters.http import odata_error

THROTTLE_HINTS = ("429", "toomanyrequests", "throttl", "rate limit")


def is_throttled(response: httpx.Response) -> bool:
    """Publishing's throttling: a 429, a 400 whose error wraps a 429, or a 401 with no error body."""
    if response.status_code == 429:
        return True
    if response.status_code == 400:
        code, message = odata_error(response)
        text = f"{code} {message}".lower()
        return any(hint in text for hint in THROTTLE_HINTS)
    if response.status_code == 401:
        # A token Dataverse rejects says so (WWW-Authenticate error="invalid_token", an error
        # body); a bare 401 to a token every other call accepts is the publish throttle.
        challenge = response.headers.get("WWW-Authenticate", "").lower()
        return "invalid_token" not in challenge and not _has_error_body(response)
    return False


def _has_error_body(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)
