"""The trust store: a stale, unreadable or non-PEM bundle is a configuration error naming its setting.

The case that motivated it: the emulator's CA file disappears when the emulator stops, and the
`local.settings.json` it wrote still names it. Every path that builds clients must say so plainly
(CLI exit 3, the function raising ConfigurationError) instead of a FileNotFoundError traceback.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import certifi
import pytest
from azure.functions.timer import TimerRequest

from sync.errors import ConfigurationError
from sync.runtime import close_runtime, get_runtime
from sync.tls import ssl_context, trust_store_problems

GOOD = certifi.where()


@pytest.fixture
def not_pem(tmp_path: Path) -> str:
    path = tmp_path / "not-a-bundle.pem"
    path.write_text("this is not a certificate\n")
    return str(path)


@pytest.fixture
def gone(tmp_path: Path) -> str:
    return str(tmp_path / "emulator-ca-of-a-stopped-run.pem")


def test_a_usable_bundle_and_no_setting_are_fine() -> None:
    assert trust_store_problems({}) == []
    assert trust_store_problems({"SSL_CERT_FILE": GOOD, "REQUESTS_CA_BUNDLE": GOOD}) == []
    assert ssl_context({"SSL_CERT_FILE": GOOD}).verify_mode.name == "CERT_REQUIRED"


def test_each_broken_setting_is_named(gone: str, not_pem: str, tmp_path: Path) -> None:
    [missing] = trust_store_problems({"SSL_CERT_FILE": gone})
    assert missing.startswith("SSL_CERT_FILE: ") and gone in missing and "No such file" in missing
    [garbage] = trust_store_problems({"REQUESTS_CA_BUNDLE": not_pem})
    assert garbage == f"REQUESTS_CA_BUNDLE: {not_pem!r} is not a PEM certificate bundle"
    [directory] = trust_store_problems({"SSL_CERT_FILE": str(tmp_path)})
    assert directory.startswith("SSL_CERT_FILE: cannot read")
    both = trust_store_problems({"SSL_CERT_FILE": gone, "REQUESTS_CA_BUNDLE": not_pem})
    assert [problem.split(":")[0] for problem in both] == ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"]


def test_ssl_context_raises_a_configuration_error_not_file_not_found(gone: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ssl_context({"SSL_CERT_FILE": gone})
    assert caught.value.problems[0].startswith("SSL_CERT_FILE: cannot read the trust store")


def test_runtime_raises_configuration_error_when_the_bundle_vanishes_after_the_check(
    gone: str, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    """The settings passed (checked against `environ`), but the process's trust store is gone."""
    monkeypatch.setenv("SSL_CERT_FILE", gone)

    async def build() -> None:
        try:
            await get_runtime(environ)
        finally:
            await close_runtime()

    with pytest.raises(ConfigurationError, match="SSL_CERT_FILE"):
        asyncio.run(build())


def test_the_function_app_raises_and_logs_it_like_any_configuration_error(
    gone: str, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from tests.functions import FUNCTIONS

    for name, value in {**environ, "SSL_CERT_FILE": gone}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LOCKSTEP_MAPPING_FILE", raising=False)
    reconcile = FUNCTIONS["reconcile_nightly"].get_user_function()

    async def run() -> None:
        try:
            await reconcile(TimerRequest(past_due=False))
        finally:
            await close_runtime()

    with caplog.at_level(logging.ERROR), pytest.raises(ConfigurationError, match="SSL_CERT_FILE"):
        asyncio.run(run())
    assert any("reconcile not run" in r.getMessage() and gone in r.getMessage() for r in caplog.records)
