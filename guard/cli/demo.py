"""``calguard demo``: a simulated biased model behind the real proxy, with and without calibration.

Nothing here is a real LLM. The upstream is :class:`guard.testing.simulated.SimulatedMcqModel`
served as an OpenAI-compatible API on 127.0.0.1: it knows each question's answer with a given
strength and prefers the option IDs B and C regardless of content. MMLU questions come from
``DATA/datasets/mmlu/test`` with ``--data DATA`` (the project's ``../shared/data``), else from a
bundled sample of 40.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import openai

from calibrators.metrics import accuracy, rstd
from guard.cli.args import positive
from guard.config import Settings
from guard.evaluation.replay import arc_prompt
from guard.evaluation.table import Row, Stat, format_table
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread
from guard.testing.simulated import SimulatedMcqModel

SAMPLE = Path(__file__).parents[1] / "testing" / "demo_data" / "sample_questions.csv"
Question = tuple[str, str, list[str], int]  # subject, question, options, gold index


def load_questions(n: int, data: Path | None = None, seed: int = 0) -> tuple[list[Question], str]:
    """``n`` questions (MMLU from ``data``, else the bundled sample), and where they came from."""
    mmlu = (data or Path("-")) / "datasets" / "mmlu" / "test"
    out: list[Question] = []
    if data is not None and mmlu.is_dir():
        for f in sorted(mmlu.glob("*_test.csv")):
            subject = f.stem.removesuffix("_test").replace("_", " ")
            with f.open(encoding="utf-8", newline="") as fh:
                out += [(subject, r[0], r[1:5], "ABCD".index(r[5])) for r in csv.reader(fh)]
        source = f"{len(out)} MMLU test questions in {mmlu}"
    else:
        with SAMPLE.open(encoding="utf-8", newline="") as fh:
            out = [
                (r[0].replace("_", " "), r[1], r[2:6], "ABCD".index(r[6])) for r in csv.reader(fh)
            ]
        why = "no --data given" if data is None else f"{mmlu} not found"
        source = f"the bundled sample of {len(out)} questions ({why})"
    random.Random(seed).shuffle(out)
    return out[:n], source


def run_demo(n_questions: int = 300, data: Path | None = None, strength: float = 1.5) -> str:
    questions, source = load_questions(n_questions, data)
    answers = {q: opts[g] for _, q, opts, g in questions}
    model = SimulatedMcqModel(strength=strength)
    state = FakeUpstreamState(SimulatedResponder(model, answers))
    gold = np.array([g for *_, g in questions])
    rows: list[Row] = []
    with serve_in_thread(create_fake_upstream(state)) as up, tempfile.TemporaryDirectory() as d:
        settings = Settings(upstream=f"{up}/v1", store=f"sqlite:///{d}/demo.db")
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="demo", max_retries=0) as client,
        ):
            for method in ("none", "pride", "adaptive", "cyclic"):
                pred, calls = [], 0
                for subject, q, opts, _ in questions:
                    r = client.chat.completions.create(
                        model="sim-biased-llm",
                        messages=[{"role": "user", "content": arc_prompt(q, opts, subject)}],
                        extra_body={"guard": {"calibration": method}},
                    )
                    g = (r.model_extra or {})["guard"]
                    pred.append(int(g["index"]))
                    calls += int(g["upstream_calls"])
                rows.append(
                    Row(
                        method,
                        Stat.of([accuracy(pred, gold)]),
                        "RStd",
                        Stat.of([rstd(pred, gold, 4)]),
                        Stat.of([calls / len(gold)]),
                    )
                )
    title = (
        f"calguard demo — a SIMULATED biased model (prefers IDs B and C; strength "
        f"{strength:g}) behind the real proxy; {len(gold)} questions from {source}"
    )
    return format_table(title, rows)


def run(args: argparse.Namespace) -> int:
    print(run_demo(args.questions, args.data), flush=True)
    return 0


def add_parser(sub: Any) -> None:
    dm = sub.add_parser(
        "demo",
        help="a simulated biased model behind the proxy, with and without calibration (no key)",
    )
    dm.add_argument(
        "--questions", type=positive, default=300, help="questions to send (default 300)"
    )
    dm.add_argument(
        "--data",
        type=Path,
        help="the data folder holding datasets/mmlu/test (e.g. ../shared/data); "
        "default: a bundled sample of 40 questions",
    )
    dm.set_defaults(func=run)
