"""Fixtures shared by the end-to-end modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.differential import Pair, calguard_in_front


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A raw upstream and a real calguard in front of it (:mod:`tests.e2e.differential`)."""
    with calguard_in_front(tmp_path_factory.mktemp("differential") / "d.db") as both:
        yield both
