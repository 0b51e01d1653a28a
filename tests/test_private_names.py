"""No code of ours overrides, calls or reads an underscore-prefixed name of a dependency.

A private name of Django, asgiref, huey, WhiteNoise, redis-py or an SDK can change in
any minor release, silently. So the source is read (ast) for three things:

- an attribute `x._name` whose name nothing of ours defines (then it is someone else's);
- `from dependency import _name`;
- a method `_name` of one of our classes that a dependency's base class also has (an
  override of a private hook), found on the imported classes.

Names a dependency documents as public despite the underscore are allowed below, each
with its reason.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = (
    "config",
    "providers",
    "generation",
    "usage",
    "routing",
    "audit",
    "metrics",
    "accounts",
    "tests",
)

# Documented as public by their owners.
ALLOWED = {
    "_meta": "Django's Model _meta API (docs: ref/models/meta)",
    "_state": "Django's Model._state (docs: ref/models/instances, 'Model._state')",
    "_default_manager": "Django's Model._default_manager (docs: topics/db/managers)",
    "_base_manager": "Django's Model._base_manager (docs: topics/db/managers)",
    "_replace": "namedtuple._replace (docs: collections.namedtuple)",
    "_request_id": "the openai SDK's response._request_id (its README: 'Request IDs')",
}


def _our_files() -> list[Path]:
    files = []
    for package in OUR_PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_names(tree: ast.AST) -> set[str]:
    """Every underscore name our code defines: functions, classes, attributes it
    assigns, arguments, import aliases, module and class variables."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {name for name in names if _is_private(name)}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _ours(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in OUR_PACKAGES


def _private_uses(trees: dict[str, ast.AST]) -> list[str]:
    ours: set[str] = set().union(*(_defined_names(tree) for tree in trees.values()))
    found = []
    for where, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                if node.attr not in ours and node.attr not in ALLOWED:
                    found.append(f"{where}:{node.lineno} reads .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and not _ours(node.module) and node.level == 0:
                for alias in node.names:
                    if _is_private(alias.name) and alias.name not in ALLOWED:
                        found.append(f"{where}:{node.lineno} imports {node.module}.{alias.name}")
    return found


def test_no_private_name_of_a_dependency_is_read_called_or_imported():
    trees = {
        str(path.relative_to(ROOT)): ast.parse(path.read_text(), str(path)) for path in _our_files()
    }
    found = _private_uses(trees)
    assert found == [], "\n".join(found)


def test_no_class_of_ours_overrides_a_private_method_of_a_dependency():
    found = []
    for path in _our_files():
        if path.parts[-2] == "tests" or "bench" in path.parts or path.name.startswith("test_"):
            continue  # test modules are collected by pytest, not imported here
        if "oidc_provider" in path.parts:
            continue  # a Django project of its own: its modules need its own settings
        module = importlib.import_module(_module_name(path))
        for node in ast.walk(ast.parse(path.read_text())):
            cls = getattr(module, node.name, None) if isinstance(node, ast.ClassDef) else None
            if not inspect.isclass(cls):
                continue
            theirs = [base for base in cls.__mro__[1:] if not _ours(base.__module__)]
            for item in node.body:
                name = getattr(item, "name", "")
                if not _is_private(name) or name in ALLOWED:
                    continue
                owner = next((base for base in theirs if name in vars(base)), None)
                if owner is not None:
                    found.append(f"{module.__name__}.{node.name}.{name} overrides {owner}")
    assert found == [], "\n".join(found)


def test_the_check_reports_a_dependency_s_private_names_and_not_ours():
    sample = ast.parse(
        "from huey.consumer import _private\n"
        "from generation.relay import _relays\n"
        "class Mine:\n"
        "    def _helper(self):\n"
        "        self._state = 1\n"
        "def f(cache, mine):\n"
        "    mine._helper()\n"
        "    return cache._cache._get_connection_pool(True), cache._meta, mine._state\n"
    )
    assert _private_uses({"sample.py": sample}) == [
        "sample.py:1 imports huey.consumer._private",
        "sample.py:8 reads ._get_connection_pool",
        "sample.py:8 reads ._cache",
    ]
