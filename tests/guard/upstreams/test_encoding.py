"""Undoing content codings: a piece at a time, every layer, and nothing unbounded."""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import Iterator

import pytest

from guard.errors import UpstreamError
from guard.upstreams.encoding import MAX_LAYERS, PIECE, Decoding, capped


def decoded(codings: str, body: bytes, step: int) -> list[bytes]:
    d = Decoding.of({"content-encoding": codings})
    pieces = [p for i in range(0, len(body), step) for p in d.feed(body[i : i + step])]
    return pieces + list(d.end())


PLAIN = random.Random(0).randbytes(300_000) + bytes(700_000)  # some noise, then a long run


@pytest.mark.parametrize("step", [1 << 20, 4096, 7])
def test_every_layer_is_undone_in_pieces_no_larger_than_a_piece(step: int) -> None:
    body = gzip.compress(zlib.compress(gzip.compress(PLAIN, mtime=0)), mtime=0)
    pieces = decoded("gzip, deflate, x-gzip", body, step)
    assert b"".join(pieces) == PLAIN
    assert max(len(p) for p in pieces) <= PIECE


def test_a_small_body_that_decodes_to_a_lot_comes_out_a_piece_at_a_time() -> None:
    """Before: ``feed`` returned the whole decoded body at once (a gzip bomb in memory)."""
    bomb = gzip.compress(gzip.compress(bytes(50_000_000), mtime=0), mtime=0)
    assert len(bomb) < 100_000
    sizes: list[int] = []

    def seen(pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            sizes.append(len(piece))
            yield piece

    out = bytearray()
    with pytest.raises(UpstreamError) as caught:
        capped(seen(Decoding.of({"content-encoding": "gzip, gzip"}).feed(bomb)), 1_000_000, out)
    assert caught.value.code == "upstream_too_large"
    assert len(out) <= 1_000_000
    assert max(sizes) <= PIECE
    assert sum(sizes) <= 1_000_000 + PIECE  # decoding stopped where reading did


def test_no_coding_passes_the_body_as_it_is() -> None:
    d = Decoding.of({"content-encoding": "gzip"})  # aiohttp undid it
    assert not d
    assert list(d.feed(b"abc")) == [b"abc"]
    assert list(d.feed(b"")) == []
    assert list(d.end()) == []


def test_more_layers_than_anyone_uses_are_refused() -> None:
    """Before: one decompressor per listed coding, however many the header listed."""
    assert Decoding.of({"content-encoding": ", ".join(["gzip"] * MAX_LAYERS)})
    with pytest.raises(UpstreamError) as caught:
        Decoding.of({"content-encoding": ", ".join(["gzip"] * (MAX_LAYERS + 1))})
    assert caught.value.code == "upstream_encoding"


def test_a_body_cut_short_or_not_compressed_is_an_encoding_error() -> None:
    whole = gzip.compress(gzip.compress(PLAIN, mtime=0), mtime=0)
    for body in (whole[: len(whole) // 2], b"plain text, not gzip"):
        with pytest.raises(UpstreamError) as caught:
            decoded("gzip, gzip", body, 1000)
        assert caught.value.code == "upstream_encoding"


@pytest.mark.parametrize("step", [1 << 20, 5])
def test_a_layer_of_several_gzip_members_is_read_whole(step: int) -> None:
    """RFC 1952, 2.2: a gzip file is a series of members (``cat a.gz b.gz``). Before: the
    first member only, the others dropped without a word."""
    inner = gzip.compress(PLAIN[:1000], mtime=0) + gzip.compress(PLAIN[1000:3000], mtime=0)
    body = gzip.compress(inner, mtime=0) + gzip.compress(b"", mtime=0)
    assert b"".join(decoded("gzip, gzip", body, step)) == PLAIN[:3000]


@pytest.mark.parametrize(
    ("codings", "body"),
    [
        ("gzip, gzip", gzip.compress(gzip.compress(b"plain", mtime=0), mtime=0) + b"junk"),
        ("deflate, gzip", gzip.compress(zlib.compress(b"plain") + b"junk", mtime=0)),
        ("gzip, deflate", zlib.compress(gzip.compress(b"plain", mtime=0)) + zlib.compress(b"x")),
    ],
    ids=["junk after gzip", "junk after deflate", "a second deflate stream"],
)
def test_bytes_after_a_layers_end_are_an_error_not_dropped(codings: str, body: bytes) -> None:
    """Before: dropped without a word, and what came before went on as the whole body."""
    with pytest.raises(UpstreamError) as caught:
        decoded(codings, body, 1 << 20)
    assert caught.value.code == "upstream_encoding"


def test_an_empty_body_in_any_coding_is_empty() -> None:
    """A 204 or a 304 says its coding but has no body. Before: 'ends inside a compressed
    stream', a 502 for a 204."""
    d = Decoding.of({"content-encoding": "gzip, gzip"})
    assert [*d.feed(b""), *d.end()] == []
