"""Options that refer to other options, and how a question that has them may be permuted.

Permuting "All of the above" into position A changes its meaning, and permuting the contents of a
question whose option says "Both A and B" silently re-points that option at other contents. So:

- an option that refers to the others as a group ("all of the above", "none of these") is kept in
  place and only the other options permute: handling ``kept_in_place``;
- an option that names other option IDs ("Both A and B", "1 and 3 only") cannot survive any
  permutation: the question is left undebiased: handling ``undebiased``;
- otherwise every option may move: handling ``permuted``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Handling = Literal["permuted", "kept_in_place", "undebiased"]

_GROUP = re.compile(
    r"\b(?:all|none|both|neither|any|each)\s+(?:of\s+)?(?:the\s+)?"
    r"(?:above|below|these|those|preceding|following|options|choices|answers)\b"
    r"|\b(?:all|none|both|neither)\s+(?:are|is)\s+correct\b"
    r"|^\s*(?:neither|both|all|none)\s*[.!]?\s*$",
    re.IGNORECASE,
)


def _id_pattern(ids: Sequence[str]) -> re.Pattern[str]:
    # Two or more IDs joined by "and", "or", "nor", "&", "," — e.g. "Both A and B", "(a) or (c)",
    # "1, 2 and 3". IDs match case-sensitively as whole tokens so that "a and b" in prose about
    # vectors only trips this when the IDs themselves are lower-case letters.
    alt = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    one = rf"\(?(?<![\w])(?:{alt})(?![\w])\)?"
    joined = rf"{one}\s*(?:,\s*{one}\s*)*(?:,?\s*(?:and|or|nor|&)\s*){one}"
    # A single ID named as an exception: "All of the above except C", "any but (B)".
    excepted = rf"\b(?:except|but not|but|other than|besides|apart from)\s+{one}"
    return re.compile(rf"{joined}|{excepted}")


@dataclass(frozen=True)
class ReferentialCheck:
    """Which options refer to others, and what that allows."""

    handling: Handling
    fixed: tuple[int, ...]  # positions kept in place (group references)
    id_refs: tuple[int, ...]  # options that name other option IDs

    @property
    def permutable(self) -> bool:
        return self.handling != "undebiased"


def check_referential(options: Sequence[str], ids: Sequence[str] | None = None) -> ReferentialCheck:
    """Classify a question's options; ``ids`` are the labels shown (default A, B, C, ...)."""
    labels = list(ids) if ids is not None else [chr(ord("A") + i) for i in range(len(options))]
    if len(labels) != len(options):
        raise ValueError(f"{len(options)} options but {len(labels)} IDs")
    id_pat = _id_pattern(labels)
    id_refs = tuple(i for i, text in enumerate(options) if id_pat.search(text))
    fixed = tuple(i for i, text in enumerate(options) if i not in id_refs and _GROUP.search(text))
    if id_refs or len(fixed) >= len(options) - 1:
        # Nothing left that can move without changing what an option means.
        return ReferentialCheck("undebiased", fixed, id_refs)
    if fixed:
        return ReferentialCheck("kept_in_place", fixed, id_refs)
    return ReferentialCheck("permuted", (), ())
