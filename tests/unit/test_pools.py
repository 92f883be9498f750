"""One httpx pool per origin behind the shared client: routing, streaming and closing."""

from __future__ import annotations

import httpx

from sync.adapters.pools import PoolPerOrigin


async def test_each_origin_gets_its_own_pool_and_answers_pass_through() -> None:
    seen: list[tuple[str, str]] = []
    made: list[httpx.AsyncClient] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("Authorization", "")))
        return httpx.Response(201, json={"host": request.url.host}, headers={"ETag": 'W/"3"'})

    def new_client() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        return made[-1]

    router = PoolPerOrigin(new_client)
    async with httpx.AsyncClient(transport=router, headers={"User-Agent": "t"}) as client:
        for host in ("a.example", "b.example", "a.example", "a.example:8443"):
            response = await client.get(f"https://{host}/x", headers={"Authorization": "Bearer k"})
            assert response.status_code == 201
            assert response.json() == {"host": host.split(":")[0]}
            assert response.headers["ETag"] == 'W/"3"'
    # a.example, b.example and a.example:8443 are three origins; the second a.example call reused one.
    assert len(made) == 3
    assert seen[0] == ("a.example", "Bearer k")  # what the outer client added reaches the pool
    assert all(child.is_closed for child in made)  # closing the shared client closes every pool


def test_the_runtime_lock_pins_sniffio_for_httpcore() -> None:
    """httpcore imports sniffio on every pooled request and response close; a missing module is a
    failed import (a sys.path search, ~0.1 ms) each time, about 19 per repair. The lock carries it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pins = [line.split("==")[0] for line in (root / "requirements.txt").read_text().splitlines()]
    assert "sniffio" in pins
    assert "sniffio" in (root / "requirements.in").read_text().split()


async def test_the_shared_client_keeps_no_cookies() -> None:
    """Affinity cookies are neither parsed nor sent back (bearer tokens authenticate every request)."""
    import ssl

    from sync.adapters.pools import NoCookies, pooled_client

    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("Cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "ARRAffinity=node-7; path=/; secure; HttpOnly"})

    client = pooled_client(ssl.create_default_context(), httpx.Limits(), {})
    router = client._transport
    assert isinstance(router, PoolPerOrigin)
    router._new_client = lambda: httpx.AsyncClient(
        transport=httpx.MockTransport(handler), cookies=NoCookies()
    )
    async with client:
        for _ in range(2):
            await client.get("https://org.crm.dynamics.com/api/data/v9.2/WhoAmI")
    assert sent == [None, None]
    assert len(client.cookies.jar) == 0
