"""Whether a server can listen where it is asked to, said before uvicorn starts: a port in use
is a start-up mistake like the others (one line on stderr, exit status 2), not uvicorn's
traceback-less ``[Errno 98]`` and exit status 3 after calguard has said where it listens."""

from __future__ import annotations

import socket


def cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (a port in use, an address not on this machine),
    or None. Bound and released at once, as uvicorn binds it (``SO_REUSEADDR``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None
