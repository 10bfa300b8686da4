"""``calguard eval``'s mistakes are one clear line on stderr and a non-zero status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.cli import main
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread

MCQ = "Which planet is red?,Venus,Mars,Earth,Jupiter,B\nWhat is 2+2?,3,4,5,6,B\n"


@pytest.fixture
def mcq(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_test.csv"
    path.write_text(MCQ)
    return path


@pytest.fixture(scope="module")
def plain() -> Iterator[str]:
    """A fake OpenAI-compatible upstream (not a calguard proxy)."""
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as url:
        yield f"{url}/v1"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["eval", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_a_csv_against_a_plain_endpoint(
    mcq: Path, plain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code, text, _ = run([str(mcq), "--base-url", plain, "--model", "m", "--out", str(out)], capsys)
    assert code == 0
    assert [line.split()[0] for line in text.splitlines()[3:]] == [
        "none", "pride", "adaptive", "cyclic"
    ]  # fmt: skip
    result = json.loads(out.read_text())
    assert result["run"]["items"] == 2
    assert {r["items"] for r in result["rows"]} == {2}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--calibration", "prid"], "did you mean 'pride'?"),
        (["--calibration", "batch"], "'batch' is not a calibration for task mcq"),
        (["--labels", "yes", "no"], "--labels is for classification datasets"),
        (["--api-key-env", "CALGUARD_TEST_UNSET_KEY"], "CALGUARD_TEST_UNSET_KEY"),
        # Before: the run started, and stopped on the SDK's "Connection error" after retries.
        (["--base-url", "127.0.0.1:8000/v1"], "--base-url: '127.0.0.1:8000/v1' is not an http"),
    ],
)
def test_argument_mistakes(
    extra: list[str], message: str, mcq: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("CALGUARD_TEST_UNSET_KEY", raising=False)
    args = [str(mcq), "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    code, _, err = run([*args, "--out", str(tmp_path / "r.json"), *extra], capsys)
    assert code == 2
    assert err.startswith("calguard: error:")
    assert message in err


def test_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([str(tmp_path / "nope.csv"), "--base-url", "u", "--model", "m"], capsys)
    assert code == 2
    assert "nope.csv not found" in err


def test_a_classification_dataset_without_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "c.jsonl"
    data.write_text('{"text": "great", "label": 1}\n')
    code, _, err = run([str(data), "--base-url", "u", "--model", "m"], capsys)
    assert code == 2
    assert "pass --labels" in err


def test_a_proxy_that_is_not_calguard(
    mcq: Path, plain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(mcq), "--base-url", plain, "--model", "m", "--via", "proxy"]
    code, _, err = run([*args, "--out", str(tmp_path / "r.json")], capsys)
    assert code == 1
    assert "must be a calguard proxy" in err
    assert "rerun the same command to resume" in err


def test_an_endpoint_that_does_not_answer(
    mcq: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    args = [str(mcq), "--base-url", url, "--model", "m", "--max-retries", "0"]
    code, _, err = run([*args, "--out", str(tmp_path / "r.json")], capsys)
    assert code == 1
    assert "Connection error" in err


def test_a_log_of_another_run_is_not_continued(
    mcq: Path, plain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "r.json")
    assert run([str(mcq), "--base-url", plain, "--model", "m", "--out", out], capsys)[0] == 0
    code, _, err = run([str(mcq), "--base-url", plain, "--model", "other", "--out", out], capsys)
    assert code == 2
    assert "holds another run (model: 'm')" in err
    assert "pass another --out" in err


def test_an_option_over_two_lines_is_one_option(
    plain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dataset's options are given to calguard (``guard.options``), not found again in
    the prompt: found, an option over two lines made a question of another shape, which the
    key refused (400), stopping the run there and on every rerun."""
    ds = tmp_path / "poems.jsonl"
    rows = [
        ("Which is a fruit?", ["stone", "apple", "iron", "glass"], "B"),
        ("Which is a poem?", ["roses are red\nviolets are blue", "tax", "iron", "sand"], "A"),
    ]
    ds.write_text(
        "".join(json.dumps({"question": q, "options": o, "answer": a}) + "\n" for q, o, a in rows)
    )
    out = tmp_path / "r.json"
    args = [str(ds), "--base-url", plain, "--model", "m", "--out", str(out), "--seed", "0"]
    code, _, err = run([*args, "--calibration", "pride", "--concurrency", "1"], capsys)
    assert code == 0, err
    assert {r["items"] for r in json.loads(out.read_text())["rows"]} == {2}
