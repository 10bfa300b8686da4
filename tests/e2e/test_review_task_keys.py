"""Calibration state per key for the classification task: what one request learns stays with
requests that ask the same classification."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.task_upstream import FACES, REVIEW, ask, evidence, judge_answer


@pytest.mark.parametrize("face", sorted(FACES))
def test_different_label_sets_do_not_share_a_key(face: str, tmp_path: Path) -> None:
    """The key joined the labels with '/': ["yes/no", "maybe"] and ["yes", "no/maybe"] were
    one key, so the second classification was calibrated with the first one's prior."""
    with FACES[face](judge_answer, tmp_path) as (client, _):
        first = evidence(ask(client, REVIEW, {"task": "classify", "labels": ["yes/no", "maybe"]}))
        second = evidence(ask(client, REVIEW, {"task": "classify", "labels": ["yes", "no/maybe"]}))
        fresh = evidence(ask(client, REVIEW, {"task": "classify", "labels": ["yes", "no/maybe"]}))
    assert first["key"] != second["key"]
    assert second["key"] == fresh["key"]
