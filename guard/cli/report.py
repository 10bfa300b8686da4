"""``calguard report``: pictures of what calibration did, as PNGs and one HTML page.

From ``calguard eval`` results (``--eval results.json``, repeatable): the bias picture (recall
per gold position, per calibration) and the cost picture (accuracy against upstream calls per
item). From a store (``--store sqlite:///calguard.db``): each key's learned prior against
uniform and the traffic that taught it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    if not args.eval and not args.store:
        print("calguard: error: nothing to report: pass --eval RESULTS.json and/or --store URL",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("calguard: error: calguard report draws with matplotlib: pip install "
              "'calguard[report]'", file=sys.stderr)  # fmt: skip
        return 2
    from guard.evaluation.live_table import EvalRow, format_rows
    from guard.evaluation.report_data import read_eval, read_store
    from guard.evaluation.report_page import Section, page
    from guard.evaluation.report_plots import bias_png, cost_png, priors_png

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for k, path in enumerate(args.eval or []):
        if not Path(path).with_suffix(".jsonl").exists():
            raise FileNotFoundError(f"{Path(path).with_suffix('.jsonl')} (the answers of {path})")
        ev = read_eval(path)
        pictures = (("recall per gold position", bias_png(ev)), ("accuracy against calls",
                    cost_png(ev)))  # fmt: skip
        for name, (_, picture) in zip(("bias", "cost"), pictures, strict=True):
            (out / f"eval{k}_{name}.png").write_bytes(picture)
        table = format_rows(ev.title, [EvalRow(**r) for r in ev.rows])
        sections.append(Section(ev.title, table, pictures))
    if args.store:
        priors = read_store(args.store, args.keys)
        if priors:
            png = priors_png(priors)
            (out / "store_priors.png").write_bytes(png)
            sections.append(Section(f"Learned priors in {args.store}", "",
                                    (("learned priors", png),)))  # fmt: skip
        else:
            sections.append(Section(f"Learned priors in {args.store}",
                                    note="no key has learned a prior yet"))  # fmt: skip
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
        "against uniform. Writes PNGs and a self-contained report.html (no network needed).",
    )
    rp.add_argument("--eval", action="append", metavar="RESULTS.json",
                    help="a calguard eval --out file (repeatable)")  # fmt: skip
    rp.add_argument("--store", metavar="URL", help="a store, e.g. sqlite:///calguard.db")
    rp.add_argument("--keys", type=int, default=12, help="store keys drawn (most trafficked)")
    rp.add_argument("--out-dir", default="calguard-report", help="default calguard-report/")
    rp.set_defaults(func=run)
