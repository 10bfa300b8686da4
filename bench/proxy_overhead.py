"""Added latency and throughput of calguard against the LiteLLM proxy, side by side, in one run.

    python -m bench.proxy_overhead [--requests 2000] [--seconds 20]

Processes, all on 127.0.0.1: a zero-latency upstream (``bench.zero_upstream``), and in front of
it ``calguard serve``, a bare FastAPI + aiohttp forwarding hop (``bench.bare_hop``: the limit
row, what no Python proxy on this stack beats) and the LiteLLM proxy (``litellm --config``,
offline with LITELLM_LOCAL_MODEL_COST_MAP=True). The load comes from this process (aiohttp:
httpx's async client saturates the cores first), at concurrency 1 and 32, against: the upstream
directly, the bare hop, calguard pass-through, calguard MCQ with PriDe (after the key's warm-up:
one upstream call each), and LiteLLM. Each cell is bounded in requests and in seconds.
Everything shares the machine's cores, load generator included: compare the rows with each
other, not with other machines.

Needs ``pip install 'litellm[proxy]'`` (not a test dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from guard.testing.servers import free_port

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


@contextmanager
def process(cmd: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``cmd``, wait until it answers on ``port``, stop it afterwards."""
    with tempfile.TemporaryFile() as log:
        yield from _run(cmd, port, env, log)


def _run(cmd: list[str], port: int, env: dict[str, str] | None, log: Any) -> Iterator[str]:
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{cmd[0]} exited: {log.read().decode()[-2000:]}")
            try:
                httpx.get(f"{url}/v1/models", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd} did not start on port {port}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def load(
    url: str,
    body: dict[str, Any],
    concurrency: int,
    requests: int,
    seconds: float,
    headers: dict[str, str],
) -> tuple[list[float], float, int]:
    """(latencies in s, wall time, errors): ``requests`` calls, ``concurrency`` at a time."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.monotonic() + seconds
    payload = json.dumps(body).encode()
    hdrs = {"content-type": "application/json", **headers}
    connector = aiohttp.TCPConnector(limit=concurrency)
    # aiohttp, not httpx: httpx's async client saturates this machine's cores first.
    async with aiohttp.ClientSession(connector=connector) as client:

        async def worker() -> None:
            nonlocal sent, errors
            while sent < requests and time.monotonic() < stop_at:
                sent += 1
                t0 = time.perf_counter()
                async with client.post(
                    f"{url}/v1/chat/completions", data=payload, headers=hdrs
                ) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, errors


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000, help="per cell, at most")
    ap.add_argument("--seconds", type=float, default=20.0, help="per cell, at most")
    args = ap.parse_args()
    py = sys.executable
    bindir = Path(py).parent
    up_port, cg_port, ll_port, hop_port = free_port(), free_port(), free_port(), free_port()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "litellm.yaml").write_text(
        "model_list:\n  - model_name: sim\n    litellm_params:\n      model: openai/sim\n"
        f"      api_base: http://127.0.0.1:{up_port}/v1\n      api_key: x\n"
        "litellm_settings:\n  num_retries: 0\n  telemetry: false\n"
    )
    master = "sk-" + secrets.token_hex(32)  # LiteLLM's proxy refuses to start without one
    offline = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_MASTER_KEY": master,
    }
    plain = {"model": "sim", "messages": [{"role": "user", "content": "hello"}]}
    mcq = {
        "model": "sim",
        "messages": [{"role": "user", "content": QUESTION}],
        "guard": {"calibration": "pride"},
    }
    with (
        process(
            [
                py,
                "-m",
                "uvicorn",
                "bench.zero_upstream:app",
                "--port",
                str(up_port),
                "--no-access-log",
                "--timeout-keep-alive",
                "65",
                "--log-level",
                "warning",
            ],
            up_port,
        ) as upstream,
        process(
            [
                str(bindir / "calguard"),
                "serve",
                "--upstream",
                f"{upstream}/v1",
                "--port",
                str(cg_port),
                "--store",
                f"sqlite:///{tmp / 'cg.db'}",
            ],
            cg_port,
        ) as calguard,
        process(
            [
                py,
                "-m",
                "uvicorn",
                "bench.bare_hop:app",
                "--port",
                str(hop_port),
                "--no-access-log",
                "--timeout-keep-alive",
                "65",
                "--log-level",
                "warning",
            ],
            hop_port,
            {"UPSTREAM": f"http://127.0.0.1:{up_port}/v1"},
        ) as hop,
        process(
            [
                str(bindir / "litellm"),
                "--config",
                str(tmp / "litellm.yaml"),
                "--port",
                str(ll_port),
                "--num_workers",
                "1",
            ],
            ll_port,
            offline,
        ) as litellm,
    ):
        for _ in range(8):  # the PriDe key's warm-up, so measured MCQ requests cost one call
            httpx.post(f"{calguard}/v1/chat/completions", json=mcq, timeout=30)
        targets = [
            ("direct (upstream)", upstream, plain, {}),
            ("bare FastAPI+aiohttp hop (limit)", hop, plain, {}),
            ("calguard pass-through", calguard, plain, {}),
            ("calguard MCQ-PriDe", calguard, mcq, {}),
            ("LiteLLM proxy", litellm, plain, {"Authorization": f"Bearer {master}"}),
        ]
        results: dict[tuple[str, int], tuple[float, float, float, int]] = {}
        for conc in (1, 32):
            for name, url, body, headers in targets:
                n = args.requests if conc > 1 else max(200, args.requests // 5)
                asyncio.run(load(url, body, conc, min(50, n), 5.0, headers))  # warm connections
                lat, wall, errors = asyncio.run(load(url, body, conc, n, args.seconds, headers))
                results[(name, conc)] = (
                    statistics.median(lat),
                    pct(lat, 0.99),
                    len(lat) / wall,
                    errors,
                )
    print(
        f"# proxy overhead on {os.cpu_count()} cores; {sys.version.split()[0]}; "
        f"up to {args.requests} requests or {args.seconds:g} s per cell"
    )
    print("| target | conc | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for conc in (1, 32):
        base50, base99 = results[("direct (upstream)", conc)][:2]
        for name, *_ in targets:
            p50, p99, rps, err = results[(name, conc)]
            print(
                f"| {name} | {conc} | {p50 * 1e3:.2f} | {p99 * 1e3:.2f} | "
                f"{(p50 - base50) * 1e3:.2f} | {(p99 - base99) * 1e3:.2f} | {rps:.0f} | {err} |"
            )
    for conc in (1, 32):
        base = results[("direct (upstream)", conc)][0]
        ll = results[("LiteLLM proxy", conc)]
        for name in ("calguard pass-through", "calguard MCQ-PriDe"):
            cg = results[(name, conc)]
            over = (cg[0] - base) / (ll[0] - base)
            print(
                f"concurrency {conc}: {name}: added p50 = {over:.2f} x LiteLLM's; "
                f"throughput = {cg[2] / ll[2]:.1f} x LiteLLM's"
            )
        hop_r = results[("bare FastAPI+aiohttp hop (limit)", conc)]
        cg = results[("calguard pass-through", conc)]
        print(
            f"concurrency {conc}: calguard pass-through vs the bare hop: added p50 "
            f"{(cg[0] - base) / max(hop_r[0] - base, 1e-9):.2f} x; throughput "
            f"{hop_r[2] / cg[2]:.2f} x below it"
        )


if __name__ == "__main__":
    main()
