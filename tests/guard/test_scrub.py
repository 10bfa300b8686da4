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


def test_a_run_of_overlapping_occurrences_is_masked_as_the_whole_body_is() -> None:
    """Before: 24 a's cut after 22 came out as two masks and 'aaaaaaaa', the key (the cut was
    moved past an occurrence that overlaps the one the whole body's replace masks)."""
    for n in range(8, 50):
        body = b"a" * n
        for at in range(n + 1):
            got = across([body[:at], body[at:]])
            assert got == SCRUB.data(body), (n, at)
            assert b"aaaaaaaa" not in got, (n, at)


def test_keys_that_overlap_one_another_never_come_out_whole() -> None:
    """Before: the third key came out whole, its two halves in two pieces (three keys, each
    starting with the end of the one before, cut where the second ends)."""
    keys = ["AbaaBbbaa", "bBbbAaaAbAAb", "baaAaAbBb"]
    scrub = Scrubber(keys)
    body = b"bAAbAbaaBbbaaAaAbBbbAaaAbAAbaA"

    async def gather(chunks: list[bytes]) -> bytes:
        async def source() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return b"".join([c async for c in scrub.across(source())])

    for a in range(len(body) + 1):
        for b in range(a, len(body) + 1):
            got = asyncio.run(gather([body[:a], body[a:b], body[b:]]))
            assert got == scrub.data(body), (a, b)
            assert not any(k.encode() in got for k in keys), (a, b)


def test_same_length_masks_keep_the_bodys_length() -> None:
    body = b"x" * 5 + KEYS[0].encode() + b"y" + KEYS[2].encode()

    async def gather() -> bytes:
        async def source() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 3):
                yield body[i : i + 3]

        return b"".join([c async for c in SCRUB.across(source(), same_length=True)])

    got = asyncio.run(gather())
    assert len(got) == len(body)
    assert got == b"xxxxx[REDACTED]" + b"*" * (len(KEYS[0]) - 10) + b"y[REDACTE"
