"""How many questions of the shared datasets have options that refer to other options.

    python -m bench.referential_counts [DATA]     # DATA: the shared data folder (../shared/data)

Counts per dataset: ``permuted`` (every option may move), ``kept_in_place`` ("All of the
above" stays put) and ``undebiased`` (an option names other IDs, e.g. "Both A and B").
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

from calibrators.referential import check_referential


def main() -> None:
    datasets = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data") / "datasets"
    groups = {
        "MMLU test": sorted((datasets / "mmlu" / "test").glob("*.csv")),
        "ARC-Challenge test": [datasets / "arc" / "arc_test.csv"],
        "CommonsenseQA test": [datasets / "csqa" / "csqa_test.csv"],
    }
    for name, files in groups.items():
        counts: Counter[str] = Counter()
        for f in files:
            with Path(f).open(encoding="utf-8", newline="") as fh:
                for row in csv.reader(fh):
                    counts[check_referential(row[1:-1]).handling] += 1
        print(f"{name}: {sum(counts.values())} questions, {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
