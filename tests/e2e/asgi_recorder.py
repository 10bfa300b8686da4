"""A raw ASGI upstream that records each request (method, raw path, body) and answers 200 with
the JSON body its :meth:`Recorder.answer` gives for it."""

from __future__ import annotations

from typing import Any


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    def answer(self, body: bytes) -> bytes:
        """The answer's JSON body for a request with ``body``: an empty object of kind x."""
        return b'{"id": "x", "object": "x"}'

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        self.seen.append((scope["method"], scope["raw_path"].decode(), body))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": self.answer(body)})
