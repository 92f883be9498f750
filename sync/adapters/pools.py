"""One connection pool per origin behind one httpx client.

httpcore scans its whole pool on every request start and every response close, comparing each
connection with every other (`_assign_requests_to_connections` is quadratic in the pool's size).
One shared pool for 10 Dataverse organisations x 8 concurrent writes holds ~100 connections, and
that scan cost more CPU per repair than the repair's own work. A pool per origin holds only what
that origin's concurrency needs, so each scan stays small. Each origin's pool is an ordinary
httpx client, so proxies (HTTPS_PROXY / NO_PROXY), TLS and keep-alive behave exactly as before.

Neither keeps cookies (NoCookies).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from http.client import HTTPResponse
from http.cookiejar import CookieJar
from urllib.request import Request

# httpx imports its connection machinery (httpcore, h11, anyio's asyncio backend and TLS streams)
# when the first client sends: ~75 ms of CPU inside the first event of a cold process. Imported
# here, with the app, it is paid while the Functions worker loads function_app.py instead.
import anyio._backends._asyncio
import anyio.streams.tls  # noqa: F401
import httpcore
import httpcore._backends.anyio  # noqa: F401
import httpx

ClientFactory = Callable[[], httpx.AsyncClient]


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing and sends nothing.

    Lockstep authenticates every request with a bearer token; the only cookies these services set
    are load-balancer affinity, which Dataverse's service-protection guidance advises removing for
    throughput. httpx parses every response's headers into the jar (an email.message per response,
    in the outer client and again in the origin's pool): 0.1-0.4 ms of CPU per request.
    """

    def extract_cookies(self, response: HTTPResponse, request: Request) -> None:
        return None

    def add_cookie_header(self, request: Request) -> None:
        return None


class PoolPerOrigin(httpx.AsyncBaseTransport):
    """Routes each request to the pool of its origin (scheme, host, port), created on first use."""

    def __init__(self, new_client: ClientFactory) -> None:
        self._new_client = new_client
        self._clients: dict[tuple[bytes, bytes, int | None], httpx.AsyncClient] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        client = self._clients.get(origin)
        if client is None:
            client = self._clients[origin] = self._new_client()
        # The outer client has already applied auth, headers and timeouts; the pool only sends.
        response = await client.send(request, stream=True, follow_redirects=False)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=response.stream,
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def pooled_client(
    context: ssl.SSLContext, limits: httpx.Limits, headers: dict[str, str]
) -> httpx.AsyncClient:
    """The client every HTTP adapter shares: one pool per origin, each honouring the environment's
    proxy settings, all verifying against `context`."""

    def new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=context, limits=limits, follow_redirects=False, trust_env=True, cookies=NoCookies()
        )

    # trust_env=False here: proxies are the per-origin clients' business; the router sees every URL.
    return httpx.AsyncClient(
        transport=PoolPerOrigin(new_client),
        headers=headers,
        follow_redirects=False,
        trust_env=False,
        cookies=NoCookies(),
    )
