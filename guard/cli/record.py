"""``calguard record DATASET --base-url URL --model M --out FILE.jsonl``: every cyclic order of
each question asked once, kept in the recorded format, for ``calguard eval-offline FILE.jsonl``
(:mod:`guard.evaluation.record`). Resumable: rerun the same command after an interruption."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from guard.cli.args import positive
from guard.cli.eval_live import endpoint_args, endpoint_key, error, progress_bar


async def _run(args: argparse.Namespace, ds: Any, todo: list[int], ep: Any, meta: Any) -> Any:
    from guard.evaluation.live_run import make_client
    from guard.evaluation.record import record

    client = make_client(ep)
    with (
        progress_bar(args.no_progress) as progress,
        Path(args.out).open("a", encoding="utf-8") as out,
    ):
        task = progress.add_task("record", total=len(todo), rate="")

        def tick() -> None:
            progress.advance(task)
            speed = progress.tasks[task].speed
            progress.update(task, rate=f"{speed:.2f} items/s" if speed else "")

        try:
            return await record(client, ds, ep, todo, out, meta, args.concurrency, tick)
        finally:
            await client.close()


def run(args: argparse.Namespace) -> int:
    from guard.evaluation.live_data import DatasetError, load_dataset
    from guard.evaluation.live_run import Endpoint, EvalRunError
    from guard.evaluation.record import RecordFileError, Tally, n_options, read_done

    try:
        ds = load_dataset(args.dataset)
    except DatasetError as exc:
        return error(str(exc))
    if ds.kind != "mcq":
        return error(f"{args.dataset}: calguard record is for multiple-choice datasets")
    try:
        key = endpoint_key(args)
    except ValueError as exc:
        return error(str(exc))
    out = Path(args.out)
    if out.suffix != ".jsonl":
        return error(f"--out {out}: a recorded file is JSONL; name it *.jsonl")
    meta = {"dataset": ds.name, "digest": ds.digest, "model": args.model}
    try:
        done = read_done(out, meta)
    except RecordFileError as exc:
        return error(str(exc))
    n = len(ds) if args.limit is None else min(args.limit, len(ds))
    todo = [i for i in range(n) if i not in done]
    failed: str | None = None
    tally = Tally(before=len(done))
    with tempfile.TemporaryDirectory() as tmp:  # in-process: cyclic learns nothing to keep
        ep = Endpoint(
            args.base_url.rstrip("/"),
            args.model,
            key,
            args.via,
            args.max_retries,
            f"sqlite:///{Path(tmp) / 'record.db'}",
        )
        try:
            tally = asyncio.run(_run(args, ds, todo, ep, meta))
            tally.before = len(done)
        except EvalRunError as exc:
            failed = str(exc)
        except KeyboardInterrupt:
            failed = "interrupted"
    if failed:
        print(
            f"calguard: error: {failed}\ncalguard: what was recorded is kept in {out}: rerun "
            "the same command to resume",
            file=sys.stderr,
        )
        return 1
    skipped = "".join(f"; skipped {c}: {why}" for why, c in sorted(tally.skipped.items()))
    if tally.sampled:
        skipped += (
            f"; {tally.sampled} of those now from sampled answers (the endpoint gave no "
            "logprobs: each row is the frequencies of a few samples, answers_from: samples)"
        )
    print(
        f"{out}: {tally.recorded + tally.before} questions of {ds.name} with "
        f"{n_options(ds)} options, each in every cyclic order ({tally.recorded} now, "
        f"{tally.before} before{skipped}). Score every method on it: calguard eval-offline {out}"
    )
    return 0


def add_parser(sub: Any) -> None:
    rec = sub.add_parser(
        "record",
        help="ask a live endpoint every cyclic order of each question once, for eval-offline",
        description="Ask each multiple-choice question (headerless CSV question,A,B,...,answer, "
        "or JSONL question/options/answer) in every cyclic order of its options, once, through "
        "calguard's pipeline, and append the answers to a recorded JSONL file (probs_cyclic). "
        "calguard eval-offline FILE then scores every method, budget and arrival order on "
        "that model without another call. Resumable: rerun the same command.",
    )
    rec.add_argument(
        "dataset", metavar="DATASET", help="CSV or JSONL file, or a folder of CSVs (mmlu/test)"
    )
    rec.add_argument("--out", required=True, help="the recorded JSONL file (appended to)")
    rec.add_argument("--limit", type=positive, help="only the first N questions of the file")
    rec.add_argument(
        "--concurrency", type=positive, default=4, help="questions in flight (default 4)"
    )
    endpoint_args(rec)
    rec.set_defaults(func=run)
