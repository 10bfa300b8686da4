"""guard/store/deadline.py: the watchdog cuts the connection it was armed for, and only it."""

from __future__ import annotations

import socket
import time

import pytest

from guard.store import deadline
from guard.store.deadline import Watchdog


def _past_every_deadline(dog: Watchdog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog's clock jumps past every deadline, and it looks at once."""
    real = time.monotonic
    monkeypatch.setattr(deadline.time, "monotonic", lambda: real() + 10_000)
    with dog._cond:
        dog._cond.notify()


def _wait_cut(call: deadline.Armed) -> None:
    for _ in range(500):  # bounded: the watchdog looks as soon as it is notified
        if call.cut:
            return
        time.sleep(0.01)
    raise AssertionError("the watchdog never cut the call")


def test_a_silent_connection_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    dog = Watchdog("test-watchdog")
    ours, peer = socket.socketpair()
    try:
        with dog.bound(ours.fileno(), 1000) as call:
            _past_every_deadline(dog, monkeypatch)
            _wait_cut(call)
            assert ours.recv(1) == b""  # the driver's wait ends: the stream is over
    finally:
        dog.close()
        ours.close()
        peer.close()


def test_a_cut_never_reaches_a_socket_that_took_the_number_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libpq closes its socket when the server drops the connection, before the call returns
    and disarms: a socket opened meanwhile (a client's, the upstream's) takes the number. Before,
    the watchdog shut that socket down; now it holds the one it was armed for."""
    dog = Watchdog("test-watchdog")
    ours, ours_peer = socket.socketpair()
    number = ours.fileno()
    other = other_peer = None
    try:
        with dog.bound(number, 1000) as call:
            ours.close()  # as libpq does on a dropped connection
            other, other_peer = socket.socketpair()
            assert number in (other.fileno(), other_peer.fileno())  # the number taken again
            _past_every_deadline(dog, monkeypatch)
            _wait_cut(call)
        other.sendall(b"x")
        assert other_peer.recv(1) == b"x"  # before: BrokenPipeError, the other socket shut
        other_peer.sendall(b"y")
        assert other.recv(1) == b"y"
        assert ours_peer.recv(1) == b""  # the connection armed for was cut
    finally:
        dog.close()
        for s in (ours, ours_peer, other, other_peer):
            if s is not None:
                s.close()
