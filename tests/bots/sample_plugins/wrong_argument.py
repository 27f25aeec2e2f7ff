"""A hook asking for an argument its event does not have."""

from roomz_bots import Message, PluginBot, hookimpl


@hookimpl
def on_message(bot: PluginBot, msg: Message) -> None:
    return None
