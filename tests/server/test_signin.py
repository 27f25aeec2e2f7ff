"""Sign-in over HTTP (PROTOCOL.md section 1): magic links, redeeming them, the session cookie."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest

from roomz.server import MagicLink, Server, ServerSettings
from roomz.server.local import LocalServer
from roomz.server.sessions import Session

from .helpers import assert_problem, cookie_headers, is_iso8601_with_zone, link_sent

REQUEST = "/auth/request-magic-link"
OK_BODY = {"status": "ok", "message": "Magic link sent. Check your email."}
THIRTY_DAYS = 30 * 24 * 3600
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
JSON = {"Content-Type": "application/json"}  # the only type the endpoint accepts


@asynccontextmanager
async def http_client() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client with a bounded timeout and no cookie jar of its own."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        yield http


async def post_request(url: str, **kwargs: Any) -> tuple[int, Any]:
    """POST to the request-magic-link endpoint; returns (status, JSON body, else the text)."""
    async with http_client() as http, http.post(url + REQUEST, **kwargs) as resp:
        text = await resp.text()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


async def verify(url: str) -> tuple[int, str, list[str]]:
    """GET a verify URL without following redirects: (status, Location, raw Set-Cookie headers)."""
    async with http_client() as http, http.get(url, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Location", ""), resp.headers.getall("Set-Cookie", [])


def session_cookie(set_cookie_headers: list[str]) -> SimpleCookie:
    """Parse the raw Set-Cookie headers, asserting one of them sets ``session_token``."""
    jar: SimpleCookie = SimpleCookie()
    for header in set_cookie_headers:
        jar.load(header)
    assert "session_token" in jar, set_cookie_headers
    return jar


# Requesting a magic link

async def test_request_link_answers_ok_and_mails_a_link(server: LocalServer) -> None:
    """Asking for a link answers the documented 200 body and mails a link to that address."""
    status, body = await post_request(server.url, json={"email": "alice@example.com"})

    assert (status, link_sent(body)) == (200, OK_BODY)
    link = await server.next_link("alice@example.com")
    assert link.email == "alice@example.com"


async def test_magic_link_has_the_documented_shape(server: LocalServer) -> None:
    """The mailed link is {server}/auth/verify?token=TOKEN with a 43-character url-safe token."""
    link = await server.request_link("alice@example.com")

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", link.token)
    assert link.url == f"{server.url}/auth/verify?token={link.token}"


async def test_each_request_mails_a_different_token(server: LocalServer) -> None:
    """Two requests for the same email mail two different tokens."""
    first = await server.request_link("alice@example.com")
    second = await server.request_link("alice@example.com")

    assert first.token != second.token


async def test_email_is_trimmed_and_lower_cased(server: LocalServer) -> None:
    """An email typed with spaces and capitals gets its link under the normalized address."""
    status, _ = await post_request(server.url, json={"email": "  Alice@Example.COM \n"})

    assert status == 200
    link = await server.next_link("alice@example.com")
    assert link.email == "alice@example.com"


@pytest.mark.parametrize("email", [
    "not-an-email", "alice@", "@example.com", "alice@example", "alice@example.c",
    "alice smith@example.com", "alice@exa mple.com", "", "   ",
    "a" * 65 + "@example.com",
    "a@" + "b" * 250 + ".com",
    "älice@example.com",
])
async def test_malformed_email_is_400(server: LocalServer, email: str) -> None:
    """A malformed, too long, or too-long-local-part email answers 400 problem JSON."""
    status, body = await post_request(server.url, json={"email": email})

    assert status == 400
    assert_problem(body, 400)
    assert body["detail"] == "Invalid email format. Please enter a valid email address."
    assert body["type"] == "https://roomz.local/errors/validation"
    assert body["title"] == "Validation Error"
    assert server.links == []


async def test_longest_allowed_email_is_accepted(server: LocalServer) -> None:
    """An email of exactly 255 characters with a 64-character local part is accepted."""
    local = "a" * 64
    domain = "b" * (255 - 64 - 1 - 4) + ".com"
    email = f"{local}@{domain}"
    assert len(email) == 255

    status, body = await post_request(server.url, json={"email": email})

    assert (status, link_sent(body)) == (200, OK_BODY)


@pytest.mark.parametrize("kwargs", [
    {"json": {}},
    {"json": {"mail": "alice@example.com"}},
    {"json": ["alice@example.com"]},
    {"json": "alice@example.com"},
    {"data": b"null", "headers": JSON},
    {"json": {"email": None}},
    {"json": {"email": 42}},
    {"json": {"email": ["alice@example.com"]}},
    {"json": {"email": {"address": "alice@example.com"}}},
    {"data": b"email=alice@example.com", "headers": JSON},
    {"data": b"{\"email\": ", "headers": JSON},
    {"data": b"", "headers": JSON},
    {"data": b"\xff\xfe\xfa", "headers": JSON},
], ids=["empty-object", "wrong-field", "list", "string", "null", "email-null", "email-int",
        "email-list", "email-object", "form-encoded", "truncated-json", "empty-body",
        "not-utf8"])
async def test_missing_field_or_body_not_json_is_400(server: LocalServer,
                                                     kwargs: dict[str, Any]) -> None:
    """A body that is not JSON, not an object, or lacks a string email answers 400 problem JSON."""
    status, body = await post_request(server.url, **kwargs)

    assert status == 400
    assert_problem(body, 400)
    assert server.links == []


async def test_deeply_nested_json_body_is_400_not_500(server: LocalServer) -> None:
    """A deeply nested JSON body is a bad request (400 problem JSON), not a server error."""
    status, body = await post_request(server.url, data=b"[" * 100_000, headers=JSON)

    assert status == 400, body
    assert_problem(body, 400)


async def test_email_not_on_allow_list_is_403() -> None:
    """An email missing from the allow-list answers 403 problem JSON and gets no link."""
    async with LocalServer(allowed_emails=frozenset({"alice@example.com"})) as server:
        status, body = await post_request(server.url, json={"email": "mallory@example.com"})

        assert status == 403
        assert_problem(body, 403)
        assert server.links == []


async def test_allow_list_matches_the_normalized_email() -> None:
    """An allowed email typed with capitals and spaces is still allowed."""
    async with LocalServer(allowed_emails=frozenset({"alice@example.com"})) as server:
        status, body = await post_request(server.url, json={"email": " ALICE@example.com"})

        assert (status, link_sent(body)) == (200, OK_BODY)
        assert (await server.next_link("alice@example.com")).email == "alice@example.com"


async def test_sixth_request_within_the_hour_is_429(server: LocalServer) -> None:
    """Five links per email per hour are mailed; the sixth request answers 429 problem JSON."""
    for _ in range(5):
        status, body = await post_request(server.url, json={"email": "alice@example.com"})
        assert (status, link_sent(body)) == (200, OK_BODY)

    status, body = await post_request(server.url, json={"email": "alice@example.com"})

    assert status == 429
    assert_problem(body, 429)
    assert len(server.links) == 5


async def test_rate_limit_counts_the_normalized_email(server: LocalServer) -> None:
    """Spelling the email differently does not get around the rate limit."""
    for spelling in ["alice@example.com", "ALICE@example.com", " alice@EXAMPLE.com",
                     "Alice@Example.Com", "alice@example.com "]:
        status, _ = await post_request(server.url, json={"email": spelling})
        assert status == 200

    status, body = await post_request(server.url, json={"email": "aLiCe@example.com"})

    assert status == 429
    assert_problem(body, 429)


async def test_rate_limit_is_per_email() -> None:
    """One email hitting the limit does not stop another email from getting links."""
    async with LocalServer(magic_link_rate_limit=2) as server:
        for _ in range(2):
            assert (await post_request(server.url, json={"email": "alice@example.com"}))[0] == 200
        assert (await post_request(server.url, json={"email": "alice@example.com"}))[0] == 429

        status, body = await post_request(server.url, json={"email": "bob@example.com"})

        assert (status, link_sent(body)) == (200, OK_BODY)


async def test_mail_that_cannot_be_sent_is_500() -> None:
    """When the link cannot be mailed, the request answers 500 problem JSON."""
    def broken_mailer(link: MagicLink) -> None:
        raise RuntimeError("mail server on fire")

    settings = ServerSettings(host="127.0.0.1", port=0, jwt_secret="x" * 40)
    server = Server(settings, on_magic_link=broken_mailer)
    await asyncio.wait_for(server.start(), 10)
    try:
        status, body = await post_request(server.url, json={"email": "alice@example.com"})
    finally:
        await asyncio.wait_for(server.stop(), 10)

    assert status == 500
    assert_problem(body, 500)


# Redeeming the token

async def test_verify_sets_the_session_cookie_and_redirects_home(server: LocalServer) -> None:
    """A fresh link redirects to / and sets an HttpOnly, SameSite=Strict, 30-day session cookie."""
    link = await server.request_link("alice@example.com")

    status, location, set_cookies = await verify(link.url)

    assert status == 302
    assert location == "/"
    morsel = session_cookie(set_cookies)["session_token"]
    assert morsel.value
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["max-age"] == "2592000"
    assert morsel["path"] == "/"


async def test_verify_without_token_is_missing_token(server: LocalServer) -> None:
    """A link without its token redirects to /?error=missing_token and sets no cookie."""
    for path in ["/auth/verify", "/auth/verify?token=", "/auth/verify?token=%20"]:
        status, location, set_cookies = await verify(server.url + path)

        assert (status, location, set_cookies) == (302, "/?error=missing_token", [])


async def test_verify_unknown_token_is_invalid_token(server: LocalServer) -> None:
    """A made-up token redirects to /?error=invalid_token and sets no cookie."""
    status, location, set_cookies = await verify(
        f"{server.url}/auth/verify?token={'A' * 43}"
    )

    assert (status, location, set_cookies) == (302, "/?error=invalid_token", [])


async def test_verify_works_only_once(server: LocalServer) -> None:
    """A link signs in once; clicking it again redirects to /?error=invalid_token, no cookie."""
    link = await server.request_link("alice@example.com")
    first = await verify(link.url)
    assert first[1] == "/"

    status, location, set_cookies = await verify(link.url)

    assert (status, location, set_cookies) == (302, "/?error=invalid_token", [])


async def test_verify_expired_link_is_invalid_token(server: LocalServer) -> None:
    """A link used after it expired redirects to /?error=invalid_token and sets no cookie."""
    server.server.magic_links.lifetime_seconds = -1  # links made from now on are born expired
    link = await server.request_link("alice@example.com")

    status, location, set_cookies = await verify(link.url)

    assert (status, location, set_cookies) == (302, "/?error=invalid_token", [])


async def test_verify_after_removal_from_allow_list_is_unauthorized() -> None:
    """An email removed from the allow-list after its link was mailed gets /?error=unauthorized."""
    allowed = {"alice@example.com"}  # a live set: the operator edits the list while running
    async with LocalServer(allowed_emails=allowed) as server:
        link = await server.request_link("alice@example.com")
        allowed.discard("alice@example.com")

        status, location, set_cookies = await verify(link.url)

        assert (status, location, set_cookies) == (302, "/?error=unauthorized", [])


# The session

async def test_session_token_carries_the_documented_claims(server: LocalServer) -> None:
    """The session JWT says who the user is and lasts 30 days."""
    before = int(time.time())
    token = await server.sign_in("alice@example.com")
    after = int(time.time())

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert {"sub", "email", "iat", "exp", "channel_token", "ver"} <= set(claims)
    assert claims["sub"] == "user:alice@example.com"
    assert claims["email"] == "alice@example.com"
    assert before <= claims["iat"] <= after
    assert claims["exp"] - claims["iat"] == THIRTY_DAYS
    assert isinstance(claims["channel_token"], str) and claims["channel_token"]
    # The signature is real: the server's own secret verifies it.
    jwt.decode(token, server.settings.jwt_secret, algorithms=["HS256"])


async def test_session_survives_a_restart_with_the_same_secret() -> None:
    """A session cookie keeps working after the server restarts with the same secret."""
    secret = "s" * 40
    async with LocalServer(jwt_secret=secret) as first:
        token = await first.sign_in("alice@example.com")

    async with LocalServer(jwt_secret=secret) as second, http_client() as http, http.get(
        second.url + "/auth/me", headers=cookie_headers(token)
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["user"]["email"] == "alice@example.com"


async def test_me_with_cookie_shows_the_user(server: LocalServer) -> None:
    """/auth/me with the session cookie answers the signed-in email and when the session began."""
    token = await server.sign_in("alice@example.com")

    async with http_client() as http, http.get(server.url + "/auth/me",
                                               headers=cookie_headers(token)) as resp:
        status, body = resp.status, await resp.json()

    assert status == 200
    assert set(body) == {"status", "user"}
    assert body["status"] == "ok"
    assert set(body["user"]) == {"email", "created_at"}
    assert body["user"]["email"] == "alice@example.com"
    assert is_iso8601_with_zone(body["user"]["created_at"])
    claims = jwt.decode(token, options={"verify_signature": False})
    assert datetime.fromisoformat(body["user"]["created_at"]).timestamp() == claims["iat"]


@pytest.mark.parametrize("headers", [
    {}, {"Cookie": "session_token=garbage"}, {"Cookie": "session_token="},
    {"Cookie": "other=1"},
], ids=["no-cookie", "garbage", "empty", "other-cookie"])
async def test_me_without_a_valid_session_is_401(server: LocalServer,
                                                 headers: dict[str, str]) -> None:
    """/auth/me without a valid session cookie answers 401 problem JSON."""
    async with http_client() as http, http.get(server.url + "/auth/me", headers=headers) as resp:
        status, body = resp.status, await resp.json()

    assert status == 401
    assert_problem(body, 401, instance="/auth/me")


async def test_me_with_a_token_signed_by_another_secret_is_401(server: LocalServer) -> None:
    """A well-formed session token signed with someone else's secret is refused."""
    now = int(time.time())
    forged = jwt.encode({"sub": "user:alice@example.com", "email": "alice@example.com",
                         "iat": now, "exp": now + 3600, "channel_token": "x", "ver": 1},
                        "not-the-server-secret-" * 3, algorithm="HS256")

    async with http_client() as http, http.get(server.url + "/auth/me",
                                               headers=cookie_headers(forged)) as resp:
        status, body = resp.status, await resp.json()

    assert status == 401
    assert_problem(body, 401, instance="/auth/me")


async def test_me_with_an_expired_session_is_401(server: LocalServer) -> None:
    """An expired session token is refused with 401 problem JSON."""
    now = int(time.time())
    expired = jwt.encode({"sub": "user:alice@example.com", "email": "alice@example.com",
                          "iat": now - 7200, "exp": now - 3600, "channel_token": "x", "ver": 1},
                         server.settings.jwt_secret, algorithm="HS256")

    async with http_client() as http, http.get(server.url + "/auth/me",
                                               headers=cookie_headers(expired)) as resp:
        status, body = resp.status, await resp.json()

    assert status == 401
    assert_problem(body, 401, instance="/auth/me")


async def test_me_rechecks_the_allow_list() -> None:
    """A session of an email since removed from the allow-list answers 401."""
    allowed = {"alice@example.com"}  # a live set: the operator edits the list while running
    async with LocalServer(allowed_emails=allowed) as server:
        token = await server.sign_in("alice@example.com")
        allowed.discard("alice@example.com")

        async with http_client() as http, http.get(server.url + "/auth/me",
                                                   headers=cookie_headers(token)) as resp:
            status, body = resp.status, await resp.json()

        assert status == 401
        assert_problem(body, 401, instance="/auth/me")


async def test_logout_answers_ok_and_clears_the_cookie(server: LocalServer) -> None:
    """Logging out answers {"status": "ok"} and tells the browser to drop session_token."""
    token = await server.sign_in("alice@example.com")

    async with http_client() as http, http.post(server.url + "/auth/logout",
                                                headers=cookie_headers(token)) as resp:
        status, body = resp.status, await resp.json()
        set_cookies = resp.headers.getall("Set-Cookie", [])

    assert (status, body) == (200, {"status": "ok"})
    morsel = session_cookie(set_cookies)["session_token"]
    assert morsel.value in ("", '""')
    assert morsel["path"] == "/"
    expired_by_age = morsel["max-age"] == "0"
    expired_by_date = bool(morsel["expires"]) and (
        datetime.strptime(morsel["expires"], "%a, %d %b %Y %H:%M:%S GMT").timestamp()
        < time.time()
    )
    assert expired_by_age or expired_by_date, set_cookies


async def test_of_two_session_cookies_every_endpoint_reads_the_first(
        server: LocalServer) -> None:
    """A Cookie header that names ``session_token`` twice (a browser holding two, for other
    paths or domains, sends the most specific first) means its first one everywhere, as
    on the published server: ``/auth/me``, logout and the Socket.IO handshake agree."""
    current = await server.sign_in("alice@example.com")
    stale = await server.sign_in("alice@example.com")
    await server.server.sessions.end(Session.of(jwt.decode(
        stale, server.settings.jwt_secret, algorithms=["HS256"])))
    both = {"Cookie": f"session_token={current}; session_token={stale}"}

    async with http_client() as http:
        async with http.get(server.url + "/auth/me", headers=both) as resp:
            assert resp.status == 200, await resp.text()
        # By hand: python-socketio's client would put the header in a jar, keeping one.
        async with http.ws_connect(server.url + "/socket.io/?EIO=4&transport=websocket",
                                   headers=both) as ws:
            assert (await ws.receive_str(timeout=5)).startswith("0")  # Engine.IO OPEN
            await ws.send_str("40")  # Socket.IO CONNECT
            assert (await ws.receive_str(timeout=5)).startswith("40{"), "refused"
        async with http.post(server.url + "/auth/logout", headers=both) as resp:
            assert resp.status == 200
        async with http.get(server.url + "/auth/me", headers=cookie_headers(current)) as resp:
            assert resp.status == 401, "the logout should have ended the first session"


async def test_signing_in_through_a_browser_lands_signed_in(server: LocalServer) -> None:
    """Clicking the link in a browser ends on / with a session that /auth/me accepts."""
    link = await server.request_link("alice@example.com")
    # A browser keeps cookies for IP-address hosts too; aiohttp's jar needs unsafe=True for that.
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(link.url) as resp:
            assert resp.status == 200
            assert urlsplit(str(resp.url)).path == "/"
            assert "error" not in parse_qs(urlsplit(str(resp.url)).query)
        async with browser.get(server.url + "/auth/me") as resp:
            assert resp.status == 200
            assert (await resp.json())["user"]["email"] == "alice@example.com"
