"""The differential harness: one request as exact bytes, to the raw upstream
(:mod:`tests.e2e.raw_upstream`) and to a real calguard in front of it, and both answers."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.raw_upstream import RawUpstream, Reply, exchange, raw_upstream

KEY = "sk-upstream-differential-0123456789"
CHAT = (
    b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop","logprobs":null}]}'
)
CHUNK = (
    b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}'
)
ASK = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
ASK_STREAM = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
SSE = (b"content-type", b"text/event-stream")
FRAMING = (b"content-length", b"transfer-encoding")  # calguard frames its own answer


@dataclass
class Pair:
    up: RawUpstream
    calguard: str

    def both(self, req: bytes, answer: bytes | list[bytes] | None = None) -> tuple[Reply, Reply]:
        """``req`` sent to the upstream, then through calguard (the upstream answering
        ``answer`` to its target, when given): the two answers."""
        if answer is not None:
            target = req.split(b" ")[1].split(b"?")[0].removeprefix(b"/v1")
            self.up.answers[target] = answer
        direct = exchange(self.up.url, req)
        return direct, exchange(self.calguard, req)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@contextmanager
def calguard_in_front(db: Path, **settings: Any) -> Iterator[Pair]:
    """A raw upstream, and calguard (the key :data:`KEY`, no retries) in front of it."""
    with raw_upstream() as up:
        s = Settings(upstream=f"{up.url}/v1", upstream_key=KEY, max_attempts=1,
                     store=f"sqlite:///{db}", **settings)  # fmt: skip
        with serve_in_thread(create_app(s)) as url:
            yield Pair(up, url)
