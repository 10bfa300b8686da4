"""guard.request_body: reading a request's body."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from guard.errors import ClientGoneError
from guard.request_body import read_body


def test_a_client_gone_before_its_body_came_is_a_client_gone_error() -> None:
    """Before: starlette's ClientDisconnect went up unhandled, and uvicorn logged 'Exception in
    ASGI application' with a traceback for a client that merely went away."""
    messages = [
        {"type": "http.request", "body": b'{"model":', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    with pytest.raises(ClientGoneError):
        asyncio.run(read_body(Request(scope, receive), 1000))
