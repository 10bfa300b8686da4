"""``calguard migrate [--store URL]``: bring a store's schema up to date, and say what was done.

Start-up does the same (opening a store applies the missing migrations), so this is for a
deployment that wants the schema ready before the replicas start, or to check a store's version.
Safe to run while replicas start: migrations are applied under a lock, each exactly once.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from guard.config import load_settings
from guard.store import open_store, redact
from guard.store.migrations import MigrationResult


def describe(url: str, result: MigrationResult | None) -> str:
    """One line per migration applied, then where the store stands."""
    if result is None:
        return f"store {url}: opened; it keeps no schema version calguard knows (a plugin store)"
    lines = [f"  applied {m.version}: {m.description}" for m in result.applied]
    if not result.applied:
        return f"store {url}: schema version {result.after}, up to date; nothing to do"
    return "\n".join([f"store {url}: schema version {result.before} -> {result.after}", *lines])


def run(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config or os.environ.get("CALGUARD_CONFIG"), {"store": args.store}
    )
    store = open_store(settings.store)  # opening applies the missing migrations
    try:
        print(describe(redact(settings.store), getattr(store, "migrated", None)))
    finally:
        store.close()
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "migrate",
        help="bring the store's schema up to date (start-up does it too)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--store",
        help="sqlite:///path/to/calguard.db or postgresql://user@host/db (default: config/env)",
    )
    p.add_argument("--config", help="YAML config file")
    p.set_defaults(func=run)
