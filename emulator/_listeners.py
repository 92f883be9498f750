"""The running half of the emulator: one background thread, one private event loop, three listeners.

Kept apart from the public ``Emulator`` API so that nothing a request handler reaches can call back
into it: the listeners see only the shared ``State`` (the control endpoint included), and the
``Emulator`` sees only the endpoints these listeners report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from . import _control, _identity, _tls
from ._certs import make_certificates
from ._proxy import ConnectProxy
from ._state import State

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


def _quiet_disconnects(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A client that hangs up mid-handshake (or a tunnel torn down at stop) is routine, not an error."""
    if isinstance(context.get("exception"), ConnectionError | ssl.SSLError):
        log.debug("connection ended early: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def loopback_app(state: State) -> web.Application:
    """The plain-HTTP listener: the managed-identity endpoint, the operator's control channel beside it."""
    control = _control.make_handler(state)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        if request.path.startswith(_control.PREFIX):
            return await control(request)  # the operator's channel: not a service, not recorded
        return await _identity.serve(state, request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


@dataclass(frozen=True, slots=True)
class Endpoints:
    ca_cert_path: Path
    proxy_port: int
    identity_port: int


class Listeners:
    """Starts once, stops idempotently; owns the temp dir that holds the CA certificate."""

    def __init__(self, state: State, *, proxy_port: int = 0, identity_port: int = 0) -> None:
        self._state = state
        self._proxy_port_wanted = proxy_port
        self._identity_port_wanted = identity_port
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._tmpdir: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._proxy: ConnectProxy | None = None
        self.endpoints: Endpoints | None = None

    def start(self) -> Endpoints:
        with self._lock:
            if self._started:
                raise RuntimeError("an Emulator can be started only once")
            self._started = True
            self._tmpdir = Path(tempfile.mkdtemp(prefix="lockstep-emulator-"))
            try:
                certificates = make_certificates(self._tmpdir)
                loop = asyncio.new_event_loop()
                self._loop = loop
                self._thread = threading.Thread(
                    target=self._run_loop, args=(loop,), name="lockstep-emulator", daemon=True
                )
                self._thread.start()
                ports = asyncio.run_coroutine_threadsafe(
                    self._serve(certificates.server_context), loop
                ).result(STARTUP_TIMEOUT)
                self.endpoints = Endpoints(certificates.ca_cert_path, *ports)
                return self.endpoints
            except BaseException:
                self._teardown()
                raise

    def stop(self) -> None:
        """Stop every listener, end the thread and remove the temp dir. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._teardown()

    def _teardown(self) -> None:
        loop, thread = self._loop, self._thread
        try:
            if loop is not None and thread is not None and thread.is_alive():
                try:
                    asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(SHUTDOWN_TIMEOUT)
                finally:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join(SHUTDOWN_TIMEOUT)
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_disconnects)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _serve(self, server_context: ssl.SSLContext) -> tuple[int, int]:
        tls_sock = _listening_socket(0)
        tls_port = tls_sock.getsockname()[1]
        await self._start_app(_tls.make_app(self._state), tls_sock, server_context)

        identity_sock = _listening_socket(self._identity_port_wanted)
        identity_port = identity_sock.getsockname()[1]
        await self._start_app(loopback_app(self._state), identity_sock, None)

        proxy_sock = _listening_socket(self._proxy_port_wanted)
        proxy_port = proxy_sock.getsockname()[1]
        self._proxy = ConnectProxy(self._state, tls_port)
        await self._proxy.start(proxy_sock)
        return proxy_port, identity_port

    async def _start_app(
        self, app: web.Application, sock: socket.socket, server_context: ssl.SSLContext | None
    ) -> None:
        # access_log=None: aiohttp's access log would print request lines, query strings (sig) included.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        try:
            await web.SockSite(runner, sock, ssl_context=server_context).start()
        except BaseException:
            sock.close()
            raise

    async def _shutdown(self) -> None:
        if self._proxy is not None:
            await self._proxy.close()
        for runner in reversed(self._runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()
