"""A private PostgreSQL server for tests and benchmarks: its own data folder under /tmp, its own
free 127.0.0.1 port, run in the foreground as a child process, so that a test can stop it
("the database goes down") and start it again on the same data and port, without touching the
machine's own cluster.

    with private_postgres() as pg:     # initdb + start; stopped and removed on exit
        url = pg.url                    # postgresql://postgres@127.0.0.1:PORT/postgres
        pg.stop()                       # fast shutdown (SIGINT): sessions end, data kept
        pg.start()                      # the same data folder, the same port

PostgreSQL refuses to run as root: as root, the server and ``initdb`` run as the ``postgres``
OS user (``subprocess``'s ``user=``/``group=``), in a folder owned by it. The binaries are found
with ``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``. ``fsync`` is off: a
fast shutdown writes everything out anyway, and only a crash of the machine would need it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from guard.testing.servers import free_port

OS_USER = "postgres"
NEEDED = ("initdb", "postgres", "pg_isready")


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries, or no way to run them here (the message says which)."""


def bindir() -> Path | None:
    """The folder holding ``initdb``, ``postgres`` and ``pg_isready``, or None."""
    found = shutil.which("pg_config")
    if found:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([found, "--bindir"], capture_output=True, text=True, timeout=10)
            path = Path(out.stdout.strip())
            if all((path / name).exists() for name in NEEDED):
                return path

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.parent.name.split(".") if x.isdigit())

    dirs = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if all((p / n).exists() for n in NEEDED)
    ]
    return max(dirs, key=version) if dirs else None


def _run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to the postgres OS user ({} when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError as exc:
        raise PostgresUnavailableError(
            f"running as root and there is no {OS_USER!r} OS user to run PostgreSQL as"
        ) from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class PrivatePostgres:
    """One private server: :meth:`init` once, then :meth:`start` / :meth:`stop` at will;
    :meth:`close` stops it and removes its folder."""

    def __init__(self, port: int | None = None, wait_s: float = 60.0) -> None:
        self.bin = bindir()
        if self.bin is None:
            raise PostgresUnavailableError(
                "no PostgreSQL server binaries (initdb, postgres, pg_isready): neither "
                "pg_config --bindir nor /usr/lib/postgresql/*/bin has them (Debian: apt-get "
                "install postgresql)"
            )
        self.as_user = _run_as()
        self.port = port or free_port()
        self.wait_s = wait_s
        self.base = Path(tempfile.mkdtemp(prefix="calguard-pg-"))
        self.data = self.base / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        if self.as_user:
            os.chown(self.base, self.as_user["user"], self.as_user["group"])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def log(self) -> str:
        path = self.base / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def init(self) -> PrivatePostgres:
        """``initdb``: superuser ``postgres``, trust authentication, no fsync (a test cluster)."""
        assert self.bin is not None
        done = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-sync", "--no-instructions"],
            cwd=self.base, capture_output=True, text=True, timeout=self.wait_s, **self.as_user,
        )  # fmt: skip
        if done.returncode != 0:
            raise PostgresUnavailableError(f"initdb failed: {(done.stderr or done.stdout)[-800:]}")
        return self

    def start(self) -> PrivatePostgres:
        """Start the server on its data folder and port; returns once it accepts connections."""
        assert self.bin is not None
        assert self.process is None
        self._log = open(self.base / "postgres.log", "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.base), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "max_connections=200"],
            cwd=self.base, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True, **self.as_user,
        )  # fmt: skip
        self._wait_ready()
        return self

    def _accepting(self) -> bool:
        """``pg_isready``: does the server accept connections yet? (No driver needed.)"""
        assert self.bin is not None
        done = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", "postgres", "-t", "2"],
            capture_output=True, timeout=30,
        )  # fmt: skip
        return done.returncode == 0

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                code = self.process.returncode
                self._reap()
                raise PostgresUnavailableError(f"postgres exited ({code}): {self.log()}")
            if self._accepting():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise PostgresUnavailableError(
                    f"postgres did not accept connections within {self.wait_s} s: {self.log()}"
                )
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: SIGINT, every session ended, data written out;
        ``immediate``: SIGQUIT); returns once the process has exited."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
            try:
                proc.wait(self.wait_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(self.wait_s)
        self._reap()

    def _reap(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # any backend left behind
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def private_postgres(port: int | None = None) -> Iterator[PrivatePostgres]:
    """A started private server (see the module docstring); stopped and removed on exit."""
    pg = PrivatePostgres(port)
    try:
        yield pg.init().start()
    finally:
        pg.close()
