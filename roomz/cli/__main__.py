"""``roomz-cli``: chat in the terminal, host bots from a TOML file, or both in one command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

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


def build_parser() -> argparse.ArgumentParser:
    """The ``roomz-cli`` command line."""
    p = argparse.ArgumentParser(prog="roomz-cli", epilog=EPILOG,
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
    return p


async def run(args: argparse.Namespace, config: Config | None) -> int:
    """Run the terminal, or the bots alone, against the chosen or the embedded server."""
    server_url = args.server or (config.server_url if config else DEFAULT_SERVER)
    if config is not None:
        config.server_url = server_url  # --server wins, for the hosted bots too
    if not args.embedded:
        return await (_headless(config) if args.headless else _terminal(server_url, config))
    from .embedded import embedded_server, local_email

    async with embedded_server(local_email()) as (url, session_file):
        if config is not None:
            config.server_url = url
            config.session_cache_file = session_file
        if args.headless:
            return await _headless(config)
        return await _app(url, config, session_file=session_file).run()


def _app(server_url: str, config: Config | None, session_file: Path | None = None) -> ChatApp:
    from .app import ChatApp
    from .history import history_file

    return ChatApp(server_url, config=config, history=history_file(), session_file=session_file)


async def _terminal(server_url: str, config: Config | None) -> int:
    return await _app(server_url, config).run()


async def _headless(config: Config | None) -> int:
    from roomz_bots.runner import run_headless

    assert config is not None
    return await run_headless(config)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``roomz-cli``; mistakes in the command line or config exit 2, one line."""
    args = build_parser().parse_args(argv)
    if args.headless and not args.config:
        print("roomz-cli: --headless needs --config FILE", file=sys.stderr)
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
        # Plugin settings are checked when the bots are built, inside run().
        sys.exit(asyncio.run(run(args, config)))
    except ConfigError as exc:
        print(f"roomz-cli: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
