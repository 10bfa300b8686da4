"""A soak: 10,000 mixed requests at concurrency 64 against ``calguard serve`` in front of the
fake upstream, all on 127.0.0.1 — pass-through (plain and streamed), calibrated MCQ (PriDe and
adaptive) and flagged ones. Every 1,000 requests: errors, throughput, the proxy's RSS.

    python -m bench.soak [--requests 10000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


def bodies() -> list[dict[str, Any]]:
    user = [{"role": "user", "content": "hello there"}]
    mcq = [{"role": "user", "content": QUESTION}]
    return [
        {"model": "sim", "messages": user},
        {"model": "sim", "messages": user, "stream": True},
        {"model": "sim", "messages": mcq, "guard": {"calibration": "pride"}},
        {"model": "sim", "messages": mcq, "guard": {"calibration": "adaptive"}},
        {"model": "flagged", "messages": [{"role": "user", "content": "a long " * 20}]},
    ]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def load(url: str, pid: int, n: int, concurrency: int) -> None:
    kinds = bodies()
    sent = 0
    errors = 0
    window_start = time.perf_counter()
    lock = asyncio.Lock()
    print("| requests | errors | req/s (last 1,000) | calguard RSS MB |")
    print("|---|---|---|---|")
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal sent, errors, window_start
            while True:
                async with lock:
                    if sent >= n:
                        return
                    i = sent
                    sent += 1
                body = kinds[i % len(kinds)]
                try:
                    async with session.post(
                        f"{url}/v1/chat/completions",
                        data=json.dumps(body),
                        headers={"content-type": "application/json"},
                        timeout=aiohttp.ClientTimeout(total=60),
                    ) as r:
                        await r.read()
                        errors += r.status != 200
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                if (i + 1) % 1000 == 0:
                    now = time.perf_counter()
                    print(
                        f"| {i + 1:,} | {errors} | {1000 / (now - window_start):.0f} | "
                        f"{rss_mb(pid):.1f} |",
                        flush=True,
                    )
                    window_start = now

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        port = free_port()
        config = tmp / "soak.yaml"
        config.write_text(
            f"upstream: {up}/v1\nport: {port}\nstore: sqlite:///{tmp / 'soak.db'}\n"
            "routes:\n  flagged:\n    upstream_model: sim\n    policies:\n"
            "      - {type: max_length, params: {max_chars: 10}, on: response}\n"
        )
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "calguard"), "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    import httpx

                    if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print(f"# soak: {args.requests:,} requests at concurrency {args.concurrency}; "
                  f"{os.cpu_count()} cores, client + proxy + fake upstream share them")  # fmt: skip
            asyncio.run(load(url, proc.pid, args.requests, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
