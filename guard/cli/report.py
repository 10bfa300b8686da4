"""``calguard report``: pictures of what calibration did, as PNGs and one HTML page.

From ``calguard eval`` results (``--eval results.json``, repeatable): the bias picture (recall
per gold position, per calibration) and the cost picture (accuracy against upstream calls per
item). From a store (``--store sqlite:///calguard.db`` or ``postgresql://...``): each key's
learned prior against uniform, how it moved as the key saw questions, and a table of each key's
traffic (requests, upstream calls) and flag records (also printed).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from guard.cli.args import positive

TRAFFIC_NOTE = (
    "requests and upstream calls are counted in each key's state (from schema version 2 on; "
    "'none' classification and judges keep no state: '-'); flagged and blocked are the flag "
    "records logged under the key; (no calibration): requests no calibration ran for."
)


def run(args: argparse.Namespace) -> int:
    if not args.eval and not args.store:
        print("calguard: error: nothing to report: pass --eval RESULTS.json and/or --store URL",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("calguard: error: calguard report draws with matplotlib: pip install "
              "-e '.[report]' (from the checkout)", file=sys.stderr)  # fmt: skip
        return 2
    from guard.cli.flags import printable
    from guard.evaluation.live_table import EvalRow, format_rows
    from guard.evaluation.report_data import read_eval
    from guard.evaluation.report_page import Section, page
    from guard.evaluation.report_plots import bias_png, cost_png, history_png, priors_png
    from guard.evaluation.report_store import format_traffic, read_store
    from guard.store import redact

    for path in args.eval or []:  # every file is there before anything is written
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} not found (a calguard eval --out file)")
        if not Path(path).with_suffix(".jsonl").is_file():
            raise FileNotFoundError(
                f"{Path(path).with_suffix('.jsonl')} (the answers of {path}) not found: "
                "calguard eval writes it beside its --out file"
            )
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for k, path in enumerate(args.eval or []):
        ev = read_eval(path)
        pictures = (("recall per gold position", bias_png(ev)), ("accuracy against calls",
                    cost_png(ev)))  # fmt: skip
        for name, (_, picture) in zip(("bias", "cost"), pictures, strict=True):
            (out / f"eval{k}_{name}.png").write_bytes(picture)
        table = format_rows(ev.title, [EvalRow(**r) for r in ev.rows])
        sections.append(Section(ev.title, table, pictures))
    if args.store:
        where = redact(args.store)
        found = read_store(args.store, args.keys)
        # Keys are client strings (guard.key, guard.labels, model names): escape sequences and
        # bidi overrides are shown, never acted on, in the terminal and on the page alike.
        found = replace(
            found,
            priors=[replace(p, key=printable(p.key)) for p in found.priors],
            traffic=[replace(r, key=None if r.key is None else printable(r.key))
                     for r in found.traffic],
        )  # fmt: skip
        if found.priors:
            pictures = (("learned priors", priors_png(found.priors)),
                        ("how the priors moved", history_png(found.priors)))  # fmt: skip
            for name, (_, png) in zip(("priors", "history"), pictures, strict=True):
                (out / f"store_{name}.png").write_bytes(png)
            sections.append(Section(f"Learned priors in {where}", "", pictures))
        else:
            sections.append(Section(f"Learned priors in {where}",
                                    note="no key has learned a prior yet"))  # fmt: skip
        table = format_traffic(found.traffic, args.keys)
        note = TRAFFIC_NOTE if found.traffic else "no traffic yet"
        sections.append(Section(f"Traffic and flags per calibration key in {where}", table,
                                note=note))  # fmt: skip
        print(f"{where}\n{table}")
    report = out / "report.html"
    report.write_text(page("calguard report", sections), encoding="utf-8")
    print(f"calguard: wrote {report} and {len(list(out.glob('*.png')))} PNG(s) in {out}")
    return 0


def add_parser(sub: Any) -> None:
    rp = sub.add_parser(
        "report",
        help="plots of an eval run and of the store's learned priors (PNG + one HTML page)",
        description="Draw what calibration did: from calguard eval results, recall per gold "
        "position (bias) and accuracy against calls (cost); from a store, the learned priors "
        "against uniform, how they moved, and each key's traffic and flags. Writes PNGs and a "
        "self-contained report.html (no network needed).",
    )
    rp.add_argument("--eval", action="append", metavar="RESULTS.json",
                    help="a calguard eval --out file (repeatable)")  # fmt: skip
    rp.add_argument("--store", metavar="URL",
                    help="a store: sqlite:///calguard.db or postgresql://user@host/db")  # fmt: skip
    rp.add_argument("--keys", type=positive, default=12,
                    help="store keys drawn and listed (most trafficked; default 12)")  # fmt: skip
    rp.add_argument("--out-dir", default="calguard-report", help="default calguard-report/")
    rp.set_defaults(func=run)
