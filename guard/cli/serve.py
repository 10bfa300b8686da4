"""``calguard serve``: the OpenAI-compatible proxy under uvicorn.

Everything that can be checked before the first request is checked before uvicorn starts, so a
mistake is one line on stderr and exit status 2: the settings (URLs included), the policies, the
providers, and the store (it is opened once and closed). ``--workers N`` runs N uvicorn worker
processes on one store: they build the app with :func:`guard.server.app_from_env` from the same
config file and ``CALGUARD_*`` variables, to which the flags are copied.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from guard.cli.listen import cannot_listen

# flag -> setting; each is also CALGUARD_<SETTING> for the worker processes
FLAGS = ("upstream", "upstream_key", "host", "port", "store")


@contextmanager
def fake_upstream(data: Path | None, said: list[str]) -> Iterator[str]:
    """The demo's simulated biased model on a free 127.0.0.1 port, in this process; yields its
    base URL (``.../v1``) and adds to ``said`` what to tell once start-up is sure. It knows the
    answers of the demo's questions."""
    from guard.cli.demo import load_questions
    from guard.testing.fake_upstream import (
        FakeUpstreamState,
        SimulatedResponder,
        create_fake_upstream,
    )
    from guard.testing.servers import serve_in_thread

    questions, source = load_questions(1_000_000, data)
    answers = {q: options[gold] for _, q, options, gold in questions}
    state = FakeUpstreamState(SimulatedResponder(answers=answers))
    with serve_in_thread(create_fake_upstream(state)) as url:
        said.append(
            f"calguard: --fake-upstream: a SIMULATED biased model (not an LLM: it prefers "
            f"option IDs B and C) at {url}/v1; it knows the answers to {source}; "
            "any model name works, other prompts are echoed"
        )
        yield f"{url}/v1"


@contextmanager
def replay_upstream(files: list[Path], said: list[str]) -> Iterator[str]:
    """Recorded model outputs (:mod:`guard.testing.replay`) on a free 127.0.0.1 port, in this
    process; yields its base URL (``.../v1``) and adds to ``said`` what to tell once start-up
    is sure."""
    from guard.testing.fake_upstream import create_fake_upstream
    from guard.testing.replay import replay_state
    from guard.testing.servers import serve_in_thread

    state = replay_state(files)
    with serve_in_thread(create_fake_upstream(state)) as url:
        said.append(
            f"calguard: --replay: recorded outputs of {', '.join(state.models)} (not a live "
            f"model) at {url}/v1; any model name works"
        )
        yield f"{url}/v1"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from guard.config import KEEP_ALIVE_S, Settings, load_settings
    from guard.config_errors import misspelled_env
    from guard.http_protocol import WS, Protocol
    from guard.server import create_app
    from guard.store import open_store

    config = args.config or os.environ.get("CALGUARD_CONFIG") or None
    overrides: dict[str, Any] = {name: getattr(args, name) for name in FLAGS}
    if args.data is not None and not args.fake_upstream:
        print("calguard: error: --data goes with --fake-upstream", file=sys.stderr)
        return 2
    if args.replay and (args.fake_upstream or args.upstream):
        print("calguard: error: --replay replaces --upstream and --fake-upstream", file=sys.stderr)
        return 2
    said: list[str] = []  # told once every check passed: a mistake stays one line on stderr
    with ExitStack() as stack:
        if args.replay:
            try:
                overrides["upstream"] = stack.enter_context(replay_upstream(args.replay, said))
            except ValueError as exc:
                print(f"calguard: error: --replay: {exc}", file=sys.stderr)
                return 2
        if args.fake_upstream:
            if args.upstream:
                print("calguard: error: --fake-upstream replaces --upstream", file=sys.stderr)
                return 2
            overrides["upstream"] = stack.enter_context(fake_upstream(args.data, said))
        for warning in misspelled_env(os.environ, Settings.model_fields):
            print(f"calguard: warning: {warning}", file=sys.stderr)
        settings = load_settings(config, overrides)
        if settings.needs_upstream() and not settings.upstream:
            print(
                "calguard: error: no upstream: pass --upstream URL (an OpenAI-compatible base "
                "URL, e.g. http://127.0.0.1:8000/v1), set CALGUARD_UPSTREAM, or try "
                "--fake-upstream",
                file=sys.stderr,
            )
            return 2
        app = create_app(settings)  # a bad policy or provider stops start-up here
        # The port after the settings (a mistake in the file is named whatever holds the port),
        # before the store (a port in use leaves no new store file behind).
        if (why := cannot_listen(settings.host, settings.port)) is not None:
            print(f"calguard: error: {why} (another server? pass --port)", file=sys.stderr)
            return 2
        open_store(settings.store).close()  # and so does a store that cannot be opened
        for line in said:
            print(line, file=sys.stderr, flush=True)
        common: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "log_level": "info",
            "access_log": args.access_log,
            "timeout_keep_alive": KEEP_ALIVE_S,  # longer than clients' pools keep idle ones
            "http": Protocol,  # uvicorn's, with OpenAI-style 400s for unparseable requests
            "ws": WS,  # no WebSocket: an upgrade request is an HTTP request (JSON answers)
        }
        if args.workers > 1:
            if config is not None:
                os.environ["CALGUARD_CONFIG"] = str(Path(config).resolve())
            for name, value in overrides.items():
                if value is not None:
                    os.environ[f"CALGUARD_{name.upper()}"] = str(value)
            uvicorn.run("guard.server:app_from_env", factory=True, workers=args.workers, **common)
        else:
            uvicorn.run(app, **common)
    return 0


def _workers(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("--workers must be 1 or more")
    return n


def add_parser(sub: Any) -> None:
    sv = sub.add_parser(
        "serve",
        help="run the OpenAI-compatible proxy",
        description="Run the proxy. Flags override CALGUARD_* environment variables, which "
        "override the YAML config file (--config, or CALGUARD_CONFIG).",
    )
    sv.add_argument("--upstream", help="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    sv.add_argument("--upstream-key", help="API key for the upstream (never logged)")
    sv.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default 8080)")
    sv.add_argument("--config", help="YAML config file (routes, timeouts, defaults)")
    sv.add_argument(
        "--store",
        help="sqlite:///path/c.db or postgresql://user@host/db (default sqlite:///calguard.db)",
    )
    sv.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="uvicorn worker processes sharing the store (default 1)",
    )
    sv.add_argument(
        "--fake-upstream",
        action="store_true",
        help="serve a simulated biased model in this process and use it as the upstream "
        "(no key, no network: to try the proxy)",
    )
    sv.add_argument(
        "--data",
        type=Path,
        help="with --fake-upstream: the data folder holding datasets/mmlu/test (e.g. "
        "../shared/data) whose answers the simulated model knows; default: a bundled sample",
    )
    sv.add_argument(
        "--replay",
        type=Path,
        action="append",
        metavar="FILE",
        help="serve recorded outputs (../shared/data/recorded: one ARC file and/or the SST-2 "
        "file) in this process and use them as the upstream: real model behaviour, no key "
        "(repeatable)",
    )
    sv.add_argument(
        "--access-log",
        action="store_true",
        help="log every request line (off by default: it costs latency)",
    )
    sv.set_defaults(func=run)
