"""A hook whose argument has a default (``message=None``): a plugin author making it
optional, as Python allows."""

from __future__ import annotations

from typing import Any

from roomz_bots import hookimpl

from . import JOURNAL

NAME = "defaulted"


@hookimpl
def on_message(bot: Any, message: Any = None) -> None:
    JOURNAL.record(NAME, "on_message", message=message)
