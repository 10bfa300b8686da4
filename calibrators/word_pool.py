"""Domain-context probes: strings of random words from the inputs a key has seen (Fei et al.,
2023), and the bounded, serialisable pool they are drawn from."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def random_word_strings(
    words: Sequence[str], rng: np.random.Generator, *, length: int, n_strings: int = 20
) -> list[str]:
    """``n_strings`` strings of ``length`` words drawn uniformly, with replacement, from
    ``words`` (domain-context calibration probes)."""
    if isinstance(words, str) or not words:
        raise ValueError("words must be a non-empty list of words")
    if length < 1 or n_strings < 1:
        raise ValueError(f"length and n_strings must be >= 1, got {length} and {n_strings}")
    idx = rng.integers(len(words), size=(n_strings, length))
    return [" ".join(words[int(i)] for i in row) for row in idx]


class WordPool:
    """The most recent ``capacity`` words of the inputs seen and the mean input length in words,
    from which domain-context probes are drawn. ``to_dict`` / ``from_dict`` round-trip exactly."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.n_texts, self.n_words = capacity, 0, 0
        self.words: deque[str] = deque(maxlen=capacity)

    def add(self, text: str) -> None:
        """Record one input (split on whitespace)."""
        new = text.split()
        self.words.extend(new)
        self.n_texts, self.n_words = self.n_texts + 1, self.n_words + len(new)

    @property
    def mean_length(self) -> float:
        """Mean number of words per input seen (0 before any)."""
        return self.n_words / self.n_texts if self.n_texts else 0.0

    def probes(self, rng: np.random.Generator, n_strings: int = 20) -> list[str]:
        """Random-word strings about as long as an average input seen."""
        if not self.words:
            raise ValueError("the word pool is empty; add() some inputs first")
        length = max(1, round(self.mean_length))
        return random_word_strings(list(self.words), rng, length=length, n_strings=n_strings)

    def to_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "words": list(self.words), "n_texts": self.n_texts,
                "n_words": self.n_words}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WordPool:
        pool = cls(int(d["capacity"]))
        pool.words.extend(str(w) for w in d["words"])
        pool.n_texts, pool.n_words = int(d["n_texts"]), int(d["n_words"])
        return pool


__all__ = ["WordPool", "random_word_strings"]
