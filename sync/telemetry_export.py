"""Exporting traces, metrics and logs to Application Insights, as Azure Functions documents it for
Python: host.json `"telemetryMode": "OpenTelemetry"`, app setting `PYTHON_ENABLE_OPENTELEMETRY=true`,
and the Azure Monitor OpenTelemetry distro configured in the worker.

Configured once, on the first invocation (never at import: an import that fails leaves the app
with no functions), and only when APPLICATIONINSIGHTS_CONNECTION_STRING is set. A tracer provider
someone else installed (a test's, the host's) is respected: nothing is configured over it.
Authentication is Entra ID when APPLICATIONINSIGHTS_AUTHENTICATION_STRING says `Authorization=AAD`
(the component has local auth off), with the managed identity it names. Sampling is a fixed 100 %:
Lockstep runs a few times a day, mostly on a cold instance, and the distro's default rate-limited
sampler drops traces that start right after configuration. A failure here is logged and ignored:
telemetry must never stop a sync.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

log = logging.getLogger(__name__)

_state: dict[str, str] = {}


def _entra_credential(authentication: str) -> Any | None:
    """A managed-identity credential when the authentication string asks for Entra ID."""
    parts = dict(part.split("=", 1) for part in authentication.split(";") if "=" in part)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId") or None
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def _provider_already_set() -> bool:
    return type(trace.get_tracer_provider()).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider")


def configure_export(environ: Mapping[str, str] | None = None) -> str:
    """Configures the export once per process; returns (and remembers) what it did."""
    if "result" in _state:
        return _state["result"]
    env = os.environ if environ is None else environ
    connection_string = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    if not connection_string:
        result = "not configured: APPLICATIONINSIGHTS_CONNECTION_STRING is not set"
    elif _provider_already_set():
        result = "not configured: a tracer provider is already installed"
    else:
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor

            configure_azure_monitor(
                connection_string=connection_string,
                credential=_entra_credential(env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")),
                sampling_ratio=1.0,
                logger_name="sync",
            )
            sync_logger = logging.getLogger("sync")
            if sync_logger.getEffectiveLevel() > logging.INFO:  # the run summaries are INFO records
                sync_logger.setLevel(logging.INFO)
            result = "configured: Azure Monitor, 100 % sampling"
        except Exception as error:  # telemetry must never stop a sync
            result = f"not configured: {type(error).__name__}"
            log.exception("Azure Monitor export could not be configured; runs continue without it")
    _state["result"] = result
    log.info("telemetry export %s", result)
    return result


def flush(timeout_millis: int = 10_000) -> None:
    """Sends what is buffered: spans, metrics and logs (a short-lived process, before it exits)."""
    from opentelemetry import _logs, metrics

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if callable(force_flush):
            force_flush(timeout_millis)
