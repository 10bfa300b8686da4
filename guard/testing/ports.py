"""Ports for servers started by tests, benchmarks and the demo: never one another's.

Asking the kernel for a free port (``bind(("127.0.0.1", 0))``) and binding it later races
anyone else who asks meanwhile: the kernel hands out ports from its ephemeral range to every
such request and to every outgoing connection, so when tests run in several processes
(``pytest -n``) two of them can be given the same port, and a port a test keeps dead on
purpose (an upstream nobody answers on) can come alive as another process's server.

:func:`free_port` therefore takes ports outside the ephemeral range (where the kernel never
hands one out), below it or above it, from a slice of its own for each pytest-xdist worker,
in turn, checking each is free. A port it handed out is not handed out again by this process
until its whole slice has been used, so a dead port stays dead for the test that chose it.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
from collections.abc import Iterator

LOW = 20000  # the shared range starts here (or above the kernel's ephemeral range: _room)
_lock = threading.Lock()
_turns: Iterator[int] | None = None  # this process's slice, from a random place, round and round
_size = 0


def _ephemeral() -> tuple[int, int]:
    """The kernel's ephemeral range, both ends included."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split()[:2])
            return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; elsewhere the check below still catches a taken port


def _room() -> range:
    """The ports outside the ephemeral range that tests share: below it from LOW, or above it,
    whichever is larger (a machine may set its range low)."""
    low, high = _ephemeral()
    return max(range(LOW, max(LOW, low)), range(high + 1, 65536), key=len)


def _slice() -> range:
    """This process's own ports: its worker's share of :func:`_room`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker) if worker.isdigit() else 0
    room = _room()
    if len(room) < 64 * count:  # no room outside the ephemeral range: the kernel's choice
        return range(0)
    size = len(room) // count
    start = room.start + size * (index % count)
    return range(start, start + size)


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, and that no other test worker, and no
    port the kernel hands out, will take meanwhile."""
    global _turns, _size
    with _lock:
        if _turns is None:
            own = _slice()
            offset = random.randrange(len(own)) if own else 0  # two processes of a worker
            _turns, _size = itertools.cycle([*own[offset:], *own[:offset]]), len(own)
        for port in itertools.islice(_turns, _size):
            if _is_free(port):
                return port
    return _kernel_port()  # no slice, or every port of it taken: the kernel's choice
