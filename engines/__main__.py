"""Entry point of `python -m engines`."""

from __future__ import annotations

import logging
import sys

from engines.cli_parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the subcommand; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
