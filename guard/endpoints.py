"""The text endpoints calguard serves, and where the text sits in each one's bodies.

Policies read and rewrite text; this module is the one place that knows where it is: every
message of a chat request (string content or text parts), a completion's ``prompt``, each
choice of an answer, each choice's delta in a stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# A text in a body, and how to put a rewritten one back.
Slot = tuple[str, Callable[[str], None]]


def _setter(container: Any, key: Any) -> Callable[[str], None]:
    def put(text: str) -> None:
        container[key] = text

    return put


def _chat_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        yield from _content(m)


def _content(message: dict[str, Any]) -> Iterator[Slot]:
    """A message's text: its string content, or each text part of its content list."""
    content = message.get("content")
    if isinstance(content, str):
        yield content, _setter(message, "content")
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"], _setter(part, "text")


def _strings(body: dict[str, Any], field: str) -> Iterator[Slot]:
    """A field that is a string or a list of strings (a prompt, an embeddings input)."""
    value = body.get(field)
    if isinstance(value, str):
        yield value, _setter(body, field)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield v, _setter(value, i)


def _completion_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    return _strings(body, "prompt")


def _chat_answer(choice: dict[str, Any]) -> Slot | None:
    message = choice.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return message["content"], _setter(message, "content")
    return None


def _completion_answer(choice: dict[str, Any]) -> Slot | None:
    if isinstance(choice.get("text"), str):
        return choice["text"], _setter(choice, "text")
    return None


def _chat_delta(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


def _completion_delta(choice: dict[str, Any]) -> str:
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _responses_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    if isinstance(body.get("instructions"), str):
        yield body["instructions"], _setter(body, "instructions")
    items = body.get("input")
    if isinstance(items, str):
        yield items, _setter(body, "input")
        return
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        yield from _content(item)
        if isinstance(item.get("output"), str):  # a tool's output fed back
            yield item["output"], _setter(item, "output")


def _embeddings_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    return _strings(body, "input")


def _choices(answer: Callable[[dict[str, Any]], Slot | None]) -> Callable[..., Iterator[Slot]]:
    def slots(completion: dict[str, Any]) -> Iterator[Slot]:
        for choice in completion.get("choices") or []:
            if isinstance(choice, dict) and (slot := answer(choice)) is not None:
                yield slot

    return slots


def _choice_deltas(text: Callable[[dict[str, Any]], str]) -> Callable[..., Iterator[Delta]]:
    def deltas(chunk: dict[str, Any]) -> Iterator[Delta]:
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                yield (index if isinstance(index, int) else 0), text(choice)

    return deltas


def _responses_answer(response: dict[str, Any]) -> Iterator[Slot]:
    for item in response.get("output") or []:
        for part in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"], _setter(part, "text")


def _responses_deltas(event: dict[str, Any]) -> Iterator[Delta]:
    if event.get("type") == "response.output_text.delta" and isinstance(event.get("delta"), str):
        index = event.get("output_index", 0)
        yield (index if isinstance(index, int) else 0), event["delta"]


def _nothing(_: dict[str, Any]) -> Iterator[Any]:
    return iter(())


Delta = tuple[int, str]


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # under /v1, as sent upstream
    prompt_slots: Callable[[dict[str, Any]], Iterator[Slot]]
    answer_slots: Callable[[dict[str, Any]], Iterator[Slot]]
    delta_texts: Callable[[dict[str, Any]], Iterator[Delta]]
    tasks: bool = False  # calibrated tasks are served here
    required: str = "model"  # a body field it cannot do without, besides model

    def answers(self, completion: dict[str, Any]) -> Iterator[Slot]:
        """Each text of an answer (each choice, each output part), rewritable."""
        return self.answer_slots(completion) if isinstance(completion, dict) else iter(())

    def deltas(self, chunk: Any) -> Iterator[Delta]:
        """(choice or output index, text) of each text in one streamed event."""
        return self.delta_texts(chunk) if isinstance(chunk, dict) else iter(())


CHAT = Endpoint(
    "chat.completions",
    "/chat/completions",
    _chat_prompt,
    _choices(_chat_answer),
    _choice_deltas(_chat_delta),
    tasks=True,
    required="messages",
)
COMPLETIONS = Endpoint(
    "completions",
    "/completions",
    _completion_prompt,
    _choices(_completion_answer),
    _choice_deltas(_completion_delta),
    required="prompt",
)
RESPONSES = Endpoint(
    "responses", "/responses", _responses_prompt, _responses_answer, _responses_deltas
)
EMBEDDINGS = Endpoint(
    "embeddings", "/embeddings", _embeddings_prompt, _nothing, _nothing, required="input"
)
