"""The terminal and the server's history (docs/protocol.md 3.7), read from its screen (a
terminal emulator that keeps colours) as a person would: on start the last screenful of
messages, dimmed; after a reconnect, a line marking the gap, then what was missed, each
once and in order.

A real ``roomz-server`` runs in a subprocess; the terminal reaches it through a loopback
TCP proxy that can cut its link while another connection of the user goes on sending. The
proxy lives on the test's event loop, so the screen is read in a thread meanwhile.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roomz import AsyncClient
from tests.faults.proxy import TcpProxy
from tests.server.proc import ServerProcess

from .helpers import CLOCK, EMAIL, TIMEOUT
from .screen import Screen
from .test_outages import SLOW, quit_cleanly, terminal, with_cached_session

GREY = "8a8a8a"  # the history style's colour (roomz.cli.render.STYLE), as pyte names it
ROWS = 30  # spawn_cli's screen: the last screenful is ROWS - 3 messages


@pytest.fixture
async def roomz(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[ServerProcess]:
    """``roomz-server``, with the arguments the test passes (``indirect``), if any."""
    args = getattr(request, "param", ())
    async with ServerProcess(*args, state_home=tmp_path / "server") as proc:
        yield proc


async def other_device(server: ServerProcess) -> AsyncClient:
    """Another connection of the terminal's user, straight to the server."""
    client = AsyncClient(server.url)
    await asyncio.wait_for(client.connect((await server.request_link(EMAIL)).token), TIMEOUT)
    return client


async def shows(screen: Screen, pattern: str, timeout: float = SLOW) -> str:
    """The first line on ``screen`` matching ``pattern``, read in a thread (bounded) while
    the loop runs the proxy and the other client."""
    return await asyncio.to_thread(screen.wait_for, pattern, timeout)


def row(screen: Screen, pattern: str) -> int:
    """The row of the one line on the screen that matches ``pattern``."""
    rows = [n for n, line in enumerate(screen.lines) if re.search(pattern, line)]
    assert len(rows) == 1, (pattern, screen.text)
    return rows[0]


def colours(screen: Screen, at: int, after: int = 0) -> set[tuple[str, bool]]:
    """(colour, italic) of every visible character of row ``at``, from column ``after``
    (9: past the time, which is grey on every line)."""
    line = screen.screen.buffer[at]
    chars = (line[x] for x in range(after, screen.screen.columns))
    return {(char.fg, char.italics) for char in chars if char.data.strip()}


async def test_on_start_the_last_screenful_is_shown_dimmed_then_live_messages(
        roomz: ServerProcess, tmp_path: Path, screens: list[Screen]) -> None:
    """40 messages sent before the terminal starts: it shows the last 27 (a screenful of
    30 rows, less the prompt, the toolbar and the "Connected" line) in order, every
    character in the history grey, none of the earlier 13; a message sent afterwards is
    shown once, below them, in the usual colours."""
    sender = await other_device(roomz)
    try:
        for n in range(40):
            await asyncio.wait_for(sender.send(f"earlier {n}"), TIMEOUT)
        with_cached_session(tmp_path, roomz.url, await roomz.sign_in(EMAIL))
        screen = terminal(tmp_path, screens, roomz.url)
        await shows(screen, r": earlier 39$")
        shown = [int(m[1]) for line in screen.lines if (m := re.search(r": earlier (\d+)$", line))]
        assert shown == list(range(40 - len(shown), 40)) and len(shown) >= 20, screen.text
        assert screen.ever_showed(r": earlier 13$") and not screen.ever_showed(r": earlier 12$")
        last = row(screen, r": earlier 39$")
        assert re.fullmatch(rf"{CLOCK} {EMAIL}: earlier 39", screen.lines[last])
        assert colours(screen, last) == {(GREY, False)}, screen.text

        await asyncio.wait_for(sender.send("live now"), TIMEOUT)
        await shows(screen, r": live now$")
        live = row(screen, r": live now$")
        assert live > row(screen, r": earlier 39$")
        assert colours(screen, live, after=9) == {("cyan", False), ("default", False)}
        await asyncio.to_thread(quit_cleanly, screen)
    finally:
        await sender.disconnect()


@pytest.mark.parametrize(("roomz", "named"), [((), False), (("--history-messages", "3"), False),
                                               ((), True)],
                         indirect=["roomz"], ids=["all kept", "a window of 3", "named"])
async def test_after_a_cut_link_what_was_missed_follows_a_gap_line(
        roomz: ServerProcess, named: bool, tmp_path: Path, screens: list[Screen]) -> None:
    """The terminal's link cut while another connection sends 5 messages: once back, a
    line says how many it missed, and they follow, in order, each once, not dimmed, before
    what is sent next. With a window of 3 messages, a warning says that some are gone
    (the client's), and the last 3 follow. With a display name (which the client sets
    again before it passes the greeting on, while the replay arrives), the order holds."""
    some_gone = "--history-messages" in roomz.argv
    proxy = TcpProxy([roomz.port])
    await proxy.start()
    sender = await other_device(roomz)
    try:
        with_cached_session(tmp_path, proxy.url, await roomz.sign_in(EMAIL))
        screen = terminal(tmp_path, screens, proxy.url, "--reconnect-max-delay", "1")
        await shows(screen, "Connected to")
        if named:
            screen.type("/name Laptop\r")
            await shows(screen, "You are now Laptop")
        await asyncio.wait_for(sender.send("before"), TIMEOUT)
        await shows(screen, r": before$")

        proxy.blackhole()  # its attempts to come back hang until the link is back
        proxy.cut()
        await shows(screen, "lost; reconnecting by itself")
        away = [f"while away {n}" for n in range(5)]
        for text in away:
            await asyncio.wait_for(sender.send(text), TIMEOUT)
        proxy.restore()
        back = await shows(screen, r"again, after .+ away$")
        replayed = away[2:] if some_gone else away
        await shows(screen, rf": {replayed[-1]}$")
        await asyncio.wait_for(sender.send("after"), TIMEOUT)
        await shows(screen, r": after$")

        gap = row(screen, rf"^{CLOCK} — {len(replayed)} messages while you were away —$")
        order = [row(screen, rf": {text}$") for text in ["before", *replayed, "after"]]
        again = row(screen, re.escape(back))
        assert order == sorted(order) and order[0] < again < gap < order[1], screen.text
        assert all(not screen.find(rf": {text}$") for text in away if text not in replayed)
        assert all((GREY, False) not in colours(screen, at, after=9) for at in order), screen.text
        gone = screen.find("some messages sent while this client was away are gone")
        assert (gone is not None) == some_gone, screen.text
        if gone:
            assert row(screen, "are gone") < gap
        await asyncio.to_thread(quit_cleanly, screen)
    finally:
        await sender.disconnect()
        await asyncio.wait_for(proxy.close(), TIMEOUT)
