"""Streaming checks cost per character, from 1k to 100k characters of answer, in 1-character
events (the worst case: every event is a check), with span and whole-text policies on.

    python -m bench.stream_checks [--sizes 1000 10000 100000] [--repeats 3]
    python -m bench.stream_checks --shape tools --sizes 2000 4000 8000
    python -m bench.stream_checks --shape pieces --sizes 20000 40000 80000

Drives :func:`guard.stream_checks.checked_stream` in-process (no HTTP), so the figure is the
checks' own cost. Flat microseconds per event mean linear time. ``--shape tools``: one event
per tool call (``--sizes`` of them), each a text of its own; every text was checked after every
chunk (8,000 calls: 57 s). ``--shape pieces``: events of 900 characters; the text was kept as
one string grown by a copy every 32 events (72 MB: 43 s in the text alone). ``--shape
waiting``: a first event of n/10 tool calls, all but the last then grown, then n events of
content: each chunk rechecked every text the first event waited for (n = 40,000, 4.4 MB:
18.3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator

from guard.checks import Checks
from guard.endpoints import CHAT
from guard.stream_checks import checked_stream
from policies import build_policy

POLICIES = [
    build_policy({"type": "denylist", "params": {"words": ["forbidden", "secret"]},
                  "action": "block"}),
    build_policy({"type": "regex", "params": {"patterns": [r"\bcode-\d{4}\b"]},
                  "action": "block"}),
    build_policy({"type": "secrets", "action": "block"}),
    build_policy({"type": "max_length", "params": {"max_chars": 10**9}, "action": "block"}),
]  # fmt: skip
WORDS = "the quick brown fox jumps over the lazy dog and keeps on running "


def events(n: int) -> list[bytes]:
    text = (WORDS * (n // len(WORDS) + 1))[:n]
    out = []
    for ch in text:
        chunk = {"choices": [{"index": 0, "delta": {"content": ch}}]}
        out.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    return [*out, b"data: [DONE]\n\n"]


def tools(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        call = {"index": i, "function": {"arguments": '{"a": 1} '}}
        chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
        out.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    return [*out, b"data: [DONE]\n\n"]


def pieces(n: int) -> list[bytes]:
    chunk = {"choices": [{"index": 0, "delta": {"content": WORDS * 14}}]}
    return [b"data: " + json.dumps(chunk).encode() + b"\n\n"] * n + [b"data: [DONE]\n\n"]


def waiting(n: int) -> list[bytes]:
    def calls(pairs: list[tuple[int, str]]) -> bytes:
        delta = {"tool_calls": [{"index": i, "function": {"arguments": a}} for i, a in pairs]}
        return b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode()

    def content(text: str) -> bytes:
        chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
        return b"data: " + json.dumps(chunk).encode()

    k = n // 10
    out = [calls([(i, "x ") for i in range(k)]), content("cccc " * 60)]
    out += [calls([(i, "aaaa " * 60)]) for i in range(k - 1)]
    out += [content("b ") for _ in range(n)]
    return [e + b"\n\n" for e in out] + [b"data: [DONE]\n\n"]


SHAPES = {"chars": events, "tools": tools, "pieces": pieces, "waiting": waiting}


async def run(chunks: list[bytes]) -> float:
    async def upstream() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    async def log(_: object) -> None:
        return None

    t0 = time.perf_counter()
    async for _ in checked_stream(upstream(), POLICIES, Checks("b"), CHAT, log, 256):
        pass
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shape", choices=SHAPES, default="chars")
    args = ap.parse_args()
    print(f"| events ({args.shape}) | median s | µs per event |")
    print("|---|---|---|")
    for n in args.sizes:
        chunks = SHAPES[args.shape](n)
        times = [asyncio.run(run(chunks)) for _ in range(args.repeats)]
        med = statistics.median(times)
        print(f"| {n:,} | {med:.3f} | {med / n * 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
