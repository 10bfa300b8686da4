"""One reading of a text that Unicode tricks do not change, mapped back to the text as written.

Span policies match on the text as written *and* on this reading (see
:meth:`policies.spans.SpanPolicy.spans`), so "forbidden" in fullwidth letters (U+FF46 ...), with
a Cyrillic o (U+043E), with a zero-width space inside (U+200B) or "sk-" with a non-breaking
hyphen (U+2011) is found like its plain form, and a match in the reading is redacted as the exact
characters of the original it came from (the invisible characters inside it included, everything
around it untouched).

The reading (:func:`normalise`), character by character:

1. NFKC: fullwidth and other compatibility forms become their plain letters (fullwidth f and @,
   mathematical bold f, the fi ligature U+FB01 -> "fi", no-break space -> space); a base letter
   and its combining marks are composed ("e" + U+0301 -> U+00E9).
2. Invisible characters are dropped: every format character (category Cf: zero-width space and
   joiners U+200B-U+200D, word joiner U+2060, U+FEFF, soft hyphen U+00AD, bidi controls, tag
   characters, ...) and the other default-ignorable code points (variation selectors, the
   combining grapheme joiner U+034F, Hangul fillers, Mongolian free variation selectors, Khmer
   inherent vowels).
3. Look-alike letters become Latin: the small table :data:`CONFUSABLES` of Cyrillic, Greek,
   Armenian and Latin-IPA letters drawn like a Latin letter in common fonts. Case is kept
   (Cyrillic capital A -> "A", small a -> "a"), so case-sensitive shapes ("AKIA...", PEM headers)
   still work; a Cyrillic capital whose small form does not look Latin (VE, EN, KA, EM, TE) maps
   on its own.
4. Dashes become "-": dash punctuation (category Pd: U+2010 hyphen, U+2011 non-breaking hyphen,
   en and em dashes, ...) except the wave dashes U+301C and U+3030, plus U+2212 minus sign,
   U+02D7 modifier minus and U+2043 hyphen bullet.

Accented and non-Latin letters are neither stripped nor transliterated ("caf\u00e9", "na\u00efve",
Greek capital omega, Japanese and Chinese read as themselves), so a listed "cafe" does not hit
"caf\u00e9". Limits: the look-alike table is small on purpose (Unicode's full confusables.txt also
maps "rn" to "m" and would hit ordinary words), and it is applied without regard to the script
around a letter, so a Russian word written wholly in mapped letters reads as Latin (Cyrillic
es-o-er as "cop"). Composition is per base letter and the combining marks after it (Hangul
conjoining jamo and two-part Indic vowels are not composed), in the stream-safe form: a run of
more than 30 marks is read in pieces of 30, as if a combining grapheme joiner came after each.
Combining marks are kept, so a word overlaid with strokes (U+0336) does not read as plain.

Cost: ASCII text is its own reading (one ``str.isascii`` check). Other text costs one
``str.translate`` over a table built on first use (about 30 ms, once per process), about 30 us
per kB, and one NFKC quick check; only text with combining marks to compose goes through a
per-character loop. The last few readings are cached, so the span policies of one request read
a text once. The map back to the original is built only when a match has to be mapped.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterator

# Default-ignorable code points that are not category Cf (DerivedCoreProperties.txt).
_IGNORABLE_NOT_CF_CHARS = frozenset(
    map(
        chr,
        [
            0x034F,  # COMBINING GRAPHEME JOINER
            0x115F,  # HANGUL CHOSEONG FILLER
            0x1160,  # HANGUL JUNGSEONG FILLER
            0x17B4,  # KHMER VOWEL INHERENT AQ
            0x17B5,  # KHMER VOWEL INHERENT AA
            *range(0x180B, 0x180E),  # MONGOLIAN FREE VARIATION SELECTORS ONE-THREE
            0x180F,  # MONGOLIAN FREE VARIATION SELECTOR FOUR
            0x3164,  # HANGUL FILLER
            *range(0xFE00, 0xFE10),  # VARIATION SELECTORS 1-16
            0xFFA0,  # HALFWIDTH HANGUL FILLER
            *range(0xE0100, 0xE01F0),  # VARIATION SELECTORS 17-256
        ],
    )
)

CONFUSABLES: dict[str, str] = {
    # Cyrillic, small
    "\u0430": "a",  # CYRILLIC SMALL LETTER A
    "\u0435": "e",  # CYRILLIC SMALL LETTER IE
    "\u043e": "o",  # CYRILLIC SMALL LETTER O
    "\u0440": "p",  # CYRILLIC SMALL LETTER ER
    "\u0441": "c",  # CYRILLIC SMALL LETTER ES
    "\u0443": "y",  # CYRILLIC SMALL LETTER U
    "\u0445": "x",  # CYRILLIC SMALL LETTER HA
    "\u0455": "s",  # CYRILLIC SMALL LETTER DZE
    "\u0456": "i",  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    "\u0458": "j",  # CYRILLIC SMALL LETTER JE
    "\u04af": "y",  # CYRILLIC SMALL LETTER STRAIGHT U
    "\u04bb": "h",  # CYRILLIC SMALL LETTER SHHA
    "\u0501": "d",  # CYRILLIC SMALL LETTER KOMI DE
    "\u051b": "q",  # CYRILLIC SMALL LETTER QA
    "\u051d": "w",  # CYRILLIC SMALL LETTER WE
    # Cyrillic, capital
    "\u0405": "S",  # CYRILLIC CAPITAL LETTER DZE
    "\u0406": "I",  # CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I
    "\u0408": "J",  # CYRILLIC CAPITAL LETTER JE
    "\u0410": "A",  # CYRILLIC CAPITAL LETTER A
    "\u0412": "B",  # CYRILLIC CAPITAL LETTER VE
    "\u0415": "E",  # CYRILLIC CAPITAL LETTER IE
    "\u041a": "K",  # CYRILLIC CAPITAL LETTER KA
    "\u041c": "M",  # CYRILLIC CAPITAL LETTER EM
    "\u041d": "H",  # CYRILLIC CAPITAL LETTER EN
    "\u041e": "O",  # CYRILLIC CAPITAL LETTER O
    "\u0420": "P",  # CYRILLIC CAPITAL LETTER ER
    "\u0421": "C",  # CYRILLIC CAPITAL LETTER ES
    "\u0422": "T",  # CYRILLIC CAPITAL LETTER TE
    "\u0423": "Y",  # CYRILLIC CAPITAL LETTER U
    "\u0425": "X",  # CYRILLIC CAPITAL LETTER HA
    "\u04ae": "Y",  # CYRILLIC CAPITAL LETTER STRAIGHT U
    "\u04ba": "H",  # CYRILLIC CAPITAL LETTER SHHA
    "\u051a": "Q",  # CYRILLIC CAPITAL LETTER QA
    "\u051c": "W",  # CYRILLIC CAPITAL LETTER WE
    # Greek
    "\u0391": "A",  # GREEK CAPITAL LETTER ALPHA
    "\u0392": "B",  # GREEK CAPITAL LETTER BETA
    "\u0395": "E",  # GREEK CAPITAL LETTER EPSILON
    "\u0396": "Z",  # GREEK CAPITAL LETTER ZETA
    "\u0397": "H",  # GREEK CAPITAL LETTER ETA
    "\u0399": "I",  # GREEK CAPITAL LETTER IOTA
    "\u039a": "K",  # GREEK CAPITAL LETTER KAPPA
    "\u039c": "M",  # GREEK CAPITAL LETTER MU
    "\u039d": "N",  # GREEK CAPITAL LETTER NU
    "\u039f": "O",  # GREEK CAPITAL LETTER OMICRON
    "\u03a1": "P",  # GREEK CAPITAL LETTER RHO
    "\u03a4": "T",  # GREEK CAPITAL LETTER TAU
    "\u03a5": "Y",  # GREEK CAPITAL LETTER UPSILON
    "\u03a7": "X",  # GREEK CAPITAL LETTER CHI
    "\u03b1": "a",  # GREEK SMALL LETTER ALPHA
    "\u03b9": "i",  # GREEK SMALL LETTER IOTA
    "\u03bd": "v",  # GREEK SMALL LETTER NU
    "\u03bf": "o",  # GREEK SMALL LETTER OMICRON
    "\u03c1": "p",  # GREEK SMALL LETTER RHO
    "\u03c5": "u",  # GREEK SMALL LETTER UPSILON
    "\u03f2": "c",  # GREEK LUNATE SIGMA SYMBOL
    "\u03f3": "j",  # GREEK LETTER YOT
    # Armenian and Latin IPA
    "\u0585": "o",  # ARMENIAN SMALL LETTER OH
    "\u057d": "u",  # ARMENIAN SMALL LETTER SEH
    "\u0131": "i",  # LATIN SMALL LETTER DOTLESS I
    "\u0251": "a",  # LATIN SMALL LETTER ALPHA
    "\u0261": "g",  # LATIN SMALL LETTER SCRIPT G
}
"""Look-alike letters and the Latin letter each reads as (a small, deliberate subset of
Unicode's confusables.txt)."""

_NOT_DASHES = frozenset("\u301c\u3030")  # WAVE DASH, WAVY DASH: not drawn like a hyphen
_EXTRA_DASHES = frozenset("\u2212\u02d7\u2043")  # MINUS SIGN, MODIFIER MINUS, HYPHEN BULLET

# Where compatibility decompositions, format characters and default-ignorables live: the BMP,
# plane 1 (mathematical alphanumerics, enclosed letters, ...), plane 2 (CJK compatibility
# ideographs) and plane 14 (tags, variation selectors supplement). Surrogates are skipped.
_RANGES = (range(0x80, 0xD800), range(0xE000, 0x30000), range(0xE0000, 0xE1000))
_BLOCK = 128

# A map back, as four parallel lists: original[starts[k]:ends[k]] reads as text[xs[k]:ys[k]].
_Segments = tuple[list[int], list[int], list[int], list[int]]


def _tidy(text: str) -> str:
    """Steps 2-4 on text that is already NFKC."""
    out = []
    for ch in text:
        if unicodedata.category(ch) == "Cf" or ch in _IGNORABLE_NOT_CF_CHARS:
            continue
        ch = CONFUSABLES.get(ch, ch)
        if ch in _EXTRA_DASHES or (unicodedata.category(ch) == "Pd" and ch not in _NOT_DASHES):
            ch = "-"
        out.append(ch)
    return "".join(out)


def _fold(ch: str) -> str:
    return _tidy(unicodedata.normalize("NFKC", ch))


@functools.cache
def _table() -> dict[int, str]:
    """``{code point: its reading}`` for every code point the reading changes."""
    category = unicodedata.category
    # What steps 2-4 act on; NFKC (step 1) is found block by block below.
    special = frozenset(
        ch for codes in _RANGES for ch in map(chr, codes) if category(ch) in ("Cf", "Pd")
    ).union(CONFUSABLES, _EXTRA_DASHES, _IGNORABLE_NOT_CF_CHARS)
    table: dict[int, str] = {}
    for codes in _RANGES:
        for first in range(codes.start, codes.stop, _BLOCK):
            block = "".join(map(chr, range(first, min(first + _BLOCK, codes.stop))))
            # Most blocks change nothing: skip them without a per-character look.
            if special.isdisjoint(block) and unicodedata.is_normalized("NFKC", block):
                continue
            for ch in block:
                folded = _fold(ch)
                if folded != ch:
                    table[ord(ch)] = folded
    return table


class Normalised:
    """The reading of ``original`` (:attr:`text`) and the way back (:meth:`to_original`).

    Internally the map is a list of *segments*: ranges of the original that read as something
    else (``original[a:b]`` reads as ``text[x:y]``; ``y == x`` when it was dropped). Between
    segments the two texts agree character for character.
    """

    __slots__ = ("_segments", "original", "text")

    def __init__(
        self,
        original: str,
        text: str,
        segments: _Segments | None = None,
    ) -> None:
        self.original = original
        self.text = text
        self._segments = segments

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The range of :attr:`original` that ``text[start:end]`` (non-empty) was read from.

        It covers every original character that produced a character of the range, and the
        dropped ones between them; dropped characters at its edges stay outside.
        """
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"not a non-empty range of the reading: {start}:{end}")
        if self.text is self.original:
            return start, end
        return self._origin(start)[0], self._origin(end - 1)[1]

    def _origin(self, i: int) -> tuple[int, int]:
        """The original range that character ``i`` of the reading came from."""
        if self._segments is None:
            self._segments = _segments_of(self.original, _table())
        xs, ys, starts, ends = self._segments
        k = bisect.bisect_right(xs, i) - 1  # the last segment that starts at or before i
        if k < 0:
            return i, i + 1
        if i < ys[k]:
            return starts[k], ends[k]
        at = ends[k] + (i - ys[k])
        return at, at + 1


def normalise(text: str) -> Normalised:
    """The reading of ``text`` described in this module's docstring, with its map back.

    The policies of a request read the same text one after another, so the last few readings
    are kept.
    """
    if text.isascii():
        return Normalised(text, text)
    return _read(text)


@functools.lru_cache(maxsize=8)
def _read(text: str) -> Normalised:
    table = _table()
    folded = text.translate(table)
    if unicodedata.is_normalized("NFKC", folded):
        return Normalised(text, folded)  # the map is built from ``table`` when needed
    return _composed(text, table)


def _segments_of(text: str, table: dict[int, str]) -> _Segments:
    """The segments of ``text.translate(table)``: one per character the table changes."""
    xs: list[int] = []
    ys: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    shift = 0  # len(reading so far) - len(original so far)
    for m in _NON_ASCII.finditer(text):
        i = m.start()
        folded = table.get(ord(m[0]))
        if folded is None:
            continue
        x = i + shift
        xs.append(x)
        ys.append(x + len(folded))
        starts.append(i)
        ends.append(i + 1)
        shift += len(folded) - 1
    return xs, ys, starts, ends


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


# Unicode's Stream-Safe Text Format (UAX #15) allows 30 combining marks in a row and puts a
# combining grapheme joiner after every 30th of a longer run; the reading drops the joiner.
MAX_MARKS = 30


def _clusters(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each base character and the combining marks that follow it, a run
    of marks cut after every :data:`MAX_MARKS`th (CPython orders marks by insertion sort, so one
    cluster of a million marks would cost a million squared)."""
    start = marks = 0
    for i, ch in enumerate(text):
        mark = unicodedata.combining(ch) != 0
        if i and not (mark and marks < MAX_MARKS):
            yield start, i
            start, marks = i, 0
        marks += mark
    if text:
        yield start, len(text)


def _composed(text: str, table: dict[int, str]) -> Normalised:
    """The reading of a text that has combining marks to compose: cluster by cluster."""
    pieces: list[str] = []
    xs: list[int] = []
    ys: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    x = 0
    for a, b in _clusters(text):
        cluster = text[a:b]
        if b - a == 1 and cluster.isascii():
            pieces.append(cluster)
            x += 1
            continue
        folded = unicodedata.normalize("NFKC", cluster).translate(table)
        pieces.append(folded)
        if folded != cluster:
            xs.append(x)
            ys.append(x + len(folded))
            starts.append(a)
            ends.append(b)
        x += len(folded)
    return Normalised(text, "".join(pieces), (xs, ys, starts, ends))
