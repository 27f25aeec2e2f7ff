"""A plugin loaded from a .py file named in the config."""

from roomz_bots import command


@command
def filed() -> str:
    """Say where this plugin came from."""
    return "from a file"
