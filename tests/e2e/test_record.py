"""``calguard record`` end to end: a live endpoint on 127.0.0.1 asked every cyclic order of
each question through calguard (in-process and through a running proxy) gives back the
recording it was serving; an interrupted run resumes without asking again what it has; what
cannot be recorded as a whole is skipped or stops the run, saying which."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from guard.cli import main
from guard.config import RouteConfig, Settings
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

ARC = "arc_0s_Llama-2-13b-chat-hf.jsonl"
N = 48


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as url:
        yield f"{url}/v1", state


def record(dataset: Path, url: str, out: Path, *args: str) -> int:
    argv = ["record", str(dataset), "--base-url", url, "--model", "m", "--out", str(out)]
    return main([*argv, "--no-progress", *args])


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("via", ["inprocess", "proxy"])
def test_a_recording_asked_again_comes_back_as_it_was(
    via: str, replay: str, replay_proxy: str, arc: McqRecords, recorded: Callable[[str], Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    out = tmp_path / "again.jsonl"
    url = replay if via == "inprocess" else replay_proxy
    assert record(recorded(ARC), url, out, "--limit", str(N), "--via", via) == 0
    assert [r["idx"] for r in lines(out)] == list(range(N))  # in the dataset's order
    assert {r["answers_from"] for r in lines(out)} == {"logprobs"}
    again = load_recorded(out)
    assert isinstance(again, McqRecords)
    assert again.probs_cyclic.shape == (N, 4, 4)
    np.testing.assert_array_equal(again.gold, arc.gold[:N])
    assert again.options == arc.options[:N]
    # Row k is the order whose position j shows option (j + k) % 4: the recording's rows, as
    # calguard read them from top_logprobs (renormalised over the IDs: the source rows sum to
    # 1 within 0.001).
    source = arc.probs_cyclic[:N] / arc.probs_cyclic[:N].sum(axis=2, keepdims=True)
    np.testing.assert_allclose(again.probs_cyclic, source, atol=1e-3)
    # ... so eval-offline reads it (the table is run, not compared: near-ties may differ)
    assert main(["eval-offline", str(out), "--seeds", "2"]) == 0


def test_a_rerun_asks_only_what_is_missing(
    fake: tuple[str, FakeUpstreamState], recorded: Callable[[str], Path], tmp_path: Path
) -> None:
    url, state = fake
    out = tmp_path / "r.jsonl"
    assert record(recorded(ARC), url, out, "--limit", "10", "--concurrency", "3") == 0
    assert state.calls == 40
    with out.open("a") as f:
        f.write('{"idx": 10, "question": "cut by a ki')  # an interrupted write
    assert record(recorded(ARC), url, out, "--limit", "20", "--concurrency", "3") == 0
    assert state.calls == 80  # 10 more questions, 4 orders each
    assert [r["idx"] for r in lines(out)] == list(range(20))


def test_another_model_or_dataset_is_refused(
    fake: tuple[str, FakeUpstreamState], recorded: Callable[[str], Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    url, state = fake
    out = tmp_path / "r.jsonl"
    assert record(recorded(ARC), url, out, "--limit", "2") == 0
    before = out.read_text()
    argv = ["record", str(recorded(ARC)), "--base-url", url, "--model", "other", "--out"]
    assert main([*argv, str(out), "--no-progress"]) == 2
    assert "model: 'm'" in capsys.readouterr().err
    assert out.read_text() == before
    assert state.calls == 8
    assert record(recorded(ARC), url, tmp_path / "r.json") == 2  # not JSONL


def _dataset(path: Path, items: list[tuple[str, list[str], str]]) -> Path:
    path.write_text(
        "".join(json.dumps({"question": q, "options": o, "answer": a}) + "\n" for q, o, a in items)
    )
    return path


def test_what_is_not_permuted_whole_is_skipped_and_said(
    fake: tuple[str, FakeUpstreamState], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = fake
    ds = _dataset(
        tmp_path / "ds.jsonl",
        [
            ("Which is a fruit?", ["stone", "apple", "iron", "glass"], "B"),
            ("Which are metals?", ["iron", "tin", "wood", "All of the above"], "D"),
            ("Which are fruits?", ["apple", "A and C", "pear", "iron"], "B"),
            ("Which is wet?", ["water", "sand", "dust"], "A"),
            ("Which is cold?", ["ice", "fire", "sun", "lava"], "A"),
        ],
    )
    out = tmp_path / "r.jsonl"
    assert record(ds, url, out) == 0
    said = capsys.readouterr().out
    assert [r["question"] for r in lines(out)] == ["Which is a fruit?", "Which is cold?"]
    assert "skipped 2: an option refers to others" in said
    assert "skipped 1: not 4 options" in said
    # What is skipped is known from the options: no call for it, now or on a rerun (before:
    # one or more a referential question, on every rerun)
    assert state.calls == 8
    assert record(ds, url, out) == 0
    assert state.calls == 8


def test_an_order_left_unanswered_stops_the_run_and_keeps_the_rest(
    fake: tuple[str, FakeUpstreamState], recorded: Callable[[str], Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    url, state = fake
    out = tmp_path / "r.jsonl"
    assert record(recorded(ARC), url, out, "--limit", "3", "--concurrency", "1") == 0
    state.faults = [(400, {})]  # one order of the next question: not retried, dropped
    assert record(recorded(ARC), url, out, "--limit", "6", "--concurrency", "1") == 1
    err = capsys.readouterr().err
    assert "item 3: 3 of its 4 orders answered" in err
    assert "rerun" in err
    assert [r["idx"] for r in lines(out)] == [0, 1, 2]
    assert record(recorded(ARC), url, out, "--limit", "6", "--concurrency", "1") == 0
    assert [r["idx"] for r in lines(out)] == list(range(6))


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda good: [good[0], good[1][:30], good[2]], "r.jsonl:2: not JSON"),
        (lambda good: [good[0], "[1, 2]"], "r.jsonl:2: not a record"),
        (lambda good: [good[0], good[1].replace('"idx": 1', '"idx": "1"')], "r.jsonl:2: 'idx'"),
        (lambda good: [*good, good[1]], "r.jsonl:4: question 1 is recorded twice"),
    ],
)
def test_a_file_edited_by_hand_is_refused_naming_its_line(
    edit: Callable[[list[str]], list[str]], said: str,
    fake: tuple[str, FakeUpstreamState], recorded: Callable[[str], Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Before: a traceback (JSONDecodeError, AttributeError, KeyError), or for a line pasted
    twice a summary counting it once and a file that eval-offline scores twice."""
    url, state = fake
    out = tmp_path / "r.jsonl"
    assert record(recorded(ARC), url, out, "--limit", "3") == 0
    out.write_text("".join(line + "\n" for line in edit(out.read_text().splitlines())))
    before, calls = out.read_text(), state.calls
    assert record(recorded(ARC), url, out, "--limit", "4") == 2
    assert said in capsys.readouterr().err
    assert (out.read_text(), state.calls) == (before, calls)


def test_a_file_not_utf8_is_refused(
    recorded: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.jsonl"
    out.write_bytes(b"\xff\xfe\n")
    assert record(recorded(ARC), "http://127.0.0.1:9/v1", out) == 2
    assert "not a recorded JSONL file" in capsys.readouterr().err


def test_a_whole_last_line_without_its_newline_is_kept(
    fake: tuple[str, FakeUpstreamState], recorded: Callable[[str], Path], tmp_path: Path
) -> None:
    """An editor may save the file without the last newline: that record is whole, and was
    dropped (and asked again) as if an interruption had cut it."""
    url, state = fake
    out = tmp_path / "r.jsonl"
    assert record(recorded(ARC), url, out, "--limit", "3") == 0
    out.write_text(out.read_text().rstrip("\n"))
    calls = state.calls
    assert record(recorded(ARC), url, out, "--limit", "3") == 0
    assert state.calls == calls
    assert [r["idx"] for r in lines(out)] == [0, 1, 2]


def test_an_option_over_two_lines_is_recorded(
    fake: tuple[str, FakeUpstreamState], tmp_path: Path
) -> None:
    """The options are given to calguard (guard.options), not found again in the prompt: found,
    an option over two lines made a question of another shape, refused (400 on the key's
    shape) on this run and every rerun, so the file could never get past it."""
    url, _ = fake
    ds = _dataset(
        tmp_path / "ds.jsonl",
        [
            ("Which is a fruit?", ["stone", "apple", "iron", "glass"], "B"),
            ("Which is a poem?", ["roses are red\nviolets are blue", "tax", "iron", "sand"], "A"),
            ("Which is cold?", ["ice", "fire", "sun", "lava"], "A"),
        ],
    )
    out = tmp_path / "r.jsonl"
    assert record(ds, url, out) == 0
    assert [r["question"] for r in lines(out)] == [
        "Which is a fruit?", "Which is a poem?", "Which is cold?"
    ]  # fmt: skip


def test_a_question_a_policy_blocks_is_skipped_and_said(
    fake: tuple[str, FakeUpstreamState], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy's policy that blocks a question blocks it on every rerun: before, the run
    stopped there ("rerun the same command to resume") and never got past it."""
    url, _ = fake
    block = {"type": "denylist", "params": {"words": ["lava"]}, "action": "block"}
    settings = Settings(
        upstream=url,
        store=f"sqlite:///{tmp_path / 'p.db'}",
        default_route=RouteConfig(policies=[block]),
    )
    ds = _dataset(
        tmp_path / "ds.jsonl",
        [
            ("Which is a fruit?", ["stone", "apple", "iron", "glass"], "B"),
            ("Which is hot?", ["ice", "snow", "frost", "lava"], "D"),
            ("Which is cold?", ["ice", "fire", "sun", "wind"], "A"),
        ],
    )
    out = tmp_path / "r.jsonl"
    with serve_in_thread(create_app(settings)) as proxy:
        assert record(ds, f"{proxy}/v1", out, "--via", "proxy") == 0
    assert [r["question"] for r in lines(out)] == ["Which is a fruit?", "Which is cold?"]
    assert "skipped 1: blocked by a policy of the proxy" in capsys.readouterr().out


def test_a_one_question_recording_is_scored(
    fake: tuple[str, FakeUpstreamState], recorded: Callable[[str], Path], tmp_path: Path
) -> None:
    """record --limit 1 then eval-offline: PriDe's warm-up is the one question, at cyclic's
    cost, and the cost line between them divided by zero (a traceback)."""
    url, _ = fake
    out = tmp_path / "r.jsonl"
    assert record(recorded(ARC), url, out, "--limit", "1") == 0
    assert main(["eval-offline", str(out), "--seeds", "2"]) == 0


def test_answers_sampled_without_logprobs_are_labelled(
    recorded: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint without logprobs: calguard samples 8 answers an order, and the rows are
    add-half-smoothed frequencies (0.85/0.05/...), written and summarised exactly as logprob
    distributions, with nothing in the file or the summary to tell them apart."""
    state = FakeUpstreamState(SimulatedResponder(), logprobs=False)
    out = tmp_path / "r.jsonl"
    with serve_in_thread(create_fake_upstream(state)) as url:
        assert record(recorded(ARC), f"{url}/v1", out, "--limit", "2") == 0
    assert "2 of those now from sampled answers" in capsys.readouterr().out
    assert [r["answers_from"] for r in lines(out)] == ["samples", "samples"]
