"""A zero-latency OpenAI-compatible upstream for overhead benchmarks: a bare ASGI app that
answers every chat completion with the same body (an answer "B" with logprobs over A-D, so
calibrated MCQ requests work too). ``uvicorn bench.zero_upstream:app``"""

from __future__ import annotations

import json
import math
from typing import Any

_TOP = [
    {"token": t, "logprob": math.log(p), "bytes": None}
    for t, p in (("B", 0.4), ("C", 0.3), ("A", 0.2), ("D", 0.1))
]
BODY = json.dumps(
    {
        "id": "chatcmpl-zero",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "sim",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "B"},
                "logprobs": {
                    "content": [
                        {
                            "token": "B",
                            "logprob": _TOP[0]["logprob"],
                            "bytes": None,
                            "top_logprobs": _TOP,
                        }
                    ]
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51},
    }
).encode()
MODELS = b'{"object":"list","data":[{"id":"sim","object":"model","created":0,"owned_by":"x"}]}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body
        msg = await receive()
        more = msg.get("more_body", False)
    body = MODELS if scope["path"].endswith("/models") else BODY
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
