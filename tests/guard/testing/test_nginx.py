"""nginx in front of replicas, as ``guard.testing.nginx`` configures it: a POST that reached a
replica which died before answering is a 502 with an OpenAI-style body, never replayed on
another replica; a POST that could not reach one (refused) and a GET cut off are retried."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.nginx import render_config, run_nginx
from guard.testing.servers import free_port, serve_in_thread

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class DyingReplica:
    """Accepts a connection, reads the request, and closes it without answering: a replica
    that dies in the middle of a request. Counts the requests it got."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.got: list[bytes] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                self.got.append(data.split(b"\r\n", 1)[0])

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def dying() -> Iterator[DyingReplica]:
    replica = DyingReplica()
    try:
        yield replica
    finally:
        replica.close()


@pytest.fixture
def healthy() -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as url:
        yield url, state


def test_a_post_that_reached_a_dying_replica_is_a_502_and_not_replayed(
    nginx_bin: str, dying: DyingReplica, healthy: tuple[str, FakeUpstreamState]
) -> None:
    url, state = healthy
    with run_nginx([dying.url, url]) as lb, httpx.Client(timeout=30) as client:
        statuses = []
        for _ in range(2):  # in turn: one of the two goes to the dying replica
            r = client.post(f"{lb.url}/v1/chat/completions", json=CHAT)
            statuses.append(r.status_code)
            if r.status_code == 502:
                error = r.json()["error"]
                assert error["code"] == "replica_unavailable"
                assert "may have been processed" in error["message"]
                assert r.headers["x-calguard-replica"] == dying.url.removeprefix("http://")
            assert len(state.requests) == statuses.count(200)  # the 502 was not replayed
        assert sorted(statuses) == [200, 502]
        assert dying.got == [b"POST /v1/chat/completions HTTP/1.1"]
        # nginx now leaves the dead replica out (max_fails=1): the next ones are answered.
        for _ in range(3):
            assert client.post(f"{lb.url}/v1/chat/completions", json=CHAT).status_code == 200
        assert len(dying.got) == 1


def test_a_refused_post_and_a_cut_get_are_retried_on_the_next_replica(
    nginx_bin: str, dying: DyingReplica, healthy: tuple[str, FakeUpstreamState]
) -> None:
    url, state = healthy
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with run_nginx([refused, url]) as lb, httpx.Client(timeout=30) as client:
        for _ in range(2):
            assert client.post(f"{lb.url}/v1/chat/completions", json=CHAT).status_code == 200
        assert len(state.requests) == 2  # the refused one went on to the live replica
    with run_nginx([dying.url, url]) as lb, httpx.Client(timeout=30) as client:
        for _ in range(2):
            r = client.get(f"{lb.url}/v1/models")
            assert r.status_code == 200
            assert r.json()["data"]
        assert dying.got == [b"GET /v1/models HTTP/1.1"]  # tried, cut off, retried elsewhere


def test_the_config_retries_only_what_is_safe() -> None:
    text = render_config(["http://127.0.0.1:1", "http://127.0.0.1:2"], 8080)
    assert "proxy_next_upstream error timeout;" in text
    assert "non_idempotent" not in text
    assert "server 127.0.0.1:1 " in text
    assert "server 127.0.0.1:2 " in text
    assert "keepalive " not in text  # no kept-alive connection to a replica by default
    assert "keepalive 16;" in render_config(["http://127.0.0.1:1"], 8080, keepalive=16)
