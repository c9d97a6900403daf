"""The unified API is a wrapper over the legacy API *only* (review point R9).

``unified/`` must never import ``arches/`` (hardware: configurations, entry bits, walkers,
physical memory) nor touch physical memory itself: every byte it reads or writes goes
through a legacy call (``k.pmdp_get``, ``k.set_pte_at``, ``k.pud_alloc``...).  This test
parses every module under ``unified/`` (including the level-generic ports in
``unified/mm/``) and fails on:

- any import of ``arches``: ``import arches[.x]``, ``from arches[.x] import ...``, a relative
  import reaching it, or a dynamic one (``importlib.import_module("arches...")``,
  ``__import__("arches")``, any string constant naming an ``arches`` module);
- any touch of physical memory: the attribute ``.mem`` (``k.mem``), the name ``PhysMem``,
  the ``PhysMem`` methods ``read_bytes``/``image``/``alloc_frame``/``free_frame``/
  ``load_frame``/``allocated_frames``, the kernel's raw accessors ``k._read``/``k._write``
  (which bypass ``pXdp_get``/``set_pXd``), and the same names reached through
  ``getattr``/``setattr``/``hasattr`` strings.

The checker is run on planted violations first, so the test cannot pass vacuously.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIFIED = REPO / "unified"

FORBIDDEN_MODULE = re.compile(r"^arches(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MEMORY_ATTRS = frozenset({
    "mem", "read_bytes", "image", "alloc_frame", "free_frame", "load_frame",
    "allocated_frames", "_read", "_write",
})
MEMORY_NAMES = frozenset({"PhysMem"})
DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__", "find_spec", "reload"})
ATTR_BY_NAME = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def violations(source: str, filename: str = "<string>") -> list[str]:
    """Every purity violation in ``source``, as ``file:line: what``."""
    tree = ast.parse(source, filename)
    docstrings = _docstring_nodes(tree)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if FORBIDDEN_MODULE.match(alias.name):
                    report(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if FORBIDDEN_MODULE.match(module):
                report(node, f"from {module} import ...")
            # ``from .. import arches`` / ``from ..arches import x`` (relative imports).
            if node.level and (
                module.split(".")[0] == "arches"
                or any(FORBIDDEN_MODULE.match(a.name) for a in node.names)
            ):
                report(node, f"relative import of arches (level {node.level})")
            for alias in node.names:
                if alias.name in MEMORY_NAMES:
                    report(node, f"import of {alias.name}")
        elif isinstance(node, ast.Call):
            name = _call_name(node.func)
            args = [a for a in node.args if isinstance(a, ast.Constant)]
            if name in DYNAMIC_IMPORTERS:
                for a in args:
                    if isinstance(a.value, str) and FORBIDDEN_MODULE.match(a.value):
                        report(node, f"dynamic import of {a.value!r} via {name}")
                if not args:
                    report(node, f"dynamic import via {name} with a computed name")
            if name in ATTR_BY_NAME and len(node.args) >= 2:
                attr = node.args[1]
                if isinstance(attr, ast.Constant) and attr.value in MEMORY_ATTRS:
                    report(node, f"{name}(..., {attr.value!r}): physical memory by name")
        elif isinstance(node, ast.Attribute):
            if node.attr in MEMORY_ATTRS:
                report(node, f"attribute .{node.attr} (physical memory)")
            if node.attr in MEMORY_NAMES:
                report(node, f"attribute .{node.attr}")
        elif isinstance(node, ast.Name):
            if node.id in MEMORY_NAMES:
                report(node, f"name {node.id}")
            if node.id == "importlib":
                report(node, "use of importlib (dynamic imports are not allowed in unified/)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and FORBIDDEN_MODULE.match(node.value):
                report(node, f"string naming module {node.value!r}")
    return found


def unified_modules() -> list[Path]:
    return sorted(p for p in UNIFIED.rglob("*.py") if "__pycache__" not in p.parts)


# -- the checker catches planted violations --------------------------------------------

PLANTED = {
    "import": "import arches\n",
    "import-sub": "import arches.memory as m\n",
    "from": "from arches import get_config\n",
    "from-sub": "from arches.errors import BadInput\n",
    "relative": "from .. import arches\n",
    "relative-sub": "from ..arches.memory import PhysMem\n",
    "importlib": "import importlib\nimportlib.import_module('arches.memory')\n",
    "importlib-from": "from importlib import import_module\nimport_module('arches')\n",
    "dunder-import": "__import__('arches.config')\n",
    "string": "NAME = 'arches.memory'\n",
    "mem-attr": "def f(k):\n    return k.mem.read(0x1000, 8)\n",
    "physmem-name": "def f(m: 'object') -> bool:\n    return isinstance(m, PhysMem)\n",
    "read_bytes": "def f(m):\n    return m.read_bytes(0, 8)\n",
    "image": "def f(m):\n    return list(m.image())\n",
    "alloc_frame": "def f(m):\n    return m.alloc_frame()\n",
    "free_frame": "def f(m, pa):\n    m.free_frame(pa)\n",
    "raw-read": "def f(k, p):\n    return k._read(p)\n",
    "getattr-mem": "def f(k):\n    return getattr(k, 'mem')\n",
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_checker_catches_planted_violation(case: str) -> None:
    found = violations(PLANTED[case], f"<planted {case}>")
    assert found, f"the purity checker missed the planted violation {case!r}"


def test_checker_accepts_clean_source() -> None:
    clean = '''"""Docstrings may mention arches and k.mem; only code counts."""
from legacy import BadInput, GenericKernel, mm_struct
from unified.levels import Level

def read_pmd(k: GenericKernel, mm: mm_struct, addr: int) -> int:
    """Walks with legacy calls: pgd_offset, p4d_offset ... (arches)."""
    pgd = k.pgd_offset(mm, addr)
    members = ("memory", "image_name", "arches_like")
    return int(k.pgdp_get(pgd)) + len(members) + Level.PMD
'''
    assert violations(clean) == []


def test_checker_sees_every_unified_module() -> None:
    mods = {p.relative_to(REPO).as_posix() for p in unified_modules()}
    for required in ("unified/__init__.py", "unified/levels.py", "unified/handles.py",
                     "unified/legacy_ops.py", "unified/pagetables.py", "unified/walk.py"):
        assert required in mods
    # Every module is parsed: a syntax error must not make a file silently disappear.
    for p in unified_modules():
        ast.parse(p.read_text(), str(p))


# -- the real check -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", unified_modules(), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_unified_module_is_pure(path: Path) -> None:
    found = violations(path.read_text(), path.relative_to(REPO).as_posix())
    assert not found, "unified/ must use the legacy API only:\n" + "\n".join(found)
