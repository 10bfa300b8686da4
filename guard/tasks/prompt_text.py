"""Finding the options of a multiple-choice question in a prompt, and permuting them in place.

Recognised option lines (one option per line, IDs consecutive from A or 1):

    A. text     A) text     (A) text     A: text     1. text     1) text     (1) text

Permuting rewrites only the option texts: every ID label and every other byte of the prompt
stays as it was, so the upstream sees the same prompt with the contents moved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from calibrators.permutation import Perm, apply_permutation

_ID = r"[A-J]|10|[1-9]"
# The text runs to the line's last character that is not a space, tab or CR. (A lazy
# "\S[^\n]*?[ \t\r]*$" says the same, but tries the rest of a run of spaces at each of its
# characters: a line of n spaces cost n squared.)
_LINE = re.compile(
    rf"^[ \t]*(?:\((?P<p>{_ID})\)|(?P<d>{_ID})[.):])[ \t]+"
    r"(?P<text>\S(?:[^\n]*[^ \t\r\n])?)[ \t\r]*$",
    re.MULTILINE,
)
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class McqPrompt:
    """Where the options sit in a text, so they can be read and rewritten."""

    text: str
    ids: tuple[str, ...]  # the ID labels as shown: ("A", "B", ...) or ("1", "2", ...)
    spans: tuple[tuple[int, int], ...]  # [start, end) of each option's text

    @property
    def options(self) -> list[str]:
        return [self.text[a:b] for a, b in self.spans]

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def id_style(self) -> str:
        return "letters" if self.ids[0] == "A" else "numbers"

    def permuted(self, perm: Perm) -> str:
        """The text with option contents shown in ``perm`` order (position j shows option
        ``perm[j]``); IDs and everything else unchanged."""
        shown = apply_permutation(self.options, perm)
        out, last = [], 0
        for (a, b), new in zip(self.spans, shown, strict=True):
            out += [self.text[last:a], new]
            last = b
        out.append(self.text[last:])
        return "".join(out)


def _expected_ids(first: str, n: int) -> list[str]:
    if first == "A":
        return list(LETTERS[:n])
    return [str(i) for i in range(1, n + 1)]


def find_options(text: str) -> McqPrompt | None:
    """The last run of consecutive option lines (2..10 options) in ``text``, or None."""
    matches = list(_LINE.finditer(text))
    best: list[re.Match[str]] = []
    run: list[re.Match[str]] = []
    for m in matches:
        ident = m.group("p") or m.group("d")
        if run:
            prev = run[-1]
            prev_id = prev.group("p") or prev.group("d")
            expected = _expected_ids(run[0].group("p") or run[0].group("d"), len(run) + 1)[-1]
            between = text[prev.end() : m.start()]
            same_style = (m.group("p") is None) == (prev.group("p") is None)
            if ident == expected and same_style and between.strip() == "" and prev_id != ident:
                run.append(m)
                continue
            if len(run) >= 2:
                best = run
        run = [m] if ident in ("A", "1") else []
    if len(run) >= 2:
        best = run
    if not best:
        return None
    ids = tuple(m.group("p") or m.group("d") for m in best)
    spans = tuple((m.start("text"), m.end("text")) for m in best)
    return McqPrompt(text, ids, spans)


def locate_options(text: str, options: Sequence[str]) -> McqPrompt:
    """Use the option texts the app gave (``guard.options``); each must appear, in order, after
    its ID label in ``text``."""
    found = find_options(text)
    if found is not None and found.options == [o.strip() for o in options]:
        return found
    letters = _locate(text, options, _expected_ids("A", len(options)))
    if isinstance(letters, McqPrompt):
        return letters
    numbers = _locate(text, options, _expected_ids("1", len(options)))
    if isinstance(numbers, McqPrompt):
        return numbers
    raise ValueError(
        f"{letters} is not in the last user message after its ID; "
        "guard.options must be the option texts exactly as shown"
    )


def _locate(text: str, options: Sequence[str], ids: list[str]) -> McqPrompt | str:
    """The prompt with ``options`` after ``ids`` in order, or which option is missing."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for ident, opt in zip(ids, options, strict=True):
        m = re.compile(rf"(?:\(?{ident}[.):]?\)?)[ \t]*({re.escape(opt)})").search(text, pos)
        if m is None:
            return f"option {ident} ({opt!r})"
        spans.append((m.start(1), m.end(1)))
        pos = m.end(1)
    return McqPrompt(text, tuple(ids), tuple(spans))


def last_user_text(messages: Sequence[object]) -> tuple[int, str] | None:
    """(index, text) of the last user message whose content is a plain string, or None."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            return (i, content) if isinstance(content, str) else None
    return None
