"""``calguard serve`` as a real child process, for tests: start it, wait for it, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

CLI = [sys.executable, "-m", "guard.cli"]


def run_cli(
    args: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``calguard ARGS`` as a process that is expected to end by itself (bounded: 60 s)."""
    return subprocess.run(
        [*CLI, *args],
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@contextmanager
def calguard_serve(
    config: Path | None, port: int, env: Mapping[str, str], args: Sequence[str] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yields (base URL, process) once ``/healthz`` answers; a bounded wait of 90 s (a busy
    2-core machine can take long to import litellm). The process runs in its own process group,
    so worker processes are stopped with it."""
    command = [*CLI, "serve", *(["--config", str(config)] if config else []), *args]
    proc = subprocess.Popen(
        command,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"calguard serve exited early: {out[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
            if time.monotonic() > deadline:
                pytest.fail("calguard serve did not answer /healthz within 90 s")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # uvicorn stops its workers on SIGTERM
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of its group still running
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def fake_upstream_served(folder: Path) -> Iterator[str]:
    """``calguard serve --fake-upstream`` on a free port, its store in ``folder``, none of the
    caller's ``CALGUARD_*`` settings; yields its base URL."""
    from guard.testing.servers import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGUARD_")}
    args = ["--fake-upstream", "--port", str(port), "--store", f"sqlite:///{folder / 'c.db'}"]
    with calguard_serve(None, port, env, args) as (url, _):
        yield url
