"""A CONNECT-only forward proxy that tunnels ``*.lockstep.test:443`` to the emulator's TLS listener.

It never opens a connection anywhere else: the only outbound connection it makes is to its own
TLS listener on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from urllib.parse import urlsplit

from ._state import DOMAIN, State

log = logging.getLogger(__name__)

SERVICE = "proxy"
HEAD_TIMEOUT = 10.0
HEAD_LIMIT = 16 * 1024
CHUNK = 64 * 1024
HOSTNAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")
IO_ERRORS = (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError)


def allowed_host(host: str) -> bool:
    return bool(HOSTNAME.match(host)) and host.endswith(f".{DOMAIN}")


class ConnectProxy:
    def __init__(self, state: State, tls_port: int) -> None:
        self._state = state
        self._tls_port = tls_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=HEAD_LIMIT)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except IO_ERRORS as exc:
            log.debug("proxy connection ended: %s", type(exc).__name__)
        except asyncio.CancelledError:
            pass  # shutdown; this task is a connection handler, nothing awaits its result
        finally:
            self._tasks.discard(task)
            await _close(writer)

    def _refuse(self, writer: asyncio.StreamWriter, status: int, reason: str, message: str) -> None:
        payload = message.encode()
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(payload)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + payload
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._state.record(SERVICE, "?", "", "", 400)
            self._refuse(writer, 400, "Bad Request", "malformed request line\n")
            await writer.drain()
            return
        method, target, _version = parts
        if method.upper() != "CONNECT":
            split = urlsplit(target)
            self._state.record(SERVICE, method, (split.hostname or "").lower(), split.path, 403)
            self._refuse(writer, 403, "Forbidden", "this proxy only tunnels CONNECT to *.lockstep.test:443\n")
            await writer.drain()
            return
        host, _, port = target.rpartition(":")
        host = host.lower()
        if port != "443" or not allowed_host(host):
            self._state.record(SERVICE, "CONNECT", host, "", 403)
            self._refuse(writer, 403, "Forbidden", "this proxy only tunnels CONNECT to *.lockstep.test:443\n")
            await writer.drain()
            return
        try:
            up_reader, up_writer = await open_upstream(self._tls_port)
        except OSError:
            self._state.record(SERVICE, "CONNECT", host, "", 502)
            self._refuse(writer, 502, "Bad Gateway", "the emulator's TLS listener is not reachable\n")
            await writer.drain()
            return
        try:
            self._state.record(SERVICE, "CONNECT", host, "", 200)
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await _tunnel(reader, writer, up_reader, up_writer)
        finally:
            await _close(up_writer)


async def open_upstream(tls_port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The proxy's only outbound connection: its own TLS listener on loopback."""
    return await asyncio.open_connection("127.0.0.1", tls_port)


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the half-close on."""
    try:
        while data := await src.read(CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof() and not dst.is_closing():
            dst.write_eof()
    except IO_ERRORS:
        dst.close()


async def _tunnel(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    pumps = [
        asyncio.create_task(_pump(client_reader, up_writer)),
        asyncio.create_task(_pump(up_reader, client_writer)),
    ]
    try:
        await asyncio.gather(*pumps)
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(*IO_ERRORS, asyncio.CancelledError):
        await writer.wait_closed()
