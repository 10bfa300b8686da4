"""``calguard flags list | show ID | export --format jsonl|csv``: the flag log from the store."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from guard.cli.args import positive
from guard.config import load_settings
from guard.store import Store, open_store

CSV_COLUMNS = ("id", "time", "request_id", "route", "model", "key", "action", "policies", "reasons")


def _since(value: str | None) -> float | None:
    """A unix time, an ISO date/time, or a duration back from now (``90s``, ``15m``, ``2h``,
    ``7d``)."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SystemExit(
            f"calguard: error: --since {value!r}: use a unix time, an ISO date, "
            "or a duration like 15m / 2h / 7d"
        ) from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(value: Any) -> str:
    """``value`` as one terminal line: control characters (escape sequences, newlines, bidi
    overrides) shown as ``\\xNN`` / ``\\uNNNN``, never acted on by the terminal."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode(), str(value))


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: one that starts with = + - @ (or a tab or CR,
    which some strip first) gets a leading apostrophe, so it is never run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _row(flag: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: flag.get(k) for k in CSV_COLUMNS[:-2]},
        "time": datetime.fromtimestamp(flag["time"], UTC).isoformat(timespec="seconds"),
        "policies": ",".join(flag.get("policies", [])),
        "reasons": " | ".join(v.get("reason", "") for v in flag.get("verdicts", [])),
    }


def _record_id(value: str) -> int:
    n = int(value)
    if not 0 <= n < 2**63:
        raise argparse.ArgumentTypeError(f"{value} is not a record id")
    return n


PAGE = 16  # records read at a time: an export of any size holds a few records in memory


def _pages(
    store: Store, since: float | None, policy: str | None, limit: int | None, after: int | None
) -> Iterator[dict[str, Any]]:
    """The records, oldest first, read a page at a time by id."""
    left = limit
    while left is None or left > 0:
        page = store.flags(
            since=since, policy=policy, limit=PAGE if left is None else min(PAGE, left), after=after
        )
        yield from page
        if not page:
            return
        after = page[-1]["id"]
        left = None if left is None else left - len(page)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config or os.environ.get("CALGUARD_CONFIG"), {"store": args.store}
    )
    store = open_store(settings.store, must_exist=True)  # a reader never creates a store
    if args.flags_command == "show":
        flag = store.flag(args.id)
        if flag is None:
            print(f"calguard: error: no flag record {args.id}", file=sys.stderr)
            return 1
        print(json.dumps(flag, indent=2, default=str))
        return 0
    rows = _pages(store, _since(args.since), args.policy, getattr(args, "limit", None), args.after)
    if args.flags_command == "list":
        n = 0
        for f in rows:
            n += 1
            r = {k: printable(v) for k, v in _row(f).items()}
            print(
                f"{r['id']:>6}  {r['time']}  {r['action']:<5}  {r['policies']:<24}  "
                f"{r['model']}  {r['reasons'][:80]}"
            )
        print(f"{n} record(s)", file=sys.stderr)
        return 0
    if args.format == "jsonl":
        for f in rows:
            sys.stdout.write(json.dumps(f, default=str) + "\n")
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in _row(f).items()} for f in rows)
    return 0


SUBCOMMANDS = {
    "list": "one line per flagged response: id, time, action, policies, model, reasons",
    "show": "one record whole, as JSON: the request, the response and every verdict",
    "export": "the records (--since, --policy) as JSON lines or CSV on stdout",
}


def add_parser(sub: Any) -> None:
    fl = sub.add_parser("flags", help="the flag log: list, show, export")
    fsub = fl.add_subparsers(dest="flags_command", required=True, metavar="{list,show,export}")
    for name, said in SUBCOMMANDS.items():
        p = fsub.add_parser(name, help=said, description=said)
        p.add_argument("--store", help="sqlite:///path/c.db or postgresql://user@host/db")
        p.add_argument("--config", help="YAML config file")
        if name == "show":
            p.add_argument("id", type=int, help="the record's id (from flags list)")
            continue
        p.add_argument("--since", help="unix time, ISO date, or a duration like 15m / 7d")
        p.add_argument("--policy", help="only records with a verdict of this policy")
        p.add_argument("--after", type=_record_id, help="only records with an id above this one")
        if name == "list":
            p.add_argument("--limit", type=positive, default=100, help="at most N records (100)")
        else:
            p.add_argument(
                "--format", choices=("jsonl", "csv"), default="jsonl", help="jsonl (default) or csv"
            )
    fl.set_defaults(func=run)
