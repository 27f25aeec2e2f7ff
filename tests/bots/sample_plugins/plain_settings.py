"""``Settings`` written as a plain class: without ``@dataclass`` the config could not fill it."""

from roomz_bots import PluginBot, command


class Settings:
    """``[plugins.plain_settings]``, were it a dataclass."""

    level: int = 3


@command
def level(bot: PluginBot) -> str:
    """The configured level."""
    return str(bot.settings.level)
