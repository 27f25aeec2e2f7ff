"""Commands of the folder plugin, kept in a submodule."""

from roomz_bots import command


@command
def folded() -> str:
    """A command defined in a submodule of the plugin."""
    return "from a submodule"
