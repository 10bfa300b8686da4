"""``calguard eval DATASET --base-url URL --model M``: calibrations side by side on a live
endpoint, through calguard's own pipeline (in-process, or a running proxy with ``--via proxy``).

Answers are appended to ``--out``'s ``.jsonl`` log as they arrive: rerunning the same command
after an interruption asks only what is missing and prints the same table. The table and the run
go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from guard.cli.args import budget, positive

DEFAULTS = {
    "mcq": ("none", "pride", "adaptive", "cyclic"),
    "classify": ("none", "batch", "prior-match"),
}


def error(message: str) -> int:
    print(f"calguard: error: {message}", file=sys.stderr)
    return 2


def api_key(name: str | None) -> str | None:
    if name is None:
        return os.environ.get("OPENAI_API_KEY") or "no-key"  # local servers want none
    return os.environ.get(name) or None


def endpoint_key(args: argparse.Namespace) -> str:
    """The API key for ``--base-url``, once both are usable; ValueError naming the option."""
    from guard.config import http_url

    key = api_key(args.api_key_env)
    if key is None:
        raise ValueError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    try:
        http_url(args.base_url)
    except ValueError as exc:  # before: the run started and every call failed to connect
        raise ValueError(f"--base-url: {exc}") from exc
    return key


def progress_bar(disable: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=disable,
    )


async def _run(args: argparse.Namespace, ds: Any, order: list[int], log: Any, ep: Any) -> None:
    from guard.evaluation.live_run import asker, make_client, run_calibration

    client = make_client(ep)
    ask = asker(client, ds, ep, log.run_id)
    with progress_bar(args.no_progress) as progress:
        tasks = {}
        for c in args.calibration:
            done = len(log.done(c) & set(order))
            tasks[c] = progress.add_task(c, total=len(order), completed=done, rate="")

        def tick(c: str) -> None:
            progress.advance(tasks[c])
            speed = progress.tasks[tasks[c]].speed
            progress.update(tasks[c], rate=f"{speed:.1f} items/s" if speed else "")

        try:
            for c in args.calibration:
                await run_calibration(ask, log, c, order, args.concurrency, tick)
        finally:
            await client.close()


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from guard.calibrations import check_calibration
    from guard.evaluation.live_data import DatasetError, load_dataset
    from guard.evaluation.live_log import ResultLog, ResumeError
    from guard.evaluation.live_run import Endpoint, EvalRunError
    from guard.evaluation.live_table import as_json, format_rows, score_all

    try:
        ds = load_dataset(args.dataset, args.labels, args.template)
    except DatasetError as exc:
        return error(str(exc))
    args.calibration = list(dict.fromkeys(args.calibration or DEFAULTS[ds.kind]))
    for c in args.calibration:
        try:
            check_calibration(ds.kind, c)
        except ValueError as exc:
            return error(f"--calibration: {exc}")
    try:
        key = endpoint_key(args)
    except ValueError as exc:
        return error(str(exc))
    n = len(ds) if args.limit is None else min(args.limit, len(ds))
    order = list(range(n))
    if args.seed is not None:
        order = [int(i) for i in np.random.default_rng(args.seed).permutation(n)]
    out = Path(args.out)
    log_path = out.with_suffix(".jsonl")
    header = {
        "dataset": ds.name, "digest": ds.digest, "kind": ds.kind, "model": args.model,
        "via": args.via, "seed": args.seed, "base_url": args.base_url, "labels": list(ds.labels),
    }  # fmt: skip
    try:
        log = ResultLog(log_path, header)
    except ResumeError as exc:
        return error(str(exc))
    ep = Endpoint(
        args.base_url.rstrip("/"),
        args.model,
        key,
        args.via,
        args.max_retries,
        f"sqlite:///{out.with_suffix('.db')}",
        args.budget,
    )
    failed: str | None = None
    try:
        asyncio.run(_run(args, ds, order, log, ep))
    except EvalRunError as exc:
        failed = str(exc)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        log.close()
    rows = score_all(log.answers, args.calibration, ds.n_classes, n)
    what = "questions" if ds.kind == "mcq" else "inputs"
    title = f"{ds.name}: {n} {what}, model {args.model}, via {args.via}"
    if log.answers:
        print(format_rows(title, rows), flush=True)
    out.write_text(json.dumps(as_json({**log.header, "items": n}, rows), indent=2) + "\n")
    if failed:
        print(
            f"calguard: error: {failed}\ncalguard: {len(log.answers)} answers are kept in "
            f"{log_path}: rerun the same command to resume",
            file=sys.stderr,
        )
        return 1
    return 0


def add_parser(sub: Any) -> None:
    ev = sub.add_parser(
        "eval",
        help="evaluate calibrations side by side on a live OpenAI-compatible endpoint",
        description="Run a multiple-choice dataset (headerless CSV question,A,B,...,answer, or "
        "JSONL question/options/answer) or a classification dataset (JSONL text/label, with "
        "--labels) through calguard, once per calibration, and print accuracy, RStd, macro-F1, "
        "ECE, upstream calls and tokens per item. Resumable: rerun the same command after an "
        "interruption. No key at hand? Serve recorded outputs with calguard replay-upstream.",
    )
    ev.add_argument(
        "dataset", metavar="DATASET", help="CSV or JSONL file, or a folder of CSVs (mmlu/test)"
    )
    ev.add_argument(
        "--calibration",
        nargs="+",
        metavar="NAME",
        help="calibrations to compare (default: none pride adaptive cyclic for MCQ, none batch "
        "prior-match for classification)",
    )
    ev.add_argument("--limit", type=positive, help="only the first N items of the file")
    ev.add_argument("--seed", type=int, help="shuffle the arrival order with this seed")
    ev.add_argument(
        "--concurrency", type=positive, default=4,
        help="requests in flight (default 4; 1 asks in order: reproducible online priors)",
    )  # fmt: skip
    ev.add_argument(
        "--out", default="calguard-eval.json",
        help="results JSON (default calguard-eval.json); answers go to the .jsonl beside it, "
        "in-process priors to the .db",
    )  # fmt: skip
    ev.add_argument("--labels", nargs="+", metavar="WORD", help="classification: the label words")
    ev.add_argument(
        "--template",
        help="classification prompt, with {text} (and optionally {labels}); \\n for new lines",
    )
    ev.add_argument("--budget", type=budget, help="MCQ: adaptive's calls per question")
    endpoint_args(ev)
    ev.set_defaults(func=run)


def endpoint_args(parser: Any) -> None:
    """The options ``calguard eval`` and ``calguard record`` share: where and how to ask."""
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible base URL (…/v1)")
    parser.add_argument("--model", required=True, help="model name sent to the endpoint")
    parser.add_argument(
        "--api-key-env", metavar="NAME",
        help="environment variable holding the API key (default OPENAI_API_KEY, if set)",
    )  # fmt: skip
    parser.add_argument(
        "--via", choices=("inprocess", "proxy"), default="inprocess",
        help="inprocess: calguard's pipeline in this process (guard.wrap); proxy: --base-url "
        "is a running calguard proxy",
    )  # fmt: skip
    parser.add_argument("--max-retries", type=int, default=2, help="the SDK's retries (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
