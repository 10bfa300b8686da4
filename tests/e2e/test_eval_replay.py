"""``calguard eval`` end to end on real recorded behaviour: the replay upstream on 127.0.0.1,
asked through calguard in-process and through a running proxy, scores as the offline
evaluation of the same calibration and arrival order does; an interrupted run resumes and ends
with the same table; the classification path on the SST-2 replay."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from calibrators.label_prior import BatchCalibrator, PriorMatcher, log_normalise
from calibrators.metrics import accuracy, macro_f1, rstd
from calibrators.planner import PermutationPlanner
from guard.cli import main
from guard.evaluation.mcq import run_order
from guard.evaluation.recorded import ClassifyRecords, McqRecords, load_recorded
from tests.e2e.serve_process import CLI

ARC = "arc_0s_Llama-2-13b-chat-hf.jsonl"
SST2 = "sst2_train_labelprobs.jsonl"
N = 120  # questions: enough to compare, quick to run


def evaluate(out: Path, dataset: Path, url: str, *args: str) -> dict[str, dict[str, float]]:
    argv = ["eval", str(dataset), "--base-url", url, "--model", "replay", "--no-progress"]
    assert main([*argv, "--out", str(out), *args]) == 0
    return {r["calibration"]: r for r in json.loads(out.read_text())["rows"]}


def head(rec: McqRecords, n: int) -> McqRecords:
    qs = None if rec.questions is None else rec.questions[:n]
    return McqRecords(rec.name, rec.probs_cyclic[:n], rec.gold[:n], rec.options[:n], qs)


@pytest.mark.parametrize("via", ["inprocess", "proxy"])
def test_eval_reproduces_the_offline_figures(
    via: str, replay: str, replay_proxy: str, arc: McqRecords, recorded: Callable[[str], Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    methods = ["none", "pride", "adaptive", "cyclic"]
    url = replay if via == "inprocess" else replay_proxy
    rows = evaluate(
        tmp_path / "r.json", recorded(ARC), url, "--via", via, "--limit", str(N), "--seed", "0",
        "--concurrency", "1", "--calibration", *methods,
    )  # fmt: skip
    rec = head(arc, N)
    order = np.random.default_rng(0).permutation(N)
    for m in methods:
        offline = run_order(rec, lambda n, m=m: PermutationPlanner(n, m, budget=2.0), order)
        assert rows[m]["items"] == N
        assert rows[m]["accuracy"] == pytest.approx(offline.accuracy, abs=0.5), m
        assert rows[m]["rstd"] == pytest.approx(offline.rstd, abs=0.5), m
        assert rows[m]["calls"] == pytest.approx(offline.calls, abs=0.01), m
        assert rows[m]["tokens"] == pytest.approx(11 * offline.calls), m  # the fake's usage


def table(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith("arc_")]


def test_an_interrupted_eval_resumes_and_ends_with_the_same_table(
    replay: str, recorded: Callable[[str], Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args = ["--concurrency", "1", "--calibration", "pride", "adaptive"]
    once = evaluate(tmp_path / "once.json", recorded(ARC), replay, "--limit", "60", *args)
    whole = table(capsys.readouterr().out)
    part = tmp_path / "part.json"
    evaluate(part, recorded(ARC), replay, "--limit", "25", *args)  # stopped after 25 items
    capsys.readouterr()
    resumed = evaluate(part, recorded(ARC), replay, "--limit", "60", *args)
    assert table(capsys.readouterr().out) == whole
    assert resumed == once
    log = [json.loads(line) for line in part.with_suffix(".jsonl").read_text().splitlines()]
    assert len(log) == 1 + 2 * 60  # the header, then each item once per calibration


def test_a_line_cut_by_a_kill_is_asked_again(
    replay: str, recorded: Callable[[str], Path], tmp_path: Path
) -> None:
    args = ["--limit", "30", "--calibration", "none", "cyclic"]
    out = tmp_path / "r.json"
    whole = evaluate(out, recorded(ARC), replay, *args)
    log = out.with_suffix(".jsonl")
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:20]) + lines[20][:15])  # killed while writing item 20
    again = evaluate(out, recorded(ARC), replay, *args)
    assert again == whole
    assert len(log.read_text().splitlines()) == len(lines)


@pytest.mark.parametrize("via", ["inprocess", "proxy"])
def test_classification_on_the_sst2_replay(
    via: str, replay: str, replay_proxy: str, recorded: Callable[[str], Path], tmp_path: Path
) -> None:
    n = 300
    url = replay if via == "inprocess" else replay_proxy
    rows = evaluate(
        tmp_path / "r.json", recorded(SST2), url, "--via", via, "--limit", str(n),
        "--concurrency", "1", "--template", "Review: {text}\\nSentiment:",
    )  # fmt: skip
    rec = load_recorded(recorded(SST2))
    assert isinstance(rec, ClassifyRecords)
    lq, gold = log_normalise(rec.logprobs[:n]), rec.gold[:n]
    offline = {
        "none": lq.argmax(axis=1),
        "batch": BatchCalibrator(2).stream(lq, include_current=True).argmax(axis=1),
        "prior-match": PriorMatcher(2).stream(lq, include_current=True).argmax(axis=1),
    }
    assert list(rows) == list(offline)
    for name, pred in offline.items():
        assert rows[name]["accuracy"] == pytest.approx(accuracy(pred, gold), abs=0.5), name
        assert rows[name]["macro_f1"] == pytest.approx(macro_f1(pred, gold, 2), abs=0.5), name
        assert rows[name]["rstd"] == pytest.approx(rstd(pred, gold, 2), abs=0.5), name
        assert rows[name]["calls"] == 1.0
    assert rows["batch"]["accuracy"] > rows["none"]["accuracy"] + 15  # what the README says


def test_a_killed_eval_resumes_with_the_same_table(
    replay: str, recorded: Callable[[str], Path], tmp_path: Path
) -> None:
    """A real ``kill -9`` of the process part-way (wherever it lands: the result cannot depend
    on it; the order-free methods, whose answers do not depend on what came before)."""
    args = ["--limit", "80", "--calibration", "none", "cyclic", "--concurrency", "1"]
    whole = evaluate(tmp_path / "whole.json", recorded(ARC), replay, *args)
    out = tmp_path / "killed.json"
    cmd = [*CLI, "eval", str(recorded(ARC)), "--base-url", replay, "--model", "replay",
           "--no-progress", "--out", str(out), *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out.with_suffix(".jsonl")
    try:
        for _ in range(600):  # until 30 answers are in (or the run is over)
            if proc.poll() is not None or (log.exists() and log.read_text().count("\n") > 30):
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)
    assert evaluate(out, recorded(ARC), replay, *args) == whole
    items = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    assert sorted((a["calibration"], a["item"]) for a in items) == sorted(
        (c, i) for c in ("none", "cyclic") for i in range(80)
    )
