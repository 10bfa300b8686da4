"""guard.sse: incremental SSE parsing (events, separators, data lines, [DONE]) and encoding."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard import sse
from guard.errors import UpstreamError
from guard.sse import EventReader, EventTooLargeError


def test_one_event_in_one_chunk_keeps_its_raw_bytes_and_parses_its_json() -> None:
    raw = b'data: {"a": 1}\n\n'
    [event] = EventReader().feed(raw)
    assert event.raw == raw
    assert event.data == '{"a": 1}'
    assert event.json() == {"a": 1}
    assert not event.done


def test_an_event_split_across_chunks_comes_out_once_complete() -> None:
    reader = EventReader()
    assert reader.feed(b'data: {"text": "hel') == []
    assert reader.pending == b'data: {"text": "hel'
    assert reader.feed(b'lo"}\n') == []  # one newline is not yet the end of the event
    [event] = reader.feed(b'\ndata: {"text"')
    assert event.json() == {"text": "hello"}
    assert event.raw == b'data: {"text": "hello"}\n\n'
    assert reader.pending == b'data: {"text"'


def test_byte_by_byte_feeding_gives_the_same_events_as_one_chunk() -> None:
    stream = b'data: {"i": 0}\n\n: comment\n\ndata: {"i": 1}\r\n\r\ndata: [DONE]\n\n'
    whole = EventReader().feed(stream)
    reader = EventReader()
    pieces = [e for i in range(len(stream)) for e in reader.feed(stream[i : i + 1])]
    assert pieces == whole
    assert [e.data for e in whole] == ['{"i": 0}', None, '{"i": 1}', "[DONE]"]
    assert b"".join(e.raw for e in whole) == stream


def test_crlf_separated_events() -> None:
    reader = EventReader()
    events = reader.feed(b'data: {"a": 1}\r\n\r\ndata: {"a": 2}\r\n\r\n')
    assert [e.json() for e in events] == [{"a": 1}, {"a": 2}]
    assert events[0].raw == b'data: {"a": 1}\r\n\r\n'
    assert reader.pending == b""


def test_crlf_separator_split_between_chunks() -> None:
    reader = EventReader()
    assert reader.feed(b'data: {"a": 1}\r\n\r') == []
    [event] = reader.feed(b"\n")
    assert event.json() == {"a": 1}


def test_cr_only_separators() -> None:
    reader = EventReader()
    events = reader.feed(b"data: x\r\rdata: y\r\r")
    assert [e.data for e in events] == ["x"]  # a CR at the end may be the start of a CRLF
    assert [e.data for e in reader.feed(b"data: z\n\n")] == ["y", "z"]


def test_several_data_lines_are_joined_with_newlines() -> None:
    [event] = EventReader().feed(b'data: {"a":\ndata:  1}\nid: 7\nevent: message\n\n')
    assert event.data == '{"a":\n 1}'  # only the one space after "data:" is dropped
    assert event.json() == {"a": 1}


def test_data_without_a_space_after_the_colon() -> None:
    [event] = EventReader().feed(b"data:[DONE]\n\n")
    assert event.data == "[DONE]"
    assert event.done


def test_comment_event_has_no_data_and_no_json() -> None:
    [event] = EventReader().feed(b": keep-alive\n\n")
    assert event.data is None
    assert event.json() is None
    assert not event.done
    assert event.raw == b": keep-alive\n\n"


def test_done_event() -> None:
    [event] = EventReader().feed(sse.DONE)
    assert event.done
    assert event.json() is None


def test_data_that_is_not_json_is_kept_as_text() -> None:
    [event] = EventReader().feed(b"data: not json\n\n")
    assert event.data == "not json"
    assert event.json() is None


def test_close_returns_a_partial_trailing_event() -> None:
    reader = EventReader()
    assert reader.feed(b'data: {"a": 1}\n\ndata: {"b": 2}') == [
        sse.Event(b'data: {"a": 1}\n\n', '{"a": 1}')
    ]
    [rest] = reader.close()
    assert rest.raw == b'data: {"b": 2}'
    assert rest.json() == {"b": 2}
    assert reader.pending == b""
    assert reader.close() == []


def test_close_ignores_trailing_whitespace() -> None:
    reader = EventReader()
    reader.feed(b"data: x\n\n\n")
    assert reader.pending == b"\n"
    assert reader.close() == []


def test_encode_is_one_compact_json_event() -> None:
    obj = {"choices": [{"delta": {"content": "a b"}}], "x": None}
    raw = sse.encode(obj)
    assert raw == b'data: {"choices":[{"delta":{"content":"a b"}}],"x":null}\n\n'
    [event] = EventReader().feed(raw)
    assert event.json() == obj


def test_encode_keeps_newlines_inside_one_data_line() -> None:
    raw = sse.encode({"text": "line1\nline2"})
    assert raw.count(b"\n") == 2  # only the separator: the newline in the text is escaped
    assert json.loads(raw[len(b"data: ") :]) == {"text": "line1\nline2"}


def test_events_over_a_list_of_chunks_includes_the_partial_tail() -> None:
    got = list(sse.events([b"data: 1\n", b"\ndata: 2\n\nda", b"ta: 3"]))
    assert [e.data for e in got] == ["1", "2", "3"]


def test_aevents_over_an_async_stream() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for c in (b'data: {"a"', b": 1}\n\n", sse.DONE):
            yield c

    async def collect() -> list[sse.Event]:
        return [e async for e in sse.aevents(chunks())]

    got = asyncio.run(collect())
    assert [e.json() for e in got] == [{"a": 1}, None]
    assert got[-1].done


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_each_separator_ends_an_event_and_is_part_of_raw(sep: bytes) -> None:
    reader = EventReader()
    [event] = reader.feed(b"data: x" + sep + b"data: y")
    assert event.raw == b"data: x" + sep
    assert event.data == "x"
    assert reader.pending == b"data: y"


def test_a_multibyte_character_split_across_chunks() -> None:
    raw = 'data: {"text": "caf\u00e9"}\n\n'.encode()
    cut = raw.index(b"caf") + 4  # between the two bytes of the e-acute
    reader = EventReader()
    assert reader.feed(raw[:cut]) == []
    [event] = reader.feed(raw[cut:])
    assert event.json() == {"text": "caf\u00e9"}


def test_lf_then_crlf_ends_an_event() -> None:
    events = EventReader().feed(b'data: {"a": 1}\n\r\ndata: {"a": 2}\n\n')
    assert [e.json() for e in events] == [{"a": 1}, {"a": 2}]


SEPARATORS = [b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n", b"\r\n\n", b"\r\n\r"]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.tuples(
            st.binary(max_size=12).filter(lambda b: b"\r" not in b and b"\n" not in b),
            st.sampled_from(SEPARATORS),
        ),
        max_size=6,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=9), max_size=40),
)
def test_any_chunking_gives_the_events_of_one_chunk(
    parts: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    """The reader searches each byte once (it resumes where it stopped); a separator split at
    any point between chunks still ends its event where one whole chunk would."""
    stream = b"".join(b"data: " + text + sep for text, sep in parts) + b"data: x\r"
    whole = EventReader()
    expected = whole.feed(stream)
    reader, got, at = EventReader(), [], 0
    for cut in [*cuts, len(stream)]:
        got += reader.feed(stream[at : at + cut])
        at += cut
    assert got == expected
    assert reader.pending == whole.pending


def test_an_event_over_the_limit_is_refused_as_it_grows() -> None:
    reader = EventReader(limit=100)
    assert reader.feed(b"data: " + b"a" * 50 + b"\n\n" + b"data: " + b"b" * 60) != []
    with pytest.raises(EventTooLargeError):
        reader.feed(b"b" * 40)
    assert EventReader(limit=100).feed(b"data: " + b"c" * 80 + b"\n\n")  # under it: an event


def test_the_whole_events_before_one_over_the_limit_go_on() -> None:
    """The stream is cut where the event over the limit starts: what came whole before it in
    the same chunk goes on. Before: dropped with it, so what reached the client depended on
    how the bytes happened to be cut into chunks on the way."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"data: first\n\n" + b"data: " + b"x" * 200
        yield b"\n\n"

    async def run() -> tuple[list[bytes], str]:
        got: list[bytes] = []
        try:
            async for part in sse.whole_events(chunks(), 100):
                got.append(part)
        except UpstreamError as exc:
            return got, exc.code or ""
        return got, ""

    assert asyncio.run(run()) == ([b"data: first\n\n"], "upstream_too_large")
