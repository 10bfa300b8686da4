"""guard.endpoint_fields: decoded tool-call arguments, text beside the answer, odd shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guard.checks import Checks
from guard.endpoint_fields import Aside, arguments, put_all
from guard.endpoints import CHAT, RESPONSES
from guard.errors import PolicyViolationError
from policies import build_policy


def test_decoded_arguments_are_read_and_rewritten_into_the_arguments() -> None:
    call = {"arguments": '{"a\\u0040b.com": ["x", "c\\u0040d.com"], "plain": "e@f.com"}'}
    slots = list(arguments(call, "arguments"))
    assert [t for t, _ in slots][1:] == ["a@b.com", "x", "c@d.com", "plain", "e@f.com"]
    assert all(isinstance(t, Aside) for t, _ in slots[1:])
    raw = slots[0][0].replace("e@f.com", "[R]")
    slots[0][1](raw)  # a rewrite of the arguments as written stays ...
    slots[1][1]("[K]")  # ... beside a rewritten key
    slots[3][1]("[R]")
    assert json.loads(call["arguments"]) == {"[K]": ["x", "[R]"], "plain": "[R]"}
    assert list(arguments({"arguments": '{"q": "no escape"}'}, "arguments"))[1:] == []
    assert len(list(arguments({"arguments": '{"q": "\\u00'}, "arguments"))) == 1  # not JSON


def test_a_json_schema_does_not_judge_the_reasoning_but_the_denylist_reads_it() -> None:
    policies = [
        build_policy({"type": "json_schema", "params": {"schema": {}}, "action": "block"}),
        build_policy({"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}),
    ]
    message = {"role": "assistant", "content": "{}", "reasoning_content": "thinking"}
    completion = {"choices": [{"index": 0, "message": message}]}
    checks = Checks(request_id="r")
    assert not checks.answer(policies, completion, CHAT)  # reasoning is no JSON: no matter
    message["reasoning_content"] = "this is forbidden"
    with pytest.raises(PolicyViolationError):
        checks.answer(policies, completion, CHAT)
    assert {v.policy for v in checks.response_verdicts} == {"denylist"}


@pytest.mark.parametrize(
    "message",
    [
        {"content": [3, {"text": 4}, None], "audio": 3, "reasoning": {"x": 1}, "refusal": 1},
        {"content": None, "tool_calls": [{"custom": 3}, {"function": [], "custom": {"input": 1}}]},
        {"content": None, "tool_calls": {"custom": {"input": "x"}}, "function_call": "x"},
    ],
)
def test_odd_shapes_in_an_answer_are_read_as_empty(message: dict[str, Any]) -> None:
    assert list(CHAT.answers({"choices": [{"message": message}]})) == []
    assert list(CHAT.deltas({"choices": [{"delta": message}]})) in ([], [(0, "")])


def test_responses_stream_events_with_whole_texts_are_read_and_empty_ones_are_not() -> None:
    part = {"type": "output_text", "text": "all of it"}
    done = {"type": "response.content_part.done", "sequence_number": 7, "part": part}
    assert list(RESPONSES.deltas(done)) == [("response.content_part.done#7.0", "\nall of it")]
    added = {**done, "type": "response.content_part.added", "part": {**part, "text": ""}}
    assert list(RESPONSES.deltas(added)) == []  # nothing to read: it need not be held
    summary = {"type": "response.reasoning_summary_text.delta", "output_index": 1,
               "summary_index": 2, "delta": "hmm"}  # fmt: skip
    [(key, text)] = RESPONSES.deltas(summary)
    assert (key, text, isinstance(text, Aside)) == ("1.summary[2]", "hmm", True)
    item = {"type": "reasoning", "summary": "odd", "content": [{"text": 5}], "outputs": 3}
    assert list(RESPONSES.answers({"output": [item, "odd", None]})) == []


@pytest.mark.parametrize(
    "raw",
    [
        '{"a\\u0040b.com": ["x", "c\\u0040d.com"], "plain": "e@f.com"}',
        '{"k\\u0031": {"k\\u0032": {"k\\u0033": "v\\u0034", "w": ["\\u0035", 6]}}, "k2": "z"}',
        '["\\u0061", ["\\u0062", {"\\u0063": "\\u0064"}], "e"]',
        '"one string\\u0021"',
    ],
)
@pytest.mark.parametrize("raw_rewrite", [False, True])
def test_put_all_writes_what_one_put_at_a_time_writes(raw: str, raw_rewrite: bool) -> None:
    def rewritten(batch: bool) -> str:
        call = {"arguments": raw}
        slots = list(arguments(call, "arguments"))
        pairs = [(put, f"[{n}]" if n else t.replace("e", "E")) for n, (t, put) in enumerate(slots)]
        pairs = pairs if raw_rewrite else pairs[1:]
        if batch:
            put_all(pairs)
        for put, text in [] if batch else pairs:
            put(text)
        return call["arguments"]

    assert rewritten(batch=True) == rewritten(batch=False) != raw


def test_thousands_of_rewritten_strings_in_one_arguments_text() -> None:
    args = {f"bob{i}@example.com\n": [f"ann{i}@example.com\n", i] for i in range(3000)}
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
    call["function"]["arguments"] = json.dumps(args)
    body = {"model": "m", "messages": [{"role": "assistant", "tool_calls": [call]}]}
    Checks("r").prompt([build_policy({"type": "pii", "action": "redact"})], body, CHAT, "m")
    out = json.loads(body["messages"][0]["tool_calls"][0]["function"]["arguments"])
    # Every key was rewritten to the same text: the object keeps one, the last one's value.
    assert out == {"[REDACTED]\n": ["[REDACTED]\n", 2999]}


def test_a_rewritten_key_and_its_rewritten_value_are_both_put_back() -> None:
    # The key's path and its value's are equal tuples: one rewrite overwrote the other, and
    # the value went upstream as it was.
    args = '{"bob\\u0040example.com": "ann\\u0040example.com", "n": {"\\u0061": "\\u0062"}}'
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}
    body = {"model": "m", "messages": [{"role": "assistant", "tool_calls": [call]}]}
    Checks("r").prompt([build_policy({"type": "pii", "action": "redact"})], body, CHAT, "m")
    assert json.loads(call["function"]["arguments"]) == {
        "[REDACTED]": "[REDACTED]",
        "n": {"a": "b"},
    }
    slots = list(arguments(call := {"arguments": args}, "arguments"))
    for n, (_, put) in enumerate(slots[1:]):
        put(f"[{n}]")
    assert json.loads(call["arguments"]) == {"[0]": "[1]", "[2]": {"[3]": "[4]"}}
