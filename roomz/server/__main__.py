"""``roomz-server``: run the reference server from the command line until SIGINT or SIGTERM;
``roomz-server end-sessions EMAIL``: end every session of a user."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from .app import Server
from .session_records import SessionRecords, SqliteSessionRecords
from .settings import (
    ServerSettings,
    Setting,
    SettingsError,
    SmtpSettings,
    declared,
    default_state_dir,
    settings_from_env,
)
from .unavailable import StoreUnavailable
from .validation import is_valid_email, normalize_email

log = logging.getLogger("roomz.server")

END_SESSIONS = "end-sessions"
#: The settings that say where a server keeps its session records.
RECORDS_SETTINGS = ("state_dir", "redis_url")

EXAMPLES = """\
examples:
  roomz-server                                   local use: loopback, any email, links in the log
  ALLOWED_EMAILS=me@example.com JWT_SECRET_KEY=... ROOMZ_PUBLIC_URL=https://chat.example.com \\
    roomz-server --host 0.0.0.0 --email-sender smtp
  roomz-server end-sessions me@example.com       end every session of a user, the server
                                                 running or not (same --state-dir or --redis-url)
"""


def _epilog() -> str:
    """The variables without a flag of their own, read off the settings table, then examples."""
    lines = ["environment (flags win over these):",
             "  every flag marked [env NAME] may be set as the variable NAME instead"]
    unflagged = [how for _, how in declared(ServerSettings) if how.env and not how.flag]
    width = max(len(str(how.env)) for how in unflagged)
    lines += [f"  {how.env:<{width}}  {how.help}" for how in unflagged]
    return "\n".join(lines) + "\n\n" + EXAMPLES


def _add_flag(parser: argparse.ArgumentParser, name: str, how: Setting, default: Any) -> None:
    """One flag of the table; its value stays None unless given, so the environment can fill it."""
    shown = "" if default in (None, ()) else f" (default {_shown(default)})"
    env = f" [env {how.env}]" if how.env else ""
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                            help=how.help + shown + env)
        return

    def parse(text: str) -> Any:
        try:
            return how.read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, got {text!r}") from None

    parser.add_argument(flag, dest=name, type=parse, metavar=how.metavar, choices=how.choices,
                        help=how.help + shown + env)


def _shown(default: Any) -> str:
    return ("on" if default else "off") if isinstance(default, bool) else str(default)


def build_parser() -> argparse.ArgumentParser:
    """The ``roomz-server`` command line, one flag per setting of the table."""
    p = argparse.ArgumentParser(
        prog="roomz-server", epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the Roomz reference chat server (HTTP sign-in plus Socket.IO).",
    )
    for f, how in declared(ServerSettings):
        if how.flag:
            _add_flag(p, f.name, how, f.default)
    for f, how in declared(SmtpSettings):
        _add_flag(p, "smtp_" + f.name, how, f.default)
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    return p


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None
                  ) -> ServerSettings:
    """Merge defaults, the environment and the flags, in that order of strength."""
    values: dict[str, Any] = settings_from_env(env)
    smtp: dict[str, Any] = values.pop("smtp", {})
    flags = {k: v for k, v in vars(args).items() if v is not None and k != "log_level"}
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


def build_end_sessions_parser() -> argparse.ArgumentParser:
    """The ``roomz-server end-sessions`` command line: an email, and where the records are."""
    p = argparse.ArgumentParser(
        prog=f"roomz-server {END_SESSIONS}",
        description="End every session of a user: their cookies stop working at once, their "
                    "open connections end within the server's session check interval, and "
                    "they must sign in again. Use the state directory or Redis the server uses.",
    )
    p.add_argument("email", help="the user whose sessions end")
    for f, how in declared(ServerSettings):
        if f.name in RECORDS_SETTINGS:
            _add_flag(p, f.name, how, f.default)
    return p


async def end_sessions(email: str, settings: ServerSettings) -> None:
    """Move ``email`` to a new session version in the records the server of ``settings`` uses."""
    records: SessionRecords
    if settings.redis_url is None:
        records = SqliteSessionRecords.in_state_dir(settings.state_dir or default_state_dir())
        try:
            await records.open()
            await records.end_all(email)
        finally:
            await records.close()
        return
    from . import redis_state

    try:
        redis = redis_state.connect(settings.redis_url)
    except ValueError:
        raise SettingsError(f"REDIS_URL must look like redis://HOST:PORT/DB, "
                            f"got {settings.redis_url!r}") from None
    try:
        await redis_state.RedisSessionRecords(redis).end_all(email)
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"cannot reach Redis at {settings.redis_url}: {exc}") from exc
    finally:
        await redis.aclose()


def end_sessions_main(argv: Sequence[str]) -> None:
    """``roomz-server end-sessions EMAIL``: one line and exit 0, or one line and exit 2."""
    args = build_end_sessions_parser().parse_args(argv)
    email = normalize_email(args.email)
    try:
        if not is_valid_email(email):
            raise SettingsError(f"{args.email!r} is not an email address")
        values = settings_from_env()
        values.update({k: v for k, v in vars(args).items() if v is not None and k != "email"})
        settings = ServerSettings(**{k: v for k, v in values.items() if k in RECORDS_SETTINGS})
        asyncio.run(end_sessions(email, settings))
    except (SettingsError, StoreUnavailable) as exc:
        print(f"roomz-server {END_SESSIONS}: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"ended every session of {email}: they must sign in again")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``roomz-server``; exits 2 with one line when settings are unusable."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [END_SESSIONS]:
        end_sessions_main(argv[1:])
        return
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
