"""The test-facing half of the ``Emulator`` API: recorded requests, injected faults, latency, telemetry.

A mixin over the shared ``State``: none of it changes what a service holds, only how it answers
(faults, latency) and what the tests can observe afterwards.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from ._state import FAULT_KINDS, FAULTABLE_SERVICES, MONITOR_HOST, Fault, RecordedRequest, State


class Diagnostics:
    _state: State

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def reset_requests(self) -> None:
        with self._state.lock:
            self._state.requests.clear()

    def inject_fault(
        self,
        service: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        path_contains: str | None = None,
        kind: str = "status",
        method: str | None = None,
        retry_after_date: bool = False,
    ) -> None:
        """The next ``times`` matching requests to ``service`` misbehave as ``kind`` says.

        ``status`` answers ``status`` without touching state (``Retry-After`` in seconds, or as an
        HTTP-date with ``retry_after_date``); ``html`` a 502 gateway page; ``truncated`` a 200 with
        a cut-off JSON body; ``drop_before`` hangs up without applying the request; ``drop_after``
        (Dataverse) applies it, then hangs up, so the client never learns it succeeded.
        ``path_contains`` is a substring of host + path (no query string), so ``"contoso-test"``
        targets one Dataverse org and ``"environmentvariablevalues("`` one kind of request;
        ``method`` narrows it to one HTTP method.
        A fault applies after the credential check (bearer token, identity header, webhook sig),
        so a request the service would reject as unauthenticated does not consume it.
        """
        if service not in FAULTABLE_SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(FAULTABLE_SERVICES)}")
        if not 200 <= status <= 599:
            raise ValueError("status must be a final HTTP status (200-599)")
        if times < 1:
            raise ValueError("times must be at least 1")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        fault = Fault(
            service,
            status,
            times,
            retry_after,
            path_contains,
            kind,
            method.upper() if method else None,
            retry_after_date,
        )
        with self._state.lock:
            self._state.faults.append(fault)

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    def set_latency(self, seconds: float, service: str | None = None) -> None:
        """Every later request to ``service`` (all services when None) waits ``seconds`` first.

        For benchmarks: loopback answers in microseconds, which hides the cost of each request
        that a real network and service (tens of milliseconds) would make visible.
        """
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        if service is not None and service not in FAULTABLE_SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {', '.join(FAULTABLE_SERVICES)}")
        with self._state.lock:
            if service is None:
                self._state.latency = {"*": seconds}
            else:
                self._state.latency[service] = seconds

    def monitor_connection_string(self) -> str:
        """An Application Insights connection string whose ingestion endpoint is this emulator."""
        return f"InstrumentationKey={uuid.UUID(int=0)};IngestionEndpoint=https://{MONITOR_HOST}/"

    def telemetry_items(self) -> list[dict[str, Any]]:
        """Copies of the Application Insights envelopes received, in order."""
        with self._state.lock:
            return copy.deepcopy(self._state.telemetry)
