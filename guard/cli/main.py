"""The ``calguard`` command line: one subcommand per module of this package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from guard.cli import demo, eval_offline, flags, serve
from guard.errors import ConfigError
from guard.evaluation.recorded import RecordedFormatError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calguard", description="Calibrate and guard LLM outputs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (eval_offline, serve, demo, flags):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, RecordedFormatError, ConfigError) as exc:
        print(f"calguard: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
