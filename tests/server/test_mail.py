"""Delivering magic links: one log line per link on the console, real mail over real SMTP."""

from __future__ import annotations

import asyncio
import logging
import queue
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPProtocol
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from roomz.server import MagicLink, Server, ServerSettings, SmtpSettings
from roomz.server.mail import ConsoleMailer

from .helpers import link_sent
from .proc import SESSION_COOKIE, ServerProcess, free_port

LONG_SECRET = "s" * 40
SENDER = "roomz@mail.example.com"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
SMTP_FAILED = "Failed to send magic link email. Please try again."

# The AUTH sink runs on plain TCP on purpose (loopback only); aiosmtpd warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@dataclass(frozen=True)
class Delivered:
    """One mail as the SMTP server received it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class MailSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every mail it accepts.

    With ``credentials`` it requires AUTH (over plain TCP) and records every login attempt.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.credentials = credentials
        self.logins: list[tuple[str, str, str]] = []
        self._mails: queue.Queue[Delivered] = queue.Queue()
        options: dict[str, Any] = {}
        if credentials is not None:
            options = {"authenticator": self._authenticate, "auth_required": True,
                       "auth_require_tls": False}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=5, **options)

    async def handle_DATA(self, server: SMTPProtocol, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        """aiosmtpd hook: keep the mail."""
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self._mails.put(Delivered(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def _authenticate(self, server: SMTPProtocol, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((mechanism, login, password))
        return AuthResult(success=(login, password) == self.credentials, handled=False)

    async def next_mail(self, timeout: float = 5.0) -> Delivered:
        """The next mail received, waiting up to ``timeout``."""
        try:
            return await asyncio.to_thread(self._mails.get, timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no mail arrived within {timeout} s") from None

    @property
    def pending(self) -> int:
        """Mails received but not yet taken with :meth:`next_mail`."""
        return self._mails.qsize()


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    """A real SMTP server on a free loopback port, without authentication."""
    sink = MailSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


@pytest.fixture
def auth_mail_sink() -> Iterator[MailSink]:
    """A real SMTP server that requires the login ``relay`` / ``s3cret pass``."""
    sink = MailSink(credentials=("relay", "s3cret pass"))
    sink.controller.start()
    yield sink
    sink.controller.stop()


def smtp_server(sink_port: int, **smtp: Any) -> Server:
    """A Roomz server on a free loopback port that mails links through ``sink_port``."""
    return Server(ServerSettings(
        port=0, jwt_secret=LONG_SECRET, email_sender="smtp",
        smtp=SmtpSettings(host="127.0.0.1", port=sink_port, starttls=False, sender=SENDER,
                          **smtp),
    ))


async def request_link(url: str, email: str) -> tuple[int, str, Any]:
    """POST a magic link request; return the status, content type and JSON body."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.post(
        f"{url}/auth/request-magic-link", json={"email": email}
    ) as resp:
        return resp.status, resp.content_type, await resp.json()


async def signed_in_email(link_url: str) -> str:
    """Open a magic link like a browser would (no redirect), then ask /auth/me who we are."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        async with http.get(link_url, allow_redirects=False) as resp:
            assert resp.status == 302
            cookie = resp.cookies[SESSION_COOKIE].value
        async with http.get(link_url.split("/auth/")[0] + "/auth/me",
                            headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}) as resp:
            assert resp.status == 200
            return str((await resp.json())["user"]["email"])


def link_in_mail(mail: Delivered, base_url: str, email: str, sender: str) -> str:
    """Check the mail's envelope and headers, and return the sign-in URL in its body."""
    assert mail.mail_from == sender
    assert mail.rcpt_tos == [email]
    assert mail.message["To"] == email
    assert mail.message["From"] == sender
    subject = str(mail.message["Subject"])
    assert "Roomz" in subject and "sign" in subject.lower(), subject
    body = mail.message.get_content()
    found = re.search(rf"{re.escape(base_url)}/auth/verify\?token=([\w-]+)", body)
    assert found is not None, body
    token = found[1]
    assert f"/token {token}" in [line.strip() for line in body.splitlines()], body
    return found[0]


async def test_console_mailer_writes_one_line_per_link(caplog: pytest.LogCaptureFixture) -> None:
    """ConsoleMailer logs one line holding the full URL and the /token form to type."""
    url = "http://127.0.0.1:8000/auth/verify?token=abc-DEF_123"
    link = MagicLink(email="alice@example.com", url=url, token="abc-DEF_123")

    with caplog.at_level(logging.INFO, logger="roomz.server.mail"):
        await ConsoleMailer().send(link)

    records = [r for r in caplog.records if r.name == "roomz.server.mail"]
    assert len(records) == 1
    line = records[0].getMessage()
    assert records[0].levelno == logging.INFO
    assert "\n" not in line
    assert url in line
    assert "/token abc-DEF_123" in line
    assert "alice@example.com" in line


async def test_command_logs_each_link_on_one_line(tmp_path: Path) -> None:
    """The command's console mailer writes one stderr line per link; the URL signs you in."""
    async with ServerProcess(state_home=tmp_path, env={"JWT_SECRET_KEY": LONG_SECRET}) as proc:
        alice = await proc.request_link("alice@example.com")
        bob = await proc.request_link("Bob@Example.com ")

        mail_lines = [line for line in proc.lines if "roomz.server.mail" in line]
        assert mail_lines == [alice.line, bob.line]
        for link in (alice, bob):
            assert link.url == f"{proc.url}/auth/verify?token={link.token}"
            assert f"/token {link.token}" in link.line
        assert bob.email == "bob@example.com"
        assert alice.token != bob.token
        assert await signed_in_email(bob.url) == "bob@example.com"


async def test_command_mails_links_with_smtp_from_env(tmp_path: Path,
                                                      auth_mail_sink: MailSink) -> None:
    """EMAIL_SENDER=smtp and the SMTP_* variables send a real mail that signs you in."""
    env = {"JWT_SECRET_KEY": LONG_SECRET, "EMAIL_SENDER": "smtp", "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(auth_mail_sink.port), "SMTP_STARTTLS": "false",
           "SMTP_USER": "relay", "SMTP_PASSWORD": "s3cret pass", "SMTP_SENDER": SENDER}
    async with ServerProcess(state_home=tmp_path, env=env) as proc:
        assert (await request_link(proc.url, "alice@example.com"))[0] == 200

        mail = await auth_mail_sink.next_mail()
        url = link_in_mail(mail, proc.url, "alice@example.com", SENDER)
        assert auth_mail_sink.pending == 0
        assert [login[1:] for login in auth_mail_sink.logins] == [("relay", "s3cret pass")]
        assert url.split("token=")[1] not in proc.stderr  # mailed, not logged
        assert await signed_in_email(url) == "alice@example.com"


async def test_command_mails_links_with_smtp_flags(tmp_path: Path, mail_sink: MailSink) -> None:
    """--email-sender smtp and the --smtp-* flags send a real mail, winning over the env."""
    env = {"JWT_SECRET_KEY": LONG_SECRET, "EMAIL_SENDER": "console",
           "SMTP_PORT": str(free_port()), "SMTP_SENDER": "env@mail.example.com"}
    flags = ["--email-sender", "smtp", "--smtp-host", "127.0.0.1",
             "--smtp-port", str(mail_sink.port), "--no-smtp-starttls", "--smtp-sender", SENDER]
    async with ServerProcess(*flags, state_home=tmp_path, env=env) as proc:
        assert (await request_link(proc.url, "alice@example.com"))[0] == 200

        mail = await mail_sink.next_mail()
        url = link_in_mail(mail, proc.url, "alice@example.com", SENDER)
        assert not any("roomz.server.mail" in line for line in proc.lines), proc.stderr
        assert await signed_in_email(url) == "alice@example.com"


async def test_python_api_mails_links_over_smtp(mail_sink: MailSink) -> None:
    """Server(ServerSettings(email_sender="smtp", smtp=...)) mails a link that signs you in."""
    async with smtp_server(mail_sink.port) as server:
        status, _, body = await request_link(server.url, " Alice@Example.com")
        assert (status, link_sent(body)) == (200, {"status": "ok",
                                        "message": "Magic link sent. Check your email."})

        mail = await mail_sink.next_mail()
        url = link_in_mail(mail, server.url, "alice@example.com", SENDER)
        assert await signed_in_email(url) == "alice@example.com"


async def test_the_mail_says_what_to_do_with_the_link(mail_sink: MailSink) -> None:
    """The mail says to open the link on any device and enter the terminal's code there, or
    to type /token TOKEN in the terminal, and how long the link works."""
    async with smtp_server(mail_sink.port) as server:
        assert (await request_link(server.url, "alice@example.com"))[0] == 200
        mail = await mail_sink.next_mail()

    body = mail.message.get_content()
    lines = [line.strip() for line in body.splitlines()]
    assert "To sign in to Roomz as alice@example.com, open this link on any device:" in lines
    assert ("Signing in a Roomz terminal? Enter the code the terminal shows on that page."
            in lines)
    assert any(re.fullmatch(r"/token [\w-]{43}", line) for line in lines), body
    assert "The link works once, within 15 minutes." in lines
    assert "If you did not ask to sign in, ignore this mail." in lines


async def test_smtp_login_is_sent_when_configured(auth_mail_sink: MailSink) -> None:
    """SMTP user and password reach the SMTP server's AUTH."""
    async with smtp_server(auth_mail_sink.port, user="relay", password="s3cret pass") as server:
        assert (await request_link(server.url, "alice@example.com"))[0] == 200

        mail = await auth_mail_sink.next_mail()
        link_in_mail(mail, server.url, "alice@example.com", SENDER)
        assert [login[1:] for login in auth_mail_sink.logins] == [("relay", "s3cret pass")]


async def test_smtp_login_refused_is_a_500_problem(auth_mail_sink: MailSink) -> None:
    """A wrong SMTP password: the person sees the mail-failed problem, no mail goes out."""
    async with smtp_server(auth_mail_sink.port, user="relay", password="wrong") as server:
        status, content_type, body = await request_link(server.url, "alice@example.com")

    assert (status, content_type) == (500, "application/json")
    assert body["detail"] == SMTP_FAILED
    assert auth_mail_sink.logins and auth_mail_sink.pending == 0


async def test_smtp_server_down_is_a_500_problem(caplog: pytest.LogCaptureFixture) -> None:
    """SMTP server down: HTTP 500 problem JSON, and the operator's log says why."""
    down_port = free_port()
    with caplog.at_level(logging.ERROR, logger="roomz.server.mail"):
        async with smtp_server(down_port) as server:
            status, content_type, body = await request_link(server.url, "alice@example.com")

    assert (status, content_type) == (500, "application/json")
    assert body == {"type": "https://roomz.local/errors/email-failed",
                    "title": "Email Delivery Failed", "status": 500, "detail": SMTP_FAILED,
                    "instance": "/auth/request-magic-link"}
    assert any(f"127.0.0.1:{down_port}" in r.getMessage() for r in caplog.records), caplog.text
