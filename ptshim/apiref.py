"""Generate ``docs/legacy-api.md``: the legacy API per configuration.

::

    python -m ptshim.apiref            # print the page
    python -m ptshim.apiref --write    # rewrite docs/legacy-api.md
    python -m ptshim.apiref --check    # exit 1 if docs/legacy-api.md is stale

For every configuration of :func:`legacy.arch_names` the kernel class is booted
(``legacy.boot``) and each method it exposes is classified *statically*, from the class that
wins in the MRO (:func:`classify`):

- ``A`` the architecture defines it (a class in ``legacy/x86`` or ``legacy/arm64``);
- ``G`` it comes from the generic layer (``legacy/pgtable.py``, ``pgalloc.py``, ...);
- ``F`` a folding mixin of ``legacy/folding.py`` defines it (the ``pgtable-nop*.h`` stub);
- ``-`` absent: no class defines it, or the winning definition's body only raises
  ``NotImplementedError`` (read with :mod:`ast`, never called), or a Kconfig switch that
  the kernel needs to compile the function is off (:data:`GATES`).

Methods are grouped by the class that declares them (the generic class, else the
folding or architecture class), headed by the kernel files that class's docstring (or its
module's) cites.  Functions whose existence depends on a Kconfig switch are listed under
that switch instead, with its value per configuration.  The call sites in ``legacy/mm``
(module-level functions) are listed once.  ``tests/test_apiref.py`` fails when the page is
not what this module generates.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import legacy.mm
from legacy import arch_names, boot
from legacy.folding import Nopmd
from legacy.generic import GenericKernel
from ptshim.archdoc import LEVELS, ArchFacts, arch_facts
from ptshim.gendoc import generated_doc_main

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "legacy-api.md"
REGENERATE = "python -m ptshim.apiref --write"

ARCH, GENERIC, FOLDED, ABSENT = "A", "G", "F", "-"
LEGEND = {
    ARCH: "arch: defined by the architecture class (`legacy/x86`, `legacy/arm64`)",
    GENERIC: "generic: inherited from the generic layer (`legacy/pgtable.py`, `pgalloc.py`, "
             "`huge_mm.py`, `swapops.py`, `tlbflush.py`, `generic.py`, ...)",
    FOLDED: "folded stub: defined by a folding mixin of `legacy/folding.py` "
            "(`pgtable-nop4d.h`/`-nopud.h`/`-nopmd.h`)",
    ABSENT: "absent: not defined, its body only raises `NotImplementedError`, or a Kconfig "
            "switch it needs is off",
}

_ARCH_PACKAGES = ("legacy.x86.", "legacy.arm64.")
_FOLDING_MODULE = "legacy.folding"


# -- classification ---------------------------------------------------------------------


def defining_class(cls: type, name: str) -> type | None:
    """The class of ``cls.__mro__`` whose ``__dict__`` has ``name``: the one that wins."""
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


def layer(owner: type) -> str:
    """``A``, ``F`` or ``G`` by the module that defines ``owner``."""
    mod = owner.__module__
    if mod.startswith(_ARCH_PACKAGES):
        return ARCH
    if mod == _FOLDING_MODULE:
        return FOLDED
    return GENERIC


@functools.cache
def _function_ast(fn: Callable[..., object]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    node = ast.parse(src).body[0]
    return node if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else None


def only_raises_not_implemented(fn: Callable[..., object]) -> bool:
    """Whether ``fn``'s body (after an optional docstring) is a single
    ``raise NotImplementedError`` (with or without arguments)."""
    node = _function_ast(fn)
    if node is None:
        return False
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise):
        return False
    exc = body[0].exc
    if isinstance(exc, ast.Call):
        exc = exc.func
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def classify(cls: type, name: str) -> str:
    """``A``/``G``/``F``/``-`` for method ``name`` of kernel class ``cls``, statically."""
    owner = defining_class(cls, name)
    if owner is None:
        return ABSENT
    attr = owner.__dict__[name]
    if not inspect.isfunction(attr) or only_raises_not_implemented(attr):
        return ABSENT
    return layer(owner)


def _self_calls(fn: Callable[..., object]) -> set[str]:
    """The ``self.<name>`` attributes ``fn``'s body mentions."""
    node = _function_ast(fn)
    if node is None:
        return set()
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "self"}


# -- Kconfig gates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """Functions that exist only when ``switch`` (an attribute of the kernel class) is on.

    ``when_off`` is ``"absent"`` where the kernel then does not compile the function (no
    definition, or a ``BUILD_BUG()`` body), ``"stub"`` where the generic headers then provide
    a stub (the cell keeps what the emulator's class says).  Members: ``names``, every name
    containing one of ``contains``, and (transitively) every method of any configuration
    that calls one of ``names`` through ``self``, when ``callers`` is set."""

    switch: str
    when_off: str
    why: str
    names: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    callers: bool = False
    guarded: tuple[str, ...] = ()
    """Methods that call a member only after testing the switch themselves (the
    ``callers`` rule does not go through them)."""


SWAP_FORMAT = ("_swp_type", "_swp_offset", "_swp_entry", "_pte_to_swp_entry",
               "_swp_entry_to_pte", "_pmd_to_swp_entry", "_swp_entry_to_pmd")
"""The architecture's swap-entry format (``__swp_type``... in asm/pgtable*.h)."""

GATES: tuple[Gate, ...] = (
    Gate("TRANSPARENT_HUGEPAGE", "absent",
         "include/linux/pgtable.h defines these only `#ifdef CONFIG_TRANSPARENT_HUGEPAGE` "
         "(else no definition, or a `BUILD_BUG()` body)",
         names=("pmdp_huge_get_and_clear", "pmdp_huge_get_and_clear_full",
                "pudp_huge_get_and_clear", "pudp_huge_get_and_clear_full",
                "pmdp_set_wrprotect", "pmdp_set_access_flags", "pudp_set_access_flags",
                "pmdp_clear_flush_young")),
    Gate("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD", "absent",
         "include/linux/pgtable.h: `pudp_set_wrprotect` is `BUILD_BUG()` without "
         "`CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD`; x86 defines `pudp_invalidate` only "
         "`#if defined(CONFIG_TRANSPARENT_HUGEPAGE) && "
         "defined(CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD)` (arch/x86/mm/pgtable.c)",
         names=("pudp_set_wrprotect", "pudp_invalidate")),
    Gate("HAVE_ARCH_HUGE_VMAP", "stub",
         "include/linux/pgtable.h and include/linux/vmalloc.h: without "
         "`CONFIG_HAVE_ARCH_HUGE_VMAP` these are stubs returning 0/false",
         names=("p4d_set_huge", "p4d_clear_huge", "pud_set_huge", "pud_clear_huge",
                "pmd_set_huge", "pmd_clear_huge", "pud_free_pmd_page", "pmd_free_pte_page",
                "arch_vmap_p4d_supported", "arch_vmap_pud_supported",
                "arch_vmap_pmd_supported")),
    Gate("MEM_SOFT_DIRTY", "stub",
         "include/linux/pgtable.h: without `CONFIG_HAVE_ARCH_SOFT_DIRTY` the soft-dirty "
         "helpers are stubs (0 / the entry unchanged); callers test `CONFIG_MEM_SOFT_DIRTY`",
         contains=("soft_dirty",)),
    Gate("HAVE_ARCH_USERFAULTFD_WP", "stub",
         "include/asm-generic/pgtable_uffd.h: without `CONFIG_HAVE_ARCH_USERFAULTFD_WP` the "
         "uffd-wp helpers are stubs (false / the entry unchanged)",
         contains=("uffd_wp",)),
    Gate("SWP_ENTRY_EMULATED", "absent",
         "not a Kconfig symbol: whether ptshim implements the architecture's swap-entry "
         "format (`__swp_type`, `__swp_entry`, ... spelled `_swp_type`...); the functions "
         "that use it (found by reading their bodies) cannot work without it",
         names=SWAP_FORMAT, callers=True,
         guarded=("_is_pmd_migration_entry_cfg",)),
)


def gate_members(gate: Gate, kernel_classes: Iterable[type]) -> frozenset[str]:
    """The method names ``gate`` covers on these kernel classes."""
    classes = list(kernel_classes)
    names = {n for cls in classes for n in dir(cls)}
    members = {n for n in names if n in gate.names or any(s in n for s in gate.contains)}
    members |= set(gate.names) & names
    if gate.callers:
        changed = True
        while changed:
            changed = False
            for n in sorted(names - members - set(gate.guarded)):
                for cls in classes:
                    owner = defining_class(cls, n)
                    fn = owner.__dict__[n] if owner is not None else None
                    if inspect.isfunction(fn) and _self_calls(fn) & members:
                        members.add(n)
                        changed = True
                        break
    return frozenset(members)


# -- what a configuration exposes -------------------------------------------------------


def api_names(cls: type) -> list[str]:
    """Every method ``cls`` exposes (functions in the MRO, no dunders), sorted."""
    out = []
    for name in dir(cls):
        if name.startswith("__"):
            continue
        owner = defining_class(cls, name)
        if owner is not None and inspect.isfunction(owner.__dict__[name]):
            out.append(name)
    return sorted(out)


@dataclass(frozen=True)
class Config:
    """One configuration: its name, kernel class, Kconfig switches and level facts."""

    name: str
    cls: type
    switches: dict[str, bool]
    facts: ArchFacts


def switch_names() -> list[str]:
    """The configuration switches declared on :class:`GenericKernel` (legacy/generic.py):
    its upper-case boolean class attributes, in declaration order."""
    return [n for n, v in GenericKernel.__dict__.items()
            if isinstance(v, bool) and n.lstrip("_").isupper()]


def load_config(name: str) -> Config:
    k = boot(name)
    switches = {s: bool(getattr(k, s)) for s in switch_names()}
    for g in GATES:
        switches.setdefault(g.switch, bool(getattr(k, g.switch)))
    return Config(name, type(k), switches, arch_facts(name))


# -- grouping by header -------------------------------------------------------------------

_KERNEL_PATH = re.compile(
    r"(?<![\w/])((?:include|arch|mm|kernel)/[A-Za-z0-9_./{},*-]*?[A-Za-z0-9_}]\.[ch])(?![\w])")


def kernel_files(text: str | None) -> list[str]:
    """Kernel source paths a docstring cites, in order, without repeats."""
    out: list[str] = []
    for m in _KERNEL_PATH.finditer(text or ""):
        if m.group(1) not in out:
            out.append(m.group(1))
    return out


def cited_files(owner: type) -> list[str]:
    """The kernel files ``owner``'s docstring cites, else its module's."""
    files = kernel_files(owner.__doc__)
    if not files:
        files = kernel_files(sys.modules[owner.__module__].__doc__)
    return files


GENERIC_MODULES = ("legacy.pgtable", "legacy.pgalloc", "legacy.huge_mm", "legacy.swapops",
                   "legacy.tlbflush", "legacy.ptdump", "legacy.generic", "legacy.machine")
"""The order of the generic groups on the page (others follow, by name)."""


def _generic_mro() -> tuple[type, ...]:
    return GenericKernel.__mro__


def home(name: str, classes: Sequence[type]) -> type:
    """The class that declares ``name``: the generic class that wins in
    ``GenericKernel``'s MRO, else the folding mixin (``Nopmd``'s MRO), else the most
    basic architecture class defining it (one that no other defining class derives from;
    ties broken by module and class name)."""
    for chain in (_generic_mro(), Nopmd.__mro__):
        owner = next((c for c in chain if name in c.__dict__), None)
        if owner is not None:
            return owner
    owners: list[type] = []
    for cls in classes:
        owners += [c for c in cls.__mro__ if name in c.__dict__ and c not in owners]
    # The most basic: one no other owner derives from.
    basics = [o for o in owners if not any(o is not p and issubclass(o, p) for p in owners)]
    return min(basics, key=lambda c: (c.__module__, c.__qualname__))


@dataclass(frozen=True)
class Group:
    title: str
    files: tuple[str, ...]
    names: tuple[str, ...]
    note: str = ""


def _family(owner: type) -> str:
    return owner.__module__.split(".")[1] if owner.__module__.startswith(_ARCH_PACKAGES) else ""


def group_names(names: Iterable[str], classes: Sequence[type]) -> list[Group]:
    """Group ``names`` by their :func:`home` class (architecture-only names defined by both
    families go in one group of their own)."""
    by_home: dict[str, tuple[type | None, list[str]]] = {}
    for name in names:
        h = home(name, classes)
        families = {_family(c) for cls in classes for c in cls.__mro__
                    if name in c.__dict__ and _family(c)}
        if layer(h) == ARCH and len(families) > 1:
            by_home.setdefault("both", (None, []))[1].append(name)
        else:
            key = f"{h.__module__}.{h.__qualname__}"
            by_home.setdefault(key, (h, []))[1].append(name)

    def order(item: tuple[str, tuple[type | None, list[str]]]) -> tuple[int, int, str]:
        key, (h, _) = item
        if h is None:
            return (2, 0, key)
        rank = {GENERIC: 0, FOLDED: 1, ARCH: 3}[layer(h)]
        mods = GENERIC_MODULES
        return (rank, mods.index(h.__module__) if h.__module__ in mods else len(mods), key)

    groups = []
    for _key, (owner, members) in sorted(by_home.items(), key=order):
        if owner is None:
            groups.append(Group(
                "Both architectures, no generic version",
                ("arch/x86/include/asm/pgtable.h", "arch/arm64/include/asm/pgtable.h"),
                tuple(sorted(members))))
            continue
        path = owner.__module__.replace(".", "/") + ".py"
        files = tuple(cited_files(owner))
        title = (f"{files[0] if files else 'no kernel file cited'} "
                 f"(`{path}` `{owner.__qualname__}`)")
        groups.append(Group(title, files, tuple(sorted(members))))
    return groups


# -- rendering ----------------------------------------------------------------------------


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def cell(cfg: Config, name: str, gates: Sequence[tuple[Gate, frozenset[str]]]) -> str:
    code = classify(cfg.cls, name)
    for gate, members in gates:
        if name in members and gate.when_off == "absent" and not cfg.switches[gate.switch]:
            return ABSENT
    return code


def yn(v: bool) -> str:
    return "y" if v else "n"


def constants_table(cfgs: Sequence[Config]) -> list[str]:
    rows: list[list[str]] = []
    for lv in LEVELS:
        shift = {"pgd": "PGDIR_SHIFT", "pte": "PAGE_SHIFT"}.get(lv, f"{lv.upper()}_SHIFT")
        rows.append([f"`{shift}`"] + [str(c.facts.level(lv).shift) for c in cfgs])
    for lv in LEVELS:
        rows.append([f"`PTRS_PER_{lv.upper()}`"] + [str(c.facts.level(lv).entries)
                                                     for c in cfgs])
    for lv in LEVELS:
        rows.append([f"`sizeof({lv}_t)`"] + [str(c.facts.level(lv).entry_size) for c in cfgs])
    for lv in ("p4d", "pud", "pmd"):
        def fold(c: Config, lv: str = lv) -> str:
            how = c.facts.level(lv).folded
            return {"compile time": "F", "run time": "run time"}.get(how, "no")
        rows.append([f"{lv} folded"] + [fold(c) for c in cfgs])
    rows.append(["levels walked"] + [str(c.facts.levels) for c in cfgs])
    return table(["constant"] + [f"`{c.name}`" for c in cfgs], rows)


def switches_table(cfgs: Sequence[Config]) -> list[str]:
    names = list(cfgs[0].switches)
    rows = [[f"`{n}`" if not n.startswith("_") else f"`_{n}`"]
            + [yn(c.switches[n]) for c in cfgs] for n in names]
    return table(["switch"] + [f"`{c.name}`" for c in cfgs], rows)


def api_table(names: Sequence[str], cfgs: Sequence[Config],
              gates: Sequence[tuple[Gate, frozenset[str]]]) -> list[str]:
    return table(["function"] + [f"`{c.name}`" for c in cfgs],
                 [[f"`{n}`"] + [cell(c, n, gates) for c in cfgs] for n in names])


def call_site_modules() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(legacy.mm.__path__), key=lambda i: i.name):
        mods.append(importlib.import_module(f"legacy.mm.{info.name}"))
    return mods


def call_sites_table() -> list[str]:
    rows = []
    for mod in call_site_modules():
        fns = sorted(n for n, v in vars(mod).items()
                     if inspect.isfunction(v) and v.__module__ == mod.__name__)
        if not fns:
            continue
        files = kernel_files(mod.__doc__)
        rows.append([f"`{mod.__name__.replace('.', '/')}.py`",
                     ", ".join(f"`{f}`" for f in files) or "–",
                     ", ".join(f"`{f}`" for f in fns)])
    return table(["module", "kernel files", "functions"], rows)


def render(cfgs: Sequence[Config] | None = None) -> str:
    if cfgs is None:
        cfgs = [load_config(n) for n in arch_names()]
    classes = [c.cls for c in cfgs]
    gates = [(g, gate_members(g, classes)) for g in GATES]
    gated = set().union(*(m for _, m in gates))
    every = sorted({n for cls in classes for n in api_names(cls)})
    public = [n for n in every if not n.startswith("_") and n not in gated]
    private = [n for n in every if n.startswith("_") and n not in gated]
    out = [
        "# The legacy API per configuration",
        "",
        f"<!-- Generated by `{REGENERATE}` (ptshim/apiref.py): edit the generator or the "
        "kernel classes, not this file. -->",
        "",
        "Every method a booted kernel (`legacy.boot(name)`) exposes, for each configuration "
        "of `legacy.arch_names()`, and where it comes from.  The classification is static: "
        "the class that wins in the kernel class's MRO, its module, and (for "
        "`NotImplementedError`) the body of the method, read with `ast`.  "
        f"`tests/test_apiref.py` fails when this page is stale; regenerate it with "
        f"`{REGENERATE}`.  The configurations themselves (levels, sizes, leaves, roots) are "
        "described in [arches.md](arches.md).",
        "",
        "Legend:",
        "",
        *[f"- **{code}** = {text}" for code, text in LEGEND.items()],
        "",
        "Methods are grouped by the class that declares them: the generic class that "
        "wins in `GenericKernel`'s MRO, else the folding mixin, else the most basic "
        "architecture class; each group is headed by the kernel file that class's (or "
        "its module's) docstring cites first.  Functions that depend on a Kconfig switch are "
        "listed under [Kconfig-dependent functions](#kconfig-dependent-functions) instead.",
        "",
        "## Constants",
        "",
        "The macro-like constants (attributes of the booted kernel: `k.PMD_SHIFT`, "
        "`k.PTRS_PER_PMD`...).  *folded*: **F** by a folding mixin at compile time "
        "(`__PAGETABLE_*_FOLDED`), *run time* when the kernel is built with the level but "
        "gives it one entry (x86-64 without LA57).  Sizes, masks and leaf sizes: "
        "[arches.md](arches.md#tables).",
        "",
        *constants_table(cfgs),
        "",
        "## Configuration switches",
        "",
        "The Kconfig symbols (`CONFIG_` dropped) and `__HAVE_ARCH_*` guards the kernel "
        "classes declare (`legacy/generic.py`, class attributes), as each configuration "
        "sets them.",
        "",
        *switches_table(cfgs),
        "",
    ]
    for g in group_names(public, classes):
        out += [f"## {g.title}", ""]
        if len(g.files) > 1:
            out += ["Follows " + ", ".join(f"`{f}`" for f in g.files) + ".", ""]
        out += [*api_table(g.names, cfgs, gates), ""]
    out += [
        "## Kconfig-dependent functions",
        "",
        "Each table's first row is the switch per configuration.  Where the kernel does not "
        "compile a function without the switch, its cell is **-** where the switch is off "
        "(whatever the emulator's classes define); where the generic headers then supply a "
        "stub, the cell is what the classes say.",
        "",
    ]
    for gate, members in gates:
        names = sorted(members & set(every))
        if not names:
            continue
        out += [f"### {gate.switch}", "",
                f"Off: {'absent' if gate.when_off == 'absent' else 'stub'}.  {gate.why}.", ""]
        rows = api_table(names, cfgs, gates)
        switch_row = (f"| **{gate.switch}** | "
                      + " | ".join(yn(c.switches[gate.switch]) for c in cfgs) + " |")
        out += [*rows[:2], switch_row, *rows[2:], ""]
    out += [
        "## Underscore methods",
        "",
        "Kernel functions named `__x` are spelled `_x` (Python mangles `__x` inside classes: "
        "`k._pte_alloc` is `__pte_alloc`); the emulator's own helpers also start with `_`.  "
        "Both are listed here.",
        "",
        *api_table(private, cfgs, gates),
        "",
        "## Call sites (`legacy/mm`)",
        "",
        "Module-level functions taking the kernel first (`free_pgd_range(k, tlb, ...)`), "
        "the same on every configuration.",
        "",
        *call_sites_table(),
    ]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return generated_doc_main(argv, "ptshim.apiref", __doc__, DOC_PATH, render)


if __name__ == "__main__":
    sys.exit(main())
