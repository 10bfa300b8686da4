"""The SSE reader's cost on one long event, as it comes in 64 kB chunks: calguard's
:class:`guard.sse.EventReader` (each byte searched for a separator once) against the way it
read before (the buffer grown by concatenation and searched again from its start at every
chunk, kept here as the baseline), side by side in one run.

    python -m bench.sse_reader [--sizes 1 5 10] [--repeats 3]

Sizes are in MB. Flat milliseconds per MB mean linear time; the baseline's grow with the size.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable

from guard.sse import EventReader

CHUNK = 65536
_BLANK = re.compile(rb"(?:\r\n|\r(?=[^\n])|\n)(?:\r\n|\r(?=[^\n])|\n)")


class RescanningReader:
    """The reader as it was: ``bytes`` concatenation, a search from the start each time."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> int:
        self._buf += chunk
        found = 0
        while (m := _BLANK.search(self._buf)) is not None:
            self._buf = self._buf[m.end() :]
            found += 1
        return found


def seconds(make: Callable[[], object], mb: int) -> float:
    reader = make()
    chunk = b"a" * CHUNK
    start = time.perf_counter()
    for _ in range(mb * 1_000_000 // CHUNK):
        reader.feed(chunk)  # type: ignore[attr-defined]
    reader.feed(b"\n\n")  # type: ignore[attr-defined]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("| event | EventReader ms (ms/MB) | rescanning ms (ms/MB) | ratio |")
    print("|---|---|---|---|")
    for mb in args.sizes:
        new = statistics.median(seconds(EventReader, mb) for _ in range(args.repeats)) * 1000
        old = statistics.median(seconds(RescanningReader, mb) for _ in range(args.repeats)) * 1000
        print(
            f"| {mb} MB | {new:.1f} ({new / mb:.1f}) | {old:.0f} ({old / mb:.0f}) "
            f"| {old / new:.0f}x |"
        )


if __name__ == "__main__":
    main()
