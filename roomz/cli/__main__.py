"""``roomz-cli`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

EPILOG = """\
examples:
  roomz-cli --headless --config bots.toml    run the bots of bots.toml until Ctrl-C
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``roomz-cli`` command line."""
    p = argparse.ArgumentParser(prog="roomz-cli", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Chat on a Roomz server and host bots.")
    p.add_argument("--server", "-s", metavar="URL",
                   help="server URL (default: the config's server_url, else "
                        "http://localhost:8000)")
    p.add_argument("--config", metavar="FILE", help="TOML file of bots to host")
    p.add_argument("--headless", action="store_true",
                   help="run the config's bots without the terminal, until SIGINT/SIGTERM")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``roomz-cli``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.headless:
        print("roomz-cli: the interactive terminal is not built yet; use --headless --config FILE",
              file=sys.stderr)
        sys.exit(2)
    if not args.config:
        print("roomz-cli: --headless needs --config FILE", file=sys.stderr)
        sys.exit(2)
    from roomz_bots.config import ConfigError, load_config
    from roomz_bots.runner import run_headless

    try:
        config = load_config(args.config)
        if args.server:
            config.server_url = args.server
        sys.exit(asyncio.run(run_headless(config)))
    except ConfigError as exc:
        print(f"roomz-cli: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
