"""The public surface of ``calibrators`` and its layering."""

from __future__ import annotations

import ast
from pathlib import Path

import calibrators

ROOT = Path(__file__).resolve().parents[2]


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_sorted_and_every_name_exists() -> None:
    assert calibrators.__all__ == sorted(calibrators.__all__, key=_isort_key)
    assert len(set(calibrators.__all__)) == len(calibrators.__all__)
    for name in calibrators.__all__:
        assert hasattr(calibrators, name), name


def test_calibrators_and_policies_never_import_guard() -> None:
    for layer, banned in (("calibrators", {"guard", "policies"}), ("policies", {"guard"})):
        for path in (ROOT / layer).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    mods = [node.module or ""]
                else:
                    continue
                for mod in mods:
                    top = mod.split(".")[0]
                    assert top not in banned, f"{path.relative_to(ROOT)} imports {mod}"
                    if layer == "calibrators":
                        assert top in {
                            "__future__",
                            "calibrators",
                            "numpy",
                            "collections",
                            "dataclasses",
                            "typing",
                            "itertools",
                            "math",
                            "re",
                            "operator",
                        }, f"{path.relative_to(ROOT)} imports {mod}"
