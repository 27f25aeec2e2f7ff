"""Calling every plugin's implementation of one hook, each isolated from the others.

Every chat event goes through here, once per bot. Each implementation is bound once, when
the plugins are installed (its plugin's ``bot`` given with :func:`functools.partial`), so
calling them is a plain loop with one ``try`` per call. pluggy's own hook calling is not
used: it stops at the first implementation that raises, and one plugin's bug must not
silence the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

#: ``(plugin, hook, exception)``: an implementation raised.
OnFailure = Callable[[str, str, Exception], None]
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

    def bound(self) -> Callable[[Any], Any]:
        """The function of the payload alone: its ``bot`` given, the payload kept or dropped."""
        function = self.function
        if "bot" in self.argnames:
            function = (partial(function, self.bot) if self.argnames[0] == "bot"
                        else partial(function, bot=self.bot))  # the payload first: bot by name
        if any(name != "bot" for name in self.argnames):
            return function

        def without_payload(payload: Any) -> Any:  # startup, shutdown: no payload to take
            return function()
        return without_payload


def caller(hook: str, implementations: Sequence[Implementation], failed: OnFailure,
           returned: OnResult) -> Callable[[Any], None]:
    """A function of the payload that calls every implementation in order.

    One that raises is reported to ``failed`` and the next one still runs; a result other
    than None goes to ``returned``.
    """
    calls: list[Callable[[Any], Any]] = []
    #: The plugin of each call, looked up only when it raises or returns: the loop itself
    #: stays as short as it can be, since it runs for every message.
    plugin_of: dict[Callable[[Any], Any], str] = {}
    for impl in implementations:
        call = impl.bound()
        if call in plugin_of:  # one function, two plugins: each needs a call of its own
            call = partial(call)
        calls.append(call)
        plugin_of[call] = impl.plugin

    def call_all(payload: Any) -> None:
        for call in calls:
            try:
                result = call(payload)
            except Exception as exc:
                failed(plugin_of[call], hook, exc)
                continue
            if result is not None:
                returned(plugin_of[call], hook, result)

    return call_all
