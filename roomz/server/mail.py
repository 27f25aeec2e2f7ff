"""Delivering magic links: to the log, over SMTP, or straight to an embedding program."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from roomz.awaitables import await_me_maybe

from .settings import SmtpSettings

log = logging.getLogger("roomz.server.mail")


@dataclass(frozen=True)
class MagicLink:
    """A freshly made sign-in link: who it is for, the full URL, the bare token, and how many
    minutes it works for."""

    email: str
    url: str
    token: str
    expires_minutes: int = 15


#: Receives each magic link in-process; may be a plain function or a coroutine function.
MagicLinkCallback = Callable[[MagicLink], "Awaitable[None] | None"]


class MailError(Exception):
    """A magic link could not be delivered."""


class Mailer(Protocol):
    """Something that delivers magic links."""

    async def send(self, link: MagicLink) -> None:
        """Deliver ``link`` or raise :class:`MailError`."""


class ConsoleMailer:
    """Writes one log line per link: the URL to click and the ``/token`` form to type."""

    async def send(self, link: MagicLink) -> None:
        """Log ``link`` at INFO on the ``roomz.server.mail`` logger."""
        log.info("magic link for %s: %s  (in the terminal: /token %s)",
                 link.email, link.url, link.token)


class CallbackMailer:
    """Hands each link to a callback: for tests and programs that embed the server."""

    def __init__(self, callback: MagicLinkCallback) -> None:
        self.callback = callback

    async def send(self, link: MagicLink) -> None:
        """Call the callback with ``link``; its errors become :class:`MailError`."""
        try:
            await await_me_maybe(self.callback(link))
        except Exception as exc:
            raise MailError(f"magic link callback failed: {exc}") from exc


class SmtpMailer:
    """Sends a real mail through an SMTP server (aiosmtplib)."""

    def __init__(self, settings: SmtpSettings, timeout: float = 15.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def compose(self, link: MagicLink) -> EmailMessage:
        """The mail for ``link``: the URL to click and the token to type."""
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = link.email
        message["Subject"] = "Your Roomz sign-in link"
        message.set_content(
            f"To sign in to Roomz as {link.email}, open this link on any device:\n\n"
            f"{link.url}\n\n"
            "Signing in a Roomz terminal? Enter the code the terminal shows on that page.\n\n"
            "Or type this in the Roomz terminal:\n\n"
            f"/token {link.token}\n\n"
            f"The link works once, within {link.expires_minutes} minutes.\n"
            "If you did not ask to sign in, ignore this mail.\n"
        )
        return message

    async def send(self, link: MagicLink) -> None:
        """Send the mail; any SMTP or network failure becomes :class:`MailError`."""
        import aiosmtplib  # imported here: only operators who choose smtp pay for it

        s = self.settings
        try:
            await aiosmtplib.send(
                self.compose(link), hostname=s.host, port=s.port, start_tls=s.starttls,
                username=s.user, password=s.password, timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.error("could not mail the magic link for %s via %s:%s: %s",
                      link.email, s.host, s.port, exc)
            raise MailError(str(exc)) from exc
