"""Versioned schema migrations, shared by the stores.

Each store keeps an ordered tuple of :class:`Migration` (the first is the schema as it was before
versioning, written so that it also adopts a store created then) and a ``schema_version`` table
with one row per migration applied. A store applies the missing ones in one transaction under a
lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so two processes starting at
once apply each migration exactly once; :func:`pending` says what is missing, and refuses a store
that a newer calguard has migrated past what this one knows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from guard.errors import ConfigError

log = logging.getLogger("calguard.store")


@dataclass(frozen=True)
class Migration:
    """Schema version ``version``: the statements that take a store there from the one before."""

    version: int
    description: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class MigrationResult:
    """What :meth:`migrate` found and did: the version before and after, and what ran."""

    before: int
    after: int
    applied: tuple[Migration, ...]


def log_result(where: str, result: MigrationResult) -> None:
    for m in result.applied:
        log.info("store %s: schema migrated to version %d (%s)", where, m.version, m.description)


def check_order(migrations: Sequence[Migration]) -> None:
    """Versions are 1, 2, 3, ... in order (a gap or a duplicate is a bug in calguard)."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n in order, got {versions}")


def pending(current: int, migrations: Sequence[Migration], where: str) -> list[Migration]:
    """The migrations after ``current``; a store at a version this code does not know (written by
    a newer calguard) stops with a :class:`ConfigError` saying what to do."""
    check_order(migrations)
    latest = len(migrations)
    if current > latest:
        raise ConfigError(
            f"store {where} has schema version {current}, newer than this calguard knows "
            f"({latest}): a newer calguard has migrated it. Upgrade calguard on this machine "
            "(every replica on one store must run the same version), or point --store at "
            "another store"
        )
    return list(migrations[current:])


__all__ = ["Migration", "MigrationResult", "check_order", "log_result", "pending"]
