"""Streaming checks cost per character, from 1k to 100k characters of answer, in 1-character
events (the worst case: every event is a check), with span and whole-text policies on.

    python -m bench.stream_checks [--sizes 1000 10000 100000] [--repeats 3]

Drives :func:`guard.stream_checks.checked_stream` in-process (no HTTP), so the figure is the
checks' own cost. Flat microseconds per character mean linear time.
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
    build_policy({"type": "max_length", "params": {"max_chars": 10_000_000}, "action": "block"}),
]  # fmt: skip
WORDS = "the quick brown fox jumps over the lazy dog and keeps on running "


def events(n: int) -> list[bytes]:
    text = (WORDS * (n // len(WORDS) + 1))[:n]
    out = []
    for ch in text:
        chunk = {"choices": [{"index": 0, "delta": {"content": ch}}]}
        out.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    return [*out, b"data: [DONE]\n\n"]


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
    args = ap.parse_args()
    print("| characters (1 per event) | median s | µs per character |")
    print("|---|---|---|")
    for n in args.sizes:
        chunks = events(n)
        times = [asyncio.run(run(chunks)) for _ in range(args.repeats)]
        med = statistics.median(times)
        print(f"| {n:,} | {med:.3f} | {med / n * 1e6:.1f} |")


if __name__ == "__main__":
    main()
