"""normalise: the reading span policies match on, and the map back to the original text."""

from __future__ import annotations

import itertools
import random
import unicodedata

import pytest

from policies.normalise import (
    _RANGES,
    CONFUSABLES,
    MAX_MARKS,
    _composed,
    _fold,
    _table,
    normalise,
)
from policies.spans import Span, union


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("plain ASCII stays", "plain ASCII stays"),
        ("\uff46\uff4f\uff4f\uff20\uff58\uff0e\uff49\uff4f", "foo@x.io"),  # fullwidth
        ("\U0001d41f\U0001d428\U0001d428", "foo"),  # mathematical bold
        ("\ufb01nd", "find"),  # ligature
        ("f\u043e\u043e \u0391\u039a\u0399\u0391", "foo AKIA"),  # Cyrillic o, Greek capitals
        ("f\u200bo\u200co\u200dx\u2060y\ufeffz\u00adw", "fooxyzw"),  # invisible characters
        ("a\ufe0fb\u034fc\U000e0041d\u180ee", "abcde"),  # variation selector, CGJ, tag, MVS
        ("a\u2010b\u2011c\u2012d\u2013e\u2014f\u2212g\ufe63h\uff0di", "a-b-c-d-e-f-g-h-i"),
        ("wave \u301c dash", "wave \u301c dash"),  # not a hyphen
        ("x\u00a0y\u3000z", "x y z"),  # no-break and ideographic spaces
        ("cafe\u0301", "caf\u00e9"),  # composed
        *[(w, w) for w in ("caf\u00e9", "na\u00efve", "\u03a9mega", "\u6771\u4eac")],
        ("\u212b", "\u00c5"),  # ANGSTROM SIGN reads as the letter
        ("", ""),
    ],
)
def test_reading(text: str, reading: str) -> None:
    assert normalise(text).text == reading


def test_ascii_is_its_own_reading() -> None:
    text = "nothing to do here"
    n = normalise(text)
    assert n.text is text
    assert n.to_original(3, 7) == (3, 7)


@pytest.mark.parametrize(
    ("text", "start", "end", "original"),
    [
        ("for\u200bbid\u00adden", 0, 9, (0, 11)),  # invisible characters inside: covered
        ("\u200bfoo\u200b", 0, 3, (1, 4)),  # at the edges: left out
        ("\ufb01nd", 1, 3, (0, 2)),  # starts inside a ligature: the whole ligature
        ("\ufb01nd", 0, 1, (0, 1)),
        ("xcafe\u0301!", 4, 5, (4, 6)),  # a composed letter: with its mark
        ("\uff41\uff42c", 1, 3, (1, 3)),
        ("\u200b\u200ba\u200b\u200bb", 1, 2, (5, 6)),
    ],
)
def test_to_original(text: str, start: int, end: int, original: tuple[int, int]) -> None:
    assert normalise(text).to_original(start, end) == original


@pytest.mark.parametrize(("start", "end"), [(2, 2), (-1, 1), (0, 99), (3, 1)])
def test_to_original_takes_a_non_empty_range_of_the_reading(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="non-empty range"):
        normalise("f\u043e\u043e").to_original(start, end)


def test_look_alikes_are_letters_read_as_latin_letters_of_the_same_case() -> None:
    for ch, latin in CONFUSABLES.items():
        assert unicodedata.name(ch).split()[0] in {"CYRILLIC", "GREEK", "ARMENIAN", "LATIN"}
        assert len(latin) == 1
        assert latin.isascii()
        assert latin.isalpha()
        assert unicodedata.category(ch)[1] == ("u" if latin.isupper() else "l"), ch


ALPHABET = (
    "ab -@.\u00e9e\u0301\u0308\u0323"  # letters, an accent, combining marks
    "\u200b\u200d\u00ad\ufeff\ufe0f"  # invisible
    "\u0430\u043e\u0421\u03bf"  # look-alikes
    "\uff41\uff20\ufb01\u2460\u33a1"  # compatibility forms, some of them expand
    "\u2011\u2013\u6771\u0645"
)


@pytest.mark.parametrize("seed", range(40))
def test_the_map_back_covers_what_was_read(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 40)))
    n = normalise(text)
    for start in range(len(n.text)):
        for end in range(start + 1, len(n.text) + 1):
            a, b = n.to_original(start, end)
            assert 0 <= a < b <= len(text)
            # what the original range reads as holds what was matched in the reading
            assert n.text[start:end] in normalise(text[a:b]).text


@pytest.mark.parametrize("seed", range(20))
def test_the_fast_path_and_the_cluster_path_agree(seed: int) -> None:
    rng = random.Random(seed)
    marks = set("\u0301\u0308\u0323")
    text = "".join(rng.choice([c for c in ALPHABET if c not in marks]) for _ in range(30))
    fast, slow = normalise(text), _composed(text, _table())
    assert fast.text == slow.text
    for i in range(len(fast.text)):
        assert fast.to_original(i, i + 1) == slow.to_original(i, i + 1)


@pytest.mark.parametrize("start", ["e", "\u0316", "\uff45"])
def test_a_long_run_of_combining_marks_is_read_as_its_stream_safe_form(start: str) -> None:
    # Out of canonical order (230, 220, ...): NFKC of the whole run would sort 2,001 marks.
    marks = "\u0301\u0316" * 1000 + "\u0308"
    text = "f\u043erbidden " + start + marks + " x\u200by"
    run = start + marks
    first = 0 if unicodedata.combining(start) else 1  # a base letter starts the first piece
    cuts = range(first + MAX_MARKS, len(run), MAX_MARKS)
    bounds = [0, *cuts, len(run)]
    safe = "\u034f".join(run[a:b] for a, b in itertools.pairwise(bounds))
    reading = normalise(text)
    assert reading.text == normalise(text.replace(run, safe)).text
    assert reading.text.startswith("forbidden ")
    assert reading.text.endswith(" xy")
    assert reading.to_original(len(reading.text) - 2, len(reading.text)) == (
        len(text) - 3,
        len(text),
    )


@pytest.mark.parametrize(
    ("raw", "read", "united"),
    [
        ([], [], []),
        ([Span(0, 3, "a")], [], [Span(0, 3, "a")]),
        ([], [Span(0, 3, "a")], [Span(0, 3, "a")]),
        # one finding seen in both readings, or seen longer in one of them
        ([Span(0, 3, "a")], [Span(0, 3, "a")], [Span(0, 3, "a")]),
        ([Span(0, 10, "key")], [Span(0, 14, "key")], [Span(0, 14, "key")]),
        ([Span(2, 9, "key")], [Span(0, 5, "key")], [Span(0, 9, "key")]),
        # a raw finding inside another kind's finding in the reading is not a finding of its own
        ([Span(5, 9, "aws")], [Span(0, 20, "pem")], [Span(0, 20, "pem")]),
        # ... but one that sticks out of it is kept, so that all of it is redacted
        ([Span(15, 25, "aws")], [Span(0, 20, "pem")], [Span(0, 20, "pem"), Span(15, 25, "aws")]),
        # findings apart from each other all stay, in text order
        (
            [Span(30, 31, "x"), Span(0, 2, "a")],
            [Span(10, 12, "a"), Span(11, 13, "b")],
            [Span(0, 2, "a"), Span(10, 12, "a"), Span(11, 13, "b"), Span(30, 31, "x")],
        ),
    ],
)
def test_union(raw: list[Span], read: list[Span], united: list[Span]) -> None:
    assert union(raw, read) == united


def test_the_table_has_every_code_point_the_reading_changes() -> None:
    expected = {}
    for codes in _RANGES:
        for cp in codes:
            folded = _fold(chr(cp))
            if folded != chr(cp):
                expected[cp] = folded
    assert _table() == expected
    # and outside the ranges it covers, nothing changes (every 7th code point looked at)
    outside = (cp for cp in range(0x80, 0x110000, 7) if not any(cp in r for r in _RANGES))
    assert all(_fold(chr(cp)) == chr(cp) for cp in outside if not 0xD800 <= cp < 0xE000)
