"""The text endpoints calguard serves, and where the text sits in each one's bodies.

Policies read and rewrite text; this module (with :mod:`guard.responses_fields` for the
Responses API, from the pieces in :mod:`guard.endpoint_fields`) is the one place that knows
where it is: every message of a chat request (string content, or text, refusal and thinking
parts and plain strings; a name; reasoning; earlier tool calls' arguments and custom tools'
input), tools' and legacy functions' descriptions and every string of their parameter schemas, a
JSON schema's description and strings, a predicted output, vLLM's ``chat_template``, its kwargs
and ``documents``, a completion's ``prompt`` and ``suffix``, a Responses input (a prompt given
as token IDs is not text: where a route checks prompts, such a request is refused rather than
passed unread); each choice of an answer (content as a string or parts, refusal, audio
transcript, reasoning, tool and function call arguments, custom tool input), each choice's
deltas in a stream. Arguments are read as written and decoded
(:func:`guard.endpoint_fields.arguments`). A choice whose text is rewritten loses its
``logprobs``: their tokens would spell the original.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from guard.endpoint_fields import (
    Aside,
    Delta,
    Slot,
    arguments,
    as_dict,
    as_list,
    asides,
    citations,
    content,
    dropping_logprobs,
    setter,
    strings_in,
    texts,
)
from guard.responses_fields import responses_answer, responses_deltas, responses_prompt


def _chat_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    for m in as_list(body.get("messages")):
        if not isinstance(m, dict):
            continue
        yield from content(m)
        yield from texts(m, "name", "refusal")
        yield from asides(m, "reasoning_content", "reasoning")  # chat templates render them
        yield from _calls(m)
    yield from content(body.get("prediction"))
    yield from chat_tools(body)
    # vLLM renders these into the prompt too: a template sent with the request, its
    # arguments, and documents for retrieval-augmented templates
    yield from texts(body, "chat_template")
    yield from strings_in(body, "chat_template_kwargs")
    yield from strings_in(body, "documents")


def chat_tools(body: dict[str, Any]) -> Iterator[Slot]:
    """What a chat request (or an Assistants one: an assistant, a run) shows the model beside
    its messages: tools' and legacy functions' descriptions and every string of their
    parameter schemas, a JSON schema response format's description and strings."""
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        yield from texts(as_dict(tool.get("function")), "description")
        yield from strings_in(as_dict(tool.get("function")), "parameters")
        yield from texts(as_dict(tool.get("custom")), "description")
    for fn in as_list(body.get("functions")):  # the legacy form of tools
        yield from texts(fn, "description")
        yield from strings_in(fn, "parameters")
    json_schema = as_dict(as_dict(body.get("response_format")).get("json_schema"))
    yield from texts(json_schema, "description")
    yield from strings_in(json_schema, "schema")


def _calls(message: dict[str, Any]) -> Iterator[Slot]:
    """The arguments of a message's tool calls and function call, a custom tool call's input."""
    for call in as_list(message.get("tool_calls")):
        call = as_dict(call)
        yield from arguments(as_dict(call.get("function")), "arguments")
        yield from arguments(as_dict(call.get("custom")), "input")
    yield from arguments(as_dict(message.get("function_call")), "arguments")


def _strings(body: dict[str, Any], field: str) -> Iterator[Slot]:
    """A field that is a string or a list of strings (a prompt, an embeddings input)."""
    value = body.get(field)
    if isinstance(value, str):
        yield value, setter(body, field)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield v, setter(value, i)


def _unreadable(value: Any) -> bool:
    """A prompt or input that is not text policies can read: token IDs (ints, or numbers an
    upstream may take for them: ``3.0``, ``"3"`` in a nested list), token-ID lists, or any
    other shape than a string or a list of strings (nothing at all is nothing to read)."""
    if value is None or isinstance(value, str):
        return False
    return not (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _completion_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    yield from _strings(body, "prompt")
    yield from texts(body, "suffix")


def _tool_calls(calls: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, call) of each tool call."""
    for i, call in enumerate(as_list(calls)):
        if isinstance(call, dict):
            index = call.get("index", i)
            yield (index if isinstance(index, int) else i), call


def _chat_answer(choice: dict[str, Any]) -> Iterator[Slot]:
    message = choice.get("message")
    if not isinstance(message, dict):
        return
    yield from content(message, choice)
    for text, _ in texts(message, "refusal"):
        yield text, dropping_logprobs(choice, message, "refusal")
    audio = as_dict(message.get("audio"))
    for text, _ in texts(audio, "transcript"):
        yield text, dropping_logprobs(choice, audio, "transcript")
    yield from asides(message, "reasoning_content", "reasoning")  # vLLM, DeepSeek; OpenRouter
    yield from citations(message.get("annotations"))  # the pages a search answer cites
    yield from _calls(message)


def _completion_answer(choice: dict[str, Any]) -> Iterator[Slot]:
    if isinstance(choice.get("text"), str):
        yield choice["text"], dropping_logprobs(choice, choice, "text")


def _chat_delta(choice: dict[str, Any]) -> Iterator[tuple[str, str]]:
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return
    value = delta.get("content")
    if isinstance(value, list):  # content parts
        part = [as_dict(p) for p in value]
        value = "".join(p["text"] for p in part if isinstance(p.get("text"), str))
        refusal = "".join(p["refusal"] for p in part if isinstance(p.get("refusal"), str))
        if refusal:
            yield ".refusal", refusal
    yield "", value if isinstance(value, str) else ""
    for text, _ in texts(delta, "refusal"):
        yield ".refusal", text
    for text, _ in texts(as_dict(delta.get("audio")), "transcript"):
        yield ".audio", text
    for key in ("reasoning_content", "reasoning"):
        for text, _ in texts(delta, key):
            yield f".{key}", Aside(text)
    for text, _ in citations(delta.get("annotations")):
        yield ".annotations", Aside("\n" + text)  # each on its own line: it runs into no other
    for i, call in _tool_calls(delta.get("tool_calls")):
        for text, _ in texts(as_dict(call.get("function")), "arguments"):
            yield f".tool_calls[{i}]", text
        for text, _ in texts(as_dict(call.get("custom")), "input"):
            yield f".tool_calls[{i}]", text
    for text, _ in texts(delta.get("function_call"), "arguments"):
        yield ".function_call", text


def _completion_delta(choice: dict[str, Any]) -> Iterator[tuple[str, str]]:
    text = choice.get("text")
    yield "", text if isinstance(text, str) else ""


def _embeddings_prompt(body: dict[str, Any]) -> Iterator[Slot]:
    return _strings(body, "input")


def _choices(answer: Callable[[dict[str, Any]], Iterator[Slot]]) -> Callable[..., Iterator[Slot]]:
    def slots(completion: dict[str, Any]) -> Iterator[Slot]:
        for choice in as_list(completion.get("choices")):
            if isinstance(choice, dict):
                yield from answer(choice)

    return slots


def _choice_deltas(
    read: Callable[[dict[str, Any]], Iterator[tuple[str, str]]],
) -> Callable[..., Iterator[Delta]]:
    """Each choice's streamed texts, keyed by choice index (its content) or by
    ``"<index>.tool_calls[<i>]"`` (a tool call's arguments): each is checked on its own."""

    def deltas(chunk: dict[str, Any]) -> Iterator[Delta]:
        for choice in as_list(chunk.get("choices")):
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                index = index if isinstance(index, int) else 0
                for part, text in read(choice):
                    yield (f"{index}{part}" if part else index), text

    return deltas


def _nothing(_: dict[str, Any]) -> Iterator[Any]:
    return iter(())


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # under /v1, as sent upstream
    prompt_slots: Callable[[dict[str, Any]], Iterator[Slot]]
    answer_slots: Callable[[dict[str, Any]], Iterator[Slot]]
    delta_texts: Callable[[dict[str, Any]], Iterator[Delta]]
    tasks: bool = False  # calibrated tasks are served here
    required: str = "model"  # a body field it cannot do without, besides model
    # The field that may hold a prompt as token IDs, which no policy can read (None: none).
    token_field: str | None = None
    # Fields that carry a prompt as vectors (vLLM's ``prompt_embeds``): never readable.
    embeds_fields: tuple[str, ...] = ()

    def unread_prompt(self, body: dict[str, Any]) -> str | None:
        """The field of ``body`` that holds a prompt policies cannot read: :attr:`token_field`
        in another shape than text, or any of :attr:`embeds_fields` (None: every prompt is
        text)."""
        embeds = self.embedded(body)
        if embeds is not None:
            return embeds
        field = self.token_field
        return field if field is not None and _unreadable(body.get(field)) else None

    def embedded(self, body: dict[str, Any]) -> str | None:
        """The field of :attr:`embeds_fields` that ``body`` sends its prompt in, if any."""
        return next((f for f in self.embeds_fields if body.get(f) is not None), None)

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
    token_field="prompt",
    embeds_fields=("prompt_embeds",),
)
RESPONSES = Endpoint(
    "responses", "/responses", responses_prompt, responses_answer, responses_deltas
)
EMBEDDINGS = Endpoint(
    "embeddings",
    "/embeddings",
    _embeddings_prompt,
    _nothing,
    _nothing,
    required="input",
    token_field="input",
)
