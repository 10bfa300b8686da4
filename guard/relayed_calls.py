"""The wrapped client's calls that send text a model reads without a text endpoint, the
in-process face of :mod:`guard.relay_checks`: ``conversations.create`` and
``conversations.items.create`` (a conversation's items), ``images.generate`` (an image prompt)
and ``audio.speech.create`` (the text of speech), each also ``with_raw_response`` and
``with_streaming_response`` (from the resource or its parent: ``conversations.
with_raw_response.items.create``), sync or async.

Each is the client's own call, made after the routes' prompt policies read its body as the
proxy reads the relayed request (:meth:`~guard.relay_checks.RelayChecks.read`, the same route
choice and flag record): a block raises what a blocked chat prompt raises (an
``openai.BadRequestError`` that is calguard's ``PolicyViolationError``) and nothing is sent; a
redaction makes the call with the rewritten texts; a flag makes it as it was made. With no
prompt-side policy on any route nothing is read: the call is the client's own, untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from guard.endpoints import Endpoint
from guard.errors import CalguardError
from guard.relay_checks import RelayChecks
from guard.relayed_fields import read_at
from guard.rendering import Portal, as_sdk_error
from guard.reply import new_request_id
from guard.resources import REQUEST_OPTIONS, split

WAYS = ("with_raw_response", "with_streaming_response")


def _at(path: str) -> Endpoint:
    endpoint = read_at("POST", path)
    assert endpoint is not None, path
    return endpoint


@dataclass(frozen=True)
class Spec:
    """Which methods of an SDK resource send a body a model reads (the endpoint that says
    where its text sits), and which of its sub-resources have such methods."""

    methods: Mapping[str, Endpoint] = field(default_factory=dict)
    children: Mapping[str, Spec] = field(default_factory=dict)


# The client's resources (by attribute) whose calls are read.
SPECS = {
    "conversations": Spec(
        {"create": _at("conversations")},
        {"items": Spec({"create": _at("conversations/{id}/items")})},
    ),
    "images": Spec({"generate": _at("images/generations")}),
    "audio": Spec(children={"speech": Spec({"create": _at("audio/speech")})}),
}


class Reading:
    """The prompt policies on a wrapped client's relayed calls."""

    def __init__(self, checks: RelayChecks, portal: Portal, is_async: bool) -> None:
        self.checks, self.portal, self.is_async = checks, portal, is_async
        self.active = bool(checks.every)  # some route has prompt-side policies

    async def kwargs(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments to make the call with: ``kwargs`` with each body field as it
        was read (a generator, read once, a list), and the texts a redaction rewrote. A block
        (or a body the policies cannot read) raises the SDK's error; nothing is sent."""
        body, _ = split(kwargs)
        chosen = self.checks.chosen(body)
        if not chosen[0]:
            return _rewritten(kwargs, body)
        request_id = new_request_id()
        try:
            new = await self.checks.read(endpoint, body, chosen, f"POST /v1{endpoint.path}",
                                         request_id)  # fmt: skip
        except CalguardError as exc:
            exc.request_id = exc.request_id or request_id
            raise as_sdk_error(exc) from None
        return _rewritten(kwargs, body if new is None else new)

    def wrap(self, client: Any, name: str) -> Any:
        """``client.name`` with its relayed calls read (the client's own where it has none)."""
        own = getattr(client, name, None)
        return own if own is None else Relayed(own, SPECS[name], self)


def _rewritten(kwargs: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with each body field (an argument, or a key of ``extra_body``) as ``body``
    has it; request options and fields left out stay as they were."""
    out = dict(kwargs)
    for key in kwargs:
        if key not in (*REQUEST_OPTIONS, "extra_body") and key in body:
            out[key] = body[key]
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping):
        out["extra_body"] = {k: body.get(k, v) for k, v in extra.items()}
    return out


class Relayed:
    """An SDK resource (or its ``with_raw_response`` / ``with_streaming_response`` form) whose
    :class:`Spec` methods are read before they are called; everything else is its own."""

    def __init__(self, own: Any, spec: Spec, reading: Reading, way: str = "") -> None:
        self._own, self._spec, self._reading, self._way = own, spec, reading, way

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._own, name)
        if name in self._spec.methods:
            return self._checked(value, self._spec.methods[name])
        if name in self._spec.children:
            return Relayed(value, self._spec.children[name], self._reading, self._way)
        if name in WAYS and not self._way:
            return Relayed(value, self._spec, self._reading, name)
        return value

    def _checked(self, method: Callable[..., Any], endpoint: Endpoint) -> Callable[..., Any]:
        reading = self._reading
        if not reading.active:
            return method
        streamed = self._way == "with_streaming_response"

        def call(*args: Any, **kwargs: Any) -> Any:
            if streamed:  # the SDK makes the request on entering: so are the checks
                return _Entered(reading, endpoint, lambda kw: method(*args, **kw), kwargs)
            if reading.is_async:

                async def go() -> Any:
                    return await method(*args, **await reading.kwargs(endpoint, kwargs))

                return go()
            return method(*args, **reading.portal.call(reading.kwargs(endpoint, kwargs)))

        return call


class _Entered:
    """``with_streaming_response``'s context manager, sync or async: the body read on
    entering, then the SDK's own context manager for the call as it is made."""

    def __init__(
        self,
        reading: Reading,
        endpoint: Endpoint,
        make: Callable[[dict[str, Any]], Any],
        kwargs: dict[str, Any],
    ) -> None:
        self._reading, self._endpoint, self._make, self._kwargs = reading, endpoint, make, kwargs
        self._inner: Any = None

    def __enter__(self) -> Any:
        kwargs: dict[str, Any] = self._reading.portal.call(
            self._reading.kwargs(self._endpoint, self._kwargs)
        )
        self._inner = self._make(kwargs)
        return self._inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._inner.__exit__(*exc)

    async def __aenter__(self) -> Any:
        kwargs = await self._reading.kwargs(self._endpoint, self._kwargs)
        self._inner = self._make(kwargs)
        return await self._inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)
