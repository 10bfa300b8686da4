"""Unicode tricks do not walk around the span policies, and redaction still hits the exact span.

Every trick (fullwidth letters, look-alike letters, invisible characters inside a word, hyphen
variants) is applied to a finding of each span policy (denylist, secrets, regex, pii); the policy
must find it once and redaction must replace exactly the tricked characters. Characters outside
ASCII are written as escapes so that what the test feeds in is visible.

The fake keys are assembled from pieces so that secret scanners do not flag this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policies import Action, Context, build_policy

R = "[R]"
KEY = "sk-" + "A1b2C3d4E5" * 2 + "xy"
PEM_BODY = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MbqfYTcGAJ9f\n"
PEM_HEADER = "-----BEGIN RSA PRIVATE KEY-----"
PEM_END = "-----END RSA PRIVATE KEY-----"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key id
EMAIL = "jane.doe@example.com"
HYPHENATED_EMAIL = "jane@my-site.example"
CARD = "4111 1111 1111 1111"

# Latin letter -> a look-alike from another script (Cyrillic, else Greek).
LOOK_ALIKES = {
    "a": "\u0430",  # CYRILLIC SMALL LETTER A
    "c": "\u0441",  # CYRILLIC SMALL LETTER ES
    "e": "\u0435",  # CYRILLIC SMALL LETTER IE
    "i": "\u0456",  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    "o": "\u043e",  # CYRILLIC SMALL LETTER O
    "p": "\u0440",  # CYRILLIC SMALL LETTER ER
    "x": "\u0445",  # CYRILLIC SMALL LETTER HA
    "y": "\u0443",  # CYRILLIC SMALL LETTER U
    "A": "\u0410",  # CYRILLIC CAPITAL LETTER A
    "B": "\u0412",  # CYRILLIC CAPITAL LETTER VE
    "C": "\u0421",  # CYRILLIC CAPITAL LETTER ES
    "E": "\u0415",  # CYRILLIC CAPITAL LETTER IE
    "H": "\u041d",  # CYRILLIC CAPITAL LETTER EN
    "I": "\u0406",  # CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I
    "K": "\u041a",  # CYRILLIC CAPITAL LETTER KA
    "M": "\u041c",  # CYRILLIC CAPITAL LETTER EM
    "O": "\u041e",  # CYRILLIC CAPITAL LETTER O
    "P": "\u0420",  # CYRILLIC CAPITAL LETTER ER
    "S": "\u0405",  # CYRILLIC CAPITAL LETTER DZE
    "T": "\u0422",  # CYRILLIC CAPITAL LETTER TE
    "X": "\u0425",  # CYRILLIC CAPITAL LETTER HA
    "Y": "\u04ae",  # CYRILLIC CAPITAL LETTER STRAIGHT U
    "N": "\u039d",  # GREEK CAPITAL LETTER NU
    "Z": "\u0396",  # GREEK CAPITAL LETTER ZETA
    "v": "\u03bd",  # GREEK SMALL LETTER NU
}
GREEK = {"o": "\u03bf", "A": "\u0391", "E": "\u0395", "I": "\u0399", "K": "\u039a", "P": "\u03a1"}


def fullwidth(s: str) -> str:
    """Every printable ASCII character as its fullwidth form (U+FF01-U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def math_bold(s: str) -> str:
    """Letters as MATHEMATICAL BOLD letters (U+1D400...), another compatibility form."""
    out = []
    for c in s:
        if "A" <= c <= "Z":
            out.append(chr(0x1D400 + ord(c) - ord("A")))
        elif "a" <= c <= "z":
            out.append(chr(0x1D41A + ord(c) - ord("a")))
        else:
            out.append(c)
    return "".join(out)


def look_alike(table: dict[str, str]) -> Callable[[str], str]:
    return lambda s: "".join(table.get(c, c) for c in s)


def inside(mark: str) -> Callable[[str], str]:
    """``mark`` between every two characters (never at the edges)."""
    return mark.join


def hyphens(dash: str) -> Callable[[str], str]:
    return lambda s: s.replace("-", dash)


def everything(s: str) -> str:
    """Look-alikes, then a zero-width space and a soft hyphen inside, then one fullwidth half."""
    s = look_alike(LOOK_ALIKES)(s).replace("-", "\u2011")
    s = "\u200b".join(s[i : i + 2] for i in range(0, len(s), 2))
    half = len(s) // 2
    return s[:half] + "\u00ad" + fullwidth(s[half:])


TRICKS: dict[str, Callable[[str], str]] = {
    "fullwidth": fullwidth,
    "math bold": math_bold,
    "cyrillic look-alikes": look_alike(LOOK_ALIKES),
    "greek look-alikes": look_alike(GREEK),
    "zero-width space U+200B": inside("\u200b"),
    "zero-width non-joiner U+200C": inside("\u200c"),
    "zero-width joiner U+200D": inside("\u200d"),
    "word joiner U+2060": inside("\u2060"),
    "zero-width no-break space U+FEFF": inside("\ufeff"),
    "soft hyphen U+00AD": inside("\u00ad"),
    "invisible times U+2062": inside("\u2062"),
    "left-to-right mark U+200E": inside("\u200e"),
    "mongolian vowel separator U+180E": inside("\u180e"),
    "tag space U+E0020": inside("\U000e0020"),
    "variation selector U+FE0F": inside("\ufe0f"),
    "combining grapheme joiner U+034F": inside("\u034f"),
    "non-breaking hyphen U+2011": hyphens("\u2011"),
    "hyphen U+2010": hyphens("\u2010"),
    "en dash U+2013": hyphens("\u2013"),
    "minus sign U+2212": hyphens("\u2212"),
    "small hyphen-minus U+FE63": hyphens("\ufe63"),
    "all at once": everything,
}
_PLAIN = "forbiddenFORBIDDEN0123"
HYPHEN_TRICKS = {name for name, t in TRICKS.items() if t(_PLAIN) == _PLAIN != t("a-b")}

DENYLIST = {"type": "denylist", "params": {"words": ["forbidden", "self-harm"]}}
SECRETS = {"type": "secrets"}
REGEX = {"type": "regex", "params": {"patterns": ["forbidden", r"self-harm"]}}
PII = {"type": "pii"}

# (policy, the finding, what comes before and after it, reason); the trick is applied to the
# finding only, so the expected redaction is before + R + after.
TARGETS: list[tuple[str, dict[str, Any], str, str, str, str]] = [
    ("denylist word", DENYLIST, "forbidden", "this is ", " stuff.", "'forbidden'"),
    ("denylist hyphenated", DENYLIST, "self-harm", "no ", ", please", "'self-harm'"),
    ("openai key", SECRETS, KEY, "key=", " ok", "openai_key"),
    ("pem header", SECRETS, PEM_HEADER + "\n" + PEM_BODY + PEM_END, "here:\n", "", "private_key"),
    ("aws key", SECRETS, AWS, "id ", ".", "aws_access_key"),
    ("regex word", REGEX, "forbidden", "a ", " word", "pattern 0"),
    ("regex hyphenated", REGEX, "self-harm", "no ", " here", "pattern 1"),
    ("email", PII, EMAIL, "write to ", " now", "email"),
    ("hyphenated email", PII, HYPHENATED_EMAIL, "mail ", " today", "email"),
    ("card", PII, CARD, "card ", " exp", "card"),
]


def _applies(trick: str, finding: str) -> bool:
    """Hyphen tricks need a hyphen to replace; look-alike tricks a letter they have."""
    if trick in HYPHEN_TRICKS:
        return "-" in finding
    return TRICKS[trick](finding) != finding


def _only_the_header(target: str, finding: str, trick: Callable[[str], str]) -> str:
    # A PEM block is tricked in its BEGIN line: that line is what the shape keys on.
    if target == "pem header":
        return trick(PEM_HEADER) + finding[len(PEM_HEADER) :]
    return trick(finding)


CASES = [
    pytest.param(target, trick, id=f"{target}-{trick}")
    for target, _, finding, *_ in TARGETS
    for trick in TRICKS
    if _applies(trick, PEM_HEADER if target == "pem header" else finding)
]


def redacting(spec: dict[str, Any], replacement: str = R) -> Any:
    params = {**spec.get("params", {}), "replacement": replacement}
    return build_policy({"type": spec["type"], "params": params, "action": "redact"})


@pytest.mark.parametrize(("target", "trick"), CASES)
def test_a_trick_is_caught_and_redacted_exactly(target: str, trick: str) -> None:
    _, spec, finding, before, after, kind = next(t for t in TARGETS if t[0] == target)
    tricked = _only_the_header(target, finding, TRICKS[trick])
    assert tricked != finding
    verdict = redacting(spec).check(Context("response", before + tricked + after))
    assert verdict.action is Action.FLAG
    assert verdict.reason == f"found 1 match: {kind}"
    assert verdict.redacted == before + R + after


def test_every_trick_is_tried_on_every_policy() -> None:
    policy_of = {target: spec["type"] for target, spec, *_ in TARGETS}
    for trick in TRICKS:
        tried = {policy_of[c.values[0]] for c in CASES if c.values[1] == trick}
        assert tried == {"denylist", "secrets", "regex", "pii"}, trick


def test_blocking_a_tricked_key_never_echoes_it() -> None:
    tricked = inside("\u200b")(KEY)
    verdict = build_policy({**SECRETS, "action": "block"}).check(Context("prompt", tricked))
    assert verdict.action is Action.BLOCK
    assert verdict.redacted is None
    assert "sk" not in verdict.reason


# Ordinary non-ASCII text (as it is usually written, in NFC): no finding of any policy, and left
# exactly as it is when something else is redacted.
ORDINARY = [
    "caf\u00e9",
    "na\u00efve",
    "\u03a9mega",  # GREEK CAPITAL LETTER OMEGA
    "\u041f\u0440\u0438\u0432\u0435\u0442",  # Privet in Cyrillic
    "\u6771\u4eac",  # Tokyo in kanji
    "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1",  # Hellada in Greek
    "\u00c5ngstr\u00f6m",
    "\u0110\u00e0 N\u1eb5ng",  # Vietnamese, stacked marks
    "\U0001f469\u200d\U0001f4bb",  # woman technologist: an emoji ZWJ sequence
    "\u0645\u0631\u062d\u0628\u0627",  # Marhaba in Arabic
    "\u2014 an em dash \u2014",
    "x\u00a0y",  # no-break space
]
ORDINARY_SPECS: list[dict[str, Any]] = [
    {
        "type": "denylist",
        "params": {"words": ["cafe", "naive", "mega", "omega", "privet", "nope", "angstrom"]},
    },
    {"type": "regex", "params": {"patterns": ["cafe", "naive", r"\bmega", r"\bAng", "nope"]}},
    SECRETS,
    PII,
]


@pytest.mark.parametrize("spec", ORDINARY_SPECS, ids=lambda s: str(s["type"]))
@pytest.mark.parametrize("word", ORDINARY)
def test_ordinary_text_is_no_finding(spec: dict[str, Any], word: str) -> None:
    verdict = redacting(spec).check(Context("response", f"{word} and {word}"))
    assert verdict.action is Action.PASS, verdict.reason


@pytest.mark.parametrize(
    ("spec", "finding"),
    [
        ({"type": "denylist", "params": {"words": ["nope"]}}, "nope"),
        ({"type": "regex", "params": {"patterns": ["nope"]}}, "nope"),
        (SECRETS, KEY),
        (PII, EMAIL),
    ],
    ids=["denylist", "regex", "secrets", "pii"],
)
def test_redaction_leaves_ordinary_text_byte_for_byte(spec: dict[str, Any], finding: str) -> None:
    # Decomposed accents (e + U+0301) and a lone zero-width joiner too: nothing outside the
    # finding changes, not even invisible characters.
    words = " ".join([*ORDINARY, "cafe\u0301", "a\u200db", "\u00ad"])
    text = f"{words} {finding} {words}"
    verdict = redacting(spec, "[REDACTED]").check(Context("response", text))
    assert verdict.reason.startswith("found 1 match")
    assert verdict.redacted == f"{words} [REDACTED] {words}"


@pytest.mark.parametrize(
    ("spec", "text", "redacted"),
    [
        # Invisible characters at the edges of a finding are not part of it.
        (DENYLIST, "\u200bforbidden\u200b!", "\u200b***\u200b!"),
        # A zero-width space between two words still separates them (the text as written).
        ({"type": "denylist", "params": {"words": ["bad"]}}, "bad\u200bword", "***\u200bword"),
        # ... and a letter glued to a key by one does not hide it.
        (SECRETS, f"x\u200b{KEY}!", "x\u200b***!"),
        # A key whose tail is hidden behind a zero-width space is one finding, all of it.
        (SECRETS, f"{KEY}\u200bZZZZ end", "*** end"),
        # A ligature is replaced whole, even when the match starts inside it.
        ({"type": "regex", "params": {"patterns": ["ind"]}}, "\ufb01nd it", "*** it"),
        # A letter composed from a combining mark is replaced with its mark.
        ({"type": "denylist", "params": {"words": ["caf\u00e9"]}}, "cafe\u0301!", "***!"),
        # An entry written with look-alikes matches the plain word and the other way round.
        ({"type": "denylist", "params": {"words": ["f\u043erbidden"]}}, "Forbidden", "***"),
        (
            {"type": "denylist", "params": {"words": ["\u043f\u0440\u0438\u0432\u0435\u0442"]}},
            "\u041f\u0440\u0438\u0432\u0435\u0442 \u043f\u0440\u0438\u0432e\u0442",
            "*** ***",
        ),
        # An e-mail address with only its @ in fullwidth, or a zero-width space in it.
        (PII, "to jane\uff20example.com.", "to ***."),
        (PII, "to jane@exam\u200bple.com.", "to ***."),
        # Several tricked findings, each replaced on its own.
        (
            DENYLIST,
            "\uff46orbidden, forbid\u00adden and self\u2011harm.",
            "***, *** and ***.",
        ),
    ],
)
def test_spans_map_back_exactly(spec: dict[str, Any], text: str, redacted: str) -> None:
    assert redacting(spec, "***").check(Context("response", text)).redacted == redacted


def test_a_key_inside_a_tricked_pem_block_is_one_finding() -> None:
    header = PEM_HEADER.replace("E", "\u0415").replace("-", "\u2013")
    text = f"{header}\n{AWS}\n{PEM_BODY}{PEM_END}"
    verdict = redacting(SECRETS).check(Context("response", f"x {text} y"))
    assert verdict.reason == "found 1 match: private_key"
    assert verdict.redacted == f"x {R} y"


def test_the_reason_names_the_entry_as_listed() -> None:
    policy = build_policy({"type": "denylist", "params": {"words": ["F\u043eRBIDDEN"]}})
    verdict = policy.check(Context("response", "forbidden"))
    assert verdict.reason == "found 1 match: 'F\u043eRBIDDEN'"
