"""A TCP forwarder on 127.0.0.1 that can be cut and restored: a database "going down" and
"coming back" for tests and benchmarks, without stopping the real server.

    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/db"
    proxy.stop()   # every connection is reset and new ones are refused
    proxy.start()  # the same port accepts again
    proxy.blackhole()  # the open connections go silent (what they carry is dropped, never
                       # answered nor reset: a network that drops packets, a frozen server);
                       # new ones are forwarded
"""

from __future__ import annotations

import contextlib
import socket
import threading

from guard.testing.servers import free_port


class TcpProxy:
    """Forwards every connection to ``target``; :meth:`stop` cuts them all."""

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._silent: set[socket.socket] = set()  # what these carry is dropped
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)  # accept() wakes up to see stop()
        self._listener = listener
        self._spawn(self._accept, listener)
        return self

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(t)
        t.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # stopped
            client.settimeout(None)
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, server))
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if src not in self._silent:
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def blackhole(self) -> None:
        """Every open connection goes silent both ways: its bytes are read and dropped, it is
        neither answered nor closed. Connections made afterwards are forwarded."""
        with self._lock:
            self._silent.update(self._conns)

    def stop(self) -> None:
        """Refuse new connections and reset every open one; waits for the threads (bounded)."""
        listener, self._listener = self._listener, None
        if self._threads:
            self._threads[0].join(10)  # the accept loop: after it, no new connection is added
        threads, self._threads = self._threads, []
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
            self._silent.clear()
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(10)
        for s in conns:
            s.close()
