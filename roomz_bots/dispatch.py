"""Calling every plugin's implementation of one hook, each isolated from the others.

Every chat event goes through here, once per bot. Each implementation is made a function
of ``(bot, payload)`` once, when the plugins are installed (the usual one is that already),
so calling them is a plain loop with one ``try`` per call. pluggy's own hook calling is not
used: it stops at the first implementation that raises, and one plugin's bug must not
silence the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .failures import PLUGIN_FAILURES

#: ``(plugin, hook, exception)``: an implementation raised.
OnFailure = Callable[[str, str, BaseException], None]
#: ``(plugin, hook, result)``: an implementation returned something (a coroutine, say).
OnResult = Callable[[str, str, Any], None]


@dataclass(frozen=True)
class Implementation:
    """One plugin's implementation of a hook."""

    plugin: str
    function: Callable[..., Any]
    #: The hook arguments it takes, in its order: ``bot``, and the payload by any name.
    argnames: tuple[str, ...]
    #: What it gets as ``bot``.
    bot: Any

    def takes_bot_and_payload(self) -> Callable[[Any, Any], Any]:
        """The function as one of ``(bot, payload)``: itself in the usual case, else wrapped
        to take what it does not want, or to take them in its own order."""
        function, names = self.function, self.argnames
        if names[:1] == ("bot",) and len(names) == 2:
            return function  # the usual shape: no wrapper in the way
        if names == ("bot",):  # startup, shutdown: no payload to take
            return lambda bot, payload: function(bot)
        if "bot" in names:  # the payload first: bot by name
            return lambda bot, payload: function(payload, bot=bot)
        if names:
            return lambda bot, payload: function(payload)
        return lambda bot, payload: function()


def caller(hook: str, implementations: Sequence[Implementation], failed: OnFailure,
           returned: OnResult) -> Callable[[Any], None]:
    """A function of the payload that calls every implementation in order.

    One that raises is reported to ``failed`` and the next one still runs; a result other
    than None goes to ``returned``.
    """
    calls = [(impl.takes_bot_and_payload(), impl.bot, impl.plugin)
             for impl in implementations]

    def call_all(payload: Any) -> None:
        for function, bot, plugin in calls:
            try:
                result = function(bot, payload)
            except PLUGIN_FAILURES as exc:
                failed(plugin, hook, exc)
                continue
            if result is not None:
                returned(plugin, hook, result)

    return call_all
