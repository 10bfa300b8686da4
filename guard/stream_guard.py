"""Streaming that fails closed: response policies see the text before the client does.

The upstream's SSE events are parsed as they arrive and held back: an event is released only
once the text after it is at least ``holdback`` characters long (or, with ``holdback=None``, only
after the whole answer was checked). Policies run on the text so far at every event. A block
ends the stream with an SSE error event and the flag record; the blocked text is never sent.
A redacting verdict cannot take back text already released, so on a stream it blocks too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from guard.guarding import Checks, violation
from policies import Action, Context, Policy, run_policies


def _delta_text(event: bytes) -> str:
    out = []
    for line in event.splitlines():
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            continue
        for choice in obj.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                out.append(content)
    return "".join(out)


def _stops(policies: Sequence[Policy], text: str) -> Any:
    for v in run_policies(policies, Context("response", text)):
        if v.action == Action.BLOCK or v.redacted is not None:
            return v
    return None


async def guarded_stream(
    upstream: AsyncIterator[bytes],
    policies: Sequence[Policy],
    checks: Checks,
    log: Callable[..., Awaitable[int | None]],
    holdback: int | None,
    request_id: str,
) -> AsyncIterator[bytes]:
    buf = b""
    text = ""
    pending: list[tuple[bytes, int]] = []  # (event, length of the text once it is included)

    async def blocked(verdict: Any) -> bytes:
        err = violation(verdict, "response (stream)", request_id)
        checks.verdicts.append(verdict)
        await log(key=None, response={**err.to_body(), "withheld": text})
        return f"data: {json.dumps(err.to_body())}\n\n".encode()

    async for chunk in upstream:
        buf += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            text += _delta_text(event)
            pending.append((event + b"\n\n", len(text)))
        verdict = _stops(policies, text)
        if verdict is not None:
            yield await blocked(verdict)
            return
        if holdback is not None:
            # An event goes out once all text up to its end is ``holdback`` characters behind
            # the checked text (events with no text before any text, e.g. the role, at once).
            safe = max(len(text) - holdback, 0)
            while pending and pending[0][1] <= safe:
                yield pending.pop(0)[0]
    if buf.strip():
        text += _delta_text(buf)
        pending.append((buf, len(text)))
    # The whole answer, once: this decides the record (flags) and the release of the rest.
    _, verdict = checks.run(policies, Context("response", text))
    stop = verdict or next((v for v in checks.verdicts if v.redacted is not None), None)
    if stop is not None:
        yield await blocked(stop)
        return
    if checks.flags:
        await log(key=None, response={"streamed_text": text})
    for event, _ in pending:
        yield event
