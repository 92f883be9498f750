"""Shared httpx plumbing: bearer tokens from an Azure credential, and bounded retries.

Retries are brief on purpose: a few attempts for throttling (honouring Retry-After), 5xx and
dropped connections, never sleeping past the run's time budget. Long outages belong to Event
Grid's redelivery and the nightly reconcile, not to a worker holding a request open.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from sync import deadline
from sync.errors import PermanentError, TransientError
from sync.redact import redact_remote, remote_code
from sync.telemetry import throttled, tracer

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The most Lockstep reads of one answer unless the call says otherwise (a page of 1,000 definitions
# with 2,000-character values is under 9 MB). A larger body is refused while it streams in, so a
# hostile or broken server cannot make the worker hold more than this per request.
MAX_BODY_BYTES = 16 * 1024 * 1024


class ResponseTooLarge(PermanentError):
    """The answer was larger than the call allows: refused unread (waiting does not shrink it)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request tries before the failure is reported as transient."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 20.0
    timeout: float = 10.0


class RetryableResponse(Exception):
    """A response worth retrying (throttled or unavailable); carries the server's Retry-After."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.retry_after = _retry_after_seconds(response)
        super().__init__(f"HTTP {response.status_code}")


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 allows both)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # unreadable: fall back to backoff
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def json_object(response: httpx.Response, service: str) -> dict[str, Any]:
    """The body as a JSON object, or TransientError saying what came instead (never the body's
    content beyond its type: a gateway page or a truncated answer is worth a retry, not a crash)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        content_type = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise TransientError(
            f"{service} answered HTTP {response.status_code} with a body that is not a JSON object "
            f"({content_type}, {len(response.content)} bytes)"
        )
    return body


async def _read_bounded(response: httpx.Response, limit: int, service: str) -> httpx.Response:
    """The response with its body read, or ResponseTooLarge as soon as more than `limit` bytes
    (after content decoding, so a compressed bomb counts at its real size) have arrived."""

    def too_large(size: str) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"{service} answered HTTP {response.status_code} with a body of {size}, more than the "
            f"{limit} bytes Lockstep reads from one answer; the body was not read"
        )

    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"{int(declared)} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise too_large(f"more than {limit} bytes")
        chunks.append(chunk)
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions=response.extensions,
    )


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, RetryableResponse | httpx.TransportError)


class _Wait:
    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableResponse) and error.retry_after is not None:
            return min(error.retry_after, self._policy.max_retry_after)
        backoff = self._policy.base_delay * 2 ** (state.attempt_number - 1)
        return float(min(self._policy.max_delay, backoff * (0.5 + random.random() / 2)))  # noqa: S311


class _StopBeforeDeadline(stop_base):
    """Stops when the next sleep would end too close to the run's deadline to send again."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        left = deadline.remaining()
        return left is not None and left <= (retry_state.upcoming_sleep or 0.0) + 0.5


async def send_with_retry(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    service: str,
    max_body: int = MAX_BODY_BYTES,
    **kwargs: Any,
) -> httpx.Response:
    """Sends a request with retries; returns the final non-retryable response, its body read.

    Raises TransientError when retries are exhausted. `service` names the system in that message;
    the URL is never included (a webhook URL carries its own credential). The body is streamed
    and refused (ResponseTooLarge) past `max_body` bytes; raise it only where larger answers are
    legitimate and bounded by other means (e.g. a page size).
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | _StopBeforeDeadline(),
        wait=_Wait(policy),
        retry=retry_if_exception(_is_retryable),
        reraise=True,
    )
    # A metric dimension must not carry the org: "Dataverse https://org…" -> "Dataverse".
    system = "Dataverse" if service.startswith("Dataverse ") else service
    # Never the path or query: a webhook URL carries its credential there. urlsplit, not httpx.URL:
    # httpx validates a URL character by character, and the client parses it again anyway.
    host = urlsplit(url).hostname or ""
    try:
        async for attempt in retrying:
            with attempt:
                left = deadline.remaining()
                if left is not None and left <= 0:
                    raise TransientError(f"{service}: time budget exhausted before the request was sent")
                timeout = policy.timeout if left is None else max(0.1, min(policy.timeout, left))
                with tracer.start_as_current_span(
                    f"HTTP {method}",
                    kind=SpanKind.CLIENT,
                    attributes={
                        "http.request.method": method,
                        "server.address": host,
                        "lockstep.service": system,
                        "lockstep.attempt": attempt.retry_state.attempt_number,
                    },
                ) as span:
                    async with client.stream(method, url, timeout=timeout, **kwargs) as streamed:
                        response = await _read_bounded(streamed, max_body, service)
                    span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code == 429:
                    throttled.add(1, {"service": system})
                if response.status_code in RETRYABLE_STATUS:
                    raise RetryableResponse(response)
                return response
    except RetryableResponse as error:
        raise TransientError(f"{service} answered HTTP {error.response.status_code} after retries") from None
    except httpx.TimeoutException:
        raise TransientError(f"{service} did not answer in time") from None
    except httpx.TransportError as error:
        raise TransientError(f"{service} unreachable: {type(error).__name__}") from None
    raise AssertionError("unreachable: tenacity either returns, raises or retries")


class BearerTokenAuth(httpx.Auth):
    """Adds `Authorization: Bearer` from an async Azure credential (which caches tokens itself).

    Requests that start together (nine admin checks at the start of a run) would each miss the
    credential's cache and fetch the same token; the lock lets the first fetch it and the rest
    find it cached.
    """

    def __init__(self, credential: AsyncTokenCredential, scope: str) -> None:
        self._credential = credential
        self._scope = scope
        self._fetching = asyncio.Lock()

    async def prepare(self) -> None:
        """Fetches the token now, so the first request finds it cached."""
        async with self._fetching:
            await self._credential.get_token(self._scope)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        try:
            async with self._fetching:
                token = await self._credential.get_token(self._scope)
        except ClientAuthenticationError as error:
            raise TransientError(
                f"could not get a token for {self._scope}: {type(error).__name__}: {error.message}"
            ) from None
        request.headers["Authorization"] = f"Bearer {token.token}"
        yield request


def odata_error(response: httpx.Response, *secrets: SecretStr | None) -> tuple[str, str]:
    """(code, message) from an OData/ARM error body, tolerating bodies that are not JSON.

    Both are the service's text, which may echo a value it was sent or held: the code is kept
    only when it looks like one, the message is redacted (sync.redact.redact_remote) against
    every value Lockstep holds and `secrets`.
    """
    try:
        body = response.json()
    except ValueError:
        return "", redact_remote(response.reason_phrase, *secrets)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = remote_code(str(error.get("code", "")), *secrets)
        return code, redact_remote(str(error.get("message", "")), *secrets)
    return "", redact_remote(response.reason_phrase, *secrets)
