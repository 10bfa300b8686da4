"""Replicas on one store: 1, 2 and 3 ``calguard serve`` processes on SQLite (one host, one file)
and on PostgreSQL, behind nginx (``--lb nginx``, the default) or spread round-robin by the
client itself (``--lb client``, no load balancer), in front of the zero-latency fake upstream,
all on 127.0.0.1, side by side in one run. Each run sends the replicas load
(``guard.testing.replica_load``: calibrated MCQ with PriDe and adaptive on three keys,
classification, flagged replies, pass-through) and checks what issue 12 asks: every key's
planner and prior estimator count exactly the questions acknowledged, the classifier its
inputs, every acknowledged flag has exactly one record, the upstream calls reported equal those
made, and no errors.

``--faults`` then runs the same load against 3 replicas behind nginx twice more: one replica
SIGKILLed half-way (on the PostgreSQL of ``--pg``), and a private PostgreSQL server (never the
one of ``--pg``) stopped a third of the way for ``--down-s`` seconds and started again.

    python -m bench.replicas [--requests 6000] [--concurrency 64] [--replicas 1 2 3]
        [--lb nginx client] [--stores sqlite postgresql] [--keepalive 0 16] [--faults]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from guard.store import open_store
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.nginx import run_nginx
from guard.testing.postgres_server import private_postgres
from guard.testing.replica_faults import AFTER_KILL, DOWN, READY, kill_replica, stop_database
from guard.testing.replica_load import MCQ, Load, check, load_sync, sentiment
from guard.testing.replicas import run_replicas
from guard.testing.servers import serve_in_thread


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


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def cpu_s(pids: list[int], with_children: bool = False) -> float:
    """CPU seconds (user + system) the processes have used so far (and their children's,
    which nginx's workers are)."""
    wanted = set(pids)
    if with_children:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if int(_stat(int(entry.name))[1]) in wanted:
                        wanted.add(int(entry.name))
    total = 0
    for pid in wanted:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def backends(store: str) -> list[int]:
    """The PostgreSQL server processes serving ``store``'s database (none for SQLite)."""
    if not store.startswith("postgresql"):
        return []
    import psycopg

    name = urlsplit(store).path.lstrip("/")
    with psycopg.connect(store, autocommit=True, connect_timeout=3) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return [int(r[0]) for r in rows]


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def latency_ms(load: Load) -> tuple[float, float]:
    times = sorted(s.seconds for s in load.sent if s.status == 200)
    if not times:
        return float("nan"), float("nan")
    return 1000 * statistics.median(times), 1000 * times[
        min(len(times) - 1, len(times) * 99 // 100)
    ]


def unacknowledged(load: Load, store_url: str) -> tuple[int, int]:
    """(failed requests whose flag the store recorded all the same, questions the planners
    counted beyond those acknowledged): what a replica did before it failed to answer."""
    keys = {s.kind: (s.guard or {}).get("key") for s in load.sent if s.status == 200}
    acked = Counter(s.kind for s in load.sent if s.status == 200)
    store = open_store(store_url)
    try:
        refs = {str(r["request"]["messages"][-1]["content"]).removeprefix("note ")
                for r in store.flags()}  # fmt: skip
        extra = 0
        for kind, (_, method) in MCQ.items():
            state = (store.load(str(keys.get(kind))) or {}).get(method, {})
            extra += int(state.get("started", 0)) - acked[kind]
    finally:
        store.close()
    flagged = sum(s.ref in refs for s in load.failed() if s.kind == "flagged")
    return flagged, extra


HEADER = (
    "| store | balancer | replicas | req/s | p50 ms | p99 ms | errors | checks | CPU ms per "
    "request: client + upstream / replicas / nginx / PostgreSQL = total | share of the cores |"
)


def one_run(args: argparse.Namespace, n: int, lb: str, keepalive: int, store: str, up: str,
            state: FakeUpstreamState) -> str:  # fmt: skip
    """One throughput run; its table row."""
    with ExitStack() as stack:
        group = stack.enter_context(run_replicas(n, upstream=up, store=store))
        target: Any = group.urls
        nginx_pids = []
        if lb == "nginx":
            nginx = stack.enter_context(run_nginx(group.urls, keepalive=keepalive))
            target, nginx_pids = nginx.url, [nginx.process.pid]
        replicas = [p.pid for p in group.processes]
        before = len(state.requests)
        cpu = [own_cpu_s(), cpu_s(replicas), cpu_s(nginx_pids, True)]
        db = {pid: cpu_s([pid]) for pid in backends(store)}
        load = load_sync(target, args.requests, args.concurrency)
        used = [own_cpu_s() - cpu[0], cpu_s(replicas) - cpu[1], cpu_s(nginx_pids, True) - cpu[2],
                sum(cpu_s([pid]) - db.get(pid, 0.0) for pid in backends(store))]  # fmt: skip
    problems = check(load, store, len(state.requests) - before)
    p50, p99 = latency_ms(load)
    per = [1000 * u / len(load.sent) for u in used]
    share = sum(used) / ((os.cpu_count() or 1) * load.seconds)
    if keepalive:
        lb += f" (keepalive {keepalive})"
    return (f"| {'sqlite' if store.startswith('sqlite') else 'postgresql'} | {lb} | {n} | "
            f"{len(load.sent) / load.seconds:.0f} | {p50:.1f} | {p99:.1f} | {len(load.failed())} | "
            f"{'; '.join(problems) or 'all add up'} | {' / '.join(f'{u:.2f}' for u in per)} = "
            f"{sum(per):.2f} | {100 * share:.0f} % |")  # fmt: skip


def throughput(args: argparse.Namespace, up: str, state: FakeUpstreamState, tmp: Path) -> None:
    print(HEADER)
    print("|---" * HEADER.count(" | ") + "|---|")
    for kind in args.stores:
        balancers = [(lb, k) for lb in args.lb for k in (args.keepalive if lb == "nginx" else [0])]
        for lb, keepalive in balancers:
            for n in args.replicas:
                with ExitStack() as stack:
                    if kind == "sqlite":
                        store = f"sqlite:///{tmp / f'{n}-{uuid.uuid4().hex[:6]}.db'}"
                    else:
                        store = stack.enter_context(fresh_database(args.pg))
                    print(one_run(args, n, lb, keepalive, store, up, state), flush=True)


def faults(args: argparse.Namespace, up: str, state: FakeUpstreamState) -> None:
    n = args.requests
    print(f"\n# faults: 3 replicas behind nginx, {n:,} requests at concurrency "
          f"{args.concurrency} (and as many as it takes to see the fault through)")  # fmt: skip
    with ExitStack() as stack:
        store = stack.enter_context(fresh_database(args.pg))
        group = stack.enter_context(run_replicas(3, upstream=up, store=store))
        lb = stack.enter_context(run_nginx(group.urls, keepalive=args.keepalive[0]))
        before = len(state.requests)
        fault = kill_replica(group, 0)
        load = load_sync(lb.url, n, args.concurrency, fault=fault, fault_at=n // 2, tail=n // 4)
        problems = check(load, store, len(state.requests) - before, exact=False)
        failed = Counter((s.status, s.code or s.error.split(":")[0]) for s in load.failed())
        flagged, extra = unacknowledged(load, store)
        after = load.statuses(AFTER_KILL)
        print(f"- SIGKILL of 1 of 3 replicas half-way: {len(load.sent):,} requests, failed "
              f"{dict(failed)} (all sent before the kill: "
              f"{all(s.phase == 0 for s in load.failed())}); after the kill {dict(after)}; "
              f"failed but counted by the dead replica: {flagged} flag records, {extra} "
              f"questions; checks: {'; '.join(problems) or 'all add up'}")  # fmt: skip
    with ExitStack() as stack:
        pg = stack.enter_context(private_postgres())
        store = f"{pg.url}?timeout_s=1"
        group = stack.enter_context(run_replicas(3, upstream=up, store=store))
        lb = stack.enter_context(run_nginx(group.urls, keepalive=args.keepalive[0]))
        before = len(state.requests)
        fault = stop_database(pg, group.urls, hold_s=args.down_s)
        load = load_sync(lb.url, n, args.concurrency, fault=fault, fault_at=n // 3, tail=n // 4)
        problems = check(load, pg.url, len(state.requests) - before, exact=False)
        statuses = Counter((s.status, s.code) for s in load.sent)
        down_pass = Counter(s.status for s in load.sent if s.phase == DOWN and s.kind == "pass")
        m = load.marks
        flagged, extra = unacknowledged(load, pg.url)
        print(f"- PostgreSQL stopped for {m['start'] - m['stop']:.1f} s: {len(load.sent):,} "
              f"requests, {dict(statuses)}; pass-through while down {dict(down_pass)}; every "
              f"replica ready {m['ready'] - m['start']:.1f} s after the start; after that "
              f"{dict(load.statuses(READY))}; 503 but counted: {flagged} flag records, {extra} "
              f"questions; checks: {'; '.join(problems) or 'all add up'}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--lb", nargs="+", choices=["nginx", "client"], default=["nginx"])
    ap.add_argument("--stores", nargs="+", choices=["sqlite", "postgresql"],
                    default=["sqlite", "postgresql"])  # fmt: skip
    ap.add_argument("--keepalive", type=int, nargs="+", default=[0],
                    help="nginx: idle connections kept per worker (0: none)")  # fmt: skip
    ap.add_argument("--faults", action="store_true", help="then a replica killed, PG stopped")
    ap.add_argument("--down-s", type=float, default=3.0, help="--faults: PostgreSQL down this long")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    state = FakeUpstreamState(SimulatedResponder(), text_responder=sentiment)
    print(f"# {args.requests:,} requests at concurrency {args.concurrency} per run; "
          f"{os.cpu_count()} cores shared by the client, the fake upstream, nginx, the replicas "
          f"and PostgreSQL; load average before: {os.getloadavg()[0]:.1f}")  # fmt: skip
    t0 = time.perf_counter()
    with serve_in_thread(create_fake_upstream(state)) as up:
        throughput(args, f"{up}/v1", state, tmp)
        if args.faults:
            faults(args, f"{up}/v1", state)
    print(f"\n# {time.perf_counter() - t0:.0f} s; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
