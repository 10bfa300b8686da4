"""What a large prompt costs everyone else: one chat request whose text a pii policy reads, and
meanwhile ``GET /healthz`` asked every 10 ms, side by side with the policies run on the event
loop and in a worker thread (``guard.checks.OFF_LOOP_BYTES``).

    python -m bench.large_prompt [--mb 16] [--runs 3]

A real calguard on 127.0.0.1 in front of the fake upstream. Printed per mode: the large
request's seconds and the health checks' median and worst latency while it ran (medians over
``--runs``). On the event loop, every request waits as long as the policies read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time

import httpx

import guard.checks
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

PII = {"type": "pii", "action": "flag", "on": "prompt"}
UNIT = "lorem ipsum dolor sit amet bob@example.com 555-0100 "


def body(size: int) -> bytes:
    text = (UNIT * (size // len(UNIT) + 1))[:size]
    return json.dumps({"model": "p", "messages": [{"role": "user", "content": text}]}).encode()


def one_run(url: str, payload: bytes) -> tuple[float, float, float]:
    """(seconds of the large request, median and worst health-check latency meanwhile)."""
    waits: list[float] = []
    done = threading.Event()

    def ping() -> None:
        with httpx.Client(timeout=600) as client:
            while not done.is_set():
                t = time.perf_counter()
                client.get(f"{url}/healthz")
                waits.append(time.perf_counter() - t)
                time.sleep(0.01)

    pinger = threading.Thread(target=ping)
    pinger.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/v1/chat/completions", content=payload, timeout=600)
    took = time.perf_counter() - t0
    done.set()
    pinger.join()
    r.raise_for_status()
    return took, statistics.median(waits), max(waits)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=16, help="the prompt's size in MB")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    payload = body(int(args.mb * 1_000_000))
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up, tempfile.TemporaryDirectory() as d:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{d}/b.db",
            routes={"p": RouteConfig(policies=[PII])},
        )
        with serve_in_thread(create_app(settings)) as url:
            print(f"{args.mb:g} MB prompt, pii | large request s | /healthz median ms | worst ms")
            rows: dict[str, list[tuple[float, float, float]]] = {"event loop": [], "thread": []}
            for _ in range(args.runs):  # the two modes interleaved, so both see the same machine
                for mode, limit in (("event loop", 10**12), ("thread", 1_000_000)):
                    guard.checks.OFF_LOOP_BYTES = limit
                    rows[mode].append(one_run(url, payload))
            for mode, got in rows.items():
                took, median, worst = (statistics.median(x) for x in zip(*got, strict=True))
                print(f"{mode} | {took:.2f} | {1000 * median:.1f} | {1000 * worst:.0f}")


if __name__ == "__main__":
    main()
