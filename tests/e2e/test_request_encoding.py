"""A compressed request body on a text endpoint: read, checked and sent upstream decoded; what
calguard cannot read is a clear 4xx, never an unclear one. Exact bytes through a real calguard
in front of a raw upstream (:mod:`tests.e2e.differential`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest

from tests.e2e.differential import ASK, CHAT, Pair, calguard_in_front, gz
from tests.e2e.raw_upstream import JSON, Reply, exchange, request, response

LIMIT = 100_000


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """calguard with a prompt policy (so the body must be read to be checked)."""
    deny = [
        {"type": "regex", "on": "prompt", "action": "block", "params": {"patterns": ["forbidden"]}}
    ]
    with calguard_in_front(
        tmp_path_factory.mktemp("req-enc") / "r.db",
        max_body_bytes=LIMIT,
        default_route={"policies": deny},
    ) as both:
        yield both


def post(pair: Pair, body: bytes, coding: bytes) -> Reply:
    pair.up.answers[b"/chat/completions"] = response(b"200 OK", [JSON], CHAT)
    headers = [JSON, (b"content-encoding", coding)]
    return exchange(pair.calguard, request(b"POST", b"/v1/chat/completions", headers, body))


CODED = {
    "gzip": (b"gzip", gz),
    "deflate": (b"deflate", zlib.compress),
    "two layers": (b"deflate, gzip", lambda b: gz(zlib.compress(b))),
    "x-gzip, upper case": (b"X-GZIP", gz),
}


@pytest.mark.parametrize(("coding", "encode"), CODED.values(), ids=CODED.keys())
def test_a_compressed_body_is_read_and_goes_upstream_decoded(
    guarded: Pair, coding: bytes, encode: object
) -> None:
    """Before: a 400 invalid_json ('the request body is not valid JSON'), the client left to
    guess why."""
    assert callable(encode)
    before = len(guarded.up.got)
    via = post(guarded, encode(ASK), coding)
    assert via.status == 200, via.body
    sent = guarded.up.got[before:]
    assert len(sent) == 1
    assert sent[0].body == ASK  # the client's own bytes, decoded
    assert sent[0].header(b"content-encoding") is None


def test_a_compressed_prompt_is_still_checked(guarded: Pair) -> None:
    bad = ASK.replace(b'"hi"', b'"something forbidden"')
    before = len(guarded.up.got)
    via = post(guarded, gz(bad), b"gzip")
    assert via.status == 400
    assert b"policy_violation" in via.body
    assert len(guarded.up.got) == before  # never reached the upstream


@pytest.mark.parametrize(
    "coding", [b"br", b"zstd", b"gzip, x-custom", b"gzip, gzip, gzip, gzip, gzip"]
)
def test_a_coding_calguard_does_not_read_is_a_415_that_says_so(
    guarded: Pair, coding: bytes
) -> None:
    via = post(guarded, gz(ASK), coding)
    assert via.status == 415
    assert b'"unsupported_content_encoding"' in via.body
    assert b"send it uncompressed" in via.body


def test_a_body_that_does_not_decode_as_said_is_a_400(guarded: Pair) -> None:
    via = post(guarded, ASK, b"gzip")
    assert via.status == 400
    assert b'"invalid_content_encoding"' in via.body


def test_a_small_body_that_decodes_past_the_limit_is_a_413(guarded: Pair) -> None:
    padded = ASK[:-1] + b', "user": "' + b"a" * (10 * LIMIT) + b'"}'
    assert len(gz(padded)) < LIMIT
    via = post(guarded, gz(padded), b"gzip")
    assert via.status == 413
    assert b"over the limit" in via.body
