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
        content = m.get("content")
        if isinstance(content, str):
            yield content, _setter(m, "content")
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part["text"], _setter(part, "text")


def _completion_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        yield prompt, _setter(body, "prompt")
    elif isinstance(prompt, list):
        for i, p in enumerate(prompt):
            if isinstance(p, str):
                yield p, _setter(prompt, i)


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


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # under /v1, as sent upstream
    prompt_slots: Callable[[dict[str, Any]], Iterator[Slot]]
    answer_slot: Callable[[dict[str, Any]], Slot | None]
    delta_text: Callable[[dict[str, Any]], str]
    tasks: bool  # calibrated tasks are served here

    def answers(self, completion: dict[str, Any]) -> Iterator[Slot]:
        for choice in completion.get("choices") or []:
            if isinstance(choice, dict):
                slot = self.answer_slot(choice)
                if slot is not None:
                    yield slot

    def deltas(self, chunk: Any) -> Iterator[tuple[int, str]]:
        """(choice index, text) of each choice in one streamed chunk."""
        if not isinstance(chunk, dict):
            return
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                yield (index if isinstance(index, int) else 0), self.delta_text(choice)


CHAT = Endpoint(
    "chat.completions", "/chat/completions", _chat_prompt, _chat_answer, _chat_delta, True
)
COMPLETIONS = Endpoint(
    "completions", "/completions", _completion_prompt, _completion_answer, _completion_delta, False
)
