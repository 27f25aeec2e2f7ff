"""Says back every message it hears: loops forever unless the bot ignores itself."""

from roomz_bots import Message, PluginBot, hookimpl


@hookimpl
async def on_message(bot: PluginBot, message: Message) -> None:
    await bot.send(message.text)
