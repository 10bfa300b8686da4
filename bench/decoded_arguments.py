"""How redacting the decoded strings of tool-call arguments scales with their number: one
assistant message whose arguments are a JSON object of n e-mail keys (each written with an
escape, so each is also read decoded), each holding a list with another e-mail, pii set to
redact, through :meth:`guard.checks.Checks.prompt`.

    python -m bench.decoded_arguments [--sizes 1000 2000 4000 64000]

Before, each rewritten string re-parsed and re-serialised the whole arguments text, and each
rewritten key rebuilt its object: 1000/2000 keys took 30/255 s (cubic). Flat microseconds per
string mean linear time.
"""

from __future__ import annotations

import argparse
import json
import time

from guard.checks import Checks
from guard.endpoints import CHAT
from policies import build_policy


def body(n: int) -> dict[str, object]:
    args = json.dumps({f"bob{i}@example.com\n": [f"ann{i}@example.com\n"] for i in range(n)})
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}
    return {"model": "m", "messages": [{"role": "assistant", "tool_calls": [call]}]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 64000])
    args = ap.parse_args()
    policy = build_policy({"type": "pii", "action": "redact"})
    print("| keys | arguments MB | s | µs per decoded string |")
    print("|---|---|---|---|")
    for n in args.sizes:
        b = body(n)
        size = len(json.dumps(b)) / 1e6
        t = time.perf_counter()
        Checks("bench").prompt([policy], b, CHAT, "m")
        s = time.perf_counter() - t
        print(f"| {n:,} | {size:.2f} | {s:.3f} | {s / (2 * n) * 1e6:.0f} |", flush=True)


if __name__ == "__main__":
    main()
