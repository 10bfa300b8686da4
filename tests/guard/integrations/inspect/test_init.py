"""The inspect integration's public face, pinned; and calguard without the extra: only the
integration and its test aid import inspect_ai, and asking for it says how to install it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import guard.integrations.inspect

ROOT = Path(__file__).resolve().parents[4]
USES_INSPECT = {"guard/integrations/inspect", "guard/testing/inspect_provider.py"}


def test_public_names_are_pinned_and_sorted() -> None:
    public = [
        "DEFAULT_TEMPLATE",
        "EVIDENCE",
        "calls_per_sample",
        "choice_with_bias",
        "debiased_choice",
        "rstd",
    ]
    assert guard.integrations.inspect.__all__ == public
    assert all(hasattr(guard.integrations.inspect, name) for name in public)


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_only_the_integration_imports_inspect_ai() -> None:
    users = {
        path.relative_to(ROOT).as_posix()
        for pkg in ("calibrators", "policies", "guard")
        for path in (ROOT / pkg).rglob("*.py")
        if any(m == "inspect_ai" or m.startswith("inspect_ai.") for m in _imports(path))
    }
    assert users, "the integration imports inspect_ai"
    assert all(any(u.startswith(allowed) for allowed in USES_INSPECT) for u in users), users


def test_calguard_works_without_the_extra_and_says_how_to_get_it() -> None:
    code = (
        "import sys; sys.modules['inspect_ai'] = None\n"
        "import guard, guard.server, guard.cli.main, guard.tasks.mcq\n"
        "try:\n    import guard.integrations.inspect\n"
        "except ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "pip install -e '.[inspect]'" in done.stdout
