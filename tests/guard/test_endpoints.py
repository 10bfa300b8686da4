"""guard.endpoints: where the text sits in chat and completion bodies, and rewriting it."""

from __future__ import annotations

from typing import Any

from guard.endpoints import CHAT, COMPLETIONS


def _texts(slots: Any) -> list[str]:
    return [text for text, _ in slots]


def test_chat_prompt_slots_cover_every_message_and_every_text_part() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part one"},
                    {"type": "image_url", "image_url": {"url": "data:..."}},
                    {"type": "text", "text": "part two"},
                ],
            },
        ],
    }
    assert _texts(CHAT.prompt_slots(body)) == [
        "be brief",
        "first question",
        "first answer",
        "part one",
        "part two",
    ]


def test_chat_prompt_slots_skip_what_has_no_text() -> None:
    body = {
        "messages": [
            "not a message",
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "user", "content": [{"type": "text", "text": 3}, "odd"]},
            {"role": "user", "content": "only this"},
        ]
    }
    # a part that is a plain string is text (vLLM renders it): tests/e2e/test_review_rv_guards.py
    assert _texts(CHAT.prompt_slots(body)) == ["odd", "only this"]
    assert _texts(CHAT.prompt_slots({})) == []


def test_rewriting_chat_slots_changes_the_body_in_place() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ]
    }
    for text, put in list(CHAT.prompt_slots(body)):
        put(text.upper())
    assert body == {
        "messages": [
            {"role": "system", "content": "SYS"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
            },
        ]
    }


def test_completion_prompt_as_a_string() -> None:
    body = {"model": "m", "prompt": "say hi"}
    [(text, put)] = list(COMPLETIONS.prompt_slots(body))
    assert text == "say hi"
    put("say bye")
    assert body == {"model": "m", "prompt": "say bye"}


def test_completion_prompt_as_a_list_of_strings_skips_token_arrays() -> None:
    body = {"prompt": ["one", [1, 2, 3], "two"]}
    slots = list(COMPLETIONS.prompt_slots(body))
    assert _texts(slots) == ["one", "two"]
    slots[1][1]("TWO")
    assert body == {"prompt": ["one", [1, 2, 3], "TWO"]}


def test_completion_prompt_absent_or_token_ids_has_no_slots() -> None:
    assert list(COMPLETIONS.prompt_slots({})) == []
    assert list(COMPLETIONS.prompt_slots({"prompt": [101, 102]})) == []


def test_chat_answers_one_per_choice_and_rewrite() -> None:
    completion = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "first"}},
            {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": []}},
            {"index": 2, "message": {"role": "assistant", "content": "third"}},
        ]
    }
    slots = list(CHAT.answers(completion))
    assert _texts(slots) == ["first", "third"]
    slots[1][1]("[redacted]")
    assert completion["choices"][2]["message"]["content"] == "[redacted]"
    assert completion["choices"][0]["message"]["content"] == "first"


def test_completion_answers_read_choice_text() -> None:
    completion = {"choices": [{"index": 0, "text": "x"}, {"index": 1, "text": "y"}, "junk"]}
    slots = list(COMPLETIONS.answers(completion))
    assert _texts(slots) == ["x", "y"]
    slots[0][1]("X")
    assert completion["choices"][0] == {"index": 0, "text": "X"}
    assert list(COMPLETIONS.answers({})) == []
    # The chat endpoint does not read a completion's text, and vice versa.
    assert list(CHAT.answers(completion)) == []
    assert list(COMPLETIONS.answers({"choices": [{"message": {"content": "c"}}]})) == []


def test_chat_deltas_by_choice_index() -> None:
    chunk = {
        "choices": [
            {"index": 1, "delta": {"content": "b"}},
            {"index": 0, "delta": {"role": "assistant"}},
            {"index": 0, "delta": {"content": "a"}},
            {"index": "x", "delta": {"content": "odd index"}},
            {"delta": {"content": "no index"}},
        ]
    }
    assert list(CHAT.deltas(chunk)) == [
        (1, "b"),
        (0, ""),
        (0, "a"),
        (0, "odd index"),
        (0, "no index"),
    ]


def test_completion_deltas_read_text() -> None:
    chunk = {"choices": [{"index": 0, "text": "t0"}, {"index": 3, "text": None}]}
    assert list(COMPLETIONS.deltas(chunk)) == [(0, "t0"), (3, "")]


def test_deltas_of_something_that_is_not_a_chunk() -> None:
    assert list(CHAT.deltas(None)) == []
    assert list(CHAT.deltas([{"choices": []}])) == []
    assert list(CHAT.deltas({"choices": None})) == []


def test_endpoint_paths_and_task_support() -> None:
    assert (CHAT.path, CHAT.tasks) == ("/chat/completions", True)
    assert (COMPLETIONS.path, COMPLETIONS.tasks) == ("/completions", False)
