"""Which bot of this process sent a message, when the server does not say (the published
server): the order copies and acknowledgements come back in must not matter."""

from __future__ import annotations

from roomz.message import Message
from roomz_bots.origins import Origins

EMAIL = "tester@example.com"
HELP = "Commands: !help"


def copy(message_id: str, text: str = HELP) -> Message:
    """A message as the published server sends it: no connection id."""
    return Message({"id": message_id, "user": {"id": f"user:{EMAIL}", "email": EMAIL},
                    "content": text, "timestamp": "2026-12-02T00:00:00+00:00"})


def test_two_bots_sending_one_line_are_both_known_whichever_copy_comes_first() -> None:
    """Echo registers first, Dice second; Dice's copy and acknowledgement come back before
    Echo's copy: every copy is still a bot's, never the user's."""
    origins: Origins[str] = Origins()
    echo_key = origins.sending("echo", EMAIL, HELP)
    dice_key = origins.sending("dice", EMAIL, HELP)

    assert origins.origin(copy("dice-1")) == "echo"  # taken for the first that waits
    origins.sent("dice", dice_key, "dice-1")
    assert origins.origin(copy("echo-1")) == "echo"  # Dice's place was kept for Echo
    origins.sent("echo", echo_key, "echo-1")

    assert (origins.origin(copy("dice-1")), origins.origin(copy("echo-1"))) == ("dice", "echo")
    assert origins.origin(copy("user-1")) is None  # nothing left waiting: the user's


def test_a_bot_sending_one_line_twice_keeps_its_second_place() -> None:
    """The first copy and its acknowledgement leave the second send still waiting."""
    origins: Origins[str] = Origins()
    first = origins.sending("echo", EMAIL, "again")
    second = origins.sending("echo", EMAIL, "again")

    assert origins.origin(copy("a", "again")) == "echo"
    origins.sent("echo", first, "a")
    assert origins.origin(copy("b", "again")) == "echo"
    origins.sent("echo", second, "b")
    assert origins.origin(copy("c", "again")) is None


def test_a_send_whose_copy_never_came_leaves_nothing_waiting() -> None:
    """Refused, or on a server that names connections: the user's own line is theirs."""
    origins: Origins[str] = Origins()
    key = origins.sending("echo", EMAIL, "hello")
    origins.sent("echo", key, None)
    assert origins.origin(copy("m", "hello")) is None
