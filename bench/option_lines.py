"""How finding a question's options scales with a long option line: a prompt whose option A
has a run of n spaces inside it, read by :func:`guard.tasks.prompt_text.find_options` (what a
request with a ``guard`` object asking for calibration, or a route with ``auto_detect``, runs
on the last user message before it goes upstream).

    python -m bench.option_lines [--sizes 5000 10000 20000 2000000]

Before, the lazy option pattern tried the rest of the run at each of its spaces: 5k/10k/20k
spaces took 0.09/0.31/1.18 s (2 MB would take about three hours). Linear: flat ns per space.

The second table is :func:`guard.tasks.detection.detect_mcq` on a preamble of n words
"answer" (a route with ``auto_detect``): each once scanned the rest of its sentence for the
form of an answer, 2k/4k/8k words took 0.51/2.10/9.55 s. The third is detect_mcq on a stem
line "options" followed by n spaces: the header pattern shared the run among four
quantifiers, 500/1000/2000 spaces took 0.21/1.26/10.4 s (cubic).
"""

from __future__ import annotations

import argparse
import time

from guard.tasks.detection import detect_mcq
from guard.tasks.prompt_text import find_options


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 2_000_000])
    args = ap.parse_args()
    print("| spaces | s | ns per space |")
    print("|---|---|---|")
    for n in args.sizes:
        text = "Which?\nA. x" + " " * n + "y\nB. z\nAnswer:"
        t = time.perf_counter()
        find_options(text)
        s = time.perf_counter() - t
        print(f"| {n:,} | {s:.4f} | {s / n * 1e9:.1f} |", flush=True)
    print("\n| words | s | ns per word |")
    print("|---|---|---|")
    for n in (2000, 4000, 8000, 128_000):
        text = "Describe " + "answer " * n + "\nQuestion: Which?\nA. x\nB. y\nAnswer:"
        t = time.perf_counter()
        detect_mcq(text)
        s = time.perf_counter() - t
        print(f"| {n:,} | {s:.4f} | {s / n * 1e9:.1f} |", flush=True)
    header([500, 1000, 2000, 2_000_000])


def header(sizes: list[int]) -> None:
    print("\n| spaces after 'options' | s | ns per space |")
    print("|---|---|---|")
    for n in sizes:
        text = "Pick\noptions" + " " * n + "x\nA. a\nB. b"
        t = time.perf_counter()
        detect_mcq(text)
        s = time.perf_counter() - t
        print(f"| {n:,} | {s:.4f} | {s / n * 1e9:.1f} |", flush=True)


if __name__ == "__main__":
    main()
