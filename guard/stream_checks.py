"""Streaming that fails closed: response policies see the text before the client does.

The upstream's SSE events are parsed as they arrive (:mod:`guard.sse`) and held back: an event is
released only once every choice's text after it is at least ``holdback`` characters long (or,
with ``holdback=None``, only after the whole answer was checked). Policies run on each choice's
text so far at every event. A block ends the stream with an SSE error event and the flag record;
the blocked text is never sent. A redacting verdict cannot take back text already released, so
on a stream it blocks too. Prompt-side verdicts only go into the record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from guard import sse
from guard.checks import Checks, violation
from guard.endpoints import Endpoint
from policies import Action, Context, Policy, Verdict, run_policies

Log = Callable[[Any], Awaitable[Any]]


MAX_WORD = 64  # a tail longer than this without a space is checked as it stands


def settled(text: str) -> int:
    """How much of a streamed text the next delta cannot change the reading of: up to its last
    whitespace (a word cut at a token boundary, "ass" + "istant", is not yet a word)."""
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
    return len(text) if len(text) - cut > MAX_WORD else cut


def _stops(policies: Sequence[Policy], texts: dict[int | str, str]) -> Verdict | None:
    for text in texts.values():
        for v in run_policies(policies, Context("response", text[: settled(text)])):
            if v.action == Action.BLOCK or v.redacted is not None:
                return v
    return None


async def checked_stream(
    upstream: AsyncIterator[bytes],
    policies: Sequence[Policy],
    checks: Checks,
    endpoint: Endpoint,
    log: Log,
    holdback: int | None,
) -> AsyncIterator[bytes]:
    """The upstream's stream, released as the policies allow; ``log(response)`` commits the
    flag record (before the rest is released, or with the block)."""
    reader = sse.EventReader()
    texts: dict[int | str, str] = {}
    pending: list[tuple[bytes, dict[int | str, int]]] = []  # (event, {choice: its length after it})

    def take(event: sse.Event) -> None:
        ends: dict[int | str, int] = {}
        for index, text in endpoint.deltas(event.json()):
            texts[index] = texts.get(index, "") + text
            ends[index] = len(texts[index])
        pending.append((event.raw, ends))

    async def blocked(verdict: Verdict) -> bytes:
        err = violation(verdict, "response (stream)", checks.request_id)
        if verdict not in checks.response_verdicts:
            checks.response_verdicts.append(verdict)
        await log({**err.to_body(), "withheld": texts})
        return sse.encode(err.to_body())

    async for chunk in upstream:
        for event in reader.feed(chunk):
            take(event)
        verdict = _stops(policies, texts)
        if verdict is not None:
            yield await blocked(verdict)
            return
        if holdback is not None:
            while pending and all(
                settled(texts[i]) - end >= holdback for i, end in pending[0][1].items()
            ):
                yield pending.pop(0)[0]
    for event in reader.close():
        take(event)
    # The whole answer, once per choice: this decides the record and the release of the rest.
    stop = None
    for text in texts.values():
        _, block = checks.run(policies, Context("response", text))
        stop = stop or block
    stop = stop or next((v for v in checks.response_verdicts if v.redacted is not None), None)
    if stop is not None:
        yield await blocked(stop)
        return
    if checks.flags:
        await log({"streamed_text": texts})
    for raw, _ in pending:
        yield raw
