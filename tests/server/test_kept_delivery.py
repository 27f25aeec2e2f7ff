"""The node that kept a message waits until it delivered it to its own connections."""

from __future__ import annotations

import asyncio

from roomz.server.redis_state import DELIVERED_HERE_SECONDS, RedisFanOutManager


def heard(manager: RedisFanOutManager, room: str, cursor: str) -> None:
    """What the node does once python-socketio's loop delivered a kept message."""
    manager._handed_over({"method": "emit", "host_id": "history", "room": room,
                          "data": [{"cursor": cursor}]})


async def test_the_wait_ends_with_its_own_message_not_another_users_with_the_same_id() -> None:
    """Entry ids are unique within one user's stream only: another user's message with
    the same id does not end the wait."""
    manager = RedisFanOutManager("redis://127.0.0.1:9/0", publisher=None)  # type: ignore[arg-type]
    waiting = asyncio.create_task(manager.delivered_here("user:a@example.com", "5-0"))
    await asyncio.sleep(0)
    heard(manager, "user:b@example.com", "5-0")
    done, _ = await asyncio.wait({waiting}, timeout=DELIVERED_HERE_SECONDS / 4)
    assert not done
    heard(manager, "user:a@example.com", "5-0")
    assert await asyncio.wait_for(waiting, 1) is True


async def test_a_message_delivered_before_the_wait_began_needs_no_wait() -> None:
    """The message may come back by the bus before the script's answer: then, or once a
    later message of the room came, there is nothing to wait for."""
    manager = RedisFanOutManager("redis://127.0.0.1:9/0", publisher=None)  # type: ignore[arg-type]
    heard(manager, "user:a@example.com", "7-1")
    assert await asyncio.wait_for(manager.delivered_here("user:a@example.com", "7-0"), 0.1)
    assert await asyncio.wait_for(manager.delivered_here("user:a@example.com", "7-1"), 0.1)


async def test_a_message_that_never_comes_back_is_given_up_after_a_second() -> None:
    """A broken subscription: the acknowledgement goes out anyway, after a second."""
    manager = RedisFanOutManager("redis://127.0.0.1:9/0", publisher=None)  # type: ignore[arg-type]
    assert await asyncio.wait_for(manager.delivered_here("user:a@example.com", "9-0"),
                                  DELIVERED_HERE_SECONDS + 1) is False
