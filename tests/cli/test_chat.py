"""Chatting in the terminal: what is typed is sent, what arrives is shown above the prompt."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from roomz import AsyncClient
from roomz.limits import MAX_MESSAGE_LENGTH
from roomz.server.local import LocalServer
from tests.client.helpers import restart_in_process
from tests.faults.proxy import LostReplies, TcpProxy
from tests.nodes.conftest import SECRET
from tests.nodes.redis_proc import RedisProcess
from tests.security.hostile_server import hostile_server

from .helpers import (
    ALT_ENTER,
    CLOCK,
    CTRL_C,
    TIMEOUT,
    Terminal,
    connect_other,
    open_terminal,
    style_of,
    text_of,
)

EMAIL = "alice@example.com"


def seconds_apart(clock: str, moment: datetime) -> float:
    """How far the ``HH:MM:SS`` ``clock`` is from ``moment``'s time of day, across midnight."""
    shown = datetime.strptime(clock, "%H:%M:%S")
    diff = abs((shown.hour - moment.hour) * 3600 + (shown.minute - moment.minute) * 60
               + shown.second - moment.second) % 86400
    return min(diff, 86400 - diff)


async def test_own_message_is_shown_with_local_time_and_own_colour(
        server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enter sends; the message comes back as 'HH:MM:SS email: text', local time, class:own."""
    monkeypatch.setenv("TZ", "XYZ-5:30")  # a zone far from UTC, so UTC times would show
    time.tzset()
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            line = await term.command("Hello, world!", "Hello, world!")
            local = datetime.now().astimezone()
            assert local.utcoffset() == timedelta(hours=5, minutes=30)
            assert re.fullmatch(rf"{CLOCK} {EMAIL}: Hello, world!", text_of(line))
            assert seconds_apart(text_of(line)[:8], local) < 5, (text_of(line), local)
            assert style_of(line, EMAIL) == "class:own"
            assert style_of(line, text_of(line)[:8]) == "class:time"
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_message_of_another_connection_is_name_email_in_the_plain_colour(
        server: LocalServer, tmp_path: Path) -> None:
    """Another connection with a display name: 'HH:MM:SS Bob (email): text', not class:own."""
    other = await connect_other(server, EMAIL)
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            await asyncio.wait_for(other.set_display_name("Phone"), TIMEOUT)
            start = term.mark()
            await asyncio.wait_for(other.send("from my phone"), TIMEOUT)
            line = await term.wait_for("from my phone", start=start)
            assert re.fullmatch(rf"{CLOCK} Phone \({EMAIL}\): from my phone", text_of(line))
            assert style_of(line, "Phone") == "class:name"
            mine = await term.command("from my laptop", "from my laptop")
            assert style_of(mine, EMAIL) == "class:own"
    finally:
        await other.disconnect()


async def test_html_entities_are_unescaped_for_display(server: LocalServer,
                                                       tmp_path: Path) -> None:
    """The server escapes HTML; the terminal shows text and names as they were typed."""
    other = await connect_other(server, EMAIL)
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            await asyncio.wait_for(other.set_display_name("Tom & <Jerry>"), TIMEOUT)
            start = term.mark()
            await asyncio.wait_for(other.send('<b>fish & "chips"</b> \'n\' &amp;'), TIMEOUT)
            line = await term.wait_for("chips", start=start)
            assert text_of(line).endswith(
                f'Tom & <Jerry> ({EMAIL}): <b>fish & "chips"</b> \'n\' &amp;')
    finally:
        await other.disconnect()


async def test_display_name_set_and_cleared(server: LocalServer, tmp_path: Path) -> None:
    """/name Alice shows 'Alice (email)' on my messages; /name alone goes back to the email."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        line = await term.command("/name Alice", "You are now")
        assert text_of(line).endswith(f"You are now Alice ({EMAIL})")
        line = await term.command("named", ": named$")
        assert re.fullmatch(rf"{CLOCK} Alice \({EMAIL}\): named", text_of(line))
        line = await term.command("/name", "cleared")
        assert "email" in text_of(line)
        line = await term.command("unnamed", ": unnamed$")
        assert re.fullmatch(rf"{CLOCK} {EMAIL}: unnamed", text_of(line))
        assert f"· {EMAIL} ·" in term.toolbar()


async def test_display_name_too_long_shows_the_servers_error(server: LocalServer,
                                                             tmp_path: Path) -> None:
    """/name with 51 characters: an error line with the server's reason; the name is unchanged."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        line = await term.command("/name " + "x" * 51, "Name not changed")
        assert "Invalid display name: must be 1-50 characters" in text_of(line)
        assert style_of(line, "Name not changed") == "class:error"
        assert term.app.client.user is not None
        assert term.app.client.user["display_name"] is None
        line = await term.command("/name " + "y" * 50, "You are now")
        assert "y" * 50 in text_of(line)


async def test_joins_leaves_and_name_changes_are_system_lines(server: LocalServer,
                                                              tmp_path: Path) -> None:
    """Another connection joining, renaming itself and leaving: one system line each."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        start = term.mark()
        other = await connect_other(server, EMAIL)
        try:
            joined = await term.wait_for("joined", start=start)
            assert re.fullmatch(rf"{CLOCK} {EMAIL} joined \(2 connections\)", text_of(joined))
            assert style_of(joined, "joined") == "class:system"
            await asyncio.wait_for(other.set_display_name("Phone"), TIMEOUT)
            renamed = await term.wait_for("is now called", start=start)
            assert text_of(renamed).endswith(f"{EMAIL} is now called Phone ({EMAIL})")
            assert style_of(renamed, "called") == "class:system"
            await asyncio.wait_for(other.set_display_name(None), TIMEOUT)
            cleared = await term.wait_for("cleared their display name", start=start)
            assert style_of(cleared, "cleared") == "class:system"
        finally:
            await other.disconnect()
        left = await term.wait_for("left", start=start)
        assert re.fullmatch(rf"{CLOCK} {EMAIL} left \(1 remaining\)", text_of(left))
        assert style_of(left, "left") == "class:system"


async def test_reconnect_is_a_system_line_and_chat_goes_on(server: LocalServer,
                                                           tmp_path: Path) -> None:
    """The server restarts: 'Connection to URL lost; reconnecting by itself', then connected
    again and chatting."""
    def quick(app: object) -> None:
        app.client.reconnect_delay = 0.1  # type: ignore[attr-defined]

    async with open_terminal(server.url, tmp_path, setup=quick) as term:
        await term.sign_in(server, EMAIL)
        start = term.mark()
        await restart_in_process(server)
        lost = await term.wait_for("lost", start=start)
        assert text_of(lost).endswith(f"Connection to {server.url} lost; reconnecting by "
                                      "itself (/reconnect tries now).")
        assert style_of(lost, "Connection to") == "class:warning"
        await term.wait_for("Connected to", start=start)
        await term.command("/name Alice", "You are now")
        start = term.mark()
        await restart_in_process(server)
        back = await term.wait_for("Connected to", start=start)
        assert re.fullmatch(rf"{CLOCK} Connected to {re.escape(server.url)} as Alice \({EMAIL}\) "
                            r"again, after \d+ s away", text_of(back)), text_of(back)
        assert term.app.client.connected
        await term.command("still here", ": still here$")


async def test_while_the_server_is_away_the_terminal_keeps_trying_and_keeps_what_was_typed(
        server: LocalServer, tmp_path: Path) -> None:
    """The server stops: no attempt limit (past the old ten), the toolbar says which attempt
    and when the next, a line typed meanwhile is shown with why it did not go; never "not
    signed in"; the server back, the terminal is too."""
    def quick(app: object) -> None:
        app.client.reconnect_delay = 0.05  # type: ignore[attr-defined]
        app.client.reconnect_delay_max = 0.1  # type: ignore[attr-defined]

    async with open_terminal(server.url, tmp_path, setup=quick) as term:
        await term.sign_in(server, EMAIL)
        start = term.mark()
        await asyncio.wait_for(server.stop(), TIMEOUT)
        await term.until(lambda: term.app.client.reconnect_attempt > 12,
                         "more attempts than the old limit of ten")
        assert re.fullmatch(rf" reconnecting \(attempt \d+, (next in \d+ s|trying now)\) · "
                            rf"{EMAIL} · {re.escape(server.url)} · 0 bot\(s\) running ",
                            term.toolbar()), term.toolbar()
        line = await term.command(f"anyone?{ALT_ENTER}hello?", "Not sent")
        first, second = text_of(line).split("\n")
        assert re.fullmatch(rf"{CLOCK} Not sent: reconnecting \(attempt \d+, "
                            r"(next in \d+ s|trying now)\); /reconnect tries now — anyone\?",
                            first), first
        assert second == " " * first.index("anyone?") + "hello?"
        assert style_of(line, "Not sent") == "class:error"
        await asyncio.wait_for(server.start(), TIMEOUT)
        await term.wait_for("Connected to", start=start)
        await term.command("back", ": back$")
        assert not any("not signed in" in t.lower() for t in term.texts[start:])


async def test_events_arrive_while_the_user_types(server: LocalServer, tmp_path: Path) -> None:
    """A message arrives mid-line: it is shown at once, and the half-typed line is kept intact."""
    other = await connect_other(server, EMAIL)
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            term.type("half of a")
            await term.until(lambda: term.typed == "half of a",
                             "the prompt to hold the half-typed text")
            start = term.mark()
            await asyncio.wait_for(other.send("interruption"), TIMEOUT)
            await term.wait_for("interruption", start=start)
            assert term.typed == "half of a"
            line = await term.command(" sentence", "half of a sentence")
            assert style_of(line, EMAIL) == "class:own"
    finally:
        await other.disconnect()


async def test_alt_enter_inserts_a_newline(server: LocalServer, tmp_path: Path) -> None:
    """Alt+Enter (Esc, Enter) starts a new line in the message; Enter then sends both lines."""
    other = await connect_other(server, EMAIL)
    received: list[str] = []
    other.on("message", lambda data: received.append(data["content"]))
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            line = await term.command(f"first line{ALT_ENTER}second line", "second line")
            first, second = text_of(line).split("\n")
            assert first.endswith(f"{EMAIL}: first line")
            assert second == " " * first.index("first line") + "second line"  # under the text
            await term.until(lambda: "first line\nsecond line" in received,
                             "the two-line message at the other connection")
    finally:
        await other.disconnect()


async def test_ctrl_c_clears_the_line_and_does_not_quit(server: LocalServer,
                                                        tmp_path: Path) -> None:
    """Ctrl-C drops what was typed; nothing is sent and the terminal keeps running."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        term.type("never to be sent")
        await term.until(lambda: term.typed == "never to be sent", "the typed text")
        term.type(CTRL_C)
        await term.until(lambda: term.typed == "", "Ctrl-C to clear the line")
        await term.command("after ctrl-c", ": after ctrl-c$")
        assert not term.task.done()
        assert not any("never to be sent" in t for t in term.texts)


async def test_double_slash_sends_a_slash(server: LocalServer, tmp_path: Path) -> None:
    """'//shrug' is not a command: it sends the message '/shrug'."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        line = await term.command("//shrug ¯\\_(ツ)_/¯", "shrug")
        assert text_of(line).endswith(f"{EMAIL}: /shrug ¯\\_(ツ)_/¯")


async def test_empty_line_sends_nothing(server: LocalServer, tmp_path: Path) -> None:
    """Enter on an empty or blank line sends nothing."""
    received: list[str] = []
    other: AsyncClient = await connect_other(server, EMAIL)
    other.on("message", lambda data: received.append(data["content"]))
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            term.type("\r   \r")
            await term.command("marker", ": marker$")
            await term.until(lambda: "marker" in received, "the marker")
            assert received == ["marker"]
    finally:
        await other.disconnect()


async def test_long_input_goes_in_parts_and_the_terminal_says_so(server: LocalServer,
                                                                 tmp_path: Path) -> None:
    """A 2,500-character paragraph: sent as 3 messages, split between words, each within the
    limit, nothing lost; one line says it went in 3 parts."""
    other = await connect_other(server, EMAIL)
    received: list[str] = []
    other.on("message", lambda data: received.append(html.unescape(data["content"])))
    words = " ".join(f"word{n:04d}" for n in range(250))  # 250 x 9 + 249 = 2,499 characters
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            line = await term.command(words, "Sent in")
            assert text_of(line)[9:] == ("Sent in 3 parts: a message holds at most 1000 "
                                         "characters.")
            await term.until(lambda: len(received) == 3, "three messages")
            assert " ".join(received) == words
            assert all(len(part) <= MAX_MESSAGE_LENGTH for part in received)
            shown = [t for t in term.texts if re.match(rf"{CLOCK} {EMAIL}: word", t)]
            assert len(shown) == 3
    finally:
        await other.disconnect()


async def test_a_line_of_ampersands_arrives_whole(server: LocalServer, tmp_path: Path) -> None:
    """1,200 '&' (which the published server would cut to 200): every one arrives, in parts
    that no server cuts, and the terminal says how many parts."""
    other = await connect_other(server, EMAIL)
    received: list[str] = []
    other.on("message", lambda data: received.append(html.unescape(data["content"])))
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            line = await term.command("&" * 1200, "Sent in")
            parts = int(re.search(r"Sent in (\d+) parts", text_of(line))[1])  # type: ignore[index]
            await term.until(lambda: len(received) == parts, f"{parts} messages")
            assert "".join(received) == "&" * 1200
    finally:
        await other.disconnect()


async def test_a_refused_message_is_one_line_with_the_text_kept(tmp_path: Path) -> None:
    """The server answers a message with an error (400, too long): one line with its reason,
    followed by the text, so nothing typed is lost; with several parts, it says which did not
    go."""
    too_long = {"error": "Message too long: 1103 characters, at most 1000", "code": 400}
    with hostile_server(script=[], ack=too_long) as server:
        async with open_terminal(server.url, tmp_path) as term:
            await term.command("/token any-token", "Connected to")
            line = await term.command("a few words", "Not sent")
            assert text_of(line)[9:] == ("Not sent: Message too long: 1103 characters, at most "
                                         "1000 — a few words")
            assert style_of(line, "Not sent") == "class:error"
            long = "x" * 999 + " " + "y" * 999
            line = await term.command(long, "not sent")
            first, second = text_of(line).split("\n")
            assert first[9:] == ("Parts 1-2 of 2 not sent: Message too long: 1103 characters, "
                                 f"at most 1000 — {'x' * 999}")
            assert second == " " * first.index("x") + "y" * 999  # under the text


@contextlib.asynccontextmanager
async def with_other_device(server: LocalServer, tmp_path: Path, url: str | None = None,
                            **client_options: float) -> AsyncIterator[tuple[Terminal, list[str]]]:
    """A terminal signed in on ``server`` (reached through ``url``, a proxy, if given) with
    ``client_options`` set on its client, and what another device of the user hears."""
    def setup(app: object) -> None:
        for name, value in client_options.items():
            setattr(app.client, name, value)  # type: ignore[attr-defined]

    other = None
    try:
        async with open_terminal(url or server.url, tmp_path, setup=setup) as term:
            await term.sign_in(server, EMAIL)
            other = await connect_other(server, EMAIL)
            heard: list[str] = []
            other.on("message", lambda event: heard.append(event["content"]))
            yield term, heard
    finally:
        if other is not None:
            await asyncio.wait_for(other.disconnect(), TIMEOUT)


async def sent_again_said_once(term: Terminal, heard: list[str], line: str,
                               start: int) -> None:
    """Up, Enter: ``line`` sent again, with its first key; the other device hears it once
    (checked after the next line), and the terminal shows it once since ``start``."""
    term.type("\x1b[A")  # Up: the line again
    await term.until(lambda: term.typed == line, "the line recalled")
    term.type("\r")
    await term.until(lambda: not term.typed, "the line sent again")
    await term.command("and after", ": and after$", timeout=10)
    await term.until(lambda: heard[-1:] == ["and after"], "the next line heard")
    assert heard.count(line) == 1, heard
    assert sum(t.endswith(f": {line}") for t in term.texts[start:]) == 1


@pytest.mark.timeout(60)
async def test_a_line_refused_after_it_was_kept_sent_again_is_said_once(tmp_path: Path) -> None:
    """On Redis, the server kept a line, delivered it, and lost Redis's answer: the line is
    shown as perhaps not sent (it used to say "Not sent", though everyone has it). Sent
    again (Up, Enter), it takes its first key and is said once (it used to go out with a
    new key: twice)."""
    async with RedisProcess() as redis:
        proxy = LostReplies(redis.port)
        port = await proxy.__aenter__()
        server = LocalServer(redis_url=f"redis://127.0.0.1:{port}", jwt_secret=SECRET)
        try:
            await asyncio.wait_for(server.start(), TIMEOUT)
            async with with_other_device(server, tmp_path) as (term, heard):
                await term.command("warm-up", ": warm-up$")  # Redis knows the script now
                start = term.mark()
                proxy.arm(b"kept, its answer lost", then_refuse=True)
                line = await term.command("kept, its answer lost", "Perhaps not sent")
                assert re.fullmatch(rf"{CLOCK} Perhaps not sent: the server lost touch with "
                                    r"its history store: send it again \(Up, Enter\), and "
                                    r"it is shown once — kept, its answer lost",
                                    text_of(line)), text_of(line)
                await term.wait_for(": kept, its answer lost$", start=start)
                proxy.restore()
                await sent_again_said_once(term, heard, "kept, its answer lost", start)
                assert heard == ["warm-up", "kept, its answer lost", "and after"]
        finally:
            await asyncio.wait_for(server.stop(), 15)
            await proxy.__aexit__(None, None, None)


async def test_a_line_that_got_no_answer_sent_again_is_said_once(
        server: LocalServer, tmp_path: Path) -> None:
    """The server's answer to a line is lost: the line is shown as perhaps not sent, with
    how to send it again; sent again (Up, Enter), it reaches the user's other devices once,
    and the terminal shows it once."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    try:
        async with with_other_device(server, tmp_path, proxy.url,
                                     connection_timeout=1.0) as (term, heard):
            start = term.mark()
            proxy.deafen()  # the line goes out; nothing comes back
            line = await term.command("hello once", "Perhaps not sent", timeout=TIMEOUT)
            assert re.fullmatch(rf"{CLOCK} Perhaps not sent: no acknowledgement within 1 s: "
                                r"send it again \(Up, Enter\), and it is shown once — "
                                r"hello once", text_of(line)), text_of(line)
            proxy.restore()  # what was held arrives: the line had gone after all
            await term.wait_for(": hello once$", start=start)
            await sent_again_said_once(term, heard, "hello once", start)
            assert heard == ["hello once", "and after"]  # not twice: it came in between
    finally:
        await asyncio.wait_for(proxy.close(), TIMEOUT)


async def test_a_line_in_flight_as_the_link_drops_is_perhaps_not_sent_at_once(
        server: LocalServer, tmp_path: Path) -> None:
    """The line reaches the server, its answer is held, then the link breaks: the terminal
    says "Perhaps not sent" as soon as the drop is noticed, not after the client's
    connection_timeout (30 s here); sent again once back, it is said once."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    try:
        async with with_other_device(server, tmp_path, proxy.url, connection_timeout=30.0,
                                     reconnect_delay=0.1) as (term, heard):
            start = term.mark()
            proxy.deafen()  # the line goes out; nothing comes back
            term.type("hello once\r")
            await term.until(lambda: heard == ["hello once"], "the line heard")
            proxy.cut()
            cut_at = time.monotonic()
            line = await term.wait_for("Perhaps not sent", start=start, timeout=5)
            assert time.monotonic() - cut_at < 2.0
            assert re.fullmatch(rf"{CLOCK} Perhaps not sent: the connection was lost before "
                                r"the server acknowledged the message: send it again "
                                r"\(Up, Enter\), and it is shown once — hello once",
                                text_of(line)), text_of(line)
            proxy.restore()
            await term.until(lambda: term.app.client.connected, "the reconnect")
            await term.wait_for(": hello once$", start=start)  # replayed once back
            await sent_again_said_once(term, heard, "hello once", start)
            assert heard == ["hello once", "and after"]
    finally:
        await asyncio.wait_for(proxy.close(), TIMEOUT)
