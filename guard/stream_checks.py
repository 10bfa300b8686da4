"""Streaming that fails closed: response policies see the text before the client does.

The upstream's SSE events are parsed as they arrive (:mod:`guard.sse`) and held back: an event is
released only once every text it adds to (each choice's content, each tool call's arguments) has
at least ``holdback`` more characters after it that every policy able to end the stream has read
(or, with ``holdback=None``, only after the whole answer was checked); where every policy only
flags, none of them can end the stream, and an event goes out as it comes, but the one that
ends the answer (``[DONE]``, ``response.completed``) after the flag record. A block ends the stream
with an SSE error event and the flag record; the blocked text is never sent. A redacting verdict
cannot take back text already released, so on a stream it blocks too. Prompt-side verdicts only
go into the record.

The checks cost time linear in the length of the answer. Span policies (denylist, regex,
secrets, pii: their matches are local) look at each event's new settled text plus a window of
:data:`WINDOW` characters before it; other policies (a length, a refusal, a function) look at
the whole text each time it has grown by a quarter (where one of them may block, what they have
not read waits for them); one that judges only a whole answer (a JSON schema) reads it at the
end. Every policy sees the whole answer once at the end, which decides the record and the
release of what was held; a text that is JSON (a tool call's arguments) is then also read with
its strings decoded, as its client will read it. Text beside the answer (reasoning: an
:class:`~guard.endpoint_fields.Aside`) is read by span policies only.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from guard import sse
from guard.checks import Checks, chained, may_act, off_loop, violation
from guard.endpoint_fields import Aside, decoded
from guard.endpoints import Endpoint
from guard.errors import UpstreamError
from policies import Action, Context, Policy, Verdict, apply_redactions, run_policies
from policies.spans import SpanPolicy

Log = Callable[[Any], Awaitable[Any]]
log_ = logging.getLogger(__name__)

MAX_WORD = 64  # a tail longer than this without a space is checked as it stands
WINDOW = 1024  # span policies re-read this much settled text before the new text
GROWTH = 1.25  # other policies re-read the whole text when it has grown by this factor


def settled(text: str) -> int:
    """How much of a streamed text the next delta cannot change the reading of: up to its last
    whitespace (a word cut at a token boundary, "ass" + "istant", is not yet a word)."""
    start = max(0, len(text) - MAX_WORD - 1)
    cut = max(text.rfind(" ", start), text.rfind("\n", start), text.rfind("\t", start)) + 1
    return len(text) if cut == 0 and len(text) - start > MAX_WORD else max(cut, 0)


class _Text:
    """One streamed text, appended in pieces: recent pieces are kept apart and joined into a
    block every :data:`FOLD` pieces, a block shorter than :data:`BLOCK` grown rather than a new
    one begun, so neither appending nor reading the tail is quadratic in the number of pieces
    (one string grown by every fold would copy all of the text each time)."""

    FOLD = 32
    BLOCK = 4096

    def __init__(self, aside: bool = False, order: int = 0) -> None:
        self.aside = aside  # beside the answer: read by span policies only
        self.order = order  # the how-manyth text of its stream it is
        self.blocks: list[str] = []
        self.pieces: list[str] = []
        self.length = 0
        self.checked = 0  # settled length the span policies have read up to
        self.whole_at = 0  # length at which the other policies last read it whole

    def add(self, piece: str) -> None:
        if piece:
            self.pieces.append(piece)
            self.length += len(piece)
            if len(self.pieces) >= self.FOLD:
                joined = "".join(self.pieces)
                self.pieces = []
                if self.blocks and len(self.blocks[-1]) < self.BLOCK:
                    self.blocks[-1] += joined
                else:
                    self.blocks.append(joined)

    def tail(self, n: int) -> str:
        """The last ``n`` characters."""
        recent = "".join(self.pieces)
        if n <= len(recent):
            return recent[len(recent) - n :]
        out, need = [recent], n - len(recent)
        for block in reversed(self.blocks):
            if need <= 0:
                break
            out.append(block[max(0, len(block) - need) :])
            need -= len(block)
        return "".join(reversed(out))

    def text(self) -> str:
        return "".join(self.blocks) + "".join(self.pieces)

    def settled(self) -> int:
        tail = self.tail(min(self.length, MAX_WORD + 2))
        return self.length - len(tail) + settled(tail)


def _blocking(verdicts: list[Verdict]) -> Verdict | None:
    return next((v for v in verdicts if v.action == Action.BLOCK or v.redacted is not None), None)


def _stops(spans: Sequence[Policy], others: Sequence[Policy], t: _Text) -> Verdict | None:
    """Check what is new in ``t`` since the last time, in linear time overall."""
    end = t.settled()
    if spans and end > t.checked:
        start = max(0, t.checked - WINDOW)
        window = t.tail(t.length - start)[: end - start]
        t.checked = end
        if (v := _blocking(chained(run_policies(spans, Context("response", window))))) is not None:
            return v
    if others and not t.aside and end >= max(t.whole_at * GROWTH, 1):
        t.whole_at = end
        return _blocking(chained(run_policies(others, Context("response", t.text()[:end]))))
    return None


def _read(t: _Text, spans: bool, stoppers: bool) -> int:
    """How much of ``t`` the policies have read: what the span policies read (else what is
    settled), and no more than the others last read whole where one of them could stop the
    stream (they read it each time it grows by a quarter: what they have not read yet waits)."""
    read = t.checked if spans else t.settled()
    return min(read, t.whole_at) if stoppers and not t.aside else read


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
    spans = [p for p in policies if isinstance(p, SpanPolicy)]
    # The others as the answer grows; one that judges only a whole answer (a JSON schema:
    # the start of valid JSON is not JSON) reads it at the end, with every policy.
    others = [p for p in policies if not isinstance(p, SpanPolicy) and not getattr(p, "whole", 0)]
    # Those of the others whose verdict could end the stream: all but built-ins set to flag.
    stoppers = any(map(may_act, others))
    if any(getattr(p, "whole", 0) and may_act(p) for p in policies):
        holdback = None  # one that may block has read nothing before the end: nothing goes out
    # Policies that only flag cannot end the stream: none needs to read ahead of the client.
    # Each event goes out as it comes, but the one that ends the answer waits for the record.
    flag_only = holdback is not None and bool(policies) and not any(map(may_act, policies))
    reader = sse.EventReader()
    texts: dict[int | str, _Text] = {}
    # The texts the last chunk's events added to, by when each began: only they can have
    # anything new to check (a stream of 10k tool calls would otherwise check all of them
    # after each chunk), and only their share of ``safe`` can have moved.
    fresh: dict[int | str, int] = {}
    safe: dict[int | str, int] = {}  # how much of each text may go out, as of the last chunk
    # (event, {text: its length after}); a deque, as what waits for the others may be long
    pending: collections.deque[tuple[bytes, dict[int | str, int]]] = collections.deque()
    # The texts the first pending event still waits for, each once: rechecking all of an
    # event's texts after every chunk cost an event of n tool calls n per chunk.
    waits: list[tuple[int | str, int]] | None = None
    unread = False  # an event the (flag-only) policies could not read has come

    def take(event: sse.Event) -> None:
        nonlocal unread
        if event.unreadable and event.data and event.data.strip():
            if any(map(may_act, policies)):  # fail closed: what cannot be read cannot be checked
                raise UpstreamError(
                    "the upstream sent a stream event that is not JSON; the policies cannot "
                    "check it, so the stream ends here",
                    code="upstream_unreadable",
                )
            if not unread:  # flag-only: it goes as it came, flagged once as not read
                unread = True
                checks.not_read(policies, "a stream event is not JSON")
            pending.append((event.raw, {}))
            return
        ends: dict[int | str, int] = {}
        for index, piece in endpoint.deltas(event.json()):
            if index not in texts:
                texts[index] = _Text(aside=isinstance(piece, Aside), order=len(texts))
            t = texts[index]
            t.add(piece)
            ends[index] = t.length
            fresh[index] = t.order
        pending.append((event.raw, ends))

    def withheld() -> dict[int | str, str]:
        """The texts so far for the record, with the redacting policies' matches taken out."""
        return {
            i: apply_redactions(text, run_policies(policies, Context("response", text)))
            for i, text in ((i, t.text()) for i, t in texts.items())
        }

    recorded = False

    async def blocked(verdict: Verdict) -> bytes:
        nonlocal recorded
        err = violation(verdict, "response (stream)", checks.request_id)
        # A redaction cannot take back what was sent, so on a stream it blocks: the record
        # says so (the client got a policy_violation; a log filtered for blocks finds it).
        stopped = dataclasses.replace(verdict, action=Action.BLOCK)
        held = checks.response_verdicts
        if verdict in held:
            held[held.index(verdict)] = stopped
        else:
            held.append(stopped)
        recorded = True
        await log({**err.to_body(), "withheld": withheld()})
        return sse.encode(err.to_body())

    async def cut_short(why: str) -> None:
        """The stream ended before its end (the upstream failed, the client went): what was
        flagged so far, the prompt's verdicts included, is still recorded."""
        if recorded:
            return
        for t in texts.values():
            checks.run(policies, Context("response", Aside(t.text()) if t.aside else t.text()))
        if checks.flags:
            await asyncio.shield(log({"streamed_text": withheld(), "cut_short": why}))

    try:
        async for chunk in upstream:
            for event in reader.feed(chunk):
                take(event)
            for i in sorted(fresh, key=fresh.__getitem__) if not flag_only else ():
                if (verdict := _stops(spans, others, texts[i])) is not None:
                    yield await blocked(verdict)
                    return
                # What every policy that could stop the stream has read is what may go out.
                safe[i] = _read(texts[i], bool(spans), stoppers)
            fresh.clear()
            if flag_only:
                while pending and not sse.may_end(pending[0][0]):
                    yield pending.popleft()[0]
            elif holdback is not None:
                while pending:
                    if waits is None:  # a new first event: all its texts to wait for
                        waits = list(pending[0][1].items())[::-1]
                    # What the policies have read only grows: a text read far enough stays so.
                    while waits and safe[waits[-1][0]] - waits[-1][1] >= holdback:
                        waits.pop()
                    if waits:
                        break
                    waits = None
                    yield pending.popleft()[0]
    except (Exception, asyncio.CancelledError, GeneratorExit) as exc:
        try:
            await cut_short(f"{type(exc).__name__}: {exc}"[:300])
        except Exception:  # the stream's own failure is the one to report
            log_.exception("request %s: the record of a stream cut short", checks.request_id)
        raise
    finally:
        aclose = getattr(upstream, "aclose", None)
        if aclose is not None:
            await aclose()
    for event in reader.close():
        take(event)

    def whole_answer() -> Verdict | None:
        """The whole answer, once per text: this decides the record and the release of the
        rest (in a worker thread where it is large: a stream has no total limit)."""
        stop = None
        for t in texts.values():
            whole = t.text()
            _, block = checks.run(policies, Context("response", Aside(whole) if t.aside else whole))
            stop = stop or block
            for _, text in decoded(whole):  # a text that is JSON (arguments), as read by its client
                _, block = checks.run(policies, Context("response", Aside(text)))
                stop = stop or block
        return stop or next((v for v in checks.response_verdicts if v.redacted is not None), None)

    size = sum(t.length for t in texts.values())
    stop = await off_loop(size, whole_answer)
    if stop is not None:
        yield await blocked(stop)
        return
    if checks.flags:
        await log({"streamed_text": await off_loop(size, withheld)})
    for raw, _ in pending:
        yield raw
