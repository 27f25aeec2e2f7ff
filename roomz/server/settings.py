"""Server settings: defaults, the operators' environment variables, and the start-up rules."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger("roomz.server")

MIN_SECRET_LENGTH = 32
SECRET_FILE_NAME = "jwt_secret"


class SettingsError(Exception):
    """A setting is missing, malformed or unsafe; the message is one line for the operator."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how the ``smtp`` mailer delivers magic links."""

    host: str = "localhost"
    port: int = 587
    starttls: bool = True
    user: str | None = None
    password: str | None = None
    sender: str = "roomz@localhost"


@dataclass(frozen=True)
class ServerSettings:
    """Everything a Roomz server needs to run; see ``roomz-server --help`` for each field."""

    host: str = "127.0.0.1"
    port: int = 8000
    jwt_secret: str | None = None
    allowed_emails: frozenset[str] | None = None
    jwt_expiry_days: int = 30
    magic_link_expiry_minutes: int = 15
    magic_link_rate_limit: int = 5
    email_sender: str = "console"
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    max_connections: int = 1000
    public_url: str | None = None
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    state_dir: Path | None = None
    redis_url: str | None = None

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
        for name in ("jwt_expiry_days", "magic_link_expiry_minutes", "magic_link_rate_limit",
                     "max_connections"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
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
        if self.jwt_secret is None:
            return replace(self, jwt_secret=load_or_create_secret(self.state_dir))
        if len(self.jwt_secret) < MIN_SECRET_LENGTH:
            log.warning("JWT_SECRET_KEY is shorter than %d characters; acceptable on loopback only",
                        MIN_SECRET_LENGTH)
        return self


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
    """Return the server's own JWT secret, generating it (mode 0600) on first use."""
    directory = state_dir or default_state_dir()
    path = directory / SECRET_FILE_NAME
    try:
        secret = path.read_text().strip()
        if len(secret) >= MIN_SECRET_LENGTH:
            return secret
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SettingsError(f"cannot read the JWT secret in {path}: {exc.strerror}") from exc
    secret = secrets.token_urlsafe(48)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL-free but created 0600 from the start, then swapped in atomically.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise SettingsError(f"cannot store a JWT secret in {path}: {exc.strerror}") from exc
    log.info("generated a JWT secret in %s", path)
    return secret


def parse_emails(value: str) -> frozenset[str] | None:
    """Parse a comma-separated allow-list; empty means "anyone" (None)."""
    emails = frozenset(e.strip().lower() for e in value.split(",") if e.strip())
    return emails or None


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def settings_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the environment variables operators of the published server use.

    Returns only the settings that are set, as keyword arguments for
    :class:`ServerSettings`, so command-line flags can override them.
    """
    env = os.environ if env is None else env
    found: dict[str, Any] = {}
    if env.get("JWT_SECRET_KEY"):
        found["jwt_secret"] = env["JWT_SECRET_KEY"]
    if "ALLOWED_EMAILS" in env:
        found["allowed_emails"] = parse_emails(env["ALLOWED_EMAILS"])
    for var, key in (("JWT_EXPIRY_DAYS", "jwt_expiry_days"),
                     ("MAGIC_LINK_EXPIRY_MINUTES", "magic_link_expiry_minutes"),
                     ("MAGIC_LINK_RATE_LIMIT", "magic_link_rate_limit"),
                     ("ROOMZ_MAX_CONNECTIONS", "max_connections")):
        if env.get(var):
            found[key] = _int(var, env[var])
    if env.get("EMAIL_SENDER"):
        found["email_sender"] = env["EMAIL_SENDER"].strip().lower()
    if env.get("REDIS_URL"):
        found["redis_url"] = env["REDIS_URL"]
    if env.get("ROOMZ_PUBLIC_URL"):
        found["public_url"] = env["ROOMZ_PUBLIC_URL"]
    smtp: dict[str, Any] = {}
    for var, key in (("SMTP_HOST", "host"), ("SMTP_USER", "user"),
                     ("SMTP_PASSWORD", "password"), ("SMTP_SENDER", "sender")):
        if env.get(var):
            smtp[key] = env[var]
    if env.get("SMTP_PORT"):
        smtp["port"] = _int("SMTP_PORT", env["SMTP_PORT"])
    if env.get("SMTP_STARTTLS"):
        smtp["starttls"] = _bool("SMTP_STARTTLS", env["SMTP_STARTTLS"])
    if smtp:
        found["smtp"] = smtp
    return found
