"""The chat page in headless Chromium against a real ``roomz-server``: what a person sees.

Every check reads the page as shown (texts of the message list, the status line, the words
under a form); every wait is bounded (Playwright's ``expect`` with a timeout).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Dialog, expect

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from tests.bots.headless import bot_config, start_cli
from tests.events import Events
from tests.faults.helpers import node_on
from tests.faults.proxy import LostReplies, TcpProxy
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import RestartableServer, ServerProcess

from .helpers import PHONE, SHOTS, SHOWN, Browse, messages, screenshot, send, signed_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

HTTP = aiohttp.ClientTimeout(total=10)


async def connected_client(server: ServerProcess | RestartableServer, email: str,
                           ) -> tuple[AsyncClient, Events]:
    """An ``AsyncClient`` of ``email`` connected to ``server``, and what it receives."""
    proc = server.current if isinstance(server, RestartableServer) else server
    assert proc is not None
    link = await proc.request_link(email)
    client = AsyncClient(server.url)
    events = Events(client)
    await client.connect(token=link.token)
    return client, events


async def me(server_url: str, cookie: str) -> tuple[int, str]:
    """``/auth/me`` with the session cookie ``cookie``: status and the text of the answer."""
    async with aiohttp.ClientSession(timeout=HTTP) as http, http.get(
            f"{server_url}/auth/me", headers={"Cookie": f"session_token={cookie}"}) as resp:
        return resp.status, await resp.text()


# Signing in


async def test_signing_in_through_the_link_from_the_console_mail(
        browse: Browse, roomz: ServerProcess) -> None:
    """Email typed on the page; the link the console mailer logs, opened in another tab of
    the same browser: that tab lands on the chat, signed in, with no button to press, and
    so does the first one, which was waiting for the link."""
    email = "grace@example.com"
    page = await browse(roomz.url + "/")
    await expect(page.get_by_text("You are not signed in.")).to_be_visible()
    before = len(roomz.lines)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Email").press("Enter")  # the keyboard alone

    said = page.locator("#sign-in-said")
    await expect(said).to_contain_text(f"A sign-in link is on its way to {email}.")
    await expect(page.locator(".the-code")).to_have_text(re.compile(r"^[A-Z]{4}-[A-Z]{4}$"))
    await screenshot(page, "sign-in-sent")
    link = await roomz.next_link(email, after=before)

    tab = await page.context.new_page()
    await tab.goto(link.url)
    for signed in (tab, page):
        await expect(signed.locator("#status")).to_have_text("Connected")
        await expect(signed.locator("#me")).to_have_text(email)
    assert tab.url == roomz.url + "/"


async def test_the_code_entered_on_another_device_signs_the_page_in(
        browse: Browse, roomz: ServerProcess) -> None:
    """The link opened on a phone (another browser) with the code this page shows: the
    page signs itself in; the phone gets no session."""
    email = "katherine@example.com"
    page = await browse(roomz.url + "/")
    before = len(roomz.lines)
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Send sign-in link").click()
    code = await page.locator(".the-code").text_content(timeout=SHOWN)
    assert code
    link = await roomz.next_link(email, after=before)

    phone = await browse(viewport=PHONE)
    for _ in range(50):  # the page asks for the code once the waiting page has polled
        await phone.goto(link.url)
        if await phone.get_by_label("Code").count():
            break
        await asyncio.sleep(0.2)
    await phone.get_by_label("Code").fill(code.lower().replace("-", " "))
    await phone.get_by_role("button", name="Sign the terminal in").click()
    await expect(phone.get_by_text(f"Your terminal is signed in as {email}.")).to_be_visible()

    await expect(page.locator("#status")).to_have_text("Connected")
    await expect(page.locator("#me")).to_have_text(email)
    assert not [c for c in await phone.context.cookies() if c["name"] == "session_token"]


async def test_the_form_says_what_went_wrong(browse: Browse, roomz: ServerProcess,
                                            tmp_path: Path) -> None:
    """A bad email, too many links (429) and an email the server does not allow (403):
    each is said in words on the page, and no link is sent."""
    page = await browse(roomz.url + "/")
    email, said = page.get_by_label("Email"), page.locator("#sign-in-said")
    await email.fill("not an email")
    await email.press("Enter")
    await expect(said).to_have_text("No link sent: Invalid email format. Please enter a "
                                    "valid email address.")
    for _ in range(5):  # MAGIC_LINK_RATE_LIMIT: 5 an hour for one email from one address
        await roomz.request_link("hedy@example.com")
    await email.fill("hedy@example.com")
    await email.press("Enter")
    await expect(said).to_contain_text("No link sent: Too many requests: this email may get "
                                       "5 links an hour from one address.")
    await expect(said).to_contain_text(re.compile(r"Try again in \d+ s\."))

    async with ServerProcess(state_home=tmp_path,
                             env={"ALLOWED_EMAILS": "ada@example.com"}) as strict:
        await page.goto(strict.url + "/")
        await page.get_by_label("Email").fill("mallory@example.com")
        await page.get_by_label("Email").press("Enter")
        await expect(page.locator("#sign-in-said")).to_have_text(
            "No link sent: This email is not authorized to access this service.")
        assert "magic link for mallory" not in strict.stderr


# Chatting


async def test_two_tabs_send_and_receive_with_names_joins_and_leaves(
        browse: Browse, roomz: ServerProcess) -> None:
    """Two tabs of one user: the second joining is a line with the count; a name set from
    the menu labels messages "Name (email)" with a time; Shift+Enter makes a second line;
    clearing the name and closing a tab show too."""
    email = "ada@example.com"
    first = await signed_in(browse, roomz, email)
    second = await signed_in(browse, roomz, email)
    await expect(first.locator("#messages .note").last).to_contain_text(
        f"{email} joined (2 connections)")

    await first.get_by_text(email).first.click()  # the account menu
    await first.get_by_label("Display name of this tab").fill("Ada")
    await first.get_by_label("Display name of this tab").press("Enter")
    await expect(first.locator("#name-said")).to_have_text(f"You are now Ada ({email}).")
    await expect(first.locator("#me")).to_have_text(f"Ada ({email})")
    await expect(second.locator("#messages .note").last).to_contain_text(
        f"{email} is now called Ada ({email})")
    await first.keyboard.press("Escape")

    box = first.get_by_label("Message", exact=True)
    await box.press_sequentially("first line")
    await box.press("Shift+Enter")
    await box.press_sequentially("second line")
    await box.press("Enter")
    for page in (first, second):
        await expect(messages(page)).to_have_text(["first line\nsecond line"])
        who = page.locator("#messages .message .who")
        await expect(who).to_have_text([f"Ada ({email})"])
        await expect(page.locator("#messages .message time")).to_have_text(
            [re.compile(r"\d")])
    await expect(box).to_have_value("")
    await send(second, "and back")
    await expect(messages(first)).to_have_text(["first line\nsecond line", "and back"])

    await first.get_by_text(f"Ada ({email})").first.click()
    await first.get_by_role("button", name="Clear name").click()
    await expect(first.locator("#name-said")).to_have_text(
        "Display name cleared: you show as your email.")
    await expect(second.locator("#messages .note").last).to_contain_text(
        f"{email} cleared their display name")
    await second.close()
    await expect(first.locator("#messages .note").last).to_contain_text(
        f"{email} left (1 remaining)")


async def test_a_bundled_bot_answers_roll_on_the_page(browse: Browse, roomz: ServerProcess,
                                                     tmp_path: Path) -> None:
    """The dice plugin in ``roomz-cli --headless``, signed in as the page's user, answers
    ``!roll 2d6`` typed on the page. (Screenshots of the chat are taken here.)"""
    email = "margaret@example.com"
    session_file = tmp_path / "session.json"
    SessionCache(session_file).save(roomz.url, await roomz.sign_in(email))
    cli = await start_cli(bot_config(tmp_path, roomz.url, session_file, plugins=("dice",)))
    try:
        await cli.wait_for_line("bot roller is running", timeout=SHOWN / 1000)
        page = await signed_in(browse, roomz, email)
        await send(page, "Hello from the browser")
        await send(page, "!roll 2d6")
        answer = page.locator("#messages .message").filter(has_text="🎲")
        await expect(answer.locator(".who")).to_have_text(f"Roller ({email})")
        await expect(answer.locator(".text")).to_have_text(
            re.compile(r"^🎲 2d6: \d \+ \d = \d+$"))
        await screenshot(page, "chat")
        await page.set_viewport_size({"width": 720, "height": 360})  # the README's picture
        await page.screenshot(path=SHOTS / "readme.png")
    finally:
        await cli.kill()


async def test_an_async_client_and_the_page_talk(browse: Browse, roomz: ServerProcess) -> None:
    """A message from an ``AsyncClient`` shows on the page, under its name; one typed on the
    page reaches the client, whole."""
    email = "barbara@example.com"
    page = await signed_in(browse, roomz, email)
    client, events = await connected_client(roomz, email)
    try:
        await client.set_display_name("Script")
        await client.send("from Python & friends")
        await expect(messages(page)).to_have_text(["from Python & friends"])
        await expect(page.locator("#messages .message .who")).to_have_text(
            [f"Script ({email})"])
        await send(page, "from the page <3")
        got = await events.wait_for("message", lambda m: "page" in m["content"],
                                    timeout=SHOWN / 1000)
        assert got["content"] == "from the page &lt;3"  # as the wire escapes it: whole
    finally:
        await client.disconnect()


async def test_markup_in_messages_is_shown_as_text(browse: Browse, roomz: ServerProcess) -> None:
    """``<img src=x onerror=alert(1)>`` and ``<script>`` arrive as the characters typed: no
    element made, no dialog opened."""
    email = "frances@example.com"
    page = await signed_in(browse, roomz, email)
    dialogs: list[str] = []

    def dismissed(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        asyncio.ensure_future(dialog.dismiss())

    page.on("dialog", dismissed)
    client, _ = await connected_client(roomz, email)
    try:
        hostile = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>",
                   "<b>bold</b> &amp; &lt;"]
        await client.send(hostile[0])
        await send(page, hostile[1])
        await send(page, hostile[2])
        await expect(messages(page)).to_have_text(hostile)
        await send(page, "after")  # anything the markup could have run has run by now
        await expect(messages(page)).to_have_count(4)
    finally:
        await client.disconnect()
    assert await page.locator("#messages img, #messages script, #messages b").count() == 0
    assert dialogs == []


async def test_a_message_over_the_limit_is_refused_with_a_word(browse: Browse,
                                                               roomz: ServerProcess) -> None:
    """1001 characters: the page says it is too long, by how much, and keeps all of it in
    the box; nothing is shown as sent. 1000 go through whole."""
    page = await signed_in(browse, roomz, "mary@example.com")
    await send(page, "x" * 1001)
    await expect(page.locator("#compose-said")).to_have_text(
        "Not sent: Message too long: 1001 characters, at most 1000. "
        "Your message is still in the box.")
    await expect(page.get_by_label("Message", exact=True)).to_have_value("x" * 1001)
    await send(page, "y" * 1000)
    await expect(messages(page)).to_have_text(["y" * 1000])
    await expect(page.locator("#compose-said")).to_be_empty()


async def test_the_list_follows_new_messages_unless_scrolled_up(browse: Browse,
                                                                roomz: ServerProcess) -> None:
    """New messages scroll into view; once the reader scrolls up they do not move the list,
    and "New messages below" takes the reader back down."""
    email = "radia@example.com"
    page = await signed_in(browse, roomz, email)
    client, _ = await connected_client(roomz, email)
    listing = page.locator("#messages")
    try:
        for n in range(40):
            await client.send(f"line {n}")
        await expect(messages(page)).to_have_count(40)
        await expect(messages(page).last).to_be_in_viewport()
        await listing.evaluate("list => { list.scrollTop = 0; }")
        await client.send("while reading")
        await expect(messages(page)).to_have_count(41)
        more = page.get_by_role("button", name="New messages below")
        await expect(more).to_be_visible()
        assert await listing.evaluate("list => list.scrollTop") == 0
        await expect(messages(page).first).to_be_in_viewport()
        await more.click()
        await expect(messages(page).last).to_be_in_viewport()
        await expect(more).to_be_hidden()
    finally:
        await client.disconnect()


async def test_a_page_left_open_keeps_its_newest_thousand_lines(browse: Browse,
                                                                roomz: ServerProcess) -> None:
    """Past 1,000 lines the oldest leave the list, so a page open for weeks stays light; the
    newest is shown, in order, and the list still follows it."""
    email = "weeks@example.com"
    page = await signed_in(browse, roomz, email)
    senders = [(await connected_client(roomz, email))[0] for _ in range(3)]
    lines = [f"line {n}" for n in range(1005)]
    try:
        for n, text in enumerate(lines):  # in turn on three connections: each within its burst
            ack = await senders[n % 3].send(text)
            assert ack["status"] == "ok", ack
        await expect(messages(page).last).to_have_text("line 1004", timeout=60_000)
        assert await page.locator("#messages > li").count() == 1000
        shown = await messages(page).all_inner_texts()
        assert shown[-3:] == ["line 1002", "line 1003", "line 1004"]
        assert "line 0" not in shown and len(set(shown)) == len(shown)
        await expect(messages(page).last).to_be_in_viewport()

        # Someone reading higher up: the oldest lines go, what they read stays in place.
        reading = messages(page).nth(500)
        await reading.scroll_into_view_if_needed()
        text, top = await reading.inner_text(), (await reading.bounding_box() or {})["y"]
        for n in range(1005, 1010):
            assert (await senders[n % 3].send(f"line {n}"))["status"] == "ok"
        await expect(messages(page).last).to_have_text("line 1009")
        assert await page.locator("#messages > li").count() == 1000
        still = messages(page).filter(has_text=re.compile(f"^{re.escape(text)}$"))
        assert abs((await still.bounding_box() or {})["y"] - top) < 1  # pixels
    finally:
        for client in senders:
            await client.disconnect()


# The connection


async def test_a_server_restart_says_reconnecting_and_comes_back(
        browse: Browse, restartable_server: RestartableServer) -> None:
    """The server killed: the page says it is reconnecting; started again on the same port,
    the page comes back by itself (same session) and chats on."""
    server = restartable_server
    await server.start()
    assert server.current is not None
    page = await signed_in(browse, server.current, "annie@example.com")
    await send(page, "before")
    await expect(messages(page)).to_have_text(["before"])

    await server.current.kill()
    await expect(page.locator("#status")).to_have_text(re.compile(r"^Reconnecting…"))
    await expect(page.locator("#messages .note").last).to_contain_text(
        "Lost the connection to the server; reconnecting.")
    await screenshot(page, "reconnecting")
    await server.start()
    await expect(page.locator("#status")).to_have_text("Connected", timeout=30_000)
    await send(page, "after")
    await expect(messages(page)).to_have_text(["before", "after"])


async def test_long_polling_only_a_burst_of_50_all_arrive(browse: Browse,
                                                          roomz: ServerProcess) -> None:
    """WebSockets blocked in the browser: the page stays on long-polling; 50 messages sent
    at once by a client all show, in order, and the page's own message reaches the client."""
    email = "shafi@example.com"
    page = await signed_in(browse, roomz, email, block_websocket=True)
    client, events = await connected_client(roomz, email)
    try:
        burst = [f"burst {n}" for n in range(50)]
        await asyncio.gather(*(client.send(text) for text in burst))
        await expect(messages(page)).to_have_text(burst, timeout=30_000)
        await send(page, "over polling")
        await events.wait_for("message", lambda m: m["content"] == "over polling",
                              timeout=SHOWN / 1000)
    finally:
        await client.disconnect()
    assert await page.locator("#status").get_attribute("data-transport") == "polling"


async def test_websocket_is_used_when_not_blocked(browse: Browse, roomz: ServerProcess) -> None:
    """The control for the test above: unblocked, the page upgrades to WebSocket."""
    page = await signed_in(browse, roomz, "joan@example.com")
    await expect(page.locator("#status")).to_have_attribute("data-transport", "websocket")


async def test_signing_out_ends_the_session(browse: Browse, roomz: ServerProcess) -> None:
    """"Sign out" in the menu: the page is the sign-in form again, the cookie it had is
    refused by the server, and another tab of that session is told its session ended."""
    email = "sophie@example.com"
    page = await signed_in(browse, roomz, email)
    other = await page.context.new_page()
    await other.goto(roomz.url + "/")
    await expect(other.locator("#status")).to_have_text("Connected")
    cookie = next(c["value"] for c in await page.context.cookies()
                  if c["name"] == "session_token")

    await page.get_by_text(email).first.click()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are not signed in.")).to_be_visible()
    await expect(other.locator("#status")).to_have_text("Signed out")
    await expect(other.locator("#messages .note").last).to_contain_text(
        "Your session ended (logged out).")
    status, text = await me(roomz.url, cookie)
    assert status == 401 and "session ended" in text


# History (protocol.md 3.7)


async def test_on_load_the_last_50_messages_show_dimmed_before_live_ones(
        browse: Browse, roomz: ServerProcess) -> None:
    """60 messages sent before the page opens: it shows the last 50, in order, dimmed (class
    ``history``, in the muted colour); one sent afterwards shows once, after them, not dimmed."""
    email = "ida@example.com"
    client, _ = await connected_client(roomz, email)
    try:
        for n in range(60):
            await client.send(f"earlier {n}")
        page = await signed_in(browse, roomz, email)
        earlier = [f"earlier {n}" for n in range(10, 60)]
        await expect(messages(page)).to_have_text(earlier)
        history = page.locator("#messages .message.history")
        await expect(history).to_have_count(50)
        await client.send("live")
        await expect(messages(page)).to_have_text([*earlier, "live"])
        await expect(history).to_have_count(50)
        live = page.locator("#messages .message").last
        colour = "el => getComputedStyle(el).color"
        assert (await history.last.locator(".text").evaluate(colour)
                != await live.locator(".text").evaluate(colour))
        await screenshot(page, "history")
    finally:
        await client.disconnect()


async def test_earlier_messages_unanswered_on_load_are_asked_for_again(
        browse: Browse, roomz: ServerProcess) -> None:
    """The page's request for its earlier messages gets no answer (the proxy it reaches the
    server through holds what the server says from that request on; long-polling, so the
    proxy can read it): the page says it asks again, and when. Heard again, the message
    sent meanwhile shows live, and the earlier ones above it, dimmed, in order, each once;
    the note goes."""
    email = "hopper@example.com"
    proxy = TcpProxy([roomz.port])
    await proxy.start()
    client, _ = await connected_client(roomz, email)
    try:
        earlier = [f"earlier {n}" for n in range(3)]
        for text in earlier:
            await client.send(text)
        proxy.deafen_after(b'["history",')
        page = await signed_in(browse, roomz, email, through=proxy.url, block_websocket=True)
        await asyncio.wait_for(proxy.deafened.wait(), SHOWN / 1000)
        await client.send("live")  # held on its way to the page, with the lost answer
        said = page.locator("#messages .note").filter(has_text="Earlier messages")
        await expect(said).to_have_text(re.compile(
            r"^Earlier messages not shown yet: the server did not answer; asking again "
            r"(in \d+ s|now)\. "), timeout=25_000)  # the page's wait for an answer is 10 s
        await screenshot(page, "history-asked-again")
        proxy.restore()

        await expect(messages(page)).to_have_text([*earlier, "live"])
        await expect(page.locator("#messages .message.history .text")).to_have_text(earlier)
        await expect(said).to_have_count(0)
        await expect(page.locator("#messages .note.bad")).to_have_count(0)
        await screenshot(page, "history-asked-again-shown")
    finally:
        await client.disconnect()
        await asyncio.wait_for(proxy.close(), 10)


async def test_earlier_messages_refused_for_good_are_said_once_and_not_asked_for_again(
        browse: Browse, roomz: ServerProcess) -> None:
    """The server refuses the page's request for its earlier messages with a 400 (the proxy
    turns its limit into -5 on the way): the page says so once, in the server's words, and
    does not ask again, not even when its clock is moved on past several pauses."""
    proxy = TcpProxy([roomz.port])
    await proxy.start()
    proxy.corrupt(b'["history",{"limit":50}]', b'["history",{"limit":-5}]')
    try:
        page = await signed_in(browse, roomz, "refused@example.com", through=proxy.url,
                               block_websocket=True, clock=True)
        said = page.locator("#messages .note").filter(has_text="Earlier messages")
        await expect(said).to_have_text(re.compile(
            r"^Earlier messages not shown: Invalid 'limit': must be a whole number from 1 "
            r"to 1000\. "))
        # 1 + 2 + 4 + 8 + 16 s of pauses, under the 45 s after which a page that heard
        # nothing from the server would think it gone.
        await page.clock.run_for("00:40")
        await send(page, "after")  # sent after anything the page asked meanwhile
        await expect(messages(page)).to_have_text(["after"])
        assert proxy.corrupted == 1
        await expect(said).to_have_count(1)
        await expect(said).to_have_class("note bad")
    finally:
        await asyncio.wait_for(proxy.close(), 10)


async def test_after_a_server_restart_the_gap_and_every_missed_message_show_once(
        browse: Browse, restartable_server: RestartableServer) -> None:
    """The page's link cut, the server killed and started again, and 5 messages sent by
    another connection before the page can come back (it reaches the server through a
    proxy that holds it off): back, the page shows a line saying it missed 5, then the 5,
    in order, each once, not dimmed; then what is sent next."""
    server, email = restartable_server, "rosalind@example.com"
    proc = await server.start()
    proxy = TcpProxy([server.port])
    await proxy.start()
    client: AsyncClient | None = None
    try:
        page = await signed_in(browse, proc, email, through=proxy.url)
        status = page.locator("#status")
        await send(page, "before")
        await expect(messages(page)).to_have_text(["before"])

        proxy.blackhole()  # the page's attempts to come back hang until the link is back
        proxy.cut()
        await expect(status).to_have_text(re.compile(r"^Reconnecting…"))
        await proc.kill()
        await server.start()
        client, _ = await connected_client(server, email)
        away = [f"while away {n}" for n in range(5)]
        for text in away:
            await client.send(text)
        proxy.restore()

        await expect(status).to_have_text("Connected", timeout=60_000)
        await expect(messages(page)).to_have_text(["before", *away])
        await client.send("after")
        await expect(messages(page)).to_have_text(["before", *away, "after"])
        items = page.locator("#messages li:is(.message, .gap)")
        await expect(items.locator(":scope > span, .text")).to_have_text(
            ["before", re.compile("^— 5 messages while you were away — "), *away, "after"])
        await expect(page.locator("#messages .history")).to_have_count(0)
        await screenshot(page, "missed")
    finally:
        if client is not None:
            await client.disconnect()
        await asyncio.wait_for(proxy.close(), 10)


async def test_a_message_that_got_no_answer_sent_again_shows_once(
        browse: Browse, roomz: ServerProcess) -> None:
    """The server's answer to a message is lost (what the server sends the page is held):
    after the page's wait, it says the message perhaps went and puts it back in the box;
    Enter sends it again, and it shows once, on the page and on another device."""
    email = "said-once@example.com"
    proxy = TcpProxy([roomz.port])
    await proxy.start()
    client: AsyncClient | None = None
    try:
        page = await signed_in(browse, roomz, email, through=proxy.url)
        client, heard = await connected_client(roomz, email)
        await send(page, "before")  # answered after the page's request for earlier ones
        await expect(messages(page)).to_have_text(["before"])
        proxy.deafen()  # what the page sends goes through; nothing comes back
        await send(page, "hello once")
        said = page.locator("#compose-said")
        await expect(said).to_have_text(
            "Perhaps not sent: the server did not answer in time. Press Enter and it is "
            "shown once, whether it went or not.", timeout=20_000)
        box = page.get_by_label("Message", exact=True)
        await expect(box).to_have_value("hello once")
        await screenshot(page, "perhaps-not-sent")
        proxy.restore()  # what was held arrives: it had gone after all
        await expect(messages(page)).to_have_text(["before", "hello once"])
        await box.press("Enter")
        await expect(box).to_have_value("")
        await send(page, "and after")
        await expect(messages(page)).to_have_text(["before", "hello once", "and after"])
        await heard.wait_for("message", lambda m: m["content"] == "and after")
        assert [m["content"] for m in heard.named("message")] == [
            "before", "hello once", "and after"]
        await expect(said).to_be_empty()
    finally:
        if client is not None:
            await client.disconnect()
        await asyncio.wait_for(proxy.close(), 10)


async def test_a_message_refused_after_it_was_kept_sent_again_shows_once(
        browse: Browse, tmp_path: Path) -> None:
    """On Redis, the server kept a message, delivered it, and lost Redis's answer: the page
    says it was perhaps not sent (it used to say "Not sent", though everyone has it). Sent
    again, it takes its first key and shows once (it used to go out with a new key: twice)."""
    email = "kept-once@example.com"
    async with RedisProcess() as redis:
        proxy = LostReplies(redis.port)
        port = await proxy.__aenter__()
        client: AsyncClient | None = None
        try:
            async with node_on(f"redis://127.0.0.1:{port}", tmp_path) as server:
                page = await signed_in(browse, server, email)
                client, heard = await connected_client(server, email)
                await send(page, "before")  # Redis knows the script now
                await expect(messages(page)).to_have_text(["before"])
                proxy.arm(b"kept, its answer lost", then_refuse=True)
                await send(page, "kept, its answer lost")
                await expect(page.locator("#compose-said")).to_have_text(
                    "Perhaps not sent: the server lost touch with its history store. "
                    "Press Enter and it is shown once, whether it went or not.")
                await expect(messages(page)).to_have_text(["before", "kept, its answer lost"])
                box = page.get_by_label("Message", exact=True)
                await expect(box).to_have_value("kept, its answer lost")
                proxy.restore()
                await box.press("Enter")
                await expect(box).to_have_value("")
                await send(page, "and after")
                await expect(messages(page)).to_have_text(
                    ["before", "kept, its answer lost", "and after"], timeout=10_000)
                await heard.wait_for("message", lambda m: m["content"] == "and after")
                assert [m["content"] for m in heard.named("message")] == [
                    "before", "kept, its answer lost", "and after"]
                await client.disconnect()
        finally:
            await proxy.__aexit__(None, None, None)


async def test_with_history_off_the_page_chats_as_before(browse: Browse, tmp_path: Path) -> None:
    """``roomz-server --no-history`` (no ``history`` in its greeting, as the published
    server): nothing from before the page is shown, nothing is dimmed, live messages show."""
    email = "lise@example.com"
    async with ServerProcess("--no-history", state_home=tmp_path) as server:
        client, _ = await connected_client(server, email)
        try:
            await client.send("before the page")
            page = await signed_in(browse, server, email)
            await client.send("live")
            await expect(messages(page)).to_have_text(["live"])
            await expect(page.locator("#messages .history, #messages .note.bad")).to_have_count(0)
        finally:
            await client.disconnect()
