"""guard.stream_checks.checked_stream, driven directly with an async generator of SSE bytes:
what is released, when, and what a block or a redaction does to a stream."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from guard import sse
from guard.checks import Checks
from guard.endpoints import CHAT
from guard.stream_checks import MAX_WORD, _Text, checked_stream, settled
from policies import Action, Context, Policy, Verdict, build_policy, run_policies


def denylist(*words: str, action: str = "block") -> Policy:
    return build_policy({"type": "denylist", "params": {"words": list(words)}, "action": action})


def delta(content: str | None, index: int = 0, role: bool = False) -> bytes:
    d: dict[str, Any] = {}
    if role:
        d["role"] = "assistant"
    if content is not None:
        d["content"] = content
    choice = {"index": index, "delta": d, "finish_reason": None}
    return sse.encode({"id": "c1", "object": "chat.completion.chunk", "choices": [choice]})


@dataclass
class Run:
    out: list[bytes]
    logs: list[Any]
    trace: list[tuple[str, bytes]]  # ("in", chunk) as pulled from upstream, ("out", event)
    checks: Checks

    @property
    def texts(self) -> list[str]:
        """The content of each released event that is a chunk (not [DONE], not an error)."""
        got = []
        for raw in self.out:
            for event in sse.EventReader().feed(raw) + sse.EventReader().close():
                data = event.json()
                if isinstance(data, dict) and "choices" in data:
                    got.append(data["choices"][0]["delta"].get("content", ""))
        return got

    @property
    def last(self) -> Any:
        [event] = sse.EventReader().feed(self.out[-1])
        return event.json()


@dataclass
class Stream:
    chunks: Sequence[bytes]
    policies: Sequence[Policy] = ()
    holdback: int | None = 0
    checks: Checks = field(default_factory=lambda: Checks(request_id="r"))

    def run(self) -> Run:
        trace: list[tuple[str, bytes]] = []
        logs: list[Any] = []

        async def upstream() -> AsyncIterator[bytes]:
            for c in self.chunks:
                trace.append(("in", c))
                yield c

        async def log(response: Any) -> None:
            logs.append(response)

        async def main() -> list[bytes]:
            out = []
            stream = checked_stream(
                upstream(), self.policies, self.checks, CHAT, log, self.holdback
            )
            async for raw in stream:
                trace.append(("out", raw))
                out.append(raw)
            return out

        out = asyncio.run(main())
        return Run(out, logs, trace, self.checks)


CLEAN = [delta("", role=True), delta("All "), delta("clear "), delta("here."), sse.DONE]


@pytest.mark.parametrize("holdback", [0, 5, 256, None])
def test_a_clean_stream_is_relayed_byte_for_byte_and_not_logged(holdback: int | None) -> None:
    run = Stream(CLEAN, [denylist("secret")], holdback=holdback).run()
    assert b"".join(run.out) == b"".join(CLEAN)
    assert run.logs == []
    assert run.checks.verdicts == []


def test_a_prompt_side_redaction_does_not_block_a_clean_stream() -> None:
    """Defect: a prompt-side redacting verdict stopped every stream of that request."""
    checks = Checks(request_id="r")
    checks.prompt_verdicts.append(
        Verdict(Action.FLAG, "pii", "found 1 match: email", 1.0, redacted="mail [EMAIL]")
    )
    run = Stream(CLEAN, [denylist("secret")], holdback=4, checks=checks).run()
    assert b"".join(run.out) == b"".join(CLEAN)
    assert run.checks.response_verdicts == []
    # The request was flagged (prompt side), so it is logged, once, with what was streamed.
    assert run.logs == [{"streamed_text": {0: "All clear here."}}]


def test_a_prompt_side_block_verdict_in_the_record_does_not_stop_the_stream() -> None:
    checks = Checks(request_id="r")
    checks.prompt_verdicts.append(Verdict(Action.FLAG, "denylist", "found 1 match"))
    run = Stream(CLEAN, [denylist("secret")], holdback=None, checks=checks).run()
    assert b"".join(run.out) == b"".join(CLEAN)
    assert len(run.logs) == 1


BLOCKED = [
    delta("", role=True),
    delta("Hello "),
    delta("there. "),
    delta("The secret"),
    delta(" is 42."),
    sse.DONE,
]


@pytest.mark.parametrize("holdback", [4, 256, None])
def test_a_response_block_stops_before_the_blocked_text(holdback: int | None) -> None:
    run = Stream(BLOCKED, [denylist("secret")], holdback=holdback).run()
    released = run.texts
    assert "secret" not in "".join(released)
    if holdback == 4:
        assert released == ["", "Hello ", "there. "]  # text before the word may go out
    else:
        assert released == []
    error = run.last["error"]
    assert error["type"] == "policy_violation"
    assert error["code"] == "denylist"
    assert "on the response (stream)" in error["message"]
    assert sse.DONE not in run.out
    # A word is read once the text after it settles it ("secret" + "ive" is another word): the
    # upstream is read one chunk past the one that completed it, and no further.
    assert [c for kind, c in run.trace if kind == "in"] == BLOCKED[:5]
    [logged] = run.logs
    assert logged["error"] == error
    assert logged["withheld"] == {0: "Hello there. The secret is 42."}
    [verdict] = run.checks.response_verdicts
    assert (verdict.policy, verdict.action) == ("denylist", Action.BLOCK)


def test_a_block_only_at_the_end_of_a_fully_held_stream() -> None:
    """A word completed by the last chunk: with holdback 'full' nothing was sent before it."""
    chunks = [delta("keep it "), delta("sec"), delta("ret"), sse.DONE]
    run = Stream(chunks, [denylist("secret")], holdback=None).run()
    assert len(run.out) == 1
    assert run.last["error"]["code"] == "denylist"
    assert len(run.logs) == 1
    assert len(run.checks.response_verdicts) == 1


@pytest.mark.parametrize("holdback", [3, None])
def test_redaction_on_a_stream_blocks(holdback: int | None) -> None:
    run = Stream(BLOCKED, [denylist("secret", action="redact")], holdback=holdback).run()
    assert "secret" not in "".join(run.texts)
    assert run.last["error"]["type"] == "policy_violation"
    assert run.last["error"]["code"] == "denylist"
    assert len(run.logs) == 1
    [verdict] = run.checks.response_verdicts
    assert verdict.redacted is not None


def test_a_flagging_policy_lets_the_stream_through_and_logs_it_once() -> None:
    run = Stream(BLOCKED, [denylist("secret", action="flag")], holdback=4).run()
    assert b"".join(run.out) == b"".join(BLOCKED)
    [verdict] = run.checks.response_verdicts
    assert (verdict.policy, verdict.action) == ("denylist", Action.FLAG)
    assert run.logs == [{"streamed_text": {0: "Hello there. The secret is 42."}}]


def test_holdback_releases_events_only_holdback_characters_behind() -> None:
    chunks = [delta("ab "), delta("def "), delta("h "), delta("jklm "), sse.DONE]
    run = Stream(chunks, holdback=5).run()
    a, b, c, d, done = chunks
    # Lengths after each chunk: 3, 7, 9, 14. An event is released once the text after it is
    # at least 5 characters long: "abc" at 9 (9 - 3), "defg" and "hi" at 14, the rest at the end.
    assert run.trace == [
        ("in", a),
        ("in", b),
        ("in", c),
        ("out", a),
        ("in", d),
        ("out", b),
        ("out", c),
        ("in", done),
        ("out", d),
        ("out", done),
    ]


def test_full_holdback_releases_nothing_before_the_end() -> None:
    run = Stream(CLEAN, holdback=None).run()
    kinds = [kind for kind, _ in run.trace]
    assert kinds == ["in"] * len(CLEAN) + ["out"] * len(CLEAN)


def test_two_choices_are_checked_separately() -> None:
    """'sec' in one choice and 'ret' in the other are not 'secret'."""
    chunks = [delta("the ", 0), delta("the ", 1), delta("sec", 0), delta("ret", 1), sse.DONE]
    run = Stream(chunks, [denylist("secret")], holdback=2).run()
    assert b"".join(run.out) == b"".join(chunks)
    assert run.logs == []


def test_a_block_in_the_second_choice_stops_the_stream() -> None:
    chunks = [delta("fine text ", 0), delta("the ", 1), delta("secret", 1), delta("more", 0)]
    run = Stream([*chunks, sse.DONE], [denylist("secret")], holdback=3).run()
    assert run.last["error"]["code"] == "denylist"
    assert run.logs[0]["withheld"] == {0: "fine text more", 1: "the secret"}
    assert "secret" not in "".join(run.texts)


def test_holdback_is_counted_per_choice() -> None:
    """Choice 1's event waits for choice 1's own text, however long choice 0 gets; and events
    are released in order, so what follows it waits too."""
    one = delta("x ", 1)
    zero = [delta("aaaaaaaaa ", 0), delta("bbbbbbbbb ", 0), delta("ccccccccc ", 0)]
    chunks = [one, *zero, delta("yyyy ", 1), sse.DONE]
    run = Stream(chunks, holdback=4).run()
    outs = [c for kind, c in run.trace if kind == "out"]
    assert outs == chunks  # all, in order
    first_out = run.trace.index(("out", one))
    assert run.trace[first_out - 1] == ("in", chunks[4])  # released only after choice 1 grew


def test_an_event_split_across_chunks() -> None:
    event = delta("hello world")
    cut = event.index(b"world") + 2
    chunks = [delta("say: "), event[:cut], event[cut:], sse.DONE]
    run = Stream(chunks, [denylist("secret")], holdback=0).run()
    # Events are relayed whole: the split event comes out once, as one piece.
    assert run.out == [delta("say: "), event, sse.DONE]


def test_a_blocked_word_split_inside_one_event_across_chunks() -> None:
    event = delta("the secret")
    cut = event.index(b"secret") + 3
    chunks = [delta("ok "), event[:cut], event[cut:], sse.DONE]
    run = Stream(chunks, [denylist("secret")], holdback=0).run()
    assert run.out[0] == delta("ok ")
    assert run.last["error"]["code"] == "denylist"
    assert len(run.out) == 2


def test_a_stream_cut_short_is_still_checked_at_the_end() -> None:
    chunks = [delta("all "), delta("secret").rstrip(b"\n")]  # no separator, no [DONE]
    run = Stream(chunks, [denylist("secret")], holdback=None).run()
    assert run.last["error"]["code"] == "denylist"
    assert len(run.logs) == 1


def test_the_completion_endpoint_streams_text_deltas() -> None:
    from guard.endpoints import COMPLETIONS

    chunks = [
        sse.encode({"choices": [{"index": 0, "text": "a secret"}]}),
        sse.DONE,
    ]
    logs: list[Any] = []

    async def upstream() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    async def log(response: Any) -> None:
        logs.append(response)

    async def main() -> list[bytes]:
        stream = checked_stream(
            upstream(), [denylist("secret")], Checks(request_id="r"), COMPLETIONS, log, None
        )
        return [raw async for raw in stream]

    out = asyncio.run(main())
    assert len(out) == 1
    assert json.loads(out[0][len(b"data: ") :])["error"]["code"] == "denylist"
    assert logs[0]["withheld"] == {0: "a secret"}


def test_a_word_cut_at_a_token_boundary_is_not_a_whole_word_match() -> None:
    policy = denylist("ass")
    full = "You are an assistant."
    assert all(v.action == Action.PASS for v in run_policies([policy], Context("response", full)))
    chunks = [delta("You are an ass"), delta("istant."), sse.DONE]
    run = Stream(chunks, [policy], holdback=256).run()
    assert b"".join(run.out) == b"".join(chunks)


def test_text_in_events_the_reader_merges_is_still_checked() -> None:
    first = delta("the ")[: -len(b"\n")] + b"\r\n"  # ends with LF then CRLF: a blank line
    run = Stream([first + delta("secret"), sse.DONE], [denylist("secret")], holdback=0).run()
    assert run.last["error"]["code"] == "denylist"


def test_a_verdict_that_stops_a_stream_holds_no_match_a_later_policy_redacts() -> None:
    """Redactions chain: the first redacting verdict's text (a window of the answer) still held
    what the second policy takes out, and the verdict goes into the flag record."""
    policies = [denylist("secret", action="redact"), denylist("hidden", action="redact")]
    chunks = [delta("the hidden secret is "), delta("42 and more words "), sse.DONE]
    run = Stream(chunks, policies, holdback=None).run()
    assert run.last["error"]["code"] == "denylist"
    [verdict] = run.checks.response_verdicts
    assert verdict.redacted == "the [REDACTED] [REDACTED] is "


def _no_forbidden(ctx: Context) -> Verdict:
    """A plain-function policy (not a span policy): it reads the whole text when it grows."""
    if "forbidden" in ctx.text:
        return Verdict(Action.BLOCK, "no_forbidden", "found it", 1.0)
    return Verdict(Action.PASS, "no_forbidden")


@pytest.mark.parametrize("holdback", [0, 16, 256])
def test_what_a_blocking_policy_other_than_a_span_one_has_not_read_is_not_released(
    holdback: int,
) -> None:
    """Other policies read the whole text each time it grows by a quarter, but what went out was
    gated only by what the span policies (or, without them, the settled text) had read: 20,000
    characters in, ~900 characters past the blocked word had reached the client."""
    words = [delta("", role=True)] + [delta("word ")] * 4000 + [delta("forbidden ")]
    for policies in ([_no_forbidden], [denylist("other"), _no_forbidden]):
        run = Stream([*words, *[delta("word ")] * 400, sse.DONE], policies, holdback).run()
        assert run.last["error"]["code"] == "no_forbidden"
        assert "forbidden" not in "".join(run.texts)


JSON_ANSWER = ['{"answer": ', '"some ', "long ", "value ", 'here", ', '"n": ', "1}"]


@pytest.mark.parametrize("holdback", [0, 5, None])
def test_a_json_schema_reads_a_streamed_answer_whole(holdback: int | None) -> None:
    """The start of valid JSON is not JSON: a blocking json_schema ended every streamed answer
    at its first read ('response is not JSON'), valid ones too."""
    schema = {"type": "object", "required": ["answer"]}
    policy = build_policy({"type": "json_schema", "params": {"schema": schema}, "action": "block"})
    run = Stream([*map(delta, JSON_ANSWER), sse.DONE], [policy], holdback).run()
    assert "".join(run.texts) == "".join(JSON_ANSWER)
    assert run.logs == []
    wrong = ['{"other": ', '"value"}']
    run = Stream([*map(delta, wrong), sse.DONE], [policy], holdback).run()
    assert run.last["error"]["code"] == "json_schema"


@pytest.mark.parametrize("seed", range(5))
def test_a_text_in_many_pieces_reads_back_as_appended(seed: int) -> None:
    rng = random.Random(seed)
    t, whole, was = _Text(), "", 0
    for _ in range(3000):  # past many folds and several blocks
        piece = "".join(rng.choice("ab \n") for _ in range(rng.choice([0, 1, 2, 7, 300])))
        t.add(piece)
        whole += piece
        n = rng.randrange(len(whole) + 2)
        assert t.tail(n) == whole[len(whole) - min(n, len(whole)) :]
        tail = whole[len(whole) - min(len(whole), MAX_WORD + 2) :]
        assert t.settled() == len(whole) - len(tail) + settled(tail)
        assert t.settled() >= was  # never less: an event released stays rightly released
        was = t.settled()
    assert t.text() == whole
    assert t.length == len(whole)


def test_with_many_texts_each_event_goes_out_once_its_own_text_allows() -> None:
    # 300 choices: only the texts a chunk adds to are checked after it, so each event still
    # goes out as soon as its own text has grown enough, and a late word in an early choice
    # is still found.
    first = delta("aaaa ", 0)
    others = [delta("x ", i) for i in range(1, 301)]
    chunks = [first, *others, delta("bbbb ", 0), sse.DONE]
    run = Stream(chunks, [denylist("secret")], holdback=4).run()
    assert [c for kind, c in run.trace if kind == "out"] == chunks
    assert run.trace.index(("out", first)) == run.trace.index(("in", chunks[-2])) + 1
    blocked = Stream([first, *others, delta("secret ", 2), sse.DONE], [denylist("secret")])
    run = blocked.run()
    assert run.last["error"]["code"] == "denylist"
    assert run.out[:-1] == [first, *others]


def _calls(*pairs: tuple[int, str]) -> bytes:
    calls = [{"index": i, "function": {"arguments": a}} for i, a in pairs]
    return sse.encode({"choices": [{"index": 0, "delta": {"tool_calls": calls}}]})


def test_an_event_of_many_texts_waits_for_the_last_of_them() -> None:
    first = _calls(*((i, "x ") for i in range(50)))
    content = delta("c " * 10)
    grown = [_calls((i, "a " * 5)) for i in range(49)]  # all but the last tool call
    late = [delta("b ") for _ in range(20)]
    chunks = [first, content, *grown, *late, _calls((49, "z " * 5)), sse.DONE]
    run = Stream(chunks, [denylist("secret")], holdback=8).run()
    assert [c for kind, c in run.trace if kind == "out"] == chunks
    # Held through the 20 chunks after the others had grown, out once the last one grew.
    assert run.trace.index(("out", first)) == run.trace.index(("in", chunks[-2])) + 1


@pytest.mark.parametrize("holdback", [3, None])
def test_the_end_check_in_a_worker_thread_decides_as_on_the_loop(
    holdback: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large stream's whole-answer check (and its record's redaction) runs in a worker
    thread, so that it does not hold every other request: same verdicts, same release."""
    import guard.checks

    monkeypatch.setattr(guard.checks, "OFF_LOOP_BYTES", 0)
    run = Stream(BLOCKED, [denylist("secret", action="redact")], holdback=holdback).run()
    assert run.last["error"]["code"] == "denylist"
    assert "secret" not in "".join(run.texts)
    clean = Stream(CLEAN, [denylist("secret", action="flag")], holdback=holdback).run()
    assert "".join(clean.texts) == "All clear here."
    flagged = Stream(BLOCKED, [denylist("secret", action="flag")], holdback=holdback).run()
    assert len(flagged.logs) == 1
    assert flagged.checks.response_verdicts


@pytest.mark.parametrize("holdback", [0, 256])
def test_flag_only_policies_hold_back_only_the_end_until_the_record(holdback: int) -> None:
    """Policies that only flag cannot end a stream: each event goes out as it comes (before:
    ``holdback`` characters behind), and ``[DONE]`` only once the flag record is in."""
    chunks = [delta("", role=True), delta("The secret"), delta(" is 42."), sse.DONE]
    trace: list[tuple[str, bytes]] = []

    async def upstream() -> AsyncIterator[bytes]:
        for c in chunks:
            trace.append(("in", c))
            yield c

    async def log(response: Any) -> None:
        trace.append(("log", b""))

    async def main() -> None:
        policies = [denylist("secret", action="flag")]
        checks = Checks(request_id="r")
        async for raw in checked_stream(upstream(), policies, checks, CHAT, log, holdback):
            trace.append(("out", raw))

    asyncio.run(main())
    each = [step for c in chunks[:-1] for step in (("in", c), ("out", c))]
    assert trace == [*each, ("in", sse.DONE), ("log", b""), ("out", sse.DONE)]
