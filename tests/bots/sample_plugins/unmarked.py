"""A hook without ``@hookimpl``: pluggy would never call it, so loading it must fail."""

from roomz_bots import Message, PluginBot


def on_message(bot: PluginBot, message: Message) -> None:
    return None
