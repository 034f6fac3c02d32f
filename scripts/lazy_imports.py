"""List in-function imports in ltrec/ that do not say why they are lazy.

An import inside a function or method body is allowed only with a ``# lazy: <reason>``
comment on the import's own line(s) or on the line directly above it
(docs/architecture.md, "the import rule"). Module-level imports, including those under
``if TYPE_CHECKING:``, are not checked.

Usage: python scripts/lazy_imports.py [ROOT ...]   (default: ltrec/ next to this script)
Prints ``path:line: module`` per offender and the count per package; exits 1 if any.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAZY = re.compile(r"#\s*lazy:\s*\S")


def _module_name(node: ast.Import | ast.ImportFrom) -> str:
    if isinstance(node, ast.Import):
        return ", ".join(alias.name for alias in node.names)
    return "." * node.level + (node.module or "")


def _in_function_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements anywhere below a def/async def (nested classes and functions too)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                found.append(child)
            functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            inside = in_function or isinstance(child, functions)
            visit(child, inside)

    visit(tree, False)
    return found


def offenders(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each in-function import in `path` without a `# lazy:` reason."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    out: list[tuple[int, str]] = []
    for node in _in_function_imports(ast.parse(source, filename=str(path))):
        first = node.lineno
        last = node.end_lineno or first
        # Lines are 1-based: the statement's own lines plus the one directly above.
        window = lines[max(first - 2, 0) : last]
        if not any(LAZY.search(line) for line in window):
            out.append((first, _module_name(node)))
    return out


def package_of(path: Path, root: Path) -> str:
    """`ltrec/models/x.py` -> `ltrec.models`; top-level modules -> `ltrec`."""
    rel = path.relative_to(root.parent)
    parts = rel.parts
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def check(roots: list[Path]) -> list[tuple[Path, int, str, str]]:
    """Every offender under `roots`: (path, line, module, package)."""
    found: list[tuple[Path, int, str, str]] = []
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        base = root if root.is_dir() else root.parent
        for path in files:
            for line, module in offenders(path):
                found.append((path, line, module, package_of(path, base)))
    return found


def main(argv: list[str]) -> int:
    roots = [Path(a).resolve() for a in argv] or [REPO / "ltrec"]
    found = check(roots)
    for path, line, module, _ in found:
        try:
            shown = path.relative_to(REPO)
        except ValueError:
            shown = path
        print(f"{shown}:{line}: {module}")
    if found:
        print()
        for package, count in sorted(Counter(p for *_, p in found).items()):
            print(f"{package}: {count}")
        print(f"total: {len(found)} in-function imports without a `# lazy: <reason>` comment")
        return 1
    print("no in-function imports without a `# lazy: <reason>` comment")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
