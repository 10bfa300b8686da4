"""The spool: flag records the store could not take after their answer had gone out.

A stream's record is committed at its end, when its text is already with the client; with the
store down, that record used to be lost (the stream ended in a ``store_unavailable`` event
instead of ``[DONE]``). It is written here instead, one JSON line per record, fsynced before
the stream ends, and moved into the store once the store answers again, by a thread of the
spool's own (:meth:`Spool.drain`, every 2 s once anything was spooled).

Each process appends to a file of its own (``<pid>-<random>.jsonl``); any process may drain
any file. Writers and the drainer take the file's ``flock``, and a writer that finds its file
drained and removed under it starts a new one, so no record is written into a removed file.
A write stopped part way is cut off again; what a pass could not move is written beside the file
and renamed over it; how far a pass got is marked beside the file after each insert, so a
drainer killed mid-pass moves at most one record twice (at least once, never lost).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from guard.errors import StoreUnavailableError
from guard.store.base import Store

log = logging.getLogger("calguard")
DEFAULT_DIR = "calguard-spool"


def spool_dir(store: Store, configured: str | None) -> Path:
    """Where a store's spool lives: ``spool_dir`` when set; beside a SQLite file
    (``calguard.db-spool``); else a folder of that store's own in ``calguard-spool`` in the
    working directory, named after its database (two proxies of two databases started in one
    directory never move each other's records). Made on first use only."""
    if configured:
        return Path(configured)
    path = getattr(store, "path", None)
    if isinstance(path, Path) and path.name != ":memory:":
        return path.with_name(path.name + "-spool")
    where = getattr(store, "where", None) or getattr(store, "url", None)
    if not isinstance(where, str):
        where = f"{type(store).__module__}.{type(store).__qualname__}"
    return Path(DEFAULT_DIR) / hashlib.sha256(where.encode()).hexdigest()[:16]


@contextmanager
def _locked(f: IO[Any], blocking: bool = True) -> Iterator[bool]:
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class Spool:
    """Records kept on local disk until ``store`` takes them: a thread moves them in every
    ``every_s`` seconds while any wait (from the start, if a previous run left some)."""

    def __init__(
        self, folder: Path, store: Store, every_s: float = 2.0, max_bytes: int = 1 << 30
    ) -> None:
        self.folder, self.store, self.every_s, self.max_bytes = folder, store, every_s, max_bytes
        self._mine: Path | None = None
        self._lock = threading.Lock()  # this process's writers, one line at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused: set[bytes] = set()  # records the store refused, said in the log once
        self._counted: dict[Path, tuple[Any, int]] = {}  # count()'s lines per file, by its stat
        if self.waiting:  # a previous run's records
            self._start()

    def _start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="calguard-spool", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                if self.waiting:  # read from the folder: a flag set by put() and cleared by a
                    self.drain()  # drain could be cleared just after another put()
            except Exception:  # a store plugin's own failure: tried again next time
                log.exception("spool %s: draining failed", self.folder)

    def close(self) -> None:
        """Stop the thread (what waits stays on disk, for the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def waiting(self) -> bool:
        """Any record on disk (this process's or another's)."""
        try:
            return any(self.folder.glob("*.jsonl"))
        except OSError:
            return False

    def put(self, record: dict[str, Any]) -> None:
        """Append ``record`` durably, or raise ``OSError`` (then it is not kept): also when the
        folder would grow past ``max_bytes``, so a store down for long does not fill the disk
        that others share."""
        line = json.dumps(record, ensure_ascii=False, default=str).encode() + b"\n"
        with self._lock:
            if self._size() + len(line) > self.max_bytes:
                raise OSError(f"the spool {self.folder} is full ({self.max_bytes} bytes)")
            while True:
                if self._mine is None:
                    self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # prompts
                    name = f"{os.getpid()}-{secrets.token_hex(4)}.jsonl"
                    self._mine = self.folder / name
                with open(self._mine, "ab", buffering=0, opener=_own) as f, _locked(f):
                    if not _same(self._mine, f):  # drained and removed since: a new file
                        self._mine = None
                        continue
                    _append(f.fileno(), line)
                self._start()
                return

    def _drain_file(self, path: Path, f: IO[bytes]) -> int:
        """Move one locked file's records in; the number moved. How far the moved lines go is
        marked beside the file after each insert, so a drainer killed mid-pass moves at most
        one record twice (the one between its insert and its mark), not the whole pass."""
        lines = [line for line in f.read().splitlines() if line.strip()]
        inode = os.fstat(f.fileno()).st_ino
        mark = path.with_name(f".{path.name}.done")
        start = _read_mark(mark, inode)
        kept: list[bytes] = []
        moved = 0
        for i in range(start, len(lines)):
            line = lines[i]
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("spool %s: a line cut short is skipped", path)
            else:
                try:
                    self.store.add_flag(record)
                except StoreUnavailableError:
                    kept += lines[i:]
                    break
                except Exception:  # kept: a record the store refuses is not dropped
                    self._refused_once(path, line)
                    kept.append(line)
                    continue
                moved += 1
            if not kept:  # the lines up to here are all in (or cut short): marked
                _write_mark(mark, inode, i + 1)
        # The mark goes first: left behind a file removed or replaced, it could match a later
        # file that got the freed inode and skip its records; a kill right here moves this
        # pass's records twice instead.
        mark.unlink(missing_ok=True)
        if kept:  # never in place: a rewrite cut short (a kill, a full disk) loses them
            _replace(path, b"".join(line + b"\n" for line in kept))
        else:
            path.unlink()
        return moved

    def _refused_once(self, path: Path, line: bytes) -> None:
        """Say a refused record in the log the first time only (tried again at every drain)."""
        digest = hashlib.sha256(line).digest()
        if digest in self._refused:
            log.debug("spool %s: the store refused a record again; kept", path)
            return
        self._refused.add(digest)
        log.exception("spool %s: the store refused a record; kept, tried again each drain", path)

    def count(self) -> int:
        """Records waiting (lines in every file; a file read again only when it changed: asked
        at every ``/readyz`` while records wait)."""
        n, counted = 0, {}
        for path in self._files():
            try:
                st = path.stat()
                seen = (st.st_ino, st.st_size, st.st_mtime_ns)
                if self._counted.get(path, (None, 0))[0] != seen:
                    with open(path, "rb") as f:
                        self._counted[path] = (seen, sum(1 for line in f if line.strip()))
                counted[path] = self._counted[path]
                n += counted[path][1]
            except OSError:
                continue
        self._counted = counted  # files gone are forgotten
        return n

    def _size(self) -> int:
        size = 0
        for path in self._files():
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        return size

    def _files(self) -> list[Path]:
        try:
            return sorted(self.folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return []

    def drain(self) -> int:
        """Move every record it can into the store (oldest file first); the number moved. A
        store still down stops it, the rest kept for the next call; a record the store refuses
        otherwise stays, said in the log. Blocks: a store thread."""
        moved = 0
        for path in self._files():
            try:
                f = open(path, "r+b")  # noqa: SIM115  # closed by the with below
            except OSError:  # drained by another process meanwhile
                continue
            with f, _locked(f, blocking=False) as mine:
                if not mine or not _same(path, f):
                    continue
                for orphan in path.parent.glob(f".{path.name}.*.tmp"):  # a rewrite killed
                    orphan.unlink(missing_ok=True)  # before its rename: the file is whole
                moved += self._drain_file(path, f)
        if moved:
            log.info("spool: %d flag records moved into the store", moved)
        return moved


def _read_mark(mark: Path, inode: int) -> int:
    """How many of the file's lines an earlier pass moved (0: no mark, or a mark of a file that
    was replaced since)."""
    try:
        seen, done = mark.read_text().split()
        return int(done) if int(seen) == inode else 0
    except (OSError, ValueError):
        return 0


def _write_mark(mark: Path, inode: int, done: int) -> None:
    with open(mark, "wb", buffering=0, opener=_own) as f:
        f.write(f"{inode} {done}\n".encode())
        os.fsync(f.fileno())


def _own(path: str, flags: int) -> int:
    """Open a spool file readable by its owner only: it holds prompts and answers."""
    return os.open(path, flags, 0o600)


def _append(fd: int, data: bytes) -> None:
    """Append ``data`` whole and fsynced, or nothing: a write stopped short (a full disk) is cut
    off again, else the next record would be written onto its end and both lines be lost."""
    start = os.lseek(fd, 0, os.SEEK_END)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise


def _replace(path: Path, data: bytes) -> None:
    """Make ``data`` the content of ``path`` at once: written beside it, fsynced, renamed over it
    (a writer holding the old file sees it replaced and starts a new one)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb", buffering=0, opener=_own) as f:
            _append(f.fileno(), data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same(path: Path, f: IO[Any]) -> bool:
    """``f`` is still the file at ``path`` (not one drained and removed since it was opened)."""
    try:
        return os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False
