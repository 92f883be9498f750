"""Proxy refusals, fault injection, the request log, lifecycle, seeding and ``python -m emulator``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import emulator._proxy
from emulator import Emulator, Environment, RecordedRequest, SeedError, apply_seed, load_seed

REPO = Path(__file__).resolve().parents[2]
SCHEMA = "contoso_SqlConnectionPassword"
VAULT_HOST = "lockstep-demo.vault.lockstep.test"


async def proxy_exchange(emu: Emulator, request: bytes) -> bytes:
    """Send raw bytes to the proxy and read its whole answer (it closes after refusing)."""
    parts = urlsplit(emu.proxy_url)
    assert parts.hostname is not None
    assert parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def teams_message() -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock"}]},
            }
        ],
    }


# --- proxy ---


async def test_proxy_refuses_anything_but_lockstep_test_and_never_connects(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    decoy = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    decoy_port = decoy.sockets[0].getsockname()[1]
    upstream_ports: list[int] = []
    real_open_upstream = emulator._proxy.open_upstream

    async def spy(tls_port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        upstream_ports.append(tls_port)
        return await real_open_upstream(tls_port)

    monkeypatch.setattr(emulator._proxy, "open_upstream", spy)
    try:
        for target in (
            f"127.0.0.1:{decoy_port}",
            f"localhost:{decoy_port}",
            "example.com:443",
            "login.microsoftonline.com:443",
            "vault.lockstep.test.example.com:443",
            "lockstep.test:443",
            f"{VAULT_HOST}:{decoy_port}",
            "[::1]:443",
        ):
            answer = await proxy_exchange(
                emu, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
            )
            assert answer.startswith(b"HTTP/1.1 403 "), target
        plain = await proxy_exchange(
            emu, b"GET http://example.com/data?token=abc HTTP/1.1\r\nHost: example.com\r\n\r\n"
        )
        assert plain.startswith(b"HTTP/1.1 403 ")
        assert accepted == []
        assert upstream_ports == []

        parts = urlsplit(emu.proxy_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(b"CONNECT LockStep-Demo.VAULT.lockstep.test:443 HTTP/1.1\r\n\r\n")
        allowed = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        await writer.wait_closed()
        assert allowed == b"HTTP/1.1 200 Connection Established\r\n\r\n"
        assert len(upstream_ports) == 1
    finally:
        decoy.close()
        await decoy.wait_closed()
    proxy_log = [r for r in emu.requests if r.service == "proxy"]
    assert [r.status for r in proxy_log] == [403] * 9 + [200]
    assert RecordedRequest("proxy", "GET", "example.com", "/data", 403) in proxy_log
    assert RecordedRequest("proxy", "CONNECT", VAULT_HOST, "", 200) in proxy_log
    assert "token=abc" not in repr(emu.requests)


async def test_proxy_passes_half_close_through(emu: Emulator) -> None:
    parts = urlsplit(emu.proxy_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"CONNECT {VAULT_HOST}:443 HTTP/1.1\r\n\r\n".encode())
    await writer.drain()
    assert (
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        == b"HTTP/1.1 200 Connection Established\r\n\r\n"
    )
    writer.write_eof()  # the client is done before even starting TLS
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the TLS side closed too
    writer.close()
    await writer.wait_closed()


def test_stop_with_open_tunnels_is_quick_and_clean(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emu = Emulator()
    emu.start()
    vault = emu.key_vault("lockstep-demo")
    vault.set_secret("s", "v")
    tmpdir = emu.ca_cert_path.parent
    proxy = urlsplit(emu.proxy_url)
    idle = socket.create_connection((proxy.hostname, proxy.port))
    idle.sendall(f"CONNECT {VAULT_HOST}:443 HTTP/1.1\r\n\r\n".encode())
    assert idle.recv(100).startswith(b"HTTP/1.1 200")
    context = ssl.create_default_context(cafile=emu.ca_cert_path)
    with (
        httpx.Client(verify=context, proxy=emu.proxy_url) as http,
        warnings.catch_warnings(record=True) as seen,
    ):
        warnings.simplefilter("always")
        token = emu.issue_token("https://vault.lockstep.test")
        response = http.get(
            f"{vault.url}secrets/s",
            params={"api-version": "7.5"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200  # a keep-alive tunnel now stays open
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 3
        emu.stop()  # idempotent
        gc.collect()
    idle.close()
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []
    assert not [t for t in threading.enumerate() if t.name == "lockstep-emulator"]
    assert not tmpdir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.hostname, proxy.port), timeout=1).close()
    noisy = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("asyncio", "aiohttp"))
    ]
    assert noisy == []


# --- faults ---


async def test_injected_fault_with_retry_after_leaves_state_alone(
    emu: Emulator, client: httpx.AsyncClient, dev: Environment, dv_base: str, dv_headers: dict[str, str]
) -> None:
    dev.add_definition(SCHEMA, value="old")
    etag = dev.value_etag(SCHEMA)
    emu.inject_fault("dataverse", 429, retry_after=7, path_contains="environmentvariablevalues(")
    listing = await client.get(
        f"{dv_base}environmentvariabledefinitions",
        params={
            "$filter": f"schemaname eq '{SCHEMA}'",
            "$expand": "environmentvariabledefinition_environmentvariablevalue",
        },
        headers=dv_headers,
    )
    assert listing.status_code == 200  # path does not match: the fault is still pending
    [row] = listing.json()["value"]
    value_id = row["environmentvariabledefinition_environmentvariablevalue"][0]["environmentvariablevalueid"]
    url = f"{dv_base}environmentvariablevalues({value_id})"

    throttled = await client.patch(url, json={"value": "new"}, headers={**dv_headers, "If-Match": "*"})
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"]
    assert dev.value_of(SCHEMA) == "old"
    assert dev.value_etag(SCHEMA) == etag

    assert (
        await client.patch(url, json={"value": "new"}, headers={**dv_headers, "If-Match": "*"})
    ).status_code == 204
    assert dev.value_of(SCHEMA) == "new"


async def test_fault_counts_times_and_skips_unauthenticated_requests(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    env = emu.environment("dev", org="contoso-dev")
    url = f"{emu.admin_url}/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments/{env.id}"
    params = {"api-version": "2020-10-01"}
    emu.inject_fault("admin", 503, times=2)
    assert (await client.get(url, params=params)).status_code == 401  # no token: fault not consumed
    auth = {"Authorization": f"Bearer {emu.issue_token('https://service.powerapps.com')}"}
    statuses = [(await client.get(url, params=params, headers=auth)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert "Retry-After" not in (await client.get(url, params=params, headers=auth)).headers


async def test_fault_can_target_one_org_by_host(emu: Emulator, client: httpx.AsyncClient) -> None:
    headers: dict[str, dict[str, str]] = {}
    for org in ("contoso-dev", "contoso-test"):
        env = emu.environment(org, org=org)
        token = emu.issue_token(f"{env.url}/.default")
        headers[org] = {
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "Accept": "application/json",
            "Authorization": f"Bearer {token}",
        }
    emu.inject_fault("dataverse", 503, times=5, path_contains="contoso-test.")
    dev = await client.get(
        "https://contoso-dev.crm.lockstep.test/api/data/v9.2/WhoAmI", headers=headers["contoso-dev"]
    )
    test = await client.get(
        "https://contoso-test.crm.lockstep.test/api/data/v9.2/WhoAmI", headers=headers["contoso-test"]
    )
    assert (dev.status_code, test.status_code) == (200, 503)


async def test_identity_fault(emu: Emulator, loopback: httpx.AsyncClient) -> None:
    emu.inject_fault("identity", 500, retry_after=1)
    params = {"api-version": "2019-08-01", "resource": "https://vault.lockstep.test"}
    headers = {"X-IDENTITY-HEADER": emu.identity_header}
    failed = await loopback.get(emu.identity_endpoint, params=params, headers=headers)
    assert failed.status_code == 500
    assert failed.headers["Retry-After"] == "1"
    assert (await loopback.get(emu.identity_endpoint, params=params, headers=headers)).status_code == 200


def test_inject_fault_validates_its_arguments(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown service"):
        emu.inject_fault("proxy", 500)
    with pytest.raises(ValueError, match="status"):
        emu.inject_fault("teams", 99)
    with pytest.raises(ValueError, match="times"):
        emu.inject_fault("teams", 500, times=0)


# --- request log ---


async def test_request_log_never_holds_query_strings_sig_or_values(
    emu: Emulator,
    client: httpx.AsyncClient,
    dev: Environment,
    dv_base: str,
    dv_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = emu.key_vault("lockstep-demo")
    vault.set_secret("s", "value-that-must-not-leak")
    webhook = emu.teams_webhook_url()
    sig = parse_qs(urlsplit(webhook).query)["sig"][0]
    assert (await client.post(webhook, json=teams_message())).status_code == 202
    assert (await client.post(webhook.replace(sig, "bad"), json=teams_message())).status_code == 401
    kv_auth = {"Authorization": f"Bearer {emu.issue_token('https://vault.lockstep.test')}"}
    kv = await client.get(f"{vault.url}secrets/s", params={"api-version": "7.5"}, headers=kv_auth)
    assert kv.json()["value"] == "value-that-must-not-leak"
    dv = await client.get(
        f"{dv_base}environmentvariabledefinitions",
        params={"$filter": f"schemaname eq '{SCHEMA}'"},
        headers=dv_headers,
    )
    assert dv.status_code == 200

    webhook_path = urlsplit(webhook).path
    assert [r for r in emu.requests if r.service != "proxy"] == [
        RecordedRequest("teams", "POST", "webhook.lockstep.test", webhook_path, 202),
        RecordedRequest("teams", "POST", "webhook.lockstep.test", webhook_path, 401),
        RecordedRequest("keyvault", "GET", VAULT_HOST, "/secrets/s", 200),
        RecordedRequest(
            "dataverse",
            "GET",
            "contoso-dev.crm.lockstep.test",
            f"{urlsplit(dv_base).path}environmentvariabledefinitions",
            200,
        ),
    ]
    log_text = repr(emu.requests)
    for forbidden in (sig, "?", "api-version", "$filter", "value-that-must-not-leak"):
        assert forbidden not in log_text
    emulator_logs = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("emulator", "aiohttp", "asyncio"))
    )
    assert "webhook.lockstep.test" in emulator_logs  # DEBUG lines exist ...
    assert sig not in emulator_logs  # ... but carry no sig
    assert "value-that-must-not-leak" not in emulator_logs
    emu.reset_requests()
    assert emu.requests == []


# --- lifecycle and seeding ---


def test_lifecycle_and_state_before_start() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="start"):
        _ = emu.proxy_url
    vault = emu.key_vault("lockstep-demo")  # state can be prepared before start
    version = vault.set_secret("s", "v")
    assert vault.url == "https://lockstep-demo.vault.lockstep.test/"
    with emu:
        assert emu.proxy_url.startswith("http://127.0.0.1:")
        assert emu.identity_endpoint.startswith("http://127.0.0.1:")
        assert emu.identity_endpoint.endswith("/msi/token")
        assert emu.ca_cert_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert emu.key_vault("lockstep-demo").current_version("s") == version
        environment = emu.client_environment()
        assert environment == {
            "SSL_CERT_FILE": str(emu.ca_cert_path),
            "REQUESTS_CA_BUNDLE": str(emu.ca_cert_path),
            "HTTPS_PROXY": emu.proxy_url,
            "https_proxy": emu.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "IDENTITY_ENDPOINT": emu.identity_endpoint,
            "IDENTITY_HEADER": emu.identity_header,
            "POWER_PLATFORM_ADMIN_URL": "https://api.bap.lockstep.test",
            "POWER_PLATFORM_API_URL": "https://api.powerplatform.lockstep.test",
            "LOCKSTEP_ALLOWED_HOSTS": "api.bap.lockstep.test,webhook.lockstep.test,"
            "api.powerplatform.lockstep.test,*.environment.api.powerplatform.lockstep.test",
        }
        with pytest.raises(RuntimeError, match="once"):
            emu.start()
    emu.stop()


def test_fixed_ports() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with Emulator(proxy_port=port) as emu:
        assert emu.proxy_url == f"http://127.0.0.1:{port}"


SEED: dict[str, Any] = {
    "vaults": {
        "lockstep-demo": {
            "secrets": {
                "sql-conn-password": "s3cret",
                "graph-client-secret": {"value": "g", "expires": "2030-01-01T00:00:00Z", "enabled": False},
            }
        }
    },
    "environments": {
        "dev": {
            "org": "contoso-dev",
            "id": "6a1b2c3d-0000-4000-8000-000000000001",
            "definitions": {SCHEMA: "old", "contoso_GraphSecret": None, "contoso_Ref": {"type": 100000005}},
        },
        "prod": {"org": "contoso", "management_state": "NotReady"},
    },
}


def test_apply_seed() -> None:
    emu = Emulator()
    apply_seed(emu, SEED)
    vault = emu.key_vault("lockstep-demo")
    assert vault.current_version("sql-conn-password") is not None
    assert vault.secret_event("graph-client-secret")["data"]["EXP"] == 1893456000
    [dev, prod] = emu.environments()
    assert (dev.name, dev.org, dev.id) == ("dev", "contoso-dev", "6a1b2c3d-0000-4000-8000-000000000001")
    assert dev.value_of(SCHEMA) == "old"
    assert dev.value_row_count("contoso_GraphSecret") == 0
    assert prod.url == "https://contoso.crm.lockstep.test"


def test_sample_seed_loads() -> None:
    emu = Emulator()
    load_seed(emu, REPO / "emulator" / "seed.sample.json")
    assert [env.org for env in emu.environments()] == ["contoso-dev", "contoso-test", "contoso"]
    assert emu.key_vault("lockstep-demo").current_version("sql-conn-password") is not None


def test_seed_reports_every_problem_and_creates_nothing() -> None:
    emu = Emulator()
    bad = {
        "vaults": {"v1x": {"secrets": {"a": {"value": 3}, "b": {"value": "x", "expires": "soon"}}}},
        "environments": {"dev": {"definitions": {"x": {"type": "string"}}, "colour": "red"}},
        "extra": 1,
    }
    with pytest.raises(SeedError) as raised:
        apply_seed(emu, bad)
    assert raised.value.problems == [
        "$.extra: unknown key",
        "$.vaults.v1x.secrets.a.value: expected a string",
        "$.vaults.v1x.secrets.b.expires: expected an ISO 8601 time or epoch seconds",
        "$.environments.dev.colour: unknown key",
        "$.environments.dev.definitions.x.type: expected an integer such as 100000000",
    ]
    assert emu.key_vaults() == []
    assert emu.environments() == []


CHILD = """
import asyncio, os, httpx
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

async def main():
    async with ManagedIdentityCredential() as credential, SecretClient(
        "https://lockstep-demo.vault.lockstep.test/", credential
    ) as secrets:
        print((await secrets.get_secret("sql-conn-password")).value)
    async with httpx.AsyncClient() as http:  # trust_env: HTTPS_PROXY and SSL_CERT_FILE
        card = {"type": "AdaptiveCard", "version": "1.4", "body": []}
        kind = "application/vnd.microsoft.card.adaptive"
        attachment = {"contentType": kind, "contentUrl": None, "content": card}
        message = {"type": "message", "attachments": [attachment]}
        print((await http.post(os.environ["TEAMS_WEBHOOK_URL"], json=message)).status_code)

asyncio.run(main())
"""


def test_cli_serves_a_fresh_process_configured_only_by_environment(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "emulator", "--seed", str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        _drive_cli(process)


def _drive_cli(process: subprocess.Popen[str]) -> None:
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("# Environment prod") for line in lines):
            line = process.stdout.readline()
            assert line, f"emulator exited early: {process.stderr.read() if process.stderr else ''}"
            lines.append(line)
        exports = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert set(exports) == {
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "POWER_PLATFORM_ADMIN_URL",
            "POWER_PLATFORM_API_URL",
            "LOCKSTEP_ALLOWED_HOSTS",
        }
        [webhook_line] = [line for line in lines if line.startswith("# Teams webhook: ")]
        printed_webhook = webhook_line.removeprefix("# Teams webhook: ").strip()
        assert printed_webhook.startswith("https://webhook.lockstep.test/workflows/")
        assert "?" not in printed_webhook
        webhook_file = Path(
            next(line for line in lines if "the full URL" in line).split(" is in ")[1].split()[0]
        )
        assert webhook_file.stat().st_mode & 0o777 == 0o600
        webhook = webhook_file.read_text().strip()
        assert webhook.startswith(printed_webhook + "?")
        sig = parse_qs(urlsplit(webhook).query)["sig"][0]
        assert sig not in "".join(lines)

        child_env = {
            k: v for k, v in os.environ.items() if k.lower() not in {"https_proxy", "http_proxy", "all_proxy"}
        }
        child_env.update(exports, TEAMS_WEBHOOK_URL=webhook)
        child = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
            [sys.executable, "-c", CHILD],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.split() == ["s3cret", "202"]

        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        assert "stopped" in process.stdout.read()
        assert not Path(exports["SSL_CERT_FILE"]).parent.exists()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
