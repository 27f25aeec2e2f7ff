"""Sign-in that survives a click (docs/protocol.md, "Signing in by confirming the link"): a
browser's look at a link uses nothing; the page signs in the browser, or the client that
waits for the link once the person enters the code that client shows.

The stores behind it are tested on their own, in memory and in Redis, in
``test_magic_link_stores.py``; ``tests/nodes`` runs the whole flow across two nodes.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from roomz.server.local import LocalServer
from tests.browser import SCANNERS, Browser, scan

from .helpers import assert_problem

TIMEOUT = aiohttp.ClientTimeout(total=10)
POLL = "/auth/sign-in/poll"
CODE = re.compile(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}")
ALICE = "alice@example.com"


@dataclass
class Requested:
    """A link request as a waiting client sees it (the answer) and as the mail carries it."""

    answer: dict[str, Any]
    url: str
    token: str

    @property
    def sign_in_id(self) -> str:
        return str(self.answer["sign_in"]["id"])

    @property
    def code(self) -> str:
        return str(self.answer["sign_in"]["code"])


async def request_link(server: LocalServer, email: str = ALICE) -> Requested:
    """Ask for a link as a client does; return the answer and the mailed link."""
    before = len(server.links)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.post(
            f"{server.url}/auth/request-magic-link", json={"email": email}) as resp:
        assert resp.status == 200
        answer = await resp.json()
    link = await server.next_link(email, after=before)
    return Requested(answer, link.url, link.token)


async def poll(server: LocalServer, sign_in_id: str) -> tuple[int, dict[str, Any], str | None]:
    """One poll: (status, JSON body, the session cookie it sets or None)."""
    async with aiohttp.ClientSession(timeout=TIMEOUT,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http, http.post(
            server.url + POLL, json={"id": sign_in_id}) as resp:
        morsel = resp.cookies.get("session_token")
        return resp.status, await resp.json(), morsel.value if morsel else None


async def plain_get(url: str) -> tuple[int, str, str | None]:
    """A client redeeming a link with a plain GET (``Accept: */*``), like the published one:
    (status, Location, the session cookie or None)."""
    async with aiohttp.ClientSession(timeout=TIMEOUT,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http, http.get(
            url, headers={"Accept": "*/*"}, allow_redirects=False) as resp:
        morsel = resp.cookies.get("session_token")
        return resp.status, resp.headers.get("Location", ""), morsel.value if morsel else None


async def me(server: LocalServer, session: str) -> str | None:
    """Who ``session`` signs in, by ``/auth/me``."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(
            server.url + "/auth/me", headers={"Cookie": f"session_token={session}"}) as resp:
        return str((await resp.json())["user"]["email"]) if resp.status == 200 else None


async def waiting_client(server: LocalServer, email: str = ALICE) -> Requested:
    """A link requested by a client that has polled once: it waits for the link."""
    requested = await request_link(server, email)
    status, body, _ = await poll(server, requested.sign_in_id)
    assert (status, body) == (200, {"status": "pending"})
    return requested


# The link request's extension

async def test_request_answer_offers_a_sign_in_with_a_code(server: LocalServer) -> None:
    """The answer keeps its fields and adds ``sign_in``: a secret id, a code such as
    WDJB-MJHT, the poll interval and the link's lifetime; each link has its own."""
    first, second = await request_link(server), await request_link(server)

    assert first.answer["status"] == "ok"
    assert first.answer["message"] == "Magic link sent. Check your email."
    offer = first.answer["sign_in"]
    assert set(offer) == {"id", "code", "interval", "expires_in"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", offer["id"])
    assert CODE.fullmatch(offer["code"]), offer["code"]
    assert (offer["interval"], offer["expires_in"]) == (2, 900)
    assert offer["id"] not in (first.token, first.url)
    assert first.sign_in_id != second.sign_in_id


# Opening the link: browsers and scanners use nothing, plain clients redeem as before

async def test_a_plain_get_still_redeems_the_link(server: LocalServer) -> None:
    """``Accept: */*`` (the published client, curl, our /token): 302 with the cookie, once."""
    requested = await request_link(server)

    status, location, session = await plain_get(requested.url)

    assert (status, location) == (302, "/")
    assert session is not None and await me(server, session) == ALICE
    assert (await plain_get(requested.url))[1:] == ("/?error=invalid_token", None)


async def test_a_browser_sees_a_page_and_the_link_is_not_used(server: LocalServer) -> None:
    """A browser's GET shows who signs in and a "Sign in here" button, sets no cookie, and
    leaves the link working; the page allows no script, framing or Referer."""
    requested = await request_link(server)

    async with Browser() as browser:
        page = await browser.open(requested.url)
        assert await browser.me(server.url) is None

    assert (page.status, page.url) == (200, requested.url)
    assert f"This link signs in <b>{ALICE}</b> to Roomz" in page.text
    assert page.form("Sign in here").fields == {"token": requested.token, "action": "here"}
    assert "<script" not in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    status, _, session = await plain_get(requested.url)
    assert status == 302 and session is not None


@pytest.mark.parametrize("headers", SCANNERS, ids=["firefox", "safelinks", "googlebot", "xhtml"])
async def test_a_mail_scanner_does_not_use_the_link(server: LocalServer,
                                                   headers: dict[str, str]) -> None:
    """A scanner's HEAD and GET (HTML accepted, any User-Agent) see the page; afterwards the
    link still signs in a browser with "Sign in here", and another one still works with
    /token (a plain GET)."""
    for_browser, for_token = await request_link(server), await request_link(server)
    for requested in (for_browser, for_token):
        assert await scan(requested.url, headers) == (200, "text/html")

    async with Browser() as browser:
        page = await browser.submit(await browser.open(for_browser.url), "Sign in here")
        assert await browser.me(server.url) == ALICE
    assert page.error is None and "Signed in as <b>alice@example.com</b>" in page.text
    status, location, session = await plain_get(for_token.url)
    assert (status, location) == (302, "/") and session is not None


async def test_sign_in_here_signs_the_browser_in_once(server: LocalServer) -> None:
    """"Sign in here" gives this browser the session and uses the link up."""
    requested = await request_link(server)

    async with Browser() as browser:
        page = await browser.submit(await browser.open(requested.url), "Sign in here")
        assert await browser.me(server.url) == ALICE
        again = await browser.open(requested.url)

    assert (page.status, page.url) == (200, server.url + "/")
    assert "Signed in as <b>alice@example.com</b> in this browser." in page.text
    assert again.error == "invalid_token"
    assert "This sign-in link is unknown, expired or already used." in again.text
    assert (await plain_get(requested.url))[1] == "/?error=invalid_token"


async def test_the_browser_that_asked_opens_its_link_signed_in(server: LocalServer) -> None:
    """The browser that asked for a link (the chat page does) is signed in by opening it,
    with no button. Its cookie names that link only: a link another browser asked for
    still shows that one the page, and the link stays unused."""
    async with Browser() as asker, Browser() as other:
        before = len(server.links)
        async with asker.http.post(f"{server.url}/auth/request-magic-link",
                                   json={"email": ALICE}) as resp:
            assert resp.status == 200
        own = await server.next_link(ALICE, after=before)
        someone_elses = await request_link(server)

        page = await asker.open(someone_elses.url)
        assert (page.url, await asker.me(server.url)) == (someone_elses.url, None)
        page = await other.open(own.url)
        assert (page.url, await other.me(server.url)) == (own.url, None)

        page = await asker.open(own.url)
        assert page.url == server.url + "/"
        assert await asker.me(server.url) == ALICE
        assert "Signed in as <b>alice@example.com</b> in this browser." in page.text
    assert (await plain_get(own.url))[1] == "/?error=invalid_token"
    status, location, session = await plain_get(someone_elses.url)
    assert (status, location) == (302, "/") and session is not None


# Signing in the client that waits

async def test_the_code_field_shows_only_while_a_client_waits(server: LocalServer) -> None:
    """Before any client polled, the page offers "Sign in here" and the /token line; once one
    polls, it also asks for the code that client shows (never showing the code itself)."""
    requested = await request_link(server)

    async with Browser() as browser:
        before = await browser.open(requested.url)
        await poll(server, requested.sign_in_id)
        after = await browser.open(requested.url)

    assert [f.buttons for f in before.forms] == [["Sign in here"]]
    assert f"<code>/token {requested.token}</code>" in before.text
    assert [f.buttons for f in after.forms] == [["Sign in here"], ["Sign the terminal in"]]
    assert "A Roomz terminal is waiting for this link." in after.text
    assert requested.code not in after.text and requested.code not in before.text


@pytest.mark.parametrize("typed", ["same", "lower", "spaced", "bare"])
async def test_the_right_code_signs_the_waiting_client_in(server: LocalServer,
                                                          typed: str) -> None:
    """The right code, typed in any case, with or without its hyphen, approves the sign-in:
    the page says the terminal is signed in (the browser is not), and the next poll gets
    the session, once."""
    requested = await waiting_client(server)
    code = {"same": requested.code, "lower": requested.code.lower(),
            "spaced": f" {requested.code[:4]} {requested.code[5:]} ",
            "bare": requested.code.replace("-", "")}[typed]

    async with Browser() as browser:
        page = await browser.submit(await browser.open(requested.url), "Sign the terminal in",
                                    code=code)
        assert await browser.me(server.url) is None

    assert page.status == 200
    assert f"Your terminal is signed in as <b>{ALICE}</b>." in page.text
    assert f"<code>{requested.code}</code>" in page.text
    status, body, session = await poll(server, requested.sign_in_id)
    assert (status, body) == (200, {"status": "ok"})
    assert session is not None and await me(server, session) == ALICE
    status, body, session = await poll(server, requested.sign_in_id)
    assert (status, session) == (410, None)
    assert_problem(body, 410, instance=POLL)
    assert body["type"].endswith("/sign-in-used")
    assert (await plain_get(requested.url))[1] == "/?error=invalid_token"


async def test_wrong_codes_count_down_and_five_use_the_link_up(server: LocalServer) -> None:
    """Each wrong code shows the page again with the tries left; an empty field costs none;
    the fifth wrong code uses the link up: the right code, the poll, and the token then
    fail."""
    requested = await waiting_client(server)
    wrong = "BBBB-BBBB" if requested.code != "BBBB-BBBB" else "CCCC-CCCC"

    async with Browser() as browser:
        page = await browser.open(requested.url)
        page = await browser.submit(page, "Sign the terminal in", code="  ")
        assert page.status == 400 and "Enter the code your terminal shows." in page.text
        for left in ("4 tries", "3 tries", "2 tries", "1 try"):
            page = await browser.submit(page, "Sign the terminal in", code=wrong)
            assert page.status == 400
            assert f"That is not the code your terminal shows. You have {left} left." \
                in page.text
        await _next_poll_allowed()
        assert (await poll(server, requested.sign_in_id))[:2] == (200, {"status": "pending"})
        last = await browser.submit(page, "Sign the terminal in", code=wrong)
        late = await browser.submit(page, "Sign the terminal in", code=requested.code)

    assert last.error == "too_many_codes"
    assert "Too many wrong codes were entered for this sign-in link." in last.text
    assert late.error == "invalid_token"
    status, body, session = await poll(server, requested.sign_in_id)
    assert (status, session) == (410, None)
    assert body["type"].endswith("/sign-in-refused")
    assert "Too many wrong codes" in body["detail"]
    assert (await plain_get(requested.url))[1:] == ("/?error=invalid_token", None)


async def test_someone_elses_link_gives_the_requester_nothing(server: LocalServer) -> None:
    """Mallory asks for a link for Alice and waits for it. Alice opens her mail's link and,
    not knowing Mallory's code, presses "Sign in here": Alice's browser is signed in, and
    Mallory's poll says the link signed in a browser, with no session."""
    mallory = await waiting_client(server, ALICE)

    async with Browser() as alice:
        page = await alice.open(mallory.url)
        assert "Enter the code only if your own terminal shows it." in page.text
        await alice.submit(page, "Sign in here")
        assert await alice.me(server.url) == ALICE

    status, body, session = await poll(server, mallory.sign_in_id)
    assert (status, session) == (410, None)
    assert body["type"].endswith("/sign-in-used")
    assert body["detail"] == ("The sign-in link was used to sign in a browser instead. "
                              "Request a new link to sign in here.")


async def test_the_token_used_while_a_client_waits_ends_the_wait(server: LocalServer) -> None:
    """/token (a plain GET) while a client waits: that GET signs in, and the poll says the
    token was used."""
    requested = await waiting_client(server)

    status, _, session = await plain_get(requested.url)
    assert status == 302 and session is not None

    await _next_poll_allowed()
    status, body, _ = await poll(server, requested.sign_in_id)
    assert status == 410
    assert body["detail"].startswith("The token from the sign-in mail was used")


async def test_an_expired_link_fails_everywhere(server: LocalServer) -> None:
    """A link past its lifetime: the page says so, the code cannot approve it, the poll
    answers 410 "expired", and a plain GET gets no cookie."""
    server.server.magic_links.lifetime_seconds = -1  # links made from now on are born expired
    requested = await request_link(server)

    async with Browser() as browser:
        page = await browser.open(requested.url)
    status, body, _ = await poll(server, requested.sign_in_id)

    assert page.error == "invalid_token"
    assert status == 410 and body["type"].endswith("/sign-in-expired")
    assert "expired" in body["detail"]
    assert (await plain_get(requested.url))[1:] == ("/?error=invalid_token", None)


# Forms from elsewhere

@pytest.mark.parametrize("origin", ["https://attacker.example", "null", None,
                                    "http://localhost:1"],
                         ids=["other-site", "null", "none", "other-port"])
async def test_a_form_from_another_site_is_refused(server: LocalServer,
                                                  origin: str | None) -> None:
    """A sign-in form posted from another site (login CSRF), with no Origin or a null one,
    is refused (403) and uses nothing: the page's own form still works afterwards."""
    requested = await waiting_client(server)

    async with Browser() as browser:
        page = await browser.open(requested.url)
        here = await browser.submit(page, "Sign in here", origin=origin)
        code = await browser.submit(page, "Sign the terminal in", origin=origin,
                                    code=requested.code)
        assert await browser.me(server.url) is None
        assert here.status == code.status == 403
        assert "This sign-in form came from another website, so it was refused." in here.text
        await browser.submit(page, "Sign the terminal in", code=requested.code)

    assert (await poll(server, requested.sign_in_id))[:2] == (200, {"status": "ok"})


# The poll endpoint

async def test_polling_faster_than_the_interval_is_told_to_slow_down(
        server: LocalServer) -> None:
    """Polls right after the first: 429 "slow down", not recorded (the next poll on time is
    answered)."""
    requested = await waiting_client(server)

    answers = await asyncio.gather(*(poll(server, requested.sign_in_id) for _ in range(3)))

    too_soon = [body for status, body, _ in answers if status == 429]
    assert too_soon, answers  # three at once: at least one came within a second of the first
    for body in too_soon:
        assert_problem(body, 429, instance=POLL)
        assert body["detail"] == "Poll at most every 2 seconds."
    await _next_poll_allowed()
    assert (await poll(server, requested.sign_in_id))[:2] == (200, {"status": "pending"})


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"data": b'{"id": "x"}', "headers": {"Content-Type": "text/plain"}}, 415),
    ({"json": {}}, 400), ({"json": {"id": 7}}, 400), ({"json": ["x"]}, 400),
    ({"json": {"id": "x" * 101}}, 400),
    ({"data": b"{", "headers": {"Content-Type": "application/json"}}, 400),
    ({"json": {"id": "A" * 43}}, 410),
], ids=["not-json", "no-id", "id-not-string", "list", "id-too-long", "broken-json", "unknown"])
async def test_bad_polls_get_problem_answers(server: LocalServer, kwargs: dict[str, Any],
                                             status: int) -> None:
    """A poll that is not JSON, lacks a string id, or names no sign-in: problem JSON."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.post(
            server.url + POLL, **kwargs) as resp:
        body = await resp.json(content_type=None)

    assert resp.status == status
    assert_problem(body, status, instance=POLL)


async def _next_poll_allowed() -> None:
    """Wait out half the poll interval, after which the next poll is not "too soon"."""
    await asyncio.sleep(1.05)
