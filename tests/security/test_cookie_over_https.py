"""People reach the server over https (its public URL, or a trusted proxy that says so): the
session cookie is ``Secure``, so a browser never sends it over plain http."""

from __future__ import annotations

from http.cookies import Morsel, SimpleCookie

import aiohttp

from roomz.server.local import LocalServer

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def session_cookie(server: LocalServer, headers: dict[str, str] | None = None) -> Morsel[str]:
    """Sign in over loopback http, sending ``headers`` with the link, and return the cookie."""
    link = await server.request_link("alice@example.com")
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(
        f"{server.url}/auth/verify?token={link.token}", headers=headers or {},
        allow_redirects=False,
    ) as resp:
        jar: SimpleCookie = SimpleCookie()
        for header in resp.headers.getall("Set-Cookie", []):
            jar.load(header)
    assert "session_token" in jar, resp.headers
    return jar["session_token"]


async def test_cookie_is_secure_when_the_public_url_is_https() -> None:
    """ROOMZ_PUBLIC_URL=https://...: the cookie carries ``Secure``."""
    async with LocalServer(public_url="https://chat.example.com") as server:
        cookie = await session_cookie(server)

    assert cookie["secure"] is True


async def test_cookie_is_secure_when_a_trusted_proxy_says_https() -> None:
    """A trusted proxy's ``X-Forwarded-Proto: https`` makes the cookie ``Secure``."""
    async with LocalServer(trusted_proxies=("127.0.0.1",)) as server:
        cookie = await session_cookie(server, {"X-Forwarded-Proto": "https"})

    assert cookie["secure"] is True


async def test_an_untrusted_peers_forwarded_proto_is_ignored() -> None:
    """Anyone else's ``X-Forwarded-Proto`` changes nothing: plain http, no ``Secure``."""
    async with LocalServer(trusted_proxies=("10.0.0.0/8",)) as server:
        cookie = await session_cookie(server, {"X-Forwarded-Proto": "https"})

    assert not cookie["secure"]


async def test_cookie_is_not_secure_over_plain_http(server: LocalServer) -> None:
    """On loopback over http (the default), the cookie works without ``Secure``."""
    cookie = await session_cookie(server)

    assert not cookie["secure"]
