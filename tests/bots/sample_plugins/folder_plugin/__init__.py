"""A plugin loaded from a folder: a package whose parts live in submodules."""

from roomz_bots import command

from .answers import ANSWER
from .commands import folded  # noqa: F401  (a command defined in a submodule)


@command
def packaged() -> str:
    """Say where this plugin came from."""
    return ANSWER
