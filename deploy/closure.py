"""Which of ocrlab's modules an entry point can import, and which other packages those modules import.

Read from the source, not from a running import: an import inside a function (a rarely taken
error path, a lazily loaded engine) counts too, so the artefact never lacks a module that only a
bad day would ask for. Imports under `if TYPE_CHECKING:` never run and are skipped.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

PACKAGE = "ocrlab"


@dataclass
class Closure:
    modules: set[str] = field(default_factory=set)               # ocrlab modules, parent packages included
    imports: dict[str, set[str]] = field(default_factory=dict)   # other top-level name -> ocrlab modules importing it

    def files(self, source_root: Path) -> list[Path]:
        return sorted(module_file(source_root, name) for name in self.modules)


def module_file(source_root: Path, name: str) -> Path:
    """The file of a module or package (its __init__.py) under `source_root`."""
    base = source_root.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def closure(roots: Iterable[str], source_root: Path) -> Closure:
    """Every ocrlab module reachable from `roots` by import statements, and what else they import."""
    found = Closure()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in found.modules:
            continue
        found.modules.add(name)
        path = module_file(source_root, name)
        pending.extend(_parents(name))
        for target in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), name, path):
            top = target.split(".")[0]
            if top == PACKAGE:
                pending.append(_existing(source_root, target))
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.imports.setdefault(top, set()).add(name)
    return found


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _existing(source_root: Path, target: str) -> str:
    """`target` if it is a module, else the module that defines it (`from .x import name`)."""
    while not module_file(source_root, target).exists():
        target = target.rsplit(".", 1)[0]
    return target


def _imports(tree: ast.AST, module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            yield base
            # `from .store import localdb` imports a module; `from .config import settings` a name,
            # which _existing() folds back into its module.
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of `if TYPE_CHECKING:` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
