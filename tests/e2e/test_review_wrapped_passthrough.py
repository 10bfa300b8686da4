"""A plain call (no guard options) through the wrapped client whose answer has a malformed
``choices`` (not a list) comes back as the upstream sent it, as through the plain client and
the proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.task_upstream import FACES, chat


@pytest.mark.parametrize("n", [1, 2])
def test_a_plain_call_with_malformed_choices_reaches_the_wrapped_client_as_sent(
    n: int, tmp_path: Path
) -> None:
    """What calguard is not asked to act on goes through as it is: the plain client returns
    choices=5 as the upstream sent it, the proxy too; the wrapper raised TypeError (its
    fill-in of n choices took list(5))."""
    with FACES["wrapper"](lambda _body: {**chat("B"), "choices": 5}, tmp_path) as (client, _):
        r = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], n=n
        )
    assert r.choices == 5
