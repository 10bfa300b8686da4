"""The request side of the contract: body checks and the optional ``guard`` object.

``guard`` is a union keyed on ``task`` (the OpenAI SDK sends it with ``extra_body={"guard":
{...}}``): ``mcq``, ``classify``, ``judge``, ``none``, or absent (an MCQ when the object sets
MCQ fields; otherwise a route with ``auto_detect`` may detect one). Calibration names are
checked against :mod:`guard.calibrations`. Everything else in an OpenAI body passes through
untouched.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from guard.calibrations import check_calibration, check_task
from guard.endpoints import CHAT, RESPONSES, Endpoint
from guard.errors import InvalidRequestError
from guard.folded import fold


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    calibration: str | None = None
    key: str | None = None  # an explicit calibration key

    @model_validator(mode="after")
    def _known_calibration(self) -> _Options:
        if self.calibration is not None:
            try:
                check_calibration(self.calibration_task, self.calibration)
            except ValueError as exc:
                raise ValueError(f"calibration: {exc}") from None
        return self

    @property
    def calibration_task(self) -> str:
        return "mcq"


class McqOptions(_Options):
    task: Literal["mcq"] = "mcq"
    options: list[str] | None = Field(None, min_length=2, max_length=10)  # as shown, in order
    budget: float | None = Field(None, ge=1.0)  # adaptive: mean calls per question, this request


class AutoOptions(McqOptions):
    """No task. Setting ``calibration``, ``options``, ``budget`` or ``key`` asks to calibrate a
    multiple-choice question; with none of them, only a route with ``auto_detect`` looks for
    one (:mod:`guard.tasks.detection`)."""

    task: None = None  # type: ignore[assignment]


class ClassifyOptions(_Options):
    task: Literal["classify"] = "classify"
    # at most 100 labels of at most 200 characters: every label's forms are scored on every
    # request, and the list is part of the calibration key stored with it
    labels: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, min_length=2, max_length=100
    )
    input: str | None = None  # the part of the prompt that is the test input (enables probes)

    @property
    def calibration_task(self) -> str:
        return "classify"


class JudgeOptions(_Options):
    task: Literal["judge"] = "judge"
    candidates: list[str] | None = Field(None, min_length=2, max_length=10)
    labels: list[str] | None = Field(None, min_length=2)  # the verdict IDs, if not A, B, ...

    @property
    def calibration_task(self) -> str:
        return "judge"


class NoTask(_Options):
    task: Literal["none"] = "none"


GuardOptions = McqOptions | ClassifyOptions | JudgeOptions | NoTask


def _tag(value: Any) -> str:
    task = value.get("task") if isinstance(value, dict) else getattr(value, "task", None)
    return "auto" if task is None else str(task)


_GUARD: TypeAdapter[GuardOptions] = TypeAdapter(
    Annotated[
        Annotated[AutoOptions, Tag("auto")]
        | Annotated[McqOptions, Tag("mcq")]
        | Annotated[ClassifyOptions, Tag("classify")]
        | Annotated[JudgeOptions, Tag("judge")]
        | Annotated[NoTask, Tag("none")],
        Discriminator(_tag),
    ]
)


def parse_guard(raw: Any) -> GuardOptions:
    """The ``guard`` object, validated; errors name the field (``guard.options``)."""
    if raw is None:
        return AutoOptions()
    if not isinstance(raw, dict):
        raise InvalidRequestError("guard must be an object", param="guard")
    task = raw.get("task")
    if task is not None:
        try:
            check_task(task if isinstance(task, str) else repr(task))
        except ValueError as exc:
            raise InvalidRequestError(
                f"guard.task: {exc}", param="guard.task", code="invalid_guard"
            ) from None
    try:
        return _GUARD.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"][1:]]  # the first item is the union's tag
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not loc and msg.startswith("calibration: "):
            loc, msg = ["calibration"], msg.removeprefix("calibration: ")
        where = ".".join(["guard", *loc])
        raise InvalidRequestError(f"{where}: {msg}", param=where, code="invalid_guard") from exc


MAX_DEPTH = 64  # JSON nesting: OpenAI bodies need a handful of levels


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range for a number")
    return value


def parse_json(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, strictly: no NaN/Infinity, no lone surrogates, no
    nesting deeper than :data:`MAX_DEPTH`; anything else is an :class:`InvalidRequestError`."""
    try:
        # Decoded here, strictly: json.loads(bytes) would also take UTF-16 and UTF-32 bodies
        # and UTF-8-encoded surrogates, where the escape check below cannot see them.
        text = raw.decode("utf-8-sig")  # a leading BOM is let be, as json.loads did
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidRequestError(
            f"the request body nests deeper than {MAX_DEPTH} levels", code="invalid_json"
        ) from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise InvalidRequestError(
            f"could not parse the request body as JSON: {exc}", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    _check_value(body, 0, "\\ud" in text.lower())
    return body


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _duplicate_key(raw: bytes) -> str | None:
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except _Duplicate as dup:
        return dup.key
    return None


def _model_given_twice(raw: bytes) -> bool:
    """``model`` twice at the top level, or under another spelling a parser that matches keys
    whatever their case (Go's) takes for it: ``{"model": "a", "Model": "b"}`` is ``b`` there."""
    exact = raw.count(b"model")
    if exact < 2 and b"\\u" not in raw and raw.lower().count(b"model") == exact:
        return False  # cheap unless "model" occurs twice or in another case
    top: list[tuple[str, Any]] = json.loads(raw, object_pairs_hook=list)
    spelled = [k for k, _ in top if fold(k) == "model"]
    return len(spelled) > 1 or spelled not in ([], ["model"])


def refuse_duplicate_keys(raw: bytes, *, prompts_checked: bool) -> None:
    """A 400 ``duplicate_key`` for a (valid JSON) body that gives ``model`` twice at its top
    level (in any case), or, where ``prompts_checked``, any key twice in one object (keys
    that differ only in case: :mod:`guard.folded`). Parsers disagree on which one counts
    (Python's and most keep the last, RapidJSON's lookup finds the first), so the upstream
    could read a model calguard did not route or a text it did not check."""
    if _model_given_twice(raw):
        raise InvalidRequestError(
            "the request body gives 'model' twice, or in another case ('Model'); send it once, "
            "as 'model'",
            param="model",
            code="duplicate_key",
        )
    if prompts_checked and (key := _duplicate_key(raw)) is not None:
        raise InvalidRequestError(
            f"this route checks prompts and the request body gives the key {key!r} twice in "
            "one object; send each key once",
            param=key,
            code="duplicate_key",
        )


def _check_value(value: Any, depth: int, surrogates: bool) -> None:
    if depth > MAX_DEPTH:
        raise InvalidRequestError(
            f"the request body nests deeper than {MAX_DEPTH} levels", code="invalid_json"
        )
    if isinstance(value, dict):
        for k, v in value.items():
            if surrogates:
                _check_value(k, depth + 1, surrogates)
            _check_value(v, depth + 1, surrogates)
    elif isinstance(value, list):
        for v in value:
            _check_value(v, depth + 1, surrogates)
    elif surrogates and isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(
                "the request body holds a lone surrogate (an unpaired \\ud800-\\udfff escape): "
                "it is not text",
                code="invalid_json",
            ) from None


def split_guard(body: dict[str, Any]) -> tuple[dict[str, Any], GuardOptions]:
    """The body without ``guard``, and the parsed ``guard`` object (defaults when absent)."""
    opts = parse_guard(body.get("guard"))
    return {k: v for k, v in body.items() if k != "guard"}, opts


def check_model(body: dict[str, Any]) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequestError("'model' is required and must be a string", param="model")


def check_endpoint_body(endpoint: Endpoint, body: dict[str, Any]) -> bool:
    """A 400 for a body ``endpoint`` cannot take; True for a Responses call with a stored
    prompt and no model (the SDK makes model, input and prompt all optional): it takes the
    default route."""
    stored = endpoint is RESPONSES and "model" not in body and isinstance(body.get("prompt"), dict)
    if endpoint is CHAT:
        check_chat_body(body)
    elif stored:
        check_types(body, chat=False)
    else:  # a prompt sent as embeddings (vLLM) needs no text prompt beside it
        check_body(body, "model" if endpoint.embedded(body) else endpoint.required)
    return stored


def check_chat_body(body: dict[str, Any]) -> None:
    """The minimum a chat completion body needs; the upstream checks the rest."""
    check_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(
            "'messages' is required and must be a non-empty array", param="messages"
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidRequestError(
                f"messages[{i}] must be an object with a 'role'", param=f"messages[{i}]"
            )
    check_types(body)


def check_body(body: dict[str, Any], required: str) -> None:
    """The minimum any other endpoint's body needs: a model and its ``required`` field."""
    check_model(body)
    if required != "model" and required not in body:
        raise InvalidRequestError(f"'{required}' is required", param=required)
    check_types(body, chat=False)


def check_types(body: dict[str, Any], *, chat: bool = True) -> None:
    """Fields calguard acts on must have their types: ``"stream": "false"`` must not read as a
    stream here and as no stream at the upstream (a lenient one would send one JSON body past
    the stream checks)."""
    # A chat request's logprobs is a switch; a legacy completion's is a count.
    for name in ("stream", "logprobs") if chat else ("stream",):
        if name in body and body[name] is not None and not isinstance(body[name], bool):
            raise InvalidRequestError(f"'{name}' must be a boolean", param=name)
    for name in ("stream_options", "response_format", "prediction"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise InvalidRequestError(f"'{name}' must be an object", param=name)
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise InvalidRequestError("'n' must be an integer", param="n")


__all__ = [
    "AutoOptions",
    "ClassifyOptions",
    "GuardOptions",
    "JudgeOptions",
    "McqOptions",
    "NoTask",
    "check_body",
    "check_chat_body",
    "check_types",
    "parse_guard",
    "parse_json",
    "refuse_duplicate_keys",
    "split_guard",
]
