"""A plugin's failure in words: where in the plugin it happened, and what the person whose
command failed is told.

The log line (``Bot._failed``) has the exception's message and its traceback; the chat
reply has neither. It names the command, the exception's type and the plugin's line:
enough to know that the bot did not ignore the command, and where to look. The message
stays in the log: it is written for the plugin's author, may be long, and may hold what
the plugin handled (a URL with its API key, say), which the chat would keep in the
server's history and show on every device of the user.
"""

from __future__ import annotations

import traceback
from pathlib import Path

#: What a plugin's code may raise that is its own failure, not the end of the process:
#: any ``Exception``, and ``SystemExit`` (``sys.exit()``, or argparse on words it cannot
#: parse), which would end the runner or the terminal, every bot in it. A cancel and
#: Ctrl-C (``KeyboardInterrupt``) still go through.
PLUGIN_FAILURES = (Exception, SystemExit)
#: An exception's type name is cut to this many characters in a reply (a class may be
#: made at run time with any name).
TYPE_NAME_MAX = 60


def place_of(module_file: str | None, error: BaseException) -> str | None:
    """``quotes.py, line 12``: the last line of the plugin's own code that ``error`` went
    through (for a package plugin, any file of its folder); None when it went through none,
    or the plugin has no file."""
    if not module_file:
        return None
    own = Path(module_file)
    if own.name == "__init__.py":
        own = own.parent
    place = None
    for frame, number in traceback.walk_tb(error.__traceback__):
        path = Path(frame.f_code.co_filename)
        if path == own or own in path.parents:
            place = f"{path.name}, line {number}"
    return place


def command_failed(command: str, plugin: str, error: BaseException, place: str | None) -> str:
    """The reply to a command that raised ``error``: ``Sorry, !roll failed:
    ZeroDivisionError in dice.py, line 27 (the bot's log has the details).``

    It never starts with the command, so no bot takes it for one: not the bots of this
    process (which ignore each other anyway), nor those of another process of the user.
    """
    kind = type(error).__name__[:TYPE_NAME_MAX]
    return (f"Sorry, {command} failed: {kind} in {place or f'plugin {plugin}'} "
            "(the bot's log has the details).")
