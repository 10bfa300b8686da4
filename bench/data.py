"""Where the benchmarks find the shared data: ``../shared/data`` beside the checkout (run them
from the project root), or the folder in ``CALGUARD_DATA``. Only the benchmarks look there; the
shipped package takes paths."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("CALGUARD_DATA", "../shared/data"))


def recorded_files() -> list[Path]:
    root = data_dir() / "recorded"
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} does not exist: run from the project root or set CALGUARD_DATA"
        )
    return sorted(root.glob("*.jsonl"))
