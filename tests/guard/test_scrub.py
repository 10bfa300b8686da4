"""guard.scrub: a body scrubbed across its chunks is scrubbed as if it came whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from guard.scrub import MASK, Scrubber

KEYS = ["sk-upstream-0123456789", "sk-proxy/abcdefgh", "aaaaaaaa"]  # an escaped form, a run
SCRUB = Scrubber(KEYS)


def across(chunks: list[bytes]) -> bytes:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def gather() -> bytes:
        return b"".join([c async for c in SCRUB.across(source())])

    return asyncio.run(gather())


pieces = st.lists(
    st.one_of(
        st.sampled_from([k.encode() for k in KEYS] + [b"sk-proxy\\/abcdefgh", b"aaa", b"sk-"]),
        st.binary(max_size=6),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(parts=pieces, cuts=st.lists(st.integers(min_value=0, max_value=7), max_size=30))
def test_any_cut_gives_what_the_whole_body_gives(parts: list[bytes], cuts: list[int]) -> None:
    """Before, relayed bodies were scrubbed whole only; across chunks, a key cut in two would
    pass in its two halves."""
    body = b"".join(parts)
    chunks, at = [], 0
    for cut in cuts:
        chunks.append(body[at : at + cut])
        at += cut
    chunks.append(body[at:])
    got = across(chunks)
    assert got == SCRUB.data(body)
    assert all(k.encode() not in got for k in KEYS)


def test_a_key_cut_byte_by_byte_is_masked() -> None:
    body = b"before " + KEYS[0].encode() + b" after"
    got = across([body[i : i + 1] for i in range(len(body))])
    assert got == b"before " + MASK.encode() + b" after"


def test_no_keys_pass_the_chunks_as_they_are() -> None:
    async def gather() -> list[bytes]:
        async def source() -> AsyncIterator[bytes]:
            for chunk in (b"a", b"bc"):
                yield chunk

        return [c async for c in Scrubber([]).across(source())]

    assert asyncio.run(gather()) == [b"a", b"bc"]
