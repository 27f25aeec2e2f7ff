"""Says goodbye when the bot shuts down (used by the headless runner's tests)."""

from roomz_bots import PluginBot, hookimpl


@hookimpl
def startup(bot: PluginBot) -> None:
    bot.log.info("farewell: startup hook ran for %s", bot.name)


@hookimpl
async def shutdown(bot: PluginBot) -> None:
    await bot.send(f"Goodbye from {bot.name}")
    bot.log.info("farewell: shutdown hook ran for %s", bot.name)
