"""Replicas on one store: 1, 2 and 3 ``calguard serve`` processes on SQLite (one host) and on
PostgreSQL, in front of the fake upstream, all on 127.0.0.1. The client spreads the requests
round-robin over the replicas (a stand-in for the load balancer: nginx is not installed here).
Each run mixes pass-through, calibrated MCQ (PriDe and adaptive, three keys) and flagged replies,
then checks what the issue asks: every key's planner counts exactly the questions acknowledged,
the upstream calls reported equal those the upstream saw, every acknowledged flag has exactly one
record, and no errors.

    python -m bench.replicas [--requests 6000] [--concurrency 64] [--replicas 1 2 3]
        [--pg postgresql://postgres@127.0.0.1/postgres]
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
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from guard.store import open_store
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread

TEMPLATES = ["Answer:", "Your answer:", "Reply with a letter:"]  # one calibration key each


def bodies() -> list[dict[str, Any]]:
    def mcq(tail: str, method: str) -> dict[str, Any]:
        text = f"Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\n{tail}"
        return {"model": "sim", "messages": [{"role": "user", "content": text}],
                "guard": {"calibration": method}}  # fmt: skip

    hello = [{"role": "user", "content": "hello there"}]
    return [
        {"model": "sim", "messages": hello},
        mcq(TEMPLATES[0], "pride"),
        mcq(TEMPLATES[1], "pride"),
        mcq(TEMPLATES[2], "adaptive"),
        {"model": "flagged", "messages": [{"role": "user", "content": "a long " * 20}]},
    ]


@contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    import psycopg

    name = f"calguard_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(admin)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def replicas(n: int, upstream: str, store: str, tmp: Path) -> Iterator[list[str]]:
    """``n`` calguard serve processes on one store; their base URLs."""
    ports = [free_port() for _ in range(n)]
    procs = []
    try:
        for port in ports:
            config = tmp / f"r{port}.yaml"
            config.write_text(
                f"upstream: {upstream}\nport: {port}\nstore: {store}\n"
                "routes:\n  flagged:\n    upstream_model: sim\n    policies:\n"
                "      - {type: max_length, params: {max_chars: 10}, on: response}\n"
            )
            procs.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "calguard"), "serve", "--config", str(config)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise RuntimeError(f"replica {url} did not start within 30 s")
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


async def load(urls: list[str], n: int, concurrency: int) -> dict[str, Any]:
    kinds = bodies()
    out: dict[str, Any] = {"errors": 0, "questions": Counter(), "calls": 0, "flag_ids": []}
    counter = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in counter:
                body = kinds[i % len(kinds)]
                try:
                    async with session.post(
                        f"{urls[i % len(urls)]}/v1/chat/completions",
                        data=json.dumps(body),
                        headers={"content-type": "application/json"},
                        timeout=aiohttp.ClientTimeout(total=120),
                    ) as r:
                        reply = await r.json()
                        rid = r.headers.get("x-calguard-request-id")
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    out["errors"] += 1
                    continue
                if r.status != 200:
                    out["errors"] += 1
                    continue
                g = reply.get("guard")
                if g and "key" in g:  # a calibrated question (a flagged reply has no key)
                    out["questions"][(g["key"], g["calibration"])] += 1
                    out["calls"] += g["upstream_calls"]
                else:
                    out["calls"] += 1
                if body["model"] == "flagged":
                    out["flag_ids"].append(rid)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out["seconds"] = time.perf_counter() - t0
    return out


def check(store_url: str, run: dict[str, Any], upstream_seen: int) -> list[str]:
    """What does not add up (empty: everything does)."""
    problems = []
    store = open_store(store_url)
    try:
        for (key, method), sent in run["questions"].items():
            state = store.load(key) or {}
            started = state.get(method, {}).get("started")
            if started != sent:
                problems.append(f"{key} {method}: started {started}, questions answered {sent}")
        recorded = Counter(f["request_id"] for f in store.flags())
        acknowledged = Counter(run["flag_ids"])
        if recorded != acknowledged:
            problems.append(f"flags: {sum(recorded.values())} records for {len(acknowledged)} acks")
    finally:
        store.close()
    if run["calls"] != upstream_seen:
        problems.append(f"upstream calls: reported {run['calls']}, seen {upstream_seen}")
    if run["errors"]:
        problems.append(f"{run['errors']} errors")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    state = FakeUpstreamState(SimulatedResponder())
    print(f"# {args.requests:,} requests at concurrency {args.concurrency} per run; "
          f"{os.cpu_count()} cores shared by the client, the fake upstream, the replicas "
          "and PostgreSQL")  # fmt: skip
    print("| store | replicas | req/s | errors | checks |")
    print("|---|---|---|---|---|")
    with serve_in_thread(create_fake_upstream(state)) as up:
        for kind in ("sqlite", "postgresql"):
            for n in args.replicas:
                with ExitStack() as stack:
                    if kind == "sqlite":
                        store = f"sqlite:///{tmp / f'{n}-{uuid.uuid4().hex[:6]}.db'}"
                    else:
                        store = stack.enter_context(fresh_database(args.pg))
                    urls = stack.enter_context(replicas(n, f"{up}/v1", store, tmp))
                    before = len(state.requests)
                    run = asyncio.run(load(urls, args.requests, args.concurrency))
                    problems = check(store, run, len(state.requests) - before)
                    rate = args.requests / run["seconds"]
                    print(f"| {kind} | {n} | {rate:.0f} | {run['errors']} | "
                          f"{'; '.join(problems) or 'all add up'} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
