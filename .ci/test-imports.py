"""Fail if a test module imports another test module (or a conftest), or if two test modules outside a
package share a basename (pytest's default import mode imports them by basename).

Shared helpers belong in support modules (tests/support.py, tests/worlds.py ...) and shared fixtures in
conftest.py files. Run from the repository: `python .ci/test-imports.py`.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def is_test_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every import anywhere in the module, `from . import x` as `.x`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.append((node.lineno, base))
            if not node.module:  # from . import test_x
                found += [(node.lineno, base + alias.name) for alias in node.names]
    return found


def main() -> int:
    problems = []
    basenames: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(TESTS.rglob("*.py")):
        if ".npm-cache" in path.parts:
            continue
        rel = path.relative_to(TESTS.parent)
        if path.name.startswith("test_") and not (path.parent / "__init__.py").exists():
            basenames[path.name].append(rel)
        for line, module in imported(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if is_test_module(module):
                problems.append(f"{rel}:{line}: imports {module}: move what it shares into a support module "
                                "or a conftest.py fixture")
    for name, paths in basenames.items():
        if len(paths) > 1:
            problems.append(f"test modules share the basename {name}: {', '.join(map(str, paths))}")
    for problem in problems:
        print(problem)
    checked = sum(1 for p in TESTS.rglob("test_*.py") if ".npm-cache" not in p.parts)
    print(f"test imports: {checked} test modules, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
