"""Everything under ``/v1`` that is not a text endpoint: the model list (the upstream's, plus
the routes calguard serves) and every other path (stored completions, files, batches, ...),
passed through untouched unless the ``passthrough_paths`` allow-list says no, or the body is one
a model reads (a conversation's items, a thread's messages, ...) and prompt policies apply to
it (:mod:`guard.relay_checks`)."""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, unquote

from guard import sse
from guard.config import Settings
from guard.errors import CalguardError, NotFoundError
from guard.metrics import Metrics
from guard.relay_checks import RelayChecks
from guard.reply import AnswerCutError, Reply, new_request_id, primed, scrubbed, started
from guard.scrub import Scrubber
from guard.upstreams import RawResponse, Upstream
from guard.upstreams.headers import forward_headers, passed_headers

log = logging.getLogger("calguard")
TEXT_PATHS = frozenset({"chat/completions", "completions", "responses", "embeddings"})
_LONGEST_FIRST = sorted(TEXT_PATHS, key=len, reverse=True)
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_AS_ITS_BYTES = frozenset({"content-type", "content-encoding"})
_AS_IT_COMES = _AS_ITS_BYTES | {"content-length"}
_AS_JSON = frozenset({"content-type"})
WHOLE_BYTES = 1_000_000  # a relayed answer up to this is read whole; a larger one streams


def as_sent(path: str, written: str | None) -> str:
    """``path`` (decoded, checked) as it goes in the URL: as the client ``written`` it when
    that decodes to ``path`` (its escapes kept, so ``/models/org%2Fmodel`` stays one segment
    upstream: the upstream's one decoding then gives the path calguard checked), else quoted.
    Escapes that are not UTF-8 decoded as U+FFFD for the check: that path goes, not the bytes
    (an overlong ``%c0%ae`` is ``.`` to a lenient decoder upstream)."""
    if written is not None:
        try:
            if unquote(written, errors="strict") == path:
                return written
        except UnicodeDecodeError:
            pass
    return quote(path, safe=_PATH_SAFE)


def check_relayed_path(path: str, method: str) -> None:
    """A relayed path is a plain one: no ``.`` / ``..`` / empty segments and no percent sign
    (the HTTP client would resolve the first into another path, e.g. a text endpoint, or out
    of an allow-list; a path that still holds an escape after the server decoded it once was
    encoded twice, and ``%2e%2e`` resolves as ``..`` there), and never a text endpoint in
    disguise (a POST to one, or to a path that ends in one, goes through the pipeline; GET
    lists stored ones). A segment is also read without its ``;`` parameters, as servers that
    route without them (Tomcat, Jetty, Spring) read it: ``chat/completions;x`` is the text
    endpoint, ``..;`` a dot segment."""
    segments = [s.split(";", 1)[0] for s in path.split("/")]
    # a segment ending in a dot too: IIS (and Windows paths) drop trailing dots, so there
    # chat/completions. is the text endpoint and threads/t/messages. a thread's messages
    if any(s == "" or s.endswith(".") for s in segments) or any(
        c in "?#%\\" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in path
    ):
        # ? and # (decoded from %3F, %23) would start a query or a fragment in the URL sent
        # on, and the HTTP client drops tabs and line breaks: /v1/chat/completions%3F is not
        # another path than the text endpoint
        raise NotFoundError(
            f"/v1/{path}: not a path this proxy relays (dot or empty segments, a segment "
            "ending in a dot, an escape, "
            "a ? or #, or white space)"
        )
    plain = "/".join(segments).lower()
    if method == "POST" and (text := _text_path(plain)) is not None:
        raise NotFoundError(f"/v1/{path}: send it as POST /v1/{text}, the model in its body")


def stored_answer(method: str, path: str) -> str | None:
    """What a relayed request fetches of the upstream's stored answers (a response, a chat
    completion, a conversation's items: the model's text as it gave it), if it fetches one."""
    steps = [s.split(";", 1)[0] for s in path.lower().split("/")]  # as check_relayed_path
    fetch = method in ("GET", "HEAD")
    if steps[0] == "responses" and len(steps) == 2 and fetch:
        return "response"
    if steps[0] == "responses" and len(steps) == 3 and steps[2] == "cancel":
        return "response"  # cancelling answers the response, its output so far included
    if steps[:2] == ["chat", "completions"] and len(steps) <= 3 and (fetch or len(steps) == 3):
        return "chat completion"  # the list, one, or one updated (the answer is the completion)
    if steps[0] == "conversations" and len(steps) >= 3 and steps[2] == "items" and fetch:
        return "conversation item"
    return None


def _text_path(plain: str) -> str | None:
    """The text endpoint a path ends in, if any: ``engines/<model>/completions`` (the legacy
    form LocalAI still serves, as ``.../embeddings`` and ``.../chat/completions``) is the text
    endpoint under another path, and an upstream that serves it would answer it unchecked."""
    return next((t for t in _LONGEST_FIRST if plain == t or plain.endswith(f"/{t}")), None)


class Relay:
    def __init__(
        self,
        settings: Settings,
        upstream: Upstream | None,
        metrics: Metrics,
        scrub: Scrubber,
        *,
        hide_answers: bool = False,
        checks: RelayChecks | None = None,
    ) -> None:
        self.settings = settings
        # prompt-side policies on the bodies a model reads (conversations, threads, ...)
        self.checks = checks
        # a route's response-side policies rewrite or stop answers: their stored copies stay
        self.hide_answers = hide_answers
        self.upstream = upstream
        self.metrics = metrics
        self.scrub = scrub

    async def forward(
        self,
        method: str,
        path: str,
        content: bytes | AsyncIterator[bytes],
        headers: Mapping[str, str],
        query: str,
        request_id: str,
        written: str | None = None,
        whole: bool = False,
    ) -> Reply:
        """Any other path under /v1 (``path`` with its leading ``/``, decoded; ``written``: as
        the client wrote it), passed through untouched (unless it is not a plain path, or the
        allow-list says no): the path checked is the path sent, whichever route relays it. A
        large successful answer (over :data:`WHOLE_BYTES`, or of no said length) streams
        through, scrubbed across its chunks, unless the caller needs it ``whole``. A body too
        large to read whole (``content`` as it comes) goes on as it comes, with the length the
        client said, asked once: it cannot be sent again. A body a model reads (a thread's
        messages, ...) is first read whole by the prompt policies that apply to it
        (:mod:`guard.relay_checks`): refused, sent rewritten, or sent as it came."""
        out = {"x-calguard-request-id": request_id}
        try:
            check_relayed_path(path[1:], method)
        except NotFoundError as exc:
            return Reply.of_error(exc, out)
        if self.hide_answers and (kind := stored_answer(method, path[1:])) is not None:
            err = NotFoundError(
                f"{method} /v1{path}: this proxy's response-side policies rewrite or block "
                f"answers, and the upstream's stored {kind} holds the answer as the model gave "
                "it, unread: calguard does not relay it"
            )
            return Reply.of_error(err, out)
        allowed = self.settings.passthrough_paths
        own = method == "OPTIONS" and path[1:].lower() in TEXT_PATHS  # a preflight for them
        if (
            allowed is not None
            and not own
            and not any(fnmatch.fnmatchcase(path, p) for p in allowed)
        ):
            err = NotFoundError(f"{method} /v1{path} is not passed through by this proxy")
            return Reply.of_error(err, out)
        if self.upstream is None:  # routes only (a LiteLLM model_list): no default upstream
            err = NotFoundError(
                f"{method} /v1{path}: this proxy has no default upstream to relay to"
            )
            return Reply.of_error(err, out)
        try:
            # the body goes as its bytes: with the type and the coding the client gave them
            # (and, as it comes, with the length it said: else it would go chunked). Not a
            # length said beside Transfer-Encoding: the chunks framed the body, not it (RFC
            # 9112, 6.3: a proxy removes it), and the upstream would read that many bytes.
            by_length = not isinstance(content, bytes) and "transfer-encoding" not in headers
            framing = _AS_IT_COMES if by_length else _AS_ITS_BYTES
            checked = None
            if self.checks is not None:
                checked = await self.checks.check(
                    method, path[1:], content, headers, request_id, out
                )
            if checked is not None:
                content = checked.content  # read whole: it goes as its bytes
                # rewritten, it is JSON as calguard wrote it, in no coding of the client's
                framing = _AS_JSON if checked.rewritten else _AS_ITS_BYTES
            keep = forward_headers(headers, self.settings, self.scrub.keys, framing)
            if framing is _AS_JSON:
                keep.setdefault("content-type", "application/json")
            opened = await self.upstream.relay(
                method, as_sent(path, written), content=content or None, headers=keep, query=query
            )
            self.metrics.upstream_calls.inc()
            said = {**passed_headers(opened.headers), **out}
            if method == "HEAD" and "content-length" in opened.headers:
                said["content-length"] = opened.headers["content-length"]  # what a GET gets
            if opened.status == 200 and sse.is_stream(opened.content_type):
                # as it comes, in whole events (so the scrubber sees each one whole)
                return await primed(
                    scrubbed(
                        started(
                            sse.whole_events(opened.chunks, opened.limit), said, opened.content_type
                        ),
                        self.scrub,
                    )
                )
            if whole or not _large(method, opened.status, opened.headers):
                raw = RawResponse(
                    opened.status, await opened.read(), opened.content_type, opened.headers
                )
            else:  # a file's content: as it comes, never whole in memory
                length = _plain_length(opened.headers)
                if length is not None:  # kept (a download's progress): keys masked as long
                    said["content-length"] = length
                body = self.scrub.across(opened.chunks, same_length=length is not None)
                try:  # an error before the first bytes is the whole reply
                    first = await body.__anext__()
                except StopAsyncIteration:
                    first = b""
                rest = _cut_loudly(first, body, request_id)
                reply = Reply(opened.status, said, stream=rest, media_type=opened.content_type)
                reply.headers = self.scrub.headers(reply.headers)
                reply.media_type = self.scrub.text(reply.media_type)
                return reply
        except CalguardError as exc:
            return Reply.of_error(exc, out)
        return scrubbed(Reply.of_raw(raw, said), self.scrub)

    async def models(self, headers: Mapping[str, str], query: str) -> Reply:
        """The upstream's model list as it said it, plus the routes calguard serves."""
        if self.upstream is None:  # routes only: they are the list
            data = [_route_model(name) for name in self.settings.routes]
            return Reply.of_json({"object": "list", "data": data}, {})
        reply = await self.forward(
            "GET", "/models", b"", headers, query, new_request_id(), whole=True
        )
        if reply.status != 200 or not self.settings.routes:
            return reply
        try:
            listed = json.loads(reply.body)
            data = listed["data"]
        except (ValueError, KeyError, TypeError):
            return reply
        if not isinstance(data, list):  # not a list: the upstream's answer, as it said it
            return reply
        known = {m.get("id") for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)}
        data += [_route_model(name) for name in self.settings.routes if name not in known]
        return Reply.of_json(listed, {k: v for k, v in reply.headers.items()})

    async def model(
        self, model: str, headers: Mapping[str, str], query: str, written: str | None = None
    ) -> Reply:
        if model in self.settings.routes:
            return Reply.of_json(_route_model(model), {})
        path = f"/models/{model}"
        return await self.forward("GET", path, b"", headers, query, new_request_id(), written)


async def _cut_loudly(
    first: bytes, rest: AsyncGenerator[bytes, None], request_id: str
) -> AsyncIterator[bytes]:
    """``first``, then ``rest``; an upstream failure on the way is logged in one line and cuts
    the answer (:class:`AnswerCutError`)."""
    try:
        yield first
        async for chunk in rest:
            yield chunk
    except CalguardError as exc:
        log.warning("request %s: relayed answer cut after it began: %s", request_id, exc.message)
        raise AnswerCutError(exc.message) from exc
    finally:
        await rest.aclose()


def _plain_length(headers: Mapping[str, str]) -> str | None:
    """The body's length as the upstream said it, where that is the length calguard passes on
    (not that of a compressed body, which calguard decodes)."""
    said = headers.get("content-length", "")
    coded = headers.get("content-encoding", "").strip().lower() not in ("", "identity")
    return said if said.isdigit() and not coded else None


def _large(method: str, status: int, headers: Mapping[str, str]) -> bool:
    """A successful answer with a body that may be large: over :data:`WHOLE_BYTES` as sent, of
    no said length (chunked), or compressed (its length says nothing of the decoded size)."""
    length = _plain_length(headers)
    small = length is not None and int(length) <= WHOLE_BYTES
    return method != "HEAD" and 200 <= status < 300 and status not in (204, 205) and not small


def _route_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "calguard"}
