"""Calling every plugin's implementation of one hook, each isolated from the others.

Every chat event goes through here, once per bot, so the caller is written out call by
call, the way :mod:`dataclasses` writes ``__init__``: each call site then stays
specialised for its one function, with the plugin's ``bot`` passed straight in. Calling 20
plugins this way takes about a fifth less time than a loop over them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


def caller(hook: str, implementations: Sequence[Implementation], failed: OnFailure,
           returned: OnResult) -> Callable[[Any], None]:
    """A function of the payload that calls every implementation in order.

    One that raises is reported to ``failed`` and the next one still runs; a result other
    than None goes to ``returned``.
    """
    # Values reach the code through its namespace: no plugin's text is ever compiled.
    namespace: dict[str, Any] = {"hook": hook, "failed": failed, "returned": returned}
    lines = ["def call_all(payload):", "    pass"]
    for i, impl in enumerate(implementations):
        namespace[f"plugin_{i}"], namespace[f"call_{i}"] = impl.plugin, impl.function
        namespace[f"bot_{i}"] = impl.bot
        args = ", ".join(f"bot_{i}" if name == "bot" else "payload" for name in impl.argnames)
        lines += [
            "    try:",
            f"        result = call_{i}({args})",
            "    except Exception as exc:",
            f"        failed(plugin_{i}, hook, exc)",
            "    else:",
            "        if result is not None:",
            f"            returned(plugin_{i}, hook, result)",
        ]
    exec(compile("\n".join(lines), f"<roomz_bots: every {hook}>", "exec"), namespace)
    call_all: Callable[[Any], None] = namespace["call_all"]
    return call_all
