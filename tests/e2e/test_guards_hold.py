"""Issue 9 on the wire: client-chosen calibration keys live in the caller's namespace, a
per-request budget binds that request only, /metrics is not public, the whole request has a
deadline, and a client that goes away cancels the upstream calls made for it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from calibrators.planner import PermutationPlanner
from guard.calibrations import STATE_ENTRIES
from guard.config import Settings
from guard.server import create_app
from guard.store import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"
TWO = "Question: Yes?\nA. yes\nB. no\nAnswer:"
KEYS = ["sk-alice-0123456789", "sk-mallory-0123456789"]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'g.db'}",
            api_keys=KEYS,
            admin_key="sk-admin-0123456789",
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, tmp_path / "g.db"


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_a_client_chosen_key_cannot_poison_another_callers_state(
    proxy: tuple[str, Path],
) -> None:
    url, db = proxy
    alice, mallory = client(url, KEYS[0]), client(url, KEYS[1])
    guard = {"guard": {"task": "mcq", "calibration": "pride", "key": "victim"}}
    alice.chat.completions.create(model="m", messages=user(QUESTION), extra_body=guard)
    # Mallory sends a 2-option question and a huge budget under the same key name.
    mallory.chat.completions.create(
        model="m",
        messages=user(TWO),
        extra_body={"guard": {**guard["guard"], "budget": 1000, "calibration": "adaptive"}},
    )
    for _ in range(3):  # Alice's requests still work, on her own state
        r = alice.chat.completions.create(model="m", messages=user(QUESTION), extra_body=guard)
        assert r.choices[0].message.content in "ABCD"
    store = SQLiteStore(db)
    keys = store.keys()
    states = {k: store.load(k) for k in keys}
    store.close()
    assert len([k for k in keys if k.endswith("/victim")]) == 2  # one per caller
    assert not any(KEYS[0] in k or KEYS[1] in k for k in keys)  # a digest, never the key
    for state in states.values():
        for method, saved in (state or {}).items():
            if method not in STATE_ENTRIES:  # the key's traffic counts beside its planners
                assert PermutationPlanner.from_dict(saved).budget == 2.0  # never the request's
    alice.close()
    mallory.close()


def test_metrics_need_the_admin_key(proxy: tuple[str, Path]) -> None:
    url, _ = proxy
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert (
        httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEYS[0]}"}).status_code
        == 401
    )
    r = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer sk-admin-0123456789"})
    assert r.status_code == 200
    forged = "x%22%7D%201%0Aforged 42"
    httpx.get(f"{url}/{forged}")
    text = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer sk-admin-0123456789"}).text
    assert "forged" not in text  # labelled by route template, never the raw path


class Drip:
    """An upstream on loopback that answers headers at once, then one byte every ``gap`` s."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.port = free_port()
        self.connections = 0
        self.closed = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        body = b'{"id": "x", "choices": []}' * 10
        try:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
            )
            for i in range(len(body)):
                if self._stop.wait(self.gap):
                    break
                conn.sendall(body[i : i + 1])
        except OSError:
            pass
        finally:
            self.closed += 1
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def drip() -> Iterator[Drip]:
    d = Drip(0.2)
    yield d
    d.stop()


def test_the_whole_request_has_a_deadline(drip: Drip, tmp_path: Path) -> None:
    settings = Settings(
        upstream=f"http://127.0.0.1:{drip.port}/v1",
        store=f"sqlite:///{tmp_path / 'd.db'}",
        timeout_s=30,  # each read is quick, so only an overall deadline can stop it
        deadline_s=1.0,
    )
    with serve_in_thread(create_app(settings)) as url:
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "m", "messages": user("hi")},
            timeout=30,
        )
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "deadline_exceeded"  # not a per-read timeout
    assert drip.connections == 1  # one slow attempt, cut by the deadline


def test_a_client_that_goes_away_cancels_its_upstream_calls(drip: Drip, tmp_path: Path) -> None:
    settings = Settings(
        upstream=f"http://127.0.0.1:{drip.port}/v1", store=f"sqlite:///{tmp_path / 'c.db'}"
    )
    with serve_in_thread(create_app(settings)) as url:
        body = {"model": "m", "messages": user(QUESTION), "guard": {"calibration": "cyclic"}}

        async def go() -> None:
            async with httpx.AsyncClient(timeout=30) as c:
                task = asyncio.ensure_future(c.post(f"{url}/v1/chat/completions", json=body))
                for _ in range(100):  # until the four orders are being asked
                    if drip.connections >= 4:
                        break
                    await asyncio.sleep(0.05)
                task.cancel()  # the client goes away
                with pytest.raises(asyncio.CancelledError):
                    await task

        asyncio.run(go())
        for _ in range(100):  # the proxy drops the upstream connections it opened for it
            if drip.closed >= 4:
                break
            time.sleep(0.05)
    assert drip.connections == 4
    assert drip.closed >= 4
