"""The ``calguard`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from guard.errors import ConfigError
from guard.evaluation.recorded import RecordedFormatError


def _eval_offline(args: argparse.Namespace) -> int:
    from guard.evaluation.offline import DEFAULT_BUDGETS, default_files, report

    files = [Path(f) for f in args.files] or default_files()
    budgets = tuple(args.budget) if args.budget else DEFAULT_BUDGETS
    for i, f in enumerate(files):
        if i:
            print()
        print(report(f, args.seeds, budgets), flush=True)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from guard.app import create_app
    from guard.config import load_settings

    settings = load_settings(
        args.config,
        {
            "upstream": args.upstream,
            "upstream_key": args.upstream_key,
            "host": args.host,
            "port": args.port,
            "store": args.store,
        },
    )
    if not settings.upstream:
        print(
            "calguard: error: no upstream: pass --upstream URL (an OpenAI-compatible base URL, "
            "e.g. http://127.0.0.1:8000/v1) or set CALGUARD_UPSTREAM",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=args.access_log,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from guard.demo import run_demo

    print(run_demo(args.questions), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calguard", description="Calibrate and guard LLM outputs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser(
        "eval-offline",
        help="evaluate every calibration method on recorded LLM outputs (no model, no network)",
        description=(
            "Replay recorded LLM output distributions through the calibrators and print one row "
            "per method. With no FILE, every file in ../shared/data/recorded is evaluated."
        ),
    )
    ev.add_argument("files", nargs="*", metavar="FILE", help="recorded JSONL file(s)")
    ev.add_argument(
        "--seeds", type=int, default=20, help="seeded arrival orders for online methods"
    )
    ev.add_argument(
        "--budget",
        type=float,
        action="append",
        help="adaptive budget(s) in calls per question (repeatable; default 1.5, 2, 3)",
    )
    ev.set_defaults(func=_eval_offline)
    sv = sub.add_parser(
        "serve",
        help="run the OpenAI-compatible proxy",
        description="Run the proxy. Flags override CALGUARD_* environment variables, which "
        "override the YAML config file.",
    )
    sv.add_argument("--upstream", help="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    sv.add_argument("--upstream-key", help="API key for the upstream (never logged)")
    sv.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default 8080)")
    sv.add_argument("--config", help="YAML config file (routes, timeouts, defaults)")
    sv.add_argument("--store", help="sqlite:///path/to/calguard.db (default sqlite:///calguard.db)")
    sv.add_argument(
        "--access-log",
        action="store_true",
        help="log every request line (off by default: it costs latency)",
    )
    sv.set_defaults(func=_serve)
    dm = sub.add_parser(
        "demo",
        help="a simulated biased model behind the proxy, with and without calibration (no key)",
    )
    dm.add_argument("--questions", type=int, default=300, help="MMLU questions to send")
    dm.set_defaults(func=_demo)
    from guard.flags_cli import add_parser

    add_parser(sub)
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
