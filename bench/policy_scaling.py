"""How the span policies scale with a text full of what they look for: each policy's seconds on
a text of 0.25 to 2 MB in which an e-mail, a phone number, a ticket, a denied word and a key
come every 100 characters or so, flagging and redacting.

    python -m bench.policy_scaling [--mb 0.25 0.5 1 2]

The last column is the time at the largest size over the time at the smallest: linear is the
ratio of the sizes (8 for the defaults). Before, pii and secrets checked each match against
every match found so far, which made a text of many matches cost its square.

The ``marks`` rows are a text that is one run of combining marks out of canonical order (what
NFKC has to sort): CPython sorts a run by insertion, so the reading cost the run's square
(40k characters: 1.2 s) until it was read in stream-safe pieces of 30 marks.
"""

from __future__ import annotations

import argparse
import time

from policies import Context, build_policy, run_policies

UNIT = (
    "lorem bob@example.com 555-0100 code-1234 forbidden bad word "
    "sk-abcdefghijklmnopqrstuvwx1234 "
    + "forbidden".translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    + " "
)
SPECS = {
    "pii": {"type": "pii"},
    "secrets": {"type": "secrets"},
    "regex": {"type": "regex", "params": {"patterns": [r"\bcode-\d{4}\b"]}},
    "denylist": {"type": "denylist", "params": {"words": ["forbidden", "bad word"]}},
}


MARKS = "\u0301\u0316"  # acute (class 230) then grave below (220): out of canonical order


def seconds(spec: dict[str, object], size: int, shape: str = "matches") -> float:
    policy = build_policy(spec)
    if shape == "marks":
        text = "forbidden e" + MARKS * (size // len(MARKS))
    else:
        text = (UNIT * (size // len(UNIT) + 1))[:size]
    t = time.perf_counter()
    run_policies([policy], Context("prompt", text))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, nargs="+", default=[0.25, 0.5, 1, 2])
    args = ap.parse_args()
    sizes = [int(mb * 1_000_000) for mb in args.mb]
    print("policy | action | " + " | ".join(f"{mb:g} MB s" for mb in args.mb) + " | last / first")
    for name, spec in SPECS.items():
        for action in ("flag", "redact"):
            got = [seconds({**spec, "action": action}, size) for size in sizes]
            cells = " | ".join(f"{s:.2f}" for s in got)
            print(f"{name} | {action} | {cells} | {got[-1] / got[0]:.1f}", flush=True)
    for name in ("denylist", "pii"):
        got = [seconds({**SPECS[name], "action": "redact"}, size, "marks") for size in sizes]
        cells = " | ".join(f"{s:.2f}" for s in got)
        print(f"{name} (marks) | redact | {cells} | {got[-1] / got[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
