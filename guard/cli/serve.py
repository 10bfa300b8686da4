"""``calguard serve``: the OpenAI-compatible proxy under uvicorn."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from guard.config import KEEP_ALIVE_S, load_settings
    from guard.server import create_app

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
        timeout_keep_alive=KEEP_ALIVE_S,  # longer than clients' pools keep idle connections
    )
    return 0


def add_parser(sub: Any) -> None:
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
    sv.set_defaults(func=run)
