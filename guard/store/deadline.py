"""A client-side bound on a call to a database server over a socket.

A database's own timeouts (PostgreSQL's ``statement_timeout``, ``lock_timeout``) are enforced by
the server: when the connection goes silent (a network that drops packets, a stalled proxy, a
frozen or failed-over server) nothing ever answers, and a blocking driver waits forever in its
worker thread. :class:`Watchdog` cuts such a connection: past its deadline, the socket under a
call is shut down, so the driver's wait ends at once with its own "connection lost" error and
the pool replaces the connection.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def cut(fd: int) -> None:
    """Shut down the socket behind ``fd`` both ways (the driver keeps its descriptor: its next
    read sees the end of the stream). Never raises."""
    with contextlib.suppress(OSError):
        s = socket.socket(fileno=os.dup(fd))
        try:
            s.shutdown(socket.SHUT_RDWR)
        finally:
            s.close()


class Armed:
    """One armed call: ``cut`` says whether the watchdog cut its connection."""

    cut = False


class Watchdog:
    """One daemon thread for every call armed with :meth:`bound`. A call that ends before its
    deadline is disarmed before it returns, under the same lock the cut takes: a connection
    given back to its pool is never cut afterwards. The watchdog holds a descriptor of its own
    for the socket it was armed for: the driver closes its one when the server drops the
    connection (libpq does, before the call returns), and a socket opened meanwhile may take
    that number; the cut reaches the armed socket, never that one."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, int, Armed]] = {}  # token -> (deadline, fd, call)
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = float("inf")  # when the thread looks next
        self._closed = False

    @contextmanager
    def bound(self, fd: int, seconds: float | None) -> Iterator[Armed]:
        """Cut ``fd``'s connection if the block has not ended within ``seconds`` (None: no
        bound)."""
        armed = Armed()
        if seconds is None:
            yield armed
            return
        held = None
        with contextlib.suppress(OSError):  # none to spare, or fd closed: nothing to cut
            held = os.dup(fd)  # this socket's, whatever takes the number fd later
        if held is None:
            yield armed
            return
        token = next(self._tokens)
        deadline = time.monotonic() + seconds
        with self._cond:
            self._armed[token] = (deadline, held, armed)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif deadline < self._wakes_at:
                self._cond.notify()
        try:
            yield armed
        finally:
            with self._cond:
                self._armed.pop(token, None)
            os.close(held)

    def close(self) -> None:
        """Stop the thread (calls still armed are no longer bounded)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for token, (deadline, fd, armed) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        armed.cut = True
                        cut(fd)
                self._wakes_at = min((d for d, _, _ in self._armed.values()), default=float("inf"))
                self._cond.wait(None if self._wakes_at == float("inf") else self._wakes_at - now)
