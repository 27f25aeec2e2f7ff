"""``roomz-server``: run the reference server from the command line until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from .app import Server
from .settings import ServerSettings, SettingsError, SmtpSettings, parse_emails, settings_from_env

log = logging.getLogger("roomz.server")

EPILOG = """\
environment (flags win over these):
  JWT_SECRET_KEY             secret that signs session cookies (32+ characters). Unset: one is
                             generated and kept in the state directory, mode 0600.
  ALLOWED_EMAILS             comma-separated emails that may sign in. Unset: anyone, and only
                             while listening on loopback.
  JWT_EXPIRY_DAYS, MAGIC_LINK_EXPIRY_MINUTES, MAGIC_LINK_RATE_LIMIT, EMAIL_SENDER,
  ROOMZ_MAX_CONNECTIONS, ROOMZ_PUBLIC_URL, REDIS_URL, SMTP_HOST, SMTP_PORT, SMTP_STARTTLS,
  SMTP_USER, SMTP_PASSWORD, SMTP_SENDER   the same as the flags below.

examples:
  roomz-server                                   local use: loopback, any email, links in the log
  ALLOWED_EMAILS=me@example.com JWT_SECRET_KEY=... roomz-server --host 0.0.0.0 --email-sender smtp
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``roomz-server`` command line; every default is None so the environment can fill it."""
    p = argparse.ArgumentParser(
        prog="roomz-server", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the Roomz reference chat server (HTTP sign-in plus Socket.IO).",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default 8000)")
    p.add_argument("--allowed-emails", metavar="EMAILS",
                   help="comma-separated emails that may sign in (env ALLOWED_EMAILS)")
    p.add_argument("--jwt-expiry-days", type=int, metavar="DAYS",
                   help="how long a session lasts (default 30)")
    p.add_argument("--magic-link-expiry-minutes", type=int, metavar="MINUTES",
                   help="how long a sign-in link works (default 15)")
    p.add_argument("--magic-link-rate-limit", type=int, metavar="N",
                   help="sign-in links one email may request per hour (default 5)")
    p.add_argument("--email-sender", choices=["console", "smtp"],
                   help="console: write links to the log (default); smtp: mail them")
    p.add_argument("--smtp-host", help="SMTP server (default localhost)")
    p.add_argument("--smtp-port", type=int, help="SMTP port (default 587)")
    p.add_argument("--smtp-starttls", action=argparse.BooleanOptionalAction, default=None,
                   help="upgrade the SMTP connection with STARTTLS (default on)")
    p.add_argument("--smtp-user", help="SMTP user name, if the server wants one")
    p.add_argument("--smtp-password", help="SMTP password (prefer env SMTP_PASSWORD)")
    p.add_argument("--smtp-sender", metavar="ADDRESS",
                   help="From: address of sign-in mails (default roomz@localhost)")
    p.add_argument("--max-connections", type=int, metavar="N",
                   help="live connections before new ones are refused (default 1000)")
    p.add_argument("--public-url", metavar="URL",
                   help="base URL in sign-in links, when behind a proxy (default: as requested)")
    p.add_argument("--redis-url", metavar="URL",
                   help="redis://HOST:PORT/DB: share state and messages with other nodes on "
                        "this Redis (env REDIS_URL); without it the server runs alone")
    p.add_argument("--state-dir", type=Path, metavar="DIR",
                   help="where a generated JWT secret is kept (default ~/.local/state/roomz)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    return p


def settings_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> ServerSettings:
    """Merge defaults, the environment and the flags, in that order of strength."""
    values: dict[str, Any] = settings_from_env(env)
    smtp: dict[str, Any] = values.pop("smtp", {})
    flags = {k: v for k, v in vars(args).items() if v is not None and k != "log_level"}
    if "allowed_emails" in flags:
        flags["allowed_emails"] = parse_emails(flags["allowed_emails"])
    for key in [k for k in flags if k.startswith("smtp_")]:
        smtp[key.removeprefix("smtp_")] = flags.pop(key)
    values.update(flags)
    return ServerSettings(**values, smtp=SmtpSettings(**smtp))


async def serve(settings: ServerSettings) -> None:
    """Run a server until SIGINT or SIGTERM, then disconnect clients and return."""
    server = Server(settings)
    if server.settings.allowed_emails is None:
        log.warning("no ALLOWED_EMAILS: any email may sign in (allowed because %s is loopback)",
                    server.settings.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    await stop.wait()
    log.info("shutting down: closing %d connections", len(server.chat.connections))
    await server.stop()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it is installed (a faster event loop), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``roomz-server``; exits 2 with one line when settings are unusable."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from(args)
        run(serve(settings))
    except SettingsError as exc:
        print(f"roomz-server: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"roomz-server: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
