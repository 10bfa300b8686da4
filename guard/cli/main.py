"""The ``calguard`` command line: one subcommand per module of this package.

``calguard`` alone prints the full help on stderr and exits 2, as argparse does for any missing
argument (and as ruff and uv do): a script that calls it bare learns it did nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from guard.cli import (
    demo,
    eval_live,
    eval_offline,
    flags,
    migrate,
    record,
    replay_upstream,
    report,
    serve,
)
from guard.errors import ConfigError
from guard.evaluation.recorded import RecordedFormatError


def _version() -> str:
    try:
        return version("calguard")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calguard", description="Calibrate and guard LLM outputs."
    )
    parser.add_argument("--version", action="version", version=f"calguard {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (
        serve,
        flags,
        migrate,
        demo,
        eval_offline,
        eval_live,
        record,
        replay_upstream,
        report,
    ):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except (FileNotFoundError, RecordedFormatError, ConfigError) as exc:
        print(f"calguard: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (``calguard flags export | head``): stop quietly, as cat does, and
        # keep Python from reporting the pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


if __name__ == "__main__":
    sys.exit(main())
