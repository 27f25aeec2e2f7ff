"""The human-facing pages: ``/`` after a sign-in link, ``/healthz``, and errors under ``/auth/``."""

from __future__ import annotations

import aiohttp
import pytest

from roomz.server.local import LocalServer

from .helpers import assert_problem

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


async def get_page(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """GET ``url``: (status, content type, text)."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http, http.get(
        url, headers=headers or {}, allow_redirects=False
    ) as resp:
        return resp.status, resp.content_type, await resp.text()


@pytest.mark.parametrize(("error", "says"), [
    ("missing_token", "The sign-in link has no token."),
    ("invalid_token", "This sign-in link is unknown, expired or already used."),
    ("unauthorized", "This email is not allowed on this server."),
    ("something_else", "Signing in failed."),
])
async def test_home_page_explains_each_sign_in_error(server: LocalServer, error: str,
                                                     says: str) -> None:
    """Landing on /?error=... shows a person what went wrong and how to sign in instead."""
    status, content_type, text = await get_page(f"{server.url}/?error={error}")

    assert (status, content_type) == (200, "text/html")
    assert says in text
    assert "/token TOKEN" in text
    assert f"roomz-cli --server {server.url}" in text


async def test_home_page_does_not_echo_the_error_parameter(server: LocalServer) -> None:
    """Whatever the error parameter says, the page does not repeat it as markup."""
    status, _, text = await get_page(f"{server.url}/?error=%3Cscript%3Ealert(1)%3C/script%3E")

    assert status == 200
    assert "<script>" not in text
    assert "Signing in failed." in text


async def test_home_page_shows_who_is_signed_in(server: LocalServer) -> None:
    """With a session cookie, / says which email is signed in."""
    token = await server.sign_in("alice@example.com")

    status, _, text = await get_page(server.url + "/",
                                     headers={"Cookie": f"session_token={token}"})

    assert status == 200
    assert "Signed in as <b>alice@example.com</b>" in text


async def test_home_page_reads_the_first_of_two_session_cookies(server: LocalServer) -> None:
    """Of two ``session_token`` cookies, / takes the first, as the Socket.IO handshake does."""
    token = await server.sign_in("alice@example.com")

    status, _, text = await get_page(server.url + "/", headers={
        "Cookie": f"session_token={token}; session_token=garbage"})

    assert status == 200
    assert "Signed in as <b>alice@example.com</b>" in text


@pytest.mark.parametrize("headers", [{}, {"Cookie": "session_token=garbage"}],
                         ids=["no-cookie", "garbage"])
async def test_home_page_without_a_session_says_not_signed_in(server: LocalServer,
                                                              headers: dict[str, str]) -> None:
    """Without a valid session, / says the visitor is not signed in."""
    status, _, text = await get_page(server.url + "/", headers=headers)

    assert status == 200
    assert "You are not signed in." in text
    assert "Signed in as" not in text


async def test_following_a_used_link_lands_on_the_explanation(server: LocalServer) -> None:
    """A browser that clicks a used link ends on a page saying the link is used up."""
    link = await server.request_link("alice@example.com")
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as browser:
        async with browser.get(link.url) as first:
            assert first.status == 200
        async with browser.get(link.url) as second:
            text = await second.text()
            assert second.status == 200
            assert second.url.query.get("error") == "invalid_token"

    assert "This sign-in link is unknown, expired or already used." in text


async def test_healthz_answers_ok(server: LocalServer) -> None:
    """/healthz answers {"status": "ok"} while the server runs."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.get(
        server.url + "/healthz"
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/auth/request-magic-link", 405),
    ("PUT", "/auth/verify", 405),
    ("GET", "/auth/nothing-here", 404),
])
async def test_http_errors_under_auth_are_problem_json(server: LocalServer, method: str,
                                                       path: str, status: int) -> None:
    """A wrong method or unknown path under /auth/ answers problem JSON clients can show."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.request(
        method, server.url + path
    ) as resp:
        body = await resp.json(content_type=None)

    assert resp.status == status
    assert_problem(body, status, instance=path)


async def test_oversized_request_body_is_problem_json(server: LocalServer) -> None:
    """A request body over the size limit answers 413 problem JSON, not a crash."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.post(
        server.url + "/auth/request-magic-link", data=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    ) as resp:
        body = await resp.json(content_type=None)

    assert resp.status == 413
    assert_problem(body, 413)
