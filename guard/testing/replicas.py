"""Several ``calguard serve`` processes on one store, for tests and benchmarks: each a real child
process on its own free 127.0.0.1 port, started together, one of them killable (SIGKILL), all
stopped on exit, also on failure.

    with run_replicas(3, upstream="http://127.0.0.1:9000/v1", store=pg_url) as group:
        group.urls                    # their base URLs, once each answers /healthz
        group.kill(0)                 # SIGKILL, reaped: its port refuses connections after this
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from guard.testing.servers import free_port

# The route the load mix sends its flagged requests to: every reply over 10 characters is flagged.
FLAGGED_ROUTE = (
    "routes:\n  flagged:\n    upstream_model: sim\n    policies:\n"
    "      - {type: max_length, params: {max_chars: 10}, on: response}\n"
)


@dataclass
class Replicas:
    """Running replicas: base URLs, processes and their logs' folder."""

    urls: list[str]
    processes: list[subprocess.Popen[bytes]]
    folder: Path
    logs: list[IO[bytes]] = field(default_factory=list)

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index`` (its whole process group) and reap it."""
        proc = self.processes[index]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def log(self, index: int) -> str:
        path = self.folder / f"replica-{index}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()  # uvicorn finishes what it serves, then exits
        for proc in self.processes:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for f in self.logs:
            f.close()


PORT_TAKEN = "address already in use"  # the OS's words (in calguard's or uvicorn's line), any case
RELAUNCHES = 3  # per replica: a free port taken by another process before the replica binds it


def _wait_healthy(group: Replicas, wait_s: float, relaunch: Callable[[int], None]) -> None:
    deadline = time.monotonic() + wait_s
    for i in range(len(group.urls)):
        tries = 0
        while True:
            if group.processes[i].poll() is not None:
                if PORT_TAKEN in group.log(i).lower() and tries < RELAUNCHES:
                    tries += 1
                    relaunch(i)  # on another free port
                    continue
                raise RuntimeError(f"replica {group.urls[i]} exited at start-up: {group.log(i)}")
            try:
                if httpx.get(f"{group.urls[i]}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {group.urls[i]} did not answer /healthz in {wait_s} s")
            time.sleep(0.1)


@contextmanager
def run_replicas(
    n: int, *, upstream: str, store: str, extra_config: str = FLAGGED_ROUTE, wait_s: float = 120
) -> Iterator[Replicas]:
    """``n`` ``calguard serve`` processes with one config (``upstream``, ``store``, and
    ``extra_config`` YAML), each on a free port; yields once every one answers ``/healthz``.
    A replica whose port another process took between :func:`free_port` and its bind (several
    test runs share the machine) is started again on another."""
    folder = Path(tempfile.mkdtemp(prefix="calguard-replicas-"))
    group = Replicas([], [], folder)

    def launch(i: int) -> None:
        port = free_port()
        config = folder / f"replica-{i}.yaml"
        config.write_text(f"upstream: {upstream}\nport: {port}\nstore: {store}\n{extra_config}")
        log = open(folder / f"replica-{i}.log", "wb")  # noqa: SIM115 (closed in stop)
        proc = subprocess.Popen(
            [sys.executable, "-m", "guard.cli", "serve", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        if i < len(group.processes):  # a relaunch: the old one has exited
            group.logs[i].close()
            group.logs[i], group.processes[i], group.urls[i] = log, proc, url
        else:
            group.logs.append(log)
            group.processes.append(proc)
            group.urls.append(url)

    try:
        for i in range(n):
            launch(i)
        _wait_healthy(group, wait_s, launch)
        yield group
    finally:
        group.stop()
        shutil.rmtree(folder, ignore_errors=True)
