"""Running ASGI apps on 127.0.0.1 in a background thread (tests, demo, benchmarks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from guard.config import KEEP_ALIVE_S
from guard.http_protocol import WS, Protocol
from guard.testing.ports import free_port

__all__ = ["free_port", "serve_in_thread"]


@contextmanager
def serve_in_thread(app: Any, port: int | None = None, timeout_s: float = 20.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1; yields the base URL; stops on exit."""
    port = port or free_port()
    # The standard asyncio loop whatever else is installed (uvloop comes with litellm[proxy]):
    # tests then behave the same on every machine.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
        loop="asyncio",
        timeout_keep_alive=KEEP_ALIVE_S,
        http=Protocol,
        ws=WS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
