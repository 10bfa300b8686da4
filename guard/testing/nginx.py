"""nginx (Debian's package) as the load balancer in front of calguard replicas, for tests and
benchmarks: write a config into a private prefix folder, run nginx in the foreground as a child
process on a free 127.0.0.1 port, stop it.

    with run_nginx(["http://127.0.0.1:8001", "http://127.0.0.1:8002"]) as lb:
        httpx.get(f"{lb.url}/healthz")

What nginx may retry (``proxy_next_upstream error timeout``, nginx's default set, spelled out):
a request is passed to the next replica only when the connection to a replica could not be made
or timed out *before the request was sent*. A POST already sent to a replica that then dies is
never replayed (nginx leaves out non-idempotent requests unless told ``non_idempotent``): that
replica may have committed a flag record or counted the question in the shared planner, and a
replay would count it twice. The client gets a 502 instead, with an OpenAI-style error body
saying it may have been processed. GETs (``/v1/models``, ``/readyz``) are also retried after an
error or a timeout that cut them off.

Connections to the replicas are not kept alive between requests by default (``keepalive=0``): a
kept-alive connection that a dying or restarting replica closes at the moment nginx sends a POST
on it is a 502 nginx may not retry, whereas a fresh connection to a dead replica is refused and
retried on the next one. ``keepalive=N`` keeps N idle connections per worker (faster; see the
README for both, measured).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from guard.testing.servers import free_port

# nginx's own 502 / 504 (a replica gone, or too slow), as OpenAI-style errors. calguard's own
# replies (its 503 when the store is down, say) pass through untouched: without
# proxy_intercept_errors, error_page only covers what nginx itself generates.
BAD_GATEWAY = (
    '{"error": {"message": "no calguard replica answered this request; it may have been '
    'processed: repeat it only if that is safe", "type": "bad_gateway", "param": null, '
    '"code": "replica_unavailable"}}'
)
# A body over client_max_body_size, which nginx refuses before any replica sees it.
TOO_LARGE = (
    '{"error": {"message": "request body is over the limit of 512 MiB", '
    '"type": "invalid_request_error", "param": null, "code": null}}'
)
GATEWAY_TIMEOUT = (
    '{"error": {"message": "the calguard replica did not answer in time; the request may have '
    'been processed: repeat it only if that is safe", "type": "gateway_timeout", '
    '"param": null, "code": "replica_timeout"}}'
)


def nginx_binary() -> str | None:
    """The nginx executable (PATH, then /usr/sbin), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def render_config(
    backends: Sequence[str],
    port: int,
    *,
    keepalive: int = 0,
    workers: int = 1,
    read_timeout_s: int = 1900,
    show_replica: bool = True,
) -> str:
    """An nginx.conf balancing ``backends`` (``http://host:port`` URLs) on 127.0.0.1:``port``.
    Paths are relative to nginx's prefix (``-p``), so nothing outside it is written.
    ``show_replica``: each reply names the replica(s) nginx tried, in order
    (``x-calguard-replica``; for tests: it shows nginx routing around a dead one)."""
    servers = "\n".join(
        f"        server {urlsplit(b).netloc} max_fails=1 fail_timeout=10s;" for b in backends
    )
    idle = (
        f"        keepalive {keepalive};\n        keepalive_timeout 30s;  # < calguard's 65 s\n"
        if keepalive
        else ""
    )
    show = (
        "            add_header X-Calguard-Replica $upstream_addr always;\n" if show_replica else ""
    )
    return f"""worker_processes {workers};
lock_file nginx.lock;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    upstream calguard {{
        least_conn;
{servers}
{idle}    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 512m;        # a file upload's limit at OpenAI
        location / {{
            proxy_pass http://calguard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;          # streamed replies reach the client as they come
            proxy_connect_timeout 2s;
            proxy_read_timeout {read_timeout_s}s;
            # Retried on the next replica: only what was never sent (and GETs).
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 10s;
            error_page 502 @bad_gateway;
            error_page 504 @gateway_timeout;
            error_page 413 @too_large;
{show}        }}
        location @bad_gateway {{
            default_type application/json;
{show}
            return 502 '{BAD_GATEWAY}';
        }}
        location @too_large {{
            default_type application/json;
            return 413 '{TOO_LARGE}';
        }}
        location @gateway_timeout {{
            default_type application/json;
{show}
            return 504 '{GATEWAY_TIMEOUT}';
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """A running nginx: its base URL, process and prefix folder (config, logs, temp files)."""

    url: str
    process: subprocess.Popen[bytes]
    prefix: Path

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _prefix() -> Path:
    # nginx's workers run as 'nobody' when the master is root: they must reach the temp dirs.
    prefix = Path(tempfile.mkdtemp(prefix="calguard-nginx-"))
    prefix.chmod(0o755)
    (prefix / "tmp").mkdir()
    return prefix


class PortTakenError(RuntimeError):
    """nginx could not bind its port: another process took it after :func:`free_port`."""


def _wait_listening(proc: subprocess.Popen[bytes], port: int, prefix: Path, wait_s: float) -> None:
    """Until nginx listens: it writes its pid file once its sockets are bound (a connection
    alone could reach another process that took the port)."""
    import socket

    deadline = time.monotonic() + wait_s
    while True:
        if proc.poll() is not None:
            log = (prefix / "error.log").read_text(errors="replace")
            error = PortTakenError if "Address already in use" in log else RuntimeError
            raise error(f"nginx exited with status {proc.returncode}: {log[-2000:]}")
        if (prefix / "nginx.pid").exists():
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not listen on port {port} within {wait_s} s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # a worker left behind


@contextmanager
def run_nginx_config(
    config: str, port: int, *, wait_s: float = 30.0, keep_prefix: bool = False
) -> Iterator[Nginx]:
    """Run nginx in the foreground with ``config`` (which listens on ``port``); stopped (SIGQUIT,
    then SIGKILL) and its prefix removed on exit, also on failure. :class:`PortTakenError`:
    ``port`` is taken."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx)")
    prefix = _prefix()
    proc: subprocess.Popen[bytes] | None = None
    try:
        conf = prefix / "nginx.conf"
        conf.write_text(config)
        command = [
            binary, "-p", f"{prefix}/", "-c", str(conf),
            "-g", f"daemon off; master_process on; pid {prefix / 'nginx.pid'}; "
                  f"error_log {prefix / 'error.log'} warn;",
        ]  # fmt: skip
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        _wait_listening(proc, port, prefix, wait_s)
        yield Nginx(f"http://127.0.0.1:{port}", proc, prefix)
    finally:
        if proc is not None:
            _stop(proc)
        if not keep_prefix:
            shutil.rmtree(prefix, ignore_errors=True)


PORT_TRIES = 3


@contextmanager
def run_nginx(
    backends: Sequence[str], *, keepalive: int = 0, workers: int = 1, port: int | None = None
) -> Iterator[Nginx]:
    """nginx balancing ``backends`` on a free 127.0.0.1 port (see :func:`render_config`); on
    another one when a process took it before nginx could bind it (several test runs share the
    machine)."""
    with contextlib.ExitStack() as stack:
        for attempt in range(PORT_TRIES):
            chosen = port or free_port()
            config = render_config(backends, chosen, keepalive=keepalive, workers=workers)
            try:
                nginx = stack.enter_context(run_nginx_config(config, chosen))
            except PortTakenError:
                if port is not None or attempt == PORT_TRIES - 1:
                    raise
                continue
            break
        yield nginx
