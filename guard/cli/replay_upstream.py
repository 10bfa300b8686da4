"""``calguard replay-upstream FILE...``: recorded real-model outputs served as an upstream.

No key, no model: the ARC and SST-2 recordings of ``../shared/data/recorded`` answer as the
recorded models did, for any option order (:mod:`guard.testing.replay`). Point ``calguard serve
--upstream`` or ``calguard eval --base-url`` at it to reproduce the README's figures.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from guard.cli.listen import cannot_listen


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from guard.config import KEEP_ALIVE_S
    from guard.http_protocol import WS, Protocol
    from guard.testing.fake_upstream import create_fake_upstream
    from guard.testing.replay import replay_state

    try:
        state = replay_state(args.files)
    except ValueError as exc:
        print(f"calguard: error: {exc}", file=sys.stderr)
        return 2
    if (why := cannot_listen(args.host, args.port)) is not None:
        print(f"calguard: error: {why} (another server? pass --port)", file=sys.stderr)
        return 2
    print(
        f"calguard: replaying {', '.join(state.models)} (recorded outputs, not a live model) at "
        f"http://{args.host}:{args.port}/v1",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        create_fake_upstream(state),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        http=Protocol,
        ws=WS,
    )
    return 0


def add_parser(sub: Any) -> None:
    rp = sub.add_parser(
        "replay-upstream",
        help="serve recorded model outputs as an OpenAI-compatible upstream (no key, no model)",
        description="Serve recorded LLM outputs (../shared/data/recorded: one ARC file and/or "
        "the SST-2 file) as an OpenAI-compatible API with logprobs, answering any option order "
        "of a recorded question. Use it as calguard serve --upstream or calguard eval --base-url.",
    )
    rp.add_argument("files", nargs="+", metavar="FILE", help="recorded JSONL file(s)")
    rp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    rp.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    rp.set_defaults(func=run)
