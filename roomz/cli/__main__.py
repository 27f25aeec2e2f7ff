"""``roomz-cli``: chat in the terminal, host bots from a TOML file, or both in one command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from . import DEFAULT_RECONNECT_MAX_DELAY

if TYPE_CHECKING:
    from pathlib import Path

    from roomz_bots.config import Config

    from .app import ChatApp

DEFAULT_SERVER = "http://localhost:8000"
EPILOG = """\
examples:
  roomz-cli                                   chat on http://localhost:8000
  roomz-cli -s https://chat.example.com       chat on another server
  roomz-cli --config bots.toml                chat, and host the bots of bots.toml
  roomz-cli --headless --config bots.toml     only the bots, until Ctrl-C or SIGTERM
  roomz-cli --embedded --config config.example.toml
                                              a server of your own in this process, signed
                                              in already: type !roll 2d6

in the terminal: /help lists the commands; Alt+Enter starts a new line; Ctrl-D quits.
"""


class CommandLine(argparse.ArgumentParser):
    """argparse, with every mistake said in one line (exit status 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        """Say what was wrong and where to look, then exit 2."""
        self.exit(2, f"{self.prog}: {message} ({self.prog} --help shows the options)\n")


def build_parser() -> CommandLine:
    """The ``roomz-cli`` command line."""
    p = CommandLine(prog="roomz-cli", epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    description="Chat on a Roomz server and host bots.")
    p.add_argument("--server", "-s", metavar="URL",
                   help=f"server URL (default: the config's server_url, else {DEFAULT_SERVER})")
    p.add_argument("--config", metavar="FILE",
                   help="TOML file of bots to host (see config.example.toml)")
    p.add_argument("--headless", action="store_true",
                   help="run the config's bots without the terminal, until SIGINT/SIGTERM")
    p.add_argument("--embedded", action="store_true",
                   help="start a Roomz server inside this process on a free loopback port "
                        "and sign in to it automatically (email: $ROOMZ_EMAIL or "
                        "<you>@roomz.local)")
    p.add_argument("--reconnect-max-delay", metavar="SECONDS", type=seconds,
                   help="the longest wait between two attempts to reach the server, which "
                        "the terminal makes for as long as it runs (default: the config's "
                        "[client] reconnect_max_delay, else "
                        f"{DEFAULT_RECONNECT_MAX_DELAY:g})")
    return p


def seconds(text: str) -> float:
    """A positive number of seconds, for ``--reconnect-max-delay``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a server's address, with the fix; None when it is fine."""
    if not url or any(c.isspace() for c in url):
        return "a server URL has no spaces, such as http://localhost:8000"
    if "://" not in url:
        return f"a server URL starts with http:// or https://: did you mean http://{url}?"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return f"{parts.scheme}:// is not for Roomz servers: use http:// or https://"
    if not parts.hostname:
        return f"it names no host, such as {parts.scheme}://localhost:8000"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        return f"the port must be a number from 1 to 65535, such as {parts.scheme}://" \
               f"{parts.hostname}:8000"
    return None


async def run(args: argparse.Namespace, config: Config | None) -> int:
    """Run the terminal, or the bots alone, against the chosen or the embedded server.

    The server is ``--server``, else the config's, else :data:`DEFAULT_SERVER`; hosted bots
    join it (the config itself is left as it was read).
    """
    server_url = args.server or (config.server_url if config else DEFAULT_SERVER)
    if not args.embedded:
        return await (_headless(config, server_url) if args.headless
                      else _app(args, server_url, config).run())
    from .embedded import embedded_server, local_email

    async with embedded_server(local_email()) as (url, session_file):
        if args.headless:
            return await _headless(config, url, session_file)
        return await _app(args, url, config, session_file=session_file).run()


def _app(args: argparse.Namespace, server_url: str, config: Config | None,
         session_file: Path | None = None) -> ChatApp:
    from .app import ChatApp
    from .history import history_file

    # The flag, else the config's [client] reconnect_max_delay (where the config has it).
    delay = args.reconnect_max_delay or getattr(config, "reconnect_max_delay", None)
    return ChatApp(server_url, config=config, history=history_file(), session_file=session_file,
                   reconnect_max_delay=delay or DEFAULT_RECONNECT_MAX_DELAY)


async def _headless(config: Config | None, server_url: str,
                    session_file: Path | None = None) -> int:
    from roomz_bots.runner import run_headless

    assert config is not None
    return await run_headless(config, server_url, session_cache_file=session_file)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``roomz-cli``; mistakes in the command line or config exit 2, one line."""
    args = build_parser().parse_args(argv)
    if args.headless and not args.config:
        print("roomz-cli: --headless needs --config FILE", file=sys.stderr)
        sys.exit(2)
    if args.server is not None and (problem := url_problem(args.server)):
        print(f"roomz-cli: -s {args.server}: {problem}", file=sys.stderr)
        sys.exit(2)
    if args.headless:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:  # warnings show above the prompt, one line each, instead of breaking into it
        from .app import TerminalLog

        logging.basicConfig(level=logging.WARNING, handlers=[TerminalLog()])
    from roomz_bots.config import ConfigError, load_config

    try:
        config = load_config(args.config) if args.config else None
        if config is not None and args.server is None and (
                problem := url_problem(config.server_url)):
            raise ConfigError(f"{config.path}: [client] server_url {config.server_url}: "
                              f"{problem}")
        # Plugin settings are checked when the bots are built, inside run().
        sys.exit(asyncio.run(run(args, config)))
    except ConfigError as exc:
        print(f"roomz-cli: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
