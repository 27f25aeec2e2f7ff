"""A typo in a hook name: must fail when loaded, not stay silent forever."""

from roomz_bots import Message, PluginBot, hookimpl


@hookimpl
def on_mesage(bot: PluginBot, message: Message) -> None:
    return None
