"""An end-to-end fuzz run: >= 2,000 seeded, mutated requests against a real calguard server (under
uvicorn on 127.0.0.1, a fake upstream behind it), over every endpoint, stream and not, with and
without ``guard`` objects, on routes with policies and proxy API keys.

The run happens once per module; each test then reads one kind of input's results: no response
>= 500 caused by input, every error body OpenAI-shaped and free of source paths, and the server
still answering afterwards. Bounded in count and in time (a per-request timeout)."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from guard import sse
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

SEED = 9
PER_KIND = 150  # requests of each kind below: 21 kinds -> 3,150 requests
CONCURRENCY = 8
KEY = "sk-proxy-fuzz"
ADMIN = "admin-fuzz"
AUTH = {"Authorization": f"Bearer {KEY}"}
POLICIES = [
    {"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"},
    {"type": "pii", "action": "redact", "on": "prompt"},
    {"type": "regex", "params": {"patterns": [r"\bcode-\d{4}\b"]}, "action": "flag"},
]
MODELS = ["plain", "guarded", "sim"]
QUESTIONS = [
    "Which is a fruit?\nA. apple\nB. brick\nC. chair\nD. stone",
    "Pick one.\nA) yes\nB) no",
    "Best?\n(1) one\n(2) two\n(3) three",
]
TEXTS = ["hello", "say forbidden things", "mail me at a@b.co", "code-1234 please", "", "é ü 中"]

# Placeholders replaced in the JSON text after dumping: literals json.dumps cannot write.
LITERALS = {
    '"@NAN@"': "NaN",
    '"@INF@"': "Infinity",
    '"@NINF@"': "-Infinity",
    '"@BIGINT@"': "1" + "0" * 5000,
    '"@BIGFLOAT@"': "1e400",
    '"@SURROGATE@"': '"\\ud800"',
    '"@LOWSURR@"': '"x\\udc80y"',
    '"@DEEP@"': "[" * 100_000 + "]" * 100_000,
    '"@DEEPOBJ@"': '{"a":' * 50_000 + "1" + "}" * 50_000,
}
SPECIAL = ["@NAN@", "@INF@", "@NINF@", "@BIGINT@", "@BIGFLOAT@", "@SURROGATE@", "@LOWSURR@"]
WRONG = [None, True, 0, -1, 1.5, 10**30, "", "x", [], [1], {}, {"a": 1}, [None], ["a", 2]]


def dumps(obj: Any) -> bytes:
    text = json.dumps(obj)
    for placeholder, literal in LITERALS.items():
        text = text.replace(placeholder, literal)
    return text.encode()


@dataclass
class Req:
    kind: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    chain: list[Req] = field(default_factory=list)  # sent in order, after this one


@dataclass
class Result:
    kind: str
    what: str  # method, path and a short form of the body
    status: int
    body: bytes


# -- request generation ----------------------------------------------------------------------


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def base(rng: random.Random, path: str) -> dict[str, Any]:
    model = rng.choice(MODELS)
    text = rng.choice(TEXTS + QUESTIONS)
    if path == "/v1/chat/completions":
        body: dict[str, Any] = {"model": model, "messages": user(text)}
        if rng.random() < 0.3:
            body["messages"] = [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": text}]},
                *user(text),
            ]
        if rng.random() < 0.3:
            body["logprobs"], body["top_logprobs"] = True, rng.choice([1, 5, 20])
        if rng.random() < 0.2:
            body["n"] = 2
    elif path == "/v1/completions":
        body = {"model": model, "prompt": rng.choice([text, [text, "more"]])}
    elif path == "/v1/responses":
        body = {"model": model, "input": rng.choice([text, [{"role": "user", "content": text}]])}
    else:
        body = {"model": model, "input": rng.choice([text, [text, text]])}
    if path != "/v1/embeddings" and rng.random() < 0.5:
        body["stream"] = True
        if rng.random() < 0.3:
            body["stream_options"] = {"include_usage": True}
    return body


PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"]


def guard_object(rng: random.Random) -> Any:
    task = rng.choice(["mcq", "classify", "judge", "none", None, "bogus", 3])
    g: dict[str, Any] = {} if task is None else {"task": task}
    if task == "mcq" or task is None:
        if rng.random() < 0.5:
            g["calibration"] = rng.choice(["pride", "cyclic", "adaptive", "full", "none", "nope"])
        if rng.random() < 0.3:
            g["budget"] = rng.choice([1.0, 2.5, 1000, 0.5, -1, "@NAN@", "@INF@", "x"])
        if rng.random() < 0.3:
            g["options"] = rng.choice([["apple", "brick"], ["apple"], ["a"] * 11, "apple", [1, 2]])
    elif task == "classify":
        g["labels"] = rng.choice([["positive", "negative"], ["yes", "yes"], ["a"], None, [1, 2]])
        if rng.random() < 0.5:
            g["calibration"] = rng.choice(["batch", "contextual", "domain", "prior-match", "x"])
        if rng.random() < 0.5:
            g["input"] = rng.choice(["hello", "", 3])
    elif task == "judge":
        g["candidates"] = rng.choice([["first", "second"], ["one"], ["x", "x"], None])
        if rng.random() < 0.5:
            g["labels"] = rng.choice([["A", "B"], ["A", "A"], ["1"], [3, 4]])
    if rng.random() < 0.3:
        g["key"] = rng.choice(["k-shared", "", 7, "@SURROGATE@"])
    if rng.random() < 0.1:
        g["unknown_field"] = 1
    return g if rng.random() < 0.95 else rng.choice(WRONG)


def chat_with_guard(rng: random.Random, text: str | None = None) -> dict[str, Any]:
    body = {"model": rng.choice(MODELS), "messages": user(text or rng.choice(QUESTIONS + TEXTS))}
    body["guard"] = guard_object(rng)
    if rng.random() < 0.3:
        body["stream"] = True
    return body


def paths_in(obj: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths_in(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths_in(v, (*at, i))


def put(obj: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    parent = obj
    for k in at[:-1]:
        parent = parent[k]
    parent[at[-1]] = value
    return obj


def mutate_anywhere(rng: random.Random, body: dict[str, Any], values: list[Any]) -> Any:
    where = rng.choice([p for p in paths_in(body) if p])  # not the whole body
    return put(body, where, copy.deepcopy(rng.choice(values)))  # never share the templates


def post(kind: str, path: str, body: Any, *, raw: bytes | None = None, **headers: Any) -> Req:
    data = raw if raw is not None else dumps(body)
    stream = isinstance(body, dict) and body.get("stream") is True
    h = {**AUTH, "Content-Type": "application/json", **headers}
    return Req(kind, "POST", path, data, h, stream)


def generate(rng: random.Random) -> list[Req]:
    """Every kind of input, ``PER_KIND`` of each, shuffled (seeded)."""
    kinds: dict[str, Callable[[], Req]] = {}

    def kind(fn: Callable[[], Req]) -> Callable[[], Req]:
        kinds[fn.__name__] = fn
        return fn

    @kind
    def valid() -> Req:
        path = rng.choice(PATHS)
        return post("valid", path, base(rng, path))

    @kind
    def nan_inf_in_stream() -> Req:
        path = rng.choice(PATHS[:3])
        body = base(rng, path)
        body["stream"] = True
        return post("nan_inf_in_stream", path, mutate_anywhere(rng, body, SPECIAL[:3]))

    @kind
    def nan_inf_anywhere() -> Req:
        path = rng.choice(PATHS)
        return post("nan_inf_anywhere", path, mutate_anywhere(rng, base(rng, path), SPECIAL[:3]))

    @kind
    def lone_surrogate_in_stream() -> Req:
        path = rng.choice(PATHS[:3])
        body = base(rng, path)
        body["stream"] = True
        values = ["@SURROGATE@", "@LOWSURR@"]
        return post("lone_surrogate_in_stream", path, mutate_anywhere(rng, body, values))

    @kind
    def lone_surrogate_anywhere() -> Req:
        path = rng.choice(PATHS)
        body = mutate_anywhere(rng, base(rng, path), ["@SURROGATE@", "@LOWSURR@"])
        return post("lone_surrogate_anywhere", path, body)

    @kind
    def lone_surrogate_flagged() -> Req:
        body = {
            "model": rng.choice(["@SURROGATE@", "guarded", "sim"]),
            "messages": user(rng.choice(["say forbidden things", "code-1234 please"])),
            "stream": rng.random() < 0.5,
        }
        if body["model"] != "@SURROGATE@":
            body["user"] = "@LOWSURR@"
        return post("lone_surrogate_flagged", "/v1/chat/completions", body)

    @kind
    def deep_nesting() -> Req:
        path = rng.choice(PATHS)
        body = mutate_anywhere(rng, base(rng, path), ["@DEEP@", "@DEEPOBJ@"])
        if rng.random() < 0.3:
            body = "@DEEP@"
        return post("deep_nesting", path, body)

    @kind
    def huge_numbers() -> Req:
        path = rng.choice(PATHS)
        values = ["@BIGINT@", "@BIGFLOAT@", 10**30, -(10**30), 1e308, 2**63]
        return post("huge_numbers", path, mutate_anywhere(rng, base(rng, path), values))

    @kind
    def wrong_types() -> Req:
        path = rng.choice(PATHS)
        body = base(rng, path)
        for _ in range(rng.randint(1, 3)):
            body = mutate_anywhere(rng, body, WRONG) if isinstance(body, dict) else body
        return post("wrong_types", path, body)

    @kind
    def not_json() -> Req:
        path = rng.choice([*PATHS, "/v1/models", "/v1/files"])
        raw = rng.choice(
            [b"", b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b"{}", b'{"model": 1}', b"1e999",
             b'{"model": "plain", "messages": [', b"\x00" * 10]
        )  # fmt: skip
        return post("not_json", path, None, raw=raw)

    @kind
    def guard_objects() -> Req:
        return post("guard_objects", "/v1/chat/completions", chat_with_guard(rng))

    @kind
    def guard_on_other_endpoints() -> Req:
        path = rng.choice(PATHS[1:])
        body = base(rng, path)
        body["guard"] = guard_object(rng)
        return post("guard_on_other_endpoints", path, body)

    @kind
    def guard_fields_wrong() -> Req:
        body = chat_with_guard(rng)
        if isinstance(body["guard"], dict) and body["guard"]:
            body["guard"] = mutate_anywhere(rng, body["guard"], WRONG + SPECIAL)
        return post("guard_fields_wrong", "/v1/chat/completions", body)

    @kind
    def duplicate_labels() -> Req:
        task = rng.choice(["classify", "judge"])
        g: dict[str, Any] = {"task": task, "labels": rng.choice([["yes", "yes"], ["A", "B", "A"]])}
        if task == "judge":
            g["candidates"] = ["first answer", "second answer"]
        body = {"model": rng.choice(MODELS), "messages": user("Is it good? yes or no"), "guard": g}
        body["stream"] = rng.random() < 0.3
        return post("duplicate_labels", "/v1/chat/completions", body)

    @kind
    def key_reused_with_another_option_count() -> Req:
        key = f"shared-{rng.randrange(10**9)}"
        texts = rng.sample(QUESTIONS, 2)
        reqs = [
            post(
                "key_reused_with_another_option_count",
                "/v1/chat/completions",
                {
                    "model": rng.choice(MODELS),
                    "messages": user(t),
                    "guard": {"task": "mcq", "key": key},
                },
            )
            for t in texts + texts[:1]
        ]
        first, *rest = reqs
        first.chain = rest
        return first

    @kind
    def non_ascii_bearer() -> Req:
        path = rng.choice(PATHS)
        token = rng.choice(
            ["clé", "ключ", "\u00e9" * 3, "sk-proxy-fuzz\u00e9", "🔑", "\x7f", "a\tb"]
        )
        enc = rng.choice(["utf-8", "latin-1"])
        value = ("Bearer " + token).encode(enc, "replace")
        return post("non_ascii_bearer", path, base(rng, path), Authorization=value)

    @kind
    def missing_or_bad_auth() -> Req:
        path = rng.choice([*PATHS, "/v1/models"])
        value = rng.choice(["", "Bearer", "Bearer ", "Basic abc", "Bearer wrong", "bearer " + KEY])
        return post("missing_or_bad_auth", path, base(rng, path), Authorization=value)

    @kind
    def flags_query() -> Req:
        # Bad values, or values that match no record: the listing itself is checked after the
        # run (test_the_flag_log_still_lists_after_the_run), when every record is written.
        q = rng.choice(
            ["since=abc", "since=NaN", "since=1e309", "limit=abc", "since=2e9&limit=-5",
             "limit=0x10", "limit=1.5", "since=1&since=x", "since=%00", "since=2e9&limit=-1",
             "since=" + "9" * 3000 + "x", "since=2e9&limit=99999999999999999999"]
        )  # fmt: skip
        auth = rng.choice([f"Bearer {ADMIN}", f"Bearer {ADMIN}", "Bearer no", "Bearer é"])
        h = {"Authorization": auth.encode("utf-8")}
        return Req("flags_query", "GET", f"/v1/guard/flags?{q}", None, h)

    @kind
    def other_paths() -> Req:
        path = rng.choice(
            ["/v1/models/x", "/v1/models/%2e%2e", "/v1/files", "/nope", "/v1/x%00y", "/metrics",
             "/healthz", "/v1/" + "a" * 2000]
        )  # fmt: skip
        method = rng.choice(["GET", "POST", "DELETE", "PUT"])
        return Req("other_paths", method, path, b"{}" if method != "GET" else None, dict(AUTH))

    @kind
    def messages_shapes() -> Req:
        msgs = rng.choice(
            [[], [{}], [{"role": 1}], [{"role": "user"}], [{"role": "user", "content": None}],
             [{"role": "user", "content": [{"type": "text"}]}], [{"role": "user", "content": [1]}],
             [{"role": "tool", "content": "x"}], "hello", [["user", "hi"]],
             [{"role": "user", "content": {"text": "hi"}}]]
        )  # fmt: skip
        body = {"model": rng.choice(MODELS), "messages": msgs, "stream": rng.random() < 0.5}
        if rng.random() < 0.5:
            body["guard"] = guard_object(rng)
        return post("messages_shapes", "/v1/chat/completions", body)

    @kind
    def content_type_and_size() -> Req:
        path = rng.choice(PATHS)
        body = base(rng, path)
        choice = rng.random()
        if choice < 0.3:
            return post("content_type_and_size", path, body, **{"Content-Type": "text/plain"})
        if choice < 0.6:
            big = "x" * 5_000_000
            return post("content_type_and_size", path, {**body, "pad": big})
        return post("content_type_and_size", path, body, **{"Content-Length": "abc"})

    reqs = [fn() for fn in kinds.values() for _ in range(PER_KIND)]
    rng.shuffle(reqs)
    return reqs


# -- running them ----------------------------------------------------------------------------


def short(req: Req) -> str:
    body = (req.body or b"")[:160].decode("utf-8", "replace")
    return f"{req.method} {req.path[:80]} {body}"


async def send(http: httpx.AsyncClient, req: Req) -> Result:
    headers = {k: v for k, v in req.headers.items()}
    if req.headers.get("Content-Length") == "abc":
        headers.pop("Content-Length")  # httpx would refuse it; sent as-is below instead
    for attempt in range(3):
        try:
            async with http.stream(req.method, req.path, content=req.body, headers=headers) as r:
                data = await r.aread()
            return Result(req.kind, short(req), r.status_code, data)
        except httpx.LocalProtocolError as exc:  # httpx will not send it: not a server answer
            return Result(req.kind, short(req), 0, repr(exc).encode())
        except httpx.TransportError as exc:
            if attempt == 2:  # a connection the server dropped, three times: report it
                return Result(req.kind, short(req), -1, repr(exc).encode())
    raise AssertionError("unreachable")


async def run_all(url: str, reqs: list[Req]) -> list[Result]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    timeout = httpx.Timeout(30.0)
    queue: asyncio.Queue[Req] = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)
    results: list[Result] = []

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:

        async def worker() -> None:
            while not queue.empty():
                req = queue.get_nowait()
                for one in [req, *req.chain]:
                    results.append(await send(http, one))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


def _strict_json(data: bytes) -> bool:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(data, parse_constant=refuse)
    except ValueError:
        return False
    return True


def _strict_upstream(app: Any, nonstandard: list[bytes]) -> Any:
    """The fake upstream as a real provider behaves: input it cannot use is a 400 with an
    OpenAI error body, never a crash (FastAPI's 500), and its own errors (404 / 405) are
    OpenAI-shaped too; so a 5xx or a badly shaped error seen by the client is calguard's own.
    A body calguard sends that is not standard JSON (NaN, Infinity) goes into ``nonstandard``."""

    async def wrapped(scope: Scope, receive: Receive, send_: Send) -> None:
        held: dict[str, Any] = {}
        sent = bytearray()

        async def reading() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                sent.extend(message.get("body", b""))
                if not message.get("more_body") and sent and not _strict_json(bytes(sent)):
                    nonstandard.append(bytes(sent))
            return message

        async def track(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                if message["status"] >= 500:
                    message = {**message, "status": 400}  # what a provider says to bad input
                held["start"] = message  # rewritten once its body is complete
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] = held.get("body", b"") + message.get("body", b"")
                if not message.get("more_body"):
                    await _error_reply(send_, held["start"]["status"], held["body"])
                return
            await send_(message)

        try:
            await app(scope, reading if scope["type"] == "http" else receive, track)
        except Exception as exc:
            if "start" in held:
                raise
            await _error_reply(send_, 400, f"bad input: {type(exc).__name__}".encode())

    return wrapped


async def _error_reply(send_: Send, status: int, said: bytes) -> None:
    try:
        if isinstance(json.loads(said).get("error"), dict):
            body = said
        else:
            raise ValueError
    except (ValueError, AttributeError):
        msg = said[:200].decode("utf-8", "replace")
        body = json.dumps({"error": {"message": msg, "type": "invalid_request_error",
                                     "param": None, "code": None}}).encode()  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send_({"type": "http.response.start", "status": status, "headers": headers})
    await send_({"type": "http.response.body", "body": body})


@dataclass
class Run:
    results: list[Result]
    by_kind: dict[str, list[Result]]
    after: list[int]  # statuses of the health checks made after the run
    flag_list: httpx.Response  # the whole flag log, listed after the run
    nonstandard: list[bytes]  # bodies calguard sent upstream that are not standard JSON


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    reqs = generate(random.Random(SEED))
    state = FakeUpstreamState(SimulatedResponder())
    nonstandard: list[bytes] = []
    with serve_in_thread(_strict_upstream(create_fake_upstream(state), nonstandard)) as up:
        guarded = RouteConfig(upstream_model="sim", policies=POLICIES)
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp / 'fuzz.db'}",
            api_keys=[KEY],
            admin_key=ADMIN,
            timeout_s=10,
            max_attempts=2,
            retry_max_wait_s=0.01,
            routes={"guarded": guarded, "plain": RouteConfig(upstream_model="sim")},
            default_route=RouteConfig(policies=POLICIES[:1]),
        )
        with serve_in_thread(create_app(settings)) as url:
            results = asyncio.run(run_all(url, reqs))
            after = []
            with httpx.Client(base_url=url, timeout=10) as http:
                after.append(http.get("/healthz").status_code)
                ok = http.post(
                    "/v1/chat/completions",
                    headers=AUTH,
                    json={"model": "plain", "messages": user("still there?")},
                )
                after.append(ok.status_code)
                flag_list = http.get(
                    "/v1/guard/flags?limit=10000", headers={"Authorization": f"Bearer {ADMIN}"}
                )
        by_kind: dict[str, list[Result]] = defaultdict(list)
        for r in results:
            by_kind[r.kind].append(r)
        yield Run(results, dict(by_kind), after, flag_list, nonstandard)


# -- what it must show -----------------------------------------------------------------------


def problems(results: list[Result]) -> list[str]:
    """Each response that breaks the contract, said in one line."""
    out = []
    for r in results:
        if r.status == 0:
            continue
        if r.status < 0:
            out.append(f"dropped connection: {r.what} -> {r.body[:200]!r}")
            continue
        if r.status >= 500:
            out.append(f"{r.status}: {r.what} -> {r.body[:300]!r}")
            continue
        if b'.py", line' in r.body or b'.py\\", line' in r.body:
            out.append(f"source path in body: {r.what} -> {r.body[:300]!r}")
        if r.status >= 400:
            try:
                body = json.loads(r.body)
                err = body["error"]
                assert isinstance(err, dict)
                assert {"message", "type", "param", "code"} <= set(err)
                assert isinstance(err["message"], str)
            except (ValueError, KeyError, TypeError, AssertionError):
                out.append(f"not OpenAI-shaped ({r.status}): {r.what} -> {r.body[:300]!r}")
        elif r.body.startswith(b"data:"):
            for e in sse.events([r.body]):
                data = e.json()
                if isinstance(data, dict) and "error" in data:
                    err = data["error"]
                    if not isinstance(err, dict) or not {"message", "type"} <= set(err):
                        out.append(f"SSE error event not OpenAI-shaped: {r.what} -> {e.raw!r}")
    return out


def summary(found: list[str]) -> str:
    counts = Counter(p.split(":")[0] for p in found)
    return f"{len(found)} problems {dict(counts)}; first: " + "\n".join(found[:5])


def test_the_flag_log_still_lists_after_the_run(fuzz_run: Run) -> None:
    assert fuzz_run.flag_list.status_code == 200, fuzz_run.flag_list.text
    assert len(fuzz_run.flag_list.json()["data"]) > 10


def test_calguard_sends_only_standard_json_upstream(fuzz_run: Run) -> None:
    shown = [b[:200] for b in fuzz_run.nonstandard[:3]]
    assert not fuzz_run.nonstandard, f"{len(fuzz_run.nonstandard)} bodies, e.g. {shown}"


def test_the_run_is_big_enough_and_the_server_answers_afterwards(fuzz_run: Run) -> None:
    assert len(fuzz_run.results) >= 2000
    assert fuzz_run.after == [200, 200]
    statuses = Counter(r.status for r in fuzz_run.results)
    assert statuses[200] > 200, statuses  # the valid share really went through
    assert statuses[400] > 200, statuses  # ... and the bad share really was refused


BUGS: dict[str, str] = {
    # kind -> the defect found on main (the engineer fixing the source removes the entry)
}

KINDS = [
    "valid", "nan_inf_in_stream", "nan_inf_anywhere", "lone_surrogate_in_stream",
    "lone_surrogate_anywhere", "lone_surrogate_flagged", "deep_nesting", "huge_numbers",
    "wrong_types", "not_json",
    "guard_objects", "guard_on_other_endpoints", "guard_fields_wrong", "duplicate_labels",
    "key_reused_with_another_option_count", "non_ascii_bearer", "missing_or_bad_auth",
    "flags_query", "other_paths", "messages_shapes", "content_type_and_size",
]  # fmt: skip


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=f"BUG: {BUGS[k]}"))
        if k in BUGS
        else k
        for k in KINDS
    ],
)
def test_no_500_and_openai_shaped_errors(fuzz_run: Run, kind: str) -> None:
    results = fuzz_run.by_kind[kind]
    assert len(results) >= 100
    found = problems(results)
    assert not found, summary(found)
