"""Server settings: each declared once, with its default, environment variable, flag and help.

``ServerSettings`` is the one table. ``settings_from_env`` and ``roomz-server``'s flags and
``--help`` are all read off its fields, so a new setting is one field here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import platformdirs

from roomz.private_files import PrivateFileError, read_text, write_text

log = logging.getLogger("roomz.server")

MIN_SECRET_LENGTH = 32
SECRET_FILE_NAME = "jwt_secret"


class SettingsError(Exception):
    """A setting is missing, malformed or unsafe; the message is one line for the operator."""


def parse_emails(value: str) -> frozenset[str] | None:
    """Parse a comma-separated allow-list; empty means "anyone" (None)."""
    emails = frozenset(e.strip().lower() for e in value.split(",") if e.strip())
    return emails or None


def parse_networks(value: str) -> tuple[str, ...]:
    """Parse comma-separated addresses or networks (``10.0.0.0/8``), checking each one."""
    networks = tuple(n.strip() for n in value.split(",") if n.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(f"must list IP addresses or networks ({network!r} is neither)") \
                from None
    return networks


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("must be a whole number") from None


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("must be a number") from None


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _lower(value: str) -> str:
    return value.strip().lower()


@dataclass(frozen=True)
class Setting:
    """How one field is set from outside: its variable, its flag, and what it means.

    The field's type says how its text is read (``Count``: at least 1; ``Seconds`` and
    ``PerSecond``: more than 0). ``env`` names the published server's variable where it has
    one; by default the variable is ``ROOMZ_`` and the field's name in capitals.
    """

    help: str
    env: str | None = None
    #: Text of the variable or flag -> the field's value; unset, read by the field's type.
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    flag: bool = True
    choices: tuple[str, ...] | None = None

    def read(self, text: str) -> Any:
        """The field's value from ``text``; a ValueError says what is wrong with it."""
        if self.parse is None:
            raise TypeError("only the settings from declared() know their type")
        return self.parse(text)


Count: TypeAlias = int  # how many of something: at least 1
Seconds: TypeAlias = float  # a duration: more than 0
PerSecond: TypeAlias = float  # a rate: more than 0

#: How a field of each declared type is read from text, and named in ``--help``.
BY_TYPE: dict[str, tuple[Callable[[str], Any], str | None]] = {
    "str": (str, None), "bool": (_bool, None), "Path": (Path, "DIR"), "int": (_int, "N"),
    "Count": (_int, "N"), "Seconds": (_float, "SECONDS"), "PerSecond": (_float, "PER_SECOND"),
}
POSITIVE = ("Count", "Seconds", "PerSecond")


def setting(default: Any, help: str, **how: Any) -> Any:
    """A dataclass field whose ``metadata["setting"]`` says how operators set it."""
    return field(default=default, metadata={"setting": Setting(help, **how)})


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how the ``smtp`` mailer delivers magic links."""

    host: str = setting("localhost", "SMTP server", env="SMTP_HOST")
    port: int = setting(587, "SMTP port", env="SMTP_PORT")
    starttls: bool = setting(True, "upgrade the SMTP connection with STARTTLS",
                             env="SMTP_STARTTLS")
    user: str | None = setting(None, "SMTP user name, if the server wants one", env="SMTP_USER")
    password: str | None = setting(None, "SMTP password (prefer the environment variable)",
                                   env="SMTP_PASSWORD")
    sender: str = setting("roomz@localhost", "From: address of sign-in mails",
                          env="SMTP_SENDER", metavar="ADDRESS")


@dataclass(frozen=True)
class ServerSettings:
    """Everything a Roomz server needs to run; ``roomz-server --help`` explains each field."""

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8000, "port to listen on; 0 picks a free one")
    public_url: str | None = setting(
        None, "the URL people reach this server at, used in sign-in links (required off "
              "loopback; on loopback the listening address)", metavar="URL")
    jwt_secret: str | None = setting(
        None, "secret that signs session cookies (32+ characters); unset: one is generated "
              "and kept in the state directory, mode 0600", env="JWT_SECRET_KEY", flag=False)
    allowed_emails: frozenset[str] | None = setting(
        None, "comma-separated emails that may sign in; unset: anyone, on loopback only",
        env="ALLOWED_EMAILS", parse=parse_emails, metavar="EMAILS")
    jwt_expiry_days: Count = setting(30, "how long a session lasts", env="JWT_EXPIRY_DAYS",
                                     metavar="DAYS")
    magic_link_expiry_minutes: Count = setting(
        15, "how long a sign-in link works", env="MAGIC_LINK_EXPIRY_MINUTES", metavar="MINUTES")
    magic_link_rate_limit: Count = setting(
        5, "sign-in links one email may get per hour from one client address",
        env="MAGIC_LINK_RATE_LIMIT")
    magic_link_email_limit: Count = setting(
        20, "sign-in links one email may get per hour from all addresses together")
    magic_link_address_limit: Count = setting(
        20, "sign-in links one client address may ask for per hour, for any emails (an IPv6 "
            "address counts as its /64)")
    email_sender: str = setting("console", "console: write links to the log; smtp: mail them",
                                env="EMAIL_SENDER", parse=_lower, choices=("console", "smtp"))
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    trusted_proxies: tuple[str, ...] = setting(
        (), "comma-separated addresses or networks of reverse proxies whose X-Forwarded-For "
            "and X-Forwarded-Proto are believed", parse=parse_networks, metavar="ADDRESSES")
    max_connections: Count = setting(1000, "live connections before new ones are refused")
    max_connections_per_user: Count = setting(
        20, "live connections one user may have, on all nodes together")
    max_idle_connections_per_address: Count = setting(
        50, "TCP connections one client address may hold open without a request in progress "
            "(proxies named by --trusted-proxies are exempt; an IPv6 address counts as its /64)")
    max_unfinished_per_address: Count = setting(
        100, "Socket.IO connections one client address may have open before they sign in; "
             "a new one beyond is answered 503 (an IPv6 address counts as its /64)")
    message_rate: PerSecond = setting(
        100.0, "messages per second one connection may send, on average; more are answered 429")
    message_burst: Count = setting(
        500, "messages one connection may send at once before --message-rate applies")
    max_queued_events: Count = setting(
        1000, "events waiting for one slow connection before it is disconnected")
    header_timeout: Seconds = setting(
        10.0, "seconds a client may take to send a request's headers (and to keep an idle "
              "HTTP connection open)")
    body_timeout: Seconds = setting(10.0, "seconds a client may take to send a request's body")
    connect_timeout: Seconds = setting(
        5.0, "seconds a new Socket.IO connection may take to sign in before it is closed")
    ping_interval: Seconds = setting(25.0, "seconds between Engine.IO pings", flag=False)
    ping_timeout: Seconds = setting(20.0, "seconds to wait for a pong", flag=False)
    session_check_interval: Seconds = setting(
        5.0, "seconds between checks that live connections' sessions are still valid",
        flag=False)
    node_timeout: Seconds = setting(
        15.0, "seconds a node on Redis may stay silent before the others count it dead and "
              "send user_left for its connections", flag=False)
    history: bool = setting(
        True, "keep each user's recent messages, so that clients that come back get what "
              "they missed (in the state directory, or in Redis with --redis-url)")
    history_messages: Count = setting(1000, "messages kept per user, at most")
    history_seconds: Seconds = setting(7 * 24 * 3600.0,
                                       "seconds a message is kept, at most (7 days)")
    state_dir: Path | None = setting(
        None, "where a generated JWT secret, the session records and the message history "
              "are kept (default ~/.local/state/roomz)")
    redis_url: str | None = setting(
        None, "redis://HOST:PORT/DB: share state and messages with other nodes on this Redis; "
              "without it the server runs alone", env="REDIS_URL", metavar="URL")

    @property
    def is_loopback(self) -> bool:
        """True when the server only listens on this machine."""
        return is_loopback_host(self.host)

    def allows(self, email: str) -> bool:
        """True when ``email`` (normalized) may sign in."""
        return self.allowed_emails is None or email in self.allowed_emails

    def checked(self) -> ServerSettings:
        """Apply the start-up rules and return settings with a usable secret.

        Raises :class:`SettingsError` when the server must not start.
        """
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be 0-65535, got {self.port}")
        if self.redis_url is not None and not self.redis_url.startswith(
                ("redis://", "rediss://", "unix://")):
            raise SettingsError(f"REDIS_URL must look like redis://HOST:PORT/DB, "
                                f"got {self.redis_url!r}")
        if self.redis_url is not None and self.jwt_secret is None:
            raise SettingsError("REDIS_URL needs JWT_SECRET_KEY: every node must sign "
                                "sessions with the same secret")
        if self.email_sender not in ("console", "smtp", "callback"):
            raise SettingsError(
                f"EMAIL_SENDER must be 'console' or 'smtp', got {self.email_sender!r}"
            )
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in POSITIVE and not value > 0:
                least = "at least 1" if f.type == "Count" else "more than 0"
                raise SettingsError(f"{f.name} must be {least}, got {value}")
        if self.public_url is not None:
            check_public_url(self.public_url)
        if not self.is_loopback:
            if self.allowed_emails is None:
                raise SettingsError(
                    f"refusing to listen on {self.host} without ALLOWED_EMAILS: "
                    "anyone could sign in"
                )
            if self.jwt_secret is not None and len(self.jwt_secret) < MIN_SECRET_LENGTH:
                raise SettingsError(
                    f"refusing to listen on {self.host} with a JWT_SECRET_KEY shorter than "
                    f"{MIN_SECRET_LENGTH} characters"
                )
            if self.public_url is None:
                raise SettingsError(
                    f"refusing to listen on {self.host} without ROOMZ_PUBLIC_URL "
                    "(--public-url): sign-in links must not follow the request's Host header"
                )
        if self.jwt_secret is None:
            return replace(self, jwt_secret=load_or_create_secret(self.state_dir))
        if len(self.jwt_secret) < MIN_SECRET_LENGTH:
            log.warning("JWT_SECRET_KEY is shorter than %d characters; acceptable on loopback only",
                        MIN_SECRET_LENGTH)
        return self


def check_public_url(url: str) -> None:
    """Raise :class:`SettingsError` unless ``url`` is an ``http(s)://host[:port][/path]`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        raise SettingsError(f"ROOMZ_PUBLIC_URL must look like https://chat.example.com, "
                            f"got {url!r}")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses such as ``127.0.0.1`` and ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_state_dir() -> Path:
    """The user's state directory for Roomz (``$XDG_STATE_HOME/roomz`` on Linux)."""
    return Path(platformdirs.user_state_dir("roomz"))


def load_or_create_secret(state_dir: Path | None = None) -> str:
    """Return the server's own JWT secret, generating it (mode 0600) on first use.

    The file is private (:mod:`roomz.private_files`): a symbolic link, a file of another
    user or one that others may write to, or a directory others may write to, is refused
    with a :class:`SettingsError`; a file that others may read is made 0600, with a warning.
    """
    directory = state_dir or default_state_dir()
    path = directory / SECRET_FILE_NAME
    try:
        stored = read_text(path, "JWT secret")
    except PrivateFileError as exc:
        raise SettingsError(str(exc)) from None
    except ValueError:  # not UTF-8: not a secret we wrote
        stored = None
    if stored is not None and len(stored.strip()) >= MIN_SECRET_LENGTH:
        return stored.strip()
    secret = secrets.token_urlsafe(48)
    try:
        write_text(path, secret + "\n", "JWT secret")
    except PrivateFileError as exc:
        raise SettingsError(str(exc)) from None
    log.info("generated a JWT secret in %s", path)
    return secret


def declared(cls: type[Any]) -> Iterator[tuple[dataclasses.Field[Any], Setting]]:
    """The fields of ``cls`` that operators can set, with how (``parse`` filled in)."""
    for f in dataclasses.fields(cls):
        if "setting" in f.metadata:
            how = f.metadata["setting"]
            if how.parse is None:
                parse, metavar = BY_TYPE[str(f.type).removesuffix(" | None")]
                how = replace(how, parse=parse, metavar=how.metavar or metavar)
            yield f, replace(how, env=how.env or "ROOMZ_" + f.name.upper())


def parse_setting(name: str, how: Setting, text: str) -> Any:
    """``text`` as the value of a setting, or :class:`SettingsError` naming ``name``."""
    try:
        return how.read(text)
    except ValueError as exc:
        raise SettingsError(f"{name} {exc}, got {text!r}") from None


def settings_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the environment variables operators of the published server use, and ours.

    Returns only the settings that are set, as keyword arguments for
    :class:`ServerSettings` (SMTP ones under ``"smtp"``), so command-line flags can
    override them.
    """
    env = os.environ if env is None else env

    def read(cls: type[Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for f, how in declared(cls):
            if how.env is not None and env.get(how.env):
                found[f.name] = parse_setting(how.env, how, env[how.env])
        return found

    found = read(ServerSettings)
    if smtp := read(SmtpSettings):
        found["smtp"] = smtp
    return found
