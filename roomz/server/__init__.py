"""The Roomz reference server (``roomz-server``): aiohttp plus python-socketio.

Embed it in your own event loop::

    from roomz.server import Server, ServerSettings

    async with Server(ServerSettings(port=0), on_magic_link=print) as server:
        ...  # server.url is where clients connect
"""

from .app import Server
from .mail import MagicLink, MailError
from .settings import ServerSettings, SettingsError, SmtpSettings

__all__ = ["MagicLink", "MailError", "Server", "ServerSettings", "SettingsError", "SmtpSettings"]
