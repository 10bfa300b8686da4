"""The public face of ``guard``, pinned; module sizes; and imports inside ``guard`` point down."""

from __future__ import annotations

import ast
from pathlib import Path

import guard

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = [
    "AuthenticationError",
    "CalguardError",
    "ConfigError",
    "InvalidRequestError",
    "NotFoundError",
    "PolicyViolationError",
    "RequestTooLargeError",
    "RouteConfig",
    "Settings",
    "StoreUnavailableError",
    "UpstreamError",
    "UpstreamRejectedError",
    "UpstreamTimeoutError",
    "calibrated",
    "create_app",
    "load_settings",
    "register_calibration",
    "register_store",
    "register_upstream",
    "wrap",
]
# Lower layers of guard never import the request path or the faces built on them.
FACES = {
    "guard.pipeline",
    "guard.server",
    "guard.client",
    "guard.resources",
    "guard.streamed",
    "guard.rendering",
    "guard.cli",
}
LOWER = [
    "errors.py",
    "sse.py",
    "config.py",
    "calibrations.py",
    "endpoints.py",
    "metrics.py",
    "request.py",
    "reply.py",
    "checks.py",
    "stream_checks.py",
    "store",
    "upstreams",
    "tasks",
]


def test_public_names_are_pinned_sorted_and_exist() -> None:
    assert guard.__all__ == PUBLIC
    for name in PUBLIC:
        assert hasattr(guard, name), name


def test_every_calguard_error_is_in_one_tree() -> None:
    for name in PUBLIC:
        obj = getattr(guard, name)
        if name.endswith("Error"):
            assert issubclass(obj, guard.CalguardError), name
            assert name in (guard.errors.__doc__ or ""), f"{name} missing from the drawn tree"


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
    return out


def test_lower_layers_never_import_the_request_path_or_the_faces() -> None:
    for entry in LOWER:
        target = ROOT / "guard" / entry
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            for mod in _imports(path):
                assert not any(mod == f or mod.startswith(f + ".") for f in FACES), (
                    f"{path.relative_to(ROOT)} imports {mod}"
                )


def test_only_the_postgres_store_imports_psycopg() -> None:
    """The request path sees StoreUnavailableError, never a database driver's errors."""
    for path in sorted((ROOT / "guard").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "guard/store/postgres.py":
            continue
        for mod in _imports(path):
            assert not mod.startswith(("psycopg", "psycopg_pool")), (
                f"{path.relative_to(ROOT)} imports {mod}"
            )


def test_no_module_over_400_lines() -> None:
    for layer in ("guard", "calibrators", "policies"):
        for path in (ROOT / layer).rglob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines: it holds two ideas"


def test_a_connection_beyond_loopback_fails_in_tests() -> None:
    import socket

    import pytest

    from tests.conftest import NetworkBlockedError

    with socket.socket() as s, pytest.raises(NetworkBlockedError):
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never reached, refused before any packet
