"""Generate ``docs/fidelity.md``: which kernel file (at the pinned version) each page-table
helper follows, and which tests pin its behaviour.

::

    python -m ptshim.fidelity            # print the page
    python -m ptshim.fidelity --write    # rewrite docs/fidelity.md
    python -m ptshim.fidelity --check    # exit 1 if docs/fidelity.md is stale

One row per helper of ``Documentation/mm/arch_pgtable_helpers.rst`` (:data:`DOC_SECTIONS`),
per public method of the kernel classes defined in ``legacy/x86`` and ``legacy/arm64``
(:func:`emulated_helpers`), and per generic helper a known divergence concerns
(:data:`NAMED_GENERIC`).  For each row and architecture family:

- the kernel file it follows, derived from the class that wins in each configuration's MRO
  (:func:`source_file`): the method's docstring, else a ``name (file)`` of the ``# --``
  section comment above it, else the module docstring's ``file (names...)`` lists, else the
  section comment's first file, else its class's docstring, else its module's (and whether
  it is a ptshim extension the kernel lacks, :func:`is_extension`);
- whether it is emulated, or absent and why (not defined, only raises
  ``NotImplementedError``, or a Kconfig switch it needs is off: :data:`ptshim.apiref.GATES`);
- the tests that call it (:func:`pinning_tests`): an :mod:`ast` scan of ``tests/*.py`` for
  calls ``<anything>.<helper>(...)`` and ``getattr(x, "<helper>")``, followed through the
  module-level functions and names a test refers to (its decorators included), so that a
  test parametrized over check functions is credited with what they call.

:data:`DIVERGENCES` are the known differences from the pinned kernel; each has a probe run at
generation time, so a fix in ``legacy/`` moves it from "open" to "resolved" and makes the page
stale.  ``tests/test_fidelity.py`` fails when the page is stale, when an emulated helper has
no row, and when the number of unpinned helpers grows past its ratchet.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from legacy import arch_names, boot
from legacy.arm64.pgtable import Arm64Kernel
from legacy.x86.pgtable_64 import X86_64Kernel
from ptshim.apiref import GATES, gate_members, only_raises_not_implemented
from ptshim.gendoc import generated_doc_main
from ptshim.version import KERNEL_VERSION

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "fidelity.md"
TESTS_DIR = ROOT / "tests"
REGENERATE = "python -m ptshim.fidelity --write"

SELF_TEST = "test_fidelity.py"
"""Not scanned: its planted-bug class must not pin anything."""

MAX_TESTS = 3
"""Pinning tests listed per row."""

FAMILIES = ("x86", "arm64")
_ARCH_PACKAGES = ("legacy.x86.", "legacy.arm64.")
_FOLDING_MODULE = "legacy.folding"


# -- Documentation/mm/arch_pgtable_helpers.rst ----------------------------------------------


@dataclass(frozen=True)
class DocHelper:
    """One row of a table of ``Documentation/mm/arch_pgtable_helpers.rst``."""

    name: str
    """As the document spells it."""
    meaning: str
    """The document's description."""
    emulated_as: str = ""
    """The ptshim method, when it is not ``name`` (``__x`` is ``_x``; the document's
    ``pmdp_get_and_clear`` is the kernel's ``pmdp_huge_get_and_clear``)."""
    note: str = ""
    """Why the name is not a v6.18 kernel helper, or what it stands for."""

    @property
    def method(self) -> str:
        return self.emulated_as or self.name


_DEVMAP = ("removed from the kernel with the devmap page-table bit (`_PAGE_DEVMAP`, "
           "`pXX_devmap()`, `pXX_mkdevmap()`; the 2025 \"remove pXX_devmap\" series, before "
           f"{KERNEL_VERSION}); `ARCH_HAS_PTE_DEVMAP` is n on every configuration")
_PXD_HUGE = ("removed in v6.10 (\"mm/treewide: remove pXd_huge()\"); `{0}_leaf` is what "
             "callers test instead")
_HUGE_CLEAR = "the document's name; the kernel's helper is `{0}`"


def _doc(name: str, meaning: str, emulated_as: str = "", note: str = "") -> DocHelper:
    return DocHelper(name, meaning, emulated_as, note)


DOC_SECTIONS: tuple[tuple[str, tuple[DocHelper, ...]], ...] = (
    ("PTE Page Table Helpers", (
        _doc("pte_same", "Tests whether both PTE entries are the same"),
        _doc("pte_bad", "Tests a non-table mapped PTE",
             note="listed by the document, but neither x86 nor arm64 defines a `pte_bad` "
                  "(mm/debug_vm_pgtable.c does not test it)"),
        _doc("pte_present", "Tests a valid mapped PTE"),
        _doc("pte_young", "Tests a young PTE"),
        _doc("pte_dirty", "Tests a dirty PTE"),
        _doc("pte_write", "Tests a writable PTE"),
        _doc("pte_special", "Tests a special PTE"),
        _doc("pte_protnone", "Tests a PROT_NONE PTE"),
        _doc("pte_devmap", "Tests a ZONE_DEVICE mapped PTE", note=_DEVMAP),
        _doc("pte_soft_dirty", "Tests a soft dirty PTE"),
        _doc("pte_swp_soft_dirty", "Tests a soft dirty swapped PTE"),
        _doc("pte_mkyoung", "Creates a young PTE"),
        _doc("pte_mkold", "Creates an old PTE"),
        _doc("pte_mkdirty", "Creates a dirty PTE"),
        _doc("pte_mkclean", "Creates a clean PTE"),
        _doc("pte_mkwrite", "Creates a writable PTE of the type specified by the VMA"),
        _doc("pte_mkwrite_novma", "Creates a writable PTE, of the conventional type of "
                                  "writable"),
        _doc("pte_wrprotect", "Creates a write protected PTE"),
        _doc("pte_mkspecial", "Creates a special PTE"),
        _doc("pte_mkdevmap", "Creates a ZONE_DEVICE mapped PTE", note=_DEVMAP),
        _doc("pte_mksoft_dirty", "Creates a soft dirty PTE"),
        _doc("pte_clear_soft_dirty", "Clears a soft dirty PTE"),
        _doc("pte_swp_mksoft_dirty", "Creates a soft dirty swapped PTE"),
        _doc("pte_swp_clear_soft_dirty", "Clears a soft dirty swapped PTE"),
        _doc("pte_mknotpresent", "Invalidates a mapped PTE",
             note="listed by the document, but neither x86 nor arm64 defines it at "
                  f"{KERNEL_VERSION} (arm64 invalidates with its own `pte_mkinvalid`)"),
        _doc("ptep_clear", "Clears a PTE"),
        _doc("ptep_get_and_clear", "Clears and returns PTE"),
        _doc("ptep_get_and_clear_full", "Clears and returns PTE (batched PTE unmap)"),
        _doc("ptep_test_and_clear_young", "Clears young from a PTE"),
        _doc("ptep_set_wrprotect", "Converts into a write protected PTE"),
        _doc("ptep_set_access_flags", "Converts into a more permissive PTE"),
    )),
    ("PMD Page Table Helpers", (
        _doc("pmd_same", "Tests whether both PMD entries are the same"),
        _doc("pmd_bad", "Tests a non-table mapped PMD"),
        _doc("pmd_leaf", "Tests a leaf mapped PMD"),
        _doc("pmd_huge", "Tests a HugeTLB mapped PMD", note=_PXD_HUGE.format("pmd")),
        _doc("pmd_trans_huge", "Tests a Transparent Huge Page (THP) at PMD"),
        _doc("pmd_present", "Tests whether pmd_page() points to valid memory"),
        _doc("pmd_young", "Tests a young PMD"),
        _doc("pmd_dirty", "Tests a dirty PMD"),
        _doc("pmd_write", "Tests a writable PMD"),
        _doc("pmd_special", "Tests a special PMD"),
        _doc("pmd_protnone", "Tests a PROT_NONE PMD"),
        _doc("pmd_devmap", "Tests a ZONE_DEVICE mapped PMD", note=_DEVMAP),
        _doc("pmd_soft_dirty", "Tests a soft dirty PMD"),
        _doc("pmd_swp_soft_dirty", "Tests a soft dirty swapped PMD"),
        _doc("pmd_mkyoung", "Creates a young PMD"),
        _doc("pmd_mkold", "Creates an old PMD"),
        _doc("pmd_mkdirty", "Creates a dirty PMD"),
        _doc("pmd_mkclean", "Creates a clean PMD"),
        _doc("pmd_mkwrite", "Creates a writable PMD of the type specified by the VMA"),
        _doc("pmd_mkwrite_novma", "Creates a writable PMD, of the conventional type of "
                                  "writable"),
        _doc("pmd_wrprotect", "Creates a write protected PMD"),
        _doc("pmd_mkspecial", "Creates a special PMD"),
        _doc("pmd_mkdevmap", "Creates a ZONE_DEVICE mapped PMD", note=_DEVMAP),
        _doc("pmd_mksoft_dirty", "Creates a soft dirty PMD"),
        _doc("pmd_clear_soft_dirty", "Clears a soft dirty PMD"),
        _doc("pmd_swp_mksoft_dirty", "Creates a soft dirty swapped PMD"),
        _doc("pmd_swp_clear_soft_dirty", "Clears a soft dirty swapped PMD"),
        _doc("pmd_mkinvalid", "Invalidates a mapped PMD"),
        _doc("pmd_set_huge", "Creates a PMD huge mapping"),
        _doc("pmd_clear_huge", "Clears a PMD huge mapping"),
        _doc("pmdp_get_and_clear", "Clears a PMD", "pmdp_huge_get_and_clear",
             _HUGE_CLEAR.format("pmdp_huge_get_and_clear")),
        _doc("pmdp_get_and_clear_full", "Clears a PMD", "pmdp_huge_get_and_clear_full",
             _HUGE_CLEAR.format("pmdp_huge_get_and_clear_full")),
        _doc("pmdp_test_and_clear_young", "Clears young from a PMD"),
        _doc("pmdp_set_wrprotect", "Converts into a write protected PMD"),
        _doc("pmdp_set_access_flags", "Converts into a more permissive PMD"),
    )),
    ("PUD Page Table Helpers", (
        _doc("pud_same", "Tests whether both PUD entries are the same"),
        _doc("pud_bad", "Tests a non-table mapped PUD"),
        _doc("pud_leaf", "Tests a leaf mapped PUD"),
        _doc("pud_huge", "Tests a HugeTLB mapped PUD", note=_PXD_HUGE.format("pud")),
        _doc("pud_trans_huge", "Tests a Transparent Huge Page (THP) at PUD"),
        _doc("pud_present", "Tests a valid mapped PUD"),
        _doc("pud_young", "Tests a young PUD"),
        _doc("pud_dirty", "Tests a dirty PUD"),
        _doc("pud_write", "Tests a writable PUD"),
        _doc("pud_devmap", "Tests a ZONE_DEVICE mapped PUD", note=_DEVMAP),
        _doc("pud_mkyoung", "Creates a young PUD"),
        _doc("pud_mkold", "Creates an old PUD"),
        _doc("pud_mkdirty", "Creates a dirty PUD"),
        _doc("pud_mkclean", "Creates a clean PUD"),
        _doc("pud_mkwrite", "Creates a writable PUD"),
        _doc("pud_wrprotect", "Creates a write protected PUD"),
        _doc("pud_mkdevmap", "Creates a ZONE_DEVICE mapped PUD", note=_DEVMAP),
        _doc("pud_mkinvalid", "Invalidates a mapped PUD"),
        _doc("pud_set_huge", "Creates a PUD huge mapping"),
        _doc("pud_clear_huge", "Clears a PUD huge mapping"),
        _doc("pudp_get_and_clear", "Clears a PUD", "pudp_huge_get_and_clear",
             _HUGE_CLEAR.format("pudp_huge_get_and_clear")),
        _doc("pudp_get_and_clear_full", "Clears a PUD", "pudp_huge_get_and_clear_full",
             _HUGE_CLEAR.format("pudp_huge_get_and_clear_full")),
        _doc("pudp_test_and_clear_young", "Clears young from a PUD"),
        _doc("pudp_set_wrprotect", "Converts into a write protected PUD"),
        _doc("pudp_set_access_flags", "Converts into a more permissive PUD"),
    )),
    ("HugeTLB Page Table Helpers", (
        _doc("pte_huge", "Tests a HugeTLB"),
        _doc("arch_make_huge_pte", "Creates a HugeTLB"),
        _doc("huge_pte_dirty", "Tests a dirty HugeTLB"),
        _doc("huge_pte_write", "Tests a writable HugeTLB"),
        _doc("huge_pte_mkdirty", "Creates a dirty HugeTLB"),
        _doc("huge_pte_mkwrite", "Creates a writable HugeTLB"),
        _doc("huge_pte_wrprotect", "Creates a write protected HugeTLB"),
        _doc("huge_ptep_get_and_clear", "Clears a HugeTLB"),
        _doc("huge_ptep_set_wrprotect", "Converts into a write protected HugeTLB"),
        _doc("huge_ptep_set_access_flags", "Converts into a more permissive HugeTLB"),
    )),
    ("SWAP Page Table Helpers", (
        _doc("__pte_to_swp_entry", "Creates a swapped entry (arch) from a mapped PTE",
             "_pte_to_swp_entry"),
        _doc("__swp_to_pte_entry", "Creates a mapped PTE from a swapped entry (arch)",
             "_swp_entry_to_pte", "the kernel's name is `__swp_entry_to_pte`"),
        _doc("__pmd_to_swp_entry", "Creates a swapped entry (arch) from a mapped PMD",
             "_pmd_to_swp_entry"),
        _doc("__swp_to_pmd_entry", "Creates a mapped PMD from a swapped entry (arch)",
             "_swp_entry_to_pmd", "the kernel's name is `__swp_entry_to_pmd`"),
        _doc("is_migration_entry", "Tests a migration (read or write) swapped entry"),
        _doc("is_writable_migration_entry", "Tests a write migration swapped entry"),
        _doc("make_readable_migration_entry", "Creates a read migration swapped entry"),
        _doc("make_writable_migration_entry", "Creates a write migration swapped entry"),
    )),
)

DOC_SOURCE = (
    "The helper list is `Documentation/mm/arch_pgtable_helpers.rst` as read from stored "
    "copies of the file (torvalds/linux at 2f0584f3, and a later linux-mm snapshot, "
    "intel-lab-lkp/linux at 4302d0c4, that already drops the `pXX_devmap` test rows and "
    "words `pXX_mkwrite` \"of the type specified by the VMA\"), not from a checked-out "
    f"{KERNEL_VERSION} tree: the `pXX_mkdevmap` rows (and the `pXX_devmap` ones) may be gone "
    f"from the {KERNEL_VERSION} file, which would only make their rows moot.  Names the "
    "document spells differently from the kernel (`pmdp_get_and_clear`, "
    "`__swp_to_pte_entry`...) keep the document's spelling and say the kernel's."
)

NAMED_GENERIC: tuple[str, ...] = (
    "pte_offset_map", "pte_offset_map_lock", "pte_offset_kernel", "pmd_alloc_one",
    "pte_alloc_one_kernel", "pmdp_invalidate", "pte_to_swp_entry", "swp_entry_to_pte",
    "pmd_to_swp_entry", "swp_entry_to_pmd", "is_pmd_migration_entry",
)
"""Generic helpers (``legacy/pgtable.py``, ``pgalloc.py``, ``huge_mm.py``, ``swapops.py``)
that the issue or a known divergence names; the other generic functions are listed, with
their origin, in docs/legacy-api.md."""


# -- the kernel classes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One configuration: its name, family, kernel class and Kconfig switches."""

    name: str
    family: str
    cls: type
    switches: dict[str, bool]


def load_configs() -> list[Config]:
    out = []
    for name in arch_names():
        k = boot(name)
        switches = {g.switch: bool(getattr(k, g.switch)) for g in GATES}
        out.append(Config(name, k.config.family, type(k), switches))
    return out


def _is_arch(owner: type) -> bool:
    return owner.__module__.startswith(_ARCH_PACKAGES)


def emulated_helpers(classes: Iterable[type]) -> set[str]:
    """What needs a row: every public method the kernel classes defined in ``legacy/x86`` and
    ``legacy/arm64`` declare (anywhere in the MRO of ``classes``), and every
    arch_pgtable_helpers.rst helper a class has (by its ptshim name)."""
    classes = list(classes)
    out: set[str] = set()
    for cls in classes:
        for c in cls.__mro__:
            if not _is_arch(c):
                continue
            out |= {n for n, v in vars(c).items()
                    if inspect.isfunction(v) and not n.startswith("_")}
    for _section, helpers in DOC_SECTIONS:
        for h in helpers:
            if any(callable(getattr(cls, h.method, None)) for cls in classes):
                out.add(h.method)
    return out


def defining_class(cls: type, name: str) -> type | None:
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


# -- which kernel file ----------------------------------------------------------------------

_TOKEN = re.compile(r"(?<![\w/.*{-])((?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.[ch])(?![\w*{])")
_TOP_DIRS = ("include/", "arch/", "mm/", "kernel/", "Documentation/", "lib/")


def resolve(token: str, family: str, context_dir: str) -> str | None:
    """A kernel path for ``token`` as a docstring writes it: full paths as they are,
    ``asm/x.h`` in the family's ``arch/<family>/include/asm``, ``linux/x.h`` and
    ``asm-generic/x.h`` in ``include/``, the folding headers in ``include/asm-generic``, and
    a bare file name next to the last full path cited (``context_dir``)."""
    if token.startswith(_TOP_DIRS):
        return token
    if token.startswith(("linux/", "asm-generic/")):
        return "include/" + token
    if token.startswith("asm/"):
        return f"arch/{family}/include/{token}" if family else None
    if re.fullmatch(r"pgtable-nop(4d|ud|md)\.h", token):
        return "include/asm-generic/" + token
    if "/" not in token and context_dir:
        return context_dir + token
    return None


def cited(text: str | None, family: str, context_dir: str = "") -> list[tuple[int, str]]:
    """``(position, path)`` of every kernel file ``text`` cites, in order."""
    out: list[tuple[int, str]] = []
    for m in _TOKEN.finditer(text or ""):
        path = resolve(m.group(1), family, context_dir)
        if path is None:
            continue
        if m.group(1).startswith(_TOP_DIRS):
            context_dir = path.rsplit("/", 1)[0] + "/"
        out.append((m.start(), path))
    return out


def _expand(pattern: str) -> list[str]:
    """``pmdp_huge_get_and_clear{,_full}`` -> both names."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [x for alt in m.group(1).split(",")
            for x in _expand(pattern[:m.start()] + alt + pattern[m.end():])]


def named_in(text: str | None, family: str) -> list[tuple[str, str]]:
    """``(name pattern, path)`` from ``path (``name``, ``name``...)`` lists in ``text``."""
    out: list[tuple[str, str]] = []
    text = text or ""
    for pos, path in cited(text, family):
        m = _TOKEN.match(text, pos)
        end = m.end() if m else pos
        rest = text[end:]
        rest = rest[2:] if rest.startswith("``") else rest
        if not rest.lstrip(" \n").startswith("("):
            continue
        start = rest.index("(")
        depth, stop = 0, len(rest)
        for i, ch in enumerate(rest[start:], start):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                stop = i
                break
        for name in re.findall(r"``([^`]+)``", rest[start:stop]):
            name = name.split("(")[0].strip()
            out += [(n, path) for n in _expand(name)]
    return out


def _family(owner: type) -> str:
    return owner.__module__.split(".")[1] if _is_arch(owner) else ""


def _module_doc(owner: type) -> str:
    return sys.modules[owner.__module__].__doc__ or ""


@functools.cache
def _sections(owner: type) -> tuple[tuple[int, str], ...]:
    """``(line, text)`` of the ``# -- ...`` section comments in ``owner``'s source."""
    try:
        lines, start = inspect.getsourcelines(owner)
    except (OSError, TypeError):
        return ()
    return tuple((i, line.strip()) for i, line in enumerate(lines, start)
                 if line.strip().startswith("# --"))


def _section_comment(owner: type, fn: Callable[..., object]) -> str:
    """The ``# -- ...`` comment nearest above ``fn``'s definition inside ``owner``."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ""
    best = ""
    for line, text in _sections(owner):
        if line >= code.co_firstlineno:
            break
        best = text
    return best


@functools.cache
def source_file(owner: type, name: str) -> str:
    """The kernel file ``owner.name`` follows, by the order of the module docstring."""
    family = _family(owner)
    mod_doc = _module_doc(owner)
    mod_files = cited(mod_doc, family)
    context = mod_files[0][1].rsplit("/", 1)[0] + "/" if mod_files else ""
    fn = owner.__dict__[name]
    files = cited(fn.__doc__, family, context)  # its own: inspect.getdoc would inherit one
    if files:
        return files[0][1]
    section = _section_comment(owner, fn)
    for names, path in re.findall(r"([\w/ ]+?)\s*\(([^()]*?\.[ch])\)", section):
        if name in re.split(r"[\s/]+", names):
            resolved = resolve(path, family, context)
            if resolved:
                return resolved
    for pattern, path in named_in(mod_doc, family):
        if fnmatch.fnmatchcase(name, pattern):
            return path
    files = cited(section, family, context)
    if files:
        return files[0][1]
    files = cited(owner.__doc__, family, context) or mod_files
    return files[0][1] if files else ""


# -- emulated or absent, per configuration ----------------------------------------------------


def extensions(owner: type) -> frozenset[str]:
    """Methods the module docstring of ``owner`` calls ptshim extensions (functions the kernel
    does not have): the first ``(``name``, ...)`` list of the paragraph that says so."""
    out: set[str] = set()
    for para in _module_doc(owner).split("\n\n"):
        if "ptshim extension" in para:
            m = re.search(r"\(([^()]*``[^()]*)\)", para)
            if m:
                out |= set(re.findall(r"``([^`]+)``", m.group(1)))
    return frozenset(out)


def is_extension(owner: type, name: str) -> bool:
    doc = owner.__dict__[name].__doc__ or ""
    return "ptshim extension" in doc or name in extensions(owner)


@dataclass(frozen=True)
class Where:
    """What one configuration has for one helper."""

    config: str
    file: str
    """The kernel file followed, or "" when absent."""
    folded: bool
    absent: str
    """Why it is absent ("" when emulated)."""
    extension: bool = False
    """A ptshim extension: emulated although the kernel has no such function."""


def where(cfg: Config, name: str, gates: Sequence[tuple[str, str, frozenset[str]]]) -> Where:
    owner = defining_class(cfg.cls, name)
    if owner is None or not inspect.isfunction(owner.__dict__[name]):
        return Where(cfg.name, "", False, "not emulated")
    if only_raises_not_implemented(owner.__dict__[name]):
        return Where(cfg.name, "", False, "not emulated (raises `NotImplementedError`)")
    for switch, when_off, members in gates:
        if name in members and when_off == "absent" and not cfg.switches[switch]:
            why = ("swap-entry format not emulated" if switch == "SWP_ENTRY_EMULATED"
                   else f"Kconfig `{switch}` off")
            return Where(cfg.name, "", False, why)
    return Where(cfg.name, source_file(owner, name), owner.__module__ == _FOLDING_MODULE, "",
                 is_extension(owner, name))


def family_cell(ws: Sequence[Where]) -> str:
    """One family's configurations, grouped: the file each follows, or why it is absent."""
    groups: dict[str, list[str]] = {}
    for w in ws:
        key = (f"absent: {w.absent}" if w.absent else
               f"`{w.file}`" + (" (folded)" if w.folded else "") if w.file else "(no file cited)")
        if w.extension:
            key += " (ptshim extension: no such kernel function)"
        groups.setdefault(key, []).append(w.config)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{key} ({', '.join(cfgs)})" for key, cfgs in groups.items())


# -- pinning tests ----------------------------------------------------------------------------


@dataclass
class _Unit:
    """A function or module-level name of a test module: what it calls, what it mentions."""

    calls: set[str] = field(default_factory=set)
    refs: set[tuple[str, str]] = field(default_factory=set)
    """``(module, name)`` of the units it refers to (resolved after parsing)."""
    names: set[str] = field(default_factory=set)


def _scan(nodes: Iterable[ast.AST]) -> _Unit:
    u = _Unit()
    for top in nodes:
        for n in ast.walk(top):
            if isinstance(n, ast.Call):
                f = n.func
                if isinstance(f, ast.Attribute):
                    u.calls.add(f.attr)
                elif (isinstance(f, ast.Name) and f.id == "getattr" and len(n.args) >= 2
                      and isinstance(n.args[1], ast.Constant)
                      and isinstance(n.args[1].value, str)):
                    u.calls.add(n.args[1].value)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                u.names.add(n.id)
    return u


@dataclass(frozen=True)
class TestFn:
    nodeid: str
    module: str
    unit: str


def _parse_tests(tests_dir: Path) -> tuple[dict[tuple[str, str], _Unit], list[TestFn]]:
    units: dict[tuple[str, str], _Unit] = {}
    tests: list[TestFn] = []
    imports: dict[str, dict[str, tuple[str, str]]] = {}
    for path in sorted(tests_dir.glob("*.py")):
        if path.name == SELF_TEST:
            continue
        mod = path.stem
        rel = f"tests/{path.name}"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imports[mod] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("tests."):
                src = node.module.split(".", 1)[1]
                for a in node.names:
                    imports[mod][a.asname or a.name] = (src, a.name)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                units[(mod, node.name)] = _scan([node])
                if node.name.startswith("test"):
                    tests.append(TestFn(f"{rel}::{node.name}", mod, node.name))
            elif isinstance(node, ast.ClassDef):
                methods = {m.name: m for m in node.body
                           if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)}
                for mname, m in methods.items():
                    u = _scan([m])
                    key = f"{node.name}.{mname}"
                    u.refs |= {(mod, f"{node.name}.{c}") for c in u.calls if c in methods}
                    units[(mod, key)] = u
                    if node.name.startswith("Test") and mname.startswith("test"):
                        tests.append(TestFn(f"{rel}::{node.name}::{mname}", mod, key))
                units[(mod, node.name)] = _scan(
                    [b for b in node.body if not isinstance(b, ast.FunctionDef)])
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                u = _scan([node.value])
                for t in targets:
                    if isinstance(t, ast.Name):
                        units[(mod, t.id)] = u
    for (mod, _name), u in units.items():
        for n in u.names:
            if (mod, n) in units:
                u.refs.add((mod, n))
            elif n in imports.get(mod, {}):
                u.refs.add(imports[mod][n])
    return units, tests


@functools.cache
def _test_index(tests_dir: Path) -> dict[str, list[tuple[int, str]]]:
    """helper name -> ``[(depth, nodeid)]``: every test whose code reaches a call of it."""
    units, tests = _parse_tests(tests_dir)
    index: dict[str, list[tuple[int, str]]] = {}
    for t in tests:
        best: dict[str, int] = {}
        seen = {(t.module, t.unit)}
        frontier = [(t.module, t.unit)]
        depth = 0
        while frontier:
            nxt = []
            for key in frontier:
                u = units.get(key)
                if u is None:
                    continue
                for c in u.calls:
                    best.setdefault(c, depth)
                for r in sorted(u.refs):
                    if r not in seen and r in units:
                        seen.add(r)
                        nxt.append(r)
            frontier, depth = nxt, depth + 1
        for c, d in best.items():
            index.setdefault(c, []).append((d, t.nodeid))
    return index


def pinning_tests(name: str, tests_dir: Path = TESTS_DIR) -> list[str]:
    """The tests that call ``name`` (directly first, then through helpers), at most
    :data:`MAX_TESTS`."""
    found = sorted(_test_index(tests_dir).get(name, []))
    return [nodeid for _d, nodeid in found[:MAX_TESTS]]


# -- known divergences ------------------------------------------------------------------------


@dataclass(frozen=True)
class Divergence:
    """A known difference from the pinned kernel, with a probe of the emulator."""

    title: str
    kernel: str
    """What the kernel does, at the pinned version."""
    files: tuple[str, ...]
    emulator: str
    """What ptshim does instead, and where."""
    probe: Callable[[], bool]
    """True while the divergence is there (run at generation time)."""
    departure: str = ""
    """Why ptshim departs on purpose (empty: a divergence to fix)."""


def _self_calls_flush(cls: type, *names: str) -> bool:
    """Whether any of ``cls.<names>`` (the winning definitions) calls a TLB flush."""
    for n in names:
        owner = defining_class(cls, n)
        if owner is None:
            continue
        src = textwrap.dedent(inspect.getsource(owner.__dict__[n]))
        tree = ast.parse(src)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and "flush_tlb" in node.func.attr:
                return True
    return False


def _x86_64() -> X86_64Kernel:
    return cast(X86_64Kernel, boot("x86_64"))


def _probe_saved_dirty() -> bool:
    from arches.x86.bits import _PAGE_DIRTY
    k = _x86_64()
    pte = k.pte_mkdirty(k.pfn_pte(0x1234, k.PAGE_SHARED))
    return bool(k.pte_wrprotect(pte) & _PAGE_DIRTY)


def _probe_pmd_modify_dirty() -> bool:
    from arches.x86.bits import _PAGE_DIRTY
    k = _x86_64()
    pmd = k.pmd_mkdirty(k.pmd_mkhuge(k.pfn_pmd(0x200, k.PAGE_SHARED)))
    return bool(k.pmd_modify(pmd, k.PAGE_SHARED) & _PAGE_DIRTY)


def _probe_chg_mask_pat() -> bool:
    from arches.x86.bits import _PAGE_PAT
    from legacy.types import pte_t
    k = _x86_64()
    pte = pte_t(k.pfn_pte(0x1234, k.PAGE_SHARED) | _PAGE_PAT)
    return not k.pte_modify(pte, k.PAGE_READONLY) & _PAGE_PAT


def _probe_pud_set_huge() -> bool:
    from arches.x86.bits import _PAGE_PSE
    from legacy.types import pgprot_t
    k = _x86_64()
    addr = k.config.kernel_range[0]
    p4d = k.p4d_alloc(k.init_mm, k.pgd_offset_k(addr), addr)
    assert p4d is not None
    pud = k.pud_alloc(k.init_mm, p4d, addr)
    assert pud is not None
    phys = k.PUD_SIZE
    k.pud_set_huge(pud, phys, k.PAGE_NONE)
    kernel = k.pfn_pte(phys >> k.PAGE_SHIFT,
                       pgprot_t(k.protval_4k_2_large(k.PAGE_NONE) | _PAGE_PSE))
    return int(k.pudp_get(pud)) != int(kernel)


def _probe_arm64_kernel_dirty() -> bool:
    from arches.arm64.bits import PTE_DIRTY
    k = boot("arm64-4k-48")
    return not all(p & PTE_DIRTY for p in (k.PAGE_KERNEL, k.PAGE_KERNEL_RO,
                                            k.PAGE_KERNEL_ROX, k.PAGE_KERNEL_EXEC))


def _probe_pte_offset_map_migration() -> bool:
    from legacy.mm_types import spin_lock, spin_unlock
    k = _x86_64()
    mm = k.mm_alloc()
    assert mm is not None
    addr = 0x40000000
    p4d = k.p4d_alloc(mm, k.pgd_offset(mm, addr), addr)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, addr)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, addr)
    assert pmd is not None
    entry = k.swp_entry_to_pmd(k.make_writable_migration_entry(0x200))
    ptl = k.pmd_lockptr(mm, pmd)
    spin_lock(ptl)
    try:
        k.set_pmd(pmd, entry)
        k.pte_offset_map(pmd, addr)
        return int(k.pmdp_get(pmd)) != int(entry)
    finally:
        spin_unlock(ptl)


def _probe_init_mm_pmd_lock() -> bool:
    k = _x86_64()
    pmd = k.pmd_alloc_one(k.init_mm, 0)
    assert pmd is not None
    return k.ptdescs[k.frame_of(pmd.pa)].ptl is not None


def _probe_vmap_remap_check() -> bool:
    from arches.errors import BadInput
    from legacy.mm.vmalloc import vmap_range
    k = _x86_64()
    kva = k.config.kernel_range[0] + k.PUD_SIZE
    phys = k.PMD_SIZE
    assert vmap_range(k, kva, kva + k.PMD_SIZE, phys, k.PAGE_KERNEL, k.PMD_SHIFT) == 0
    try:
        vmap_range(k, kva, kva + k.PMD_SIZE, phys, k.PAGE_KERNEL, k.PMD_SHIFT)
    except BadInput:
        return True
    return False


def _probe_arm64_clear_invalid_block() -> bool:
    from legacy.mm.vmalloc import vmap_range
    k = boot("arm64-4k-48")
    kva = k.config.kernel_range[0] + k.PUD_SIZE
    assert vmap_range(k, kva, kva + k.PMD_SIZE, k.PMD_SIZE, k.PAGE_KERNEL, k.PMD_SHIFT) == 0
    pmd = k.pmd_off_k(kva)
    k.set_pmd(pmd, k.pmd_mkinvalid(k.pmdp_get(pmd)))
    k.flush_tlb_kernel_range(kva, kva + k.PMD_SIZE)
    return bool(k.pmd_clear_huge(pmd))


def _probe_get_old_pud() -> bool:
    """Open if a folded-pud arm64 kernel clears a pud block, or a 4-level one keeps it."""
    from legacy.mm.mremap import get_old_pud
    from legacy.mm_types import spin_lock, spin_unlock
    for name, cleared in (("arm64-4k-48", True), ("arm64-4k-39", False)):
        k = cast(Arm64Kernel, boot(name))
        mm = k.mm_alloc()
        assert mm is not None
        addr = 0x40000000
        p4d = k.p4d_alloc(mm, k.pgd_offset(mm, addr), addr)
        assert p4d is not None
        pud = k.pud_alloc(mm, p4d, addr)
        assert pud is not None
        block = k.pud_mkhuge(k.pfn_pud(addr >> k.PAGE_SHIFT, k.PAGE_READONLY))
        ptl = k.pud_lockptr(mm, pud)
        spin_lock(ptl)
        try:
            k.set_pud(pud, block)
            get_old_pud(k, mm, addr)
            if (k.pudp_get(pud) == 0) != cleared:
                return True
        finally:
            spin_unlock(ptl)
    return False


def _probe_x86_clear_flush_young() -> bool:
    return not _self_calls_flush(X86_64Kernel, "pmdp_clear_flush_young")


def _probe_free_table_flush() -> bool:
    from legacy.arm64.pgtable import Arm64_4K_48Kernel
    return not (_self_calls_flush(X86_64Kernel, "pmd_free_pte_page")
                and _self_calls_flush(X86_64Kernel, "pud_free_pmd_page")
                and _self_calls_flush(Arm64_4K_48Kernel, "_pmd_free_pte_page",
                                      "pmd_free_pte_page")
                and _self_calls_flush(Arm64_4K_48Kernel, "pud_free_pmd_page"))


def _probe_arm64_access_flags_flush() -> bool:
    from legacy.arm64.pgtable import Arm64_4K_48Kernel
    return not _self_calls_flush(Arm64_4K_48Kernel, "ptep_set_access_flags",
                                 "_set_access_flags")


def _probe_arm64_version_text() -> bool:
    import legacy.arm64.pgtable as m
    return "6.12-6.16" in (m.__doc__ or "")


DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        "x86: `_PAGE_SAVED_DIRTY` is not emulated",
        "Since v6.6 (the shadow-stack series) x86-64 keeps dirtiness of a read-only entry in "
        "`_PAGE_SAVED_DIRTY` (software bit 58) on every CPU, shadow stacks or not: "
        "`pte_wrprotect`/`pmd_wrprotect`/`pud_wrprotect` and `pte_modify`/`pmd_modify`/"
        "`pud_modify` of a formerly writable entry move `_PAGE_DIRTY` there "
        "(`pXX_mksaveddirty`), "
        "`pte_mkwrite`/`pmd_mkwrite` (arch/x86/mm/pgtable.c: after `pXX_mkwrite_novma`) "
        "and `pud_mkwrite` move it back (`pXX_clear_saveddirty`), "
        "and `_PAGE_DIRTY_BITS` = `_PAGE_DIRTY | _PAGE_SAVED_DIRTY` is what `pXX_dirty` and "
        "`pXX_mkclean` test and clear.  Only `pte_mkdirty` depends on "
        "`X86_FEATURE_USER_SHSTK`.",
        ("arch/x86/include/asm/pgtable.h", "arch/x86/include/asm/pgtable_types.h"),
        "`_PAGE_DIRTY_BITS` is `_PAGE_DIRTY` and the wrprotect/modify helpers leave Dirty=1 "
        "on a Write=0 entry (`legacy/x86/pgtable.py`, `legacy/x86/thp.py`).",
        _probe_saved_dirty),
    Divergence(
        "x86: `pmd_modify` keeps hardware Dirty",
        "`pmd_modify` masks the old value with `_HPAGE_CHG_MASK & ~_PAGE_DIRTY`, dropping "
        "hardware Dirty before the SavedDirty fix-up (`pud_modify` and `pte_modify` keep it "
        "through their masks).",
        ("arch/x86/include/asm/pgtable.h",),
        "`X86Kernel.pmd_modify` keeps `_PAGE_DIRTY` (it masks with `_HPAGE_CHG_MASK`).",
        _probe_pmd_modify_dirty),
    Divergence(
        "x86: `_PAGE_CHG_MASK` lacks `_PAGE_PAT`",
        "`_PAGE_CHG_MASK` is `_COMMON_PAGE_CHG_MASK | _PAGE_PAT` and `_HPAGE_CHG_MASK` is "
        "`_COMMON_PAGE_CHG_MASK | _PAGE_PSE | _PAGE_PAT_LARGE`: `pte_modify` keeps a 4K "
        "page's PAT bit (bit 7).",
        ("arch/x86/include/asm/pgtable_types.h",),
        "`X86Kernel.derive_sizes` builds `_PAGE_CHG_MASK` without `_PAGE_PAT`, so "
        "`pte_modify` drops bit 7 (and `_HPAGE_CHG_MASK` = `_PAGE_CHG_MASK | _PAGE_PSE`).",
        _probe_chg_mask_pat),
    Divergence(
        "x86: `pud_set_huge` of a non-present protection",
        "`pud_set_huge` writes `set_pte((pte_t *)pud, pfn_pte(addr >> PAGE_SHIFT, "
        "protval_4k_2_large(prot) | _PAGE_PSE))`: with a non-present (PROT_NONE) protection "
        "`pfn_pte` inverts every PFN bit of `PTE_PFN_MASK` (4K granularity), bits 12-29 "
        "included (`pmd_set_huge` does the same, at the pmd).",
        ("arch/x86/mm/pgtable.c", "arch/x86/include/asm/pgtable-invert.h"),
        "`X86Kernel.pud_set_huge` writes `set_pud(pud, pfn_pud(...))`, whose inversion is "
        "masked with `PHYSICAL_PUD_PAGE_MASK` (bits 30 and up only).",
        _probe_pud_set_huge),
    Divergence(
        "arm64: `_PAGE_KERNEL*` without `PTE_DIRTY`",
        "As part of \"arm64, mm: avoid always making PTE dirty in pte_mkwrite()\" (which "
        "ptshim's `pte_mkwrite_novma` follows), `_PAGE_KERNEL`, `_PAGE_KERNEL_RO`, "
        "`_PAGE_KERNEL_ROX`, `_PAGE_KERNEL_EXEC` and `_PAGE_KERNEL_EXEC_CONT` gained "
        "`PTE_DIRTY`, so that kernel mappings made writable later are writable at once.",
        ("arch/arm64/include/asm/pgtable-prot.h",),
        "`Arm64Kernel._init_prot` builds `PAGE_KERNEL*` from `PROT_NORMAL` without "
        "`PTE_DIRTY`.",
        _probe_arm64_kernel_dirty),
    Divergence(
        "`pte_offset_map` on a PMD migration entry",
        "`___pte_offset_map` returns NULL for `pmd_none(pmdval) || "
        "is_pmd_migration_entry(pmdval)` before the `pmd_trans_huge` and `pmd_bad` checks: a "
        "migration entry is never reported and cleared as a bad pmd.",
        ("mm/pgtable-generic.c",),
        "`PgtableGeneric._pte_offset_map` has no migration test: a PMD migration entry "
        "fails `pmd_bad` and `pmd_clear_bad` erases it (`legacy/pgtable.py`).",
        _probe_pte_offset_map_migration),
    Divergence(
        "`init_mm` PMD tables get a split lock",
        "`pagetable_pmd_ctor(mm, ptdesc)` skips `pmd_ptlock_init` for `init_mm` (\"mm: "
        "skip ptlock_init() for kernel PMDs\", with the series that calls the constructors "
        "for kernel page tables too); `__pmd_alloc_one` passes the mm.",
        ("include/linux/mm.h", "include/asm-generic/pgalloc.h"),
        "`PgallocGeneric.pmd_alloc_one` runs `ptlock_init` whatever the mm "
        "(`legacy/pgalloc.py`).",
        _probe_init_mm_pmd_lock),
    Divergence(
        "`vmap_range` refuses to remap a huge leaf",
        "`vmap_range_noflush` and `vmap_try_huge_pmd`/`_pud` have no remapping check of "
        "their own: only `vmap_pte_range` BUG()s (\"remapping already mapped page\") on a "
        "non-none pte; an existing huge leaf goes to `pXd_free_pYd_page` (or, at the pte "
        "level, `pte_alloc_kernel_track` walks it as a table).",
        ("mm/vmalloc.c",),
        "`legacy/mm/vmalloc.py` raises `BadInput` (\"remapping already mapped huge pmd/pud\") "
        "in `vmap_pte_range`, `vmap_try_huge_pmd`, `vmap_pmd_range` and `vmap_try_huge_pud`.",
        _probe_vmap_remap_check,
        "mapping over a huge leaf is a caller bug whose kernel outcome is memory corruption "
        "that differs per architecture: x86 `pmd_free_pte_page`/`pud_free_pmd_page` "
        "(arch/x86/mm/pgtable.c) free the leaf's *data* page as if it were a table; arm64's "
        "(arch/arm64/mm/mmu.c) `VM_WARN_ON` a non-table and return 1, then `pXd_set_huge` "
        "refuses the valid-to-valid change (`pgattr_change_is_safe`) and the walk goes on to "
        "treat the block's output as a lower table.  ptshim stops where that would start, "
        "with one message naming the address."),
    Divergence(
        "arm64: `get_old_pud` and block puds",
        "`get_old_pud` ends with `pud_none_or_clear_bad`: arm64's `pud_bad` is true for a "
        "block, so a block pud is cleared where the pud level is real (4 levels); with "
        "`__PAGETABLE_PUD_FOLDED` `pud_clear_bad` is a no-op and the block stays.",
        ("mm/mremap.c", "include/linux/pgtable.h"),
        "Checked on `arm64-4k-48` (cleared) and `arm64-4k-39` (kept).",
        _probe_get_old_pud),
    Divergence(
        "x86: `pmdp_clear_flush_young` does not flush",
        "`pmdp_clear_flush_young` calls `flush_tlb_range(vma, address, address + "
        "HPAGE_PMD_SIZE)` when the pmd was young.",
        ("arch/x86/mm/pgtable.c",),
        "`X86Thp.pmdp_clear_flush_young` only clears the bit (its comment says \"+ "
        "flush_tlb_range\"), although the emulated TLB now exists.",
        _probe_x86_clear_flush_young),
    Divergence(
        "Huge-vmap table freeing does not flush",
        "x86 `pmd_free_pte_page`/`pud_free_pmd_page` call `flush_tlb_kernel_range(addr, addr "
        "+ PAGE_SIZE-1)` (\"INVLPG to clear all paging-structure caches\") after clearing the "
        "entry; arm64 `__pmd_free_pte_page`/`pud_free_pmd_page` call "
        "`__flush_tlb_kernel_pgtable(addr)`.",
        ("arch/x86/mm/pgtable.c", "arch/arm64/mm/mmu.c"),
        "The emulated versions free the table without a flush (their comments still say \"no "
        "TLB emulated\").",
        _probe_free_table_flush),
    Divergence(
        "arm64: `pXd_clear_huge` clears a present-invalid block",
        "`pmd_clear_huge`/`pud_clear_huge` clear only `pXd_sect` entries (a *valid* block).  "
        "A present-invalid block (a kernel block made invalid by `set_memory_valid(..., 0)`, "
        "which the 2025 pageattr block support allows) goes on to `pXd_none_or_clear_bad` in "
        "`vunmap_pXd_range`: `pXd_bad` is true, so it is cleared with a `pXd_ERROR` where "
        "the level is real, and left in place where it is folded (`pud_clear_bad` is a "
        "no-op under `__PAGETABLE_PUD_FOLDED`); a later `vmap_range` there `VM_WARN`s in "
        "`pXd_free_pYd_page`.",
        ("arch/arm64/mm/mmu.c", "mm/vmalloc.c", "mm/pgtable-generic.c"),
        "`Arm64Kernel.pmd_clear_huge`/`pud_clear_huge` clear valid and present-invalid "
        "blocks alike (`legacy/arm64/pgtable.py`).",
        _probe_arm64_clear_invalid_block,
        "an unmap must leave the range unmapped on every configuration: the kernel's "
        "outcome depends on the folding (cleared as bad, or a stale invalid block that the "
        "next map of the range trips over), an accident of `pud_clear_bad` rather than a "
        "design.  The walker's view is the same either way (an invalid block translates "
        "nothing)."),
    Divergence(
        "arm64: `__ptep_set_access_flags` does not flush",
        "After the cmpxchg loop, `if (dirty) flush_tlb_page(vma, address)` (\"Invalidate a "
        "stale read-only entry\"); `pmdp_set_access_flags` goes through it too.",
        ("arch/arm64/mm/fault.c",),
        "`Arm64Kernel._set_access_flags` returns 1 without the flush.",
        _probe_arm64_access_flags_flush),
    Divergence(
        "arm64: the module claims an older kernel",
        f"The emulation is pinned to {KERNEL_VERSION} (`ptshim/version.py`).",
        ("arch/arm64/include/asm/pgtable.h",),
        "`legacy/arm64/pgtable.py`'s docstring says it follows \"Linux ~6.12-6.16\".",
        _probe_arm64_version_text),
)


def probe(d: Divergence) -> tuple[bool, str]:
    """``(open, note)``: a probe that fails counts as open, with its error as the note."""
    try:
        return d.probe(), ""
    except Exception as e:  # any failure leaves the divergence open
        return True, f"probe failed: {type(e).__name__}: {e}"


# -- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of docs/fidelity.md."""

    name: str
    """As listed (the document's spelling for its helpers)."""
    method: str
    """The ptshim method."""
    note: str
    cells: tuple[str, ...]
    """One per family of :data:`FAMILIES`."""
    emulated_on: int
    configs: int
    tests: tuple[str, ...]

    @property
    def status(self) -> str:
        if self.emulated_on == self.configs:
            return "emulated"
        if self.emulated_on:
            return f"emulated on {self.emulated_on} of {self.configs}"
        return "absent"

    @property
    def unpinned(self) -> bool:
        return self.emulated_on > 0 and not self.tests


def make_row(name: str, method: str, note: str, cfgs: Sequence[Config],
             gates: Sequence[tuple[str, str, frozenset[str]]]) -> Row:
    ws = [where(c, method, gates) for c in cfgs]
    cells = tuple(family_cell([w for w, c in zip(ws, cfgs, strict=True) if c.family == fam])
                  for fam in FAMILIES)
    emulated = sum(1 for w in ws if not w.absent)
    tests = tuple(pinning_tests(method)) if emulated else ()
    return Row(name, method, note, cells, emulated, len(cfgs), tests)


@dataclass(frozen=True)
class Fidelity:
    doc_rows: tuple[tuple[str, tuple[Row, ...]], ...]
    arch_rows: tuple[Row, ...]
    generic_rows: tuple[Row, ...]
    divergences: tuple[tuple[Divergence, bool, str], ...]

    def rows(self) -> list[Row]:
        return [r for _t, rs in self.doc_rows for r in rs] + [*self.arch_rows,
                                                               *self.generic_rows]


def collect(cfgs: Sequence[Config] | None = None) -> Fidelity:
    if cfgs is None:
        cfgs = load_configs()
    classes = [c.cls for c in cfgs]
    gates = [(g.switch, g.when_off, gate_members(g, classes)) for g in GATES]
    doc_rows = []
    listed: set[str] = set()
    for title, helpers in DOC_SECTIONS:
        rows = tuple(make_row(h.name, h.method, h.note, cfgs, gates) for h in helpers)
        listed |= {h.method for h in helpers}
        doc_rows.append((title, rows))
    arch = sorted(emulated_helpers(classes) - listed)
    arch_rows = tuple(make_row(n, n, "", cfgs, gates) for n in arch)
    listed |= set(arch)
    generic_rows = tuple(make_row(n, n, "", cfgs, gates) for n in NAMED_GENERIC
                         if n not in listed)
    divs = tuple((d, *probe(d)) for d in DIVERGENCES)
    return Fidelity(tuple(doc_rows), arch_rows, generic_rows, divs)


# -- rendering --------------------------------------------------------------------------------

HEAD = ("helper", "status", "x86", "arm64", "pinned by")


def name_cell(r: Row) -> str:
    out = f"`{r.name}`"
    if r.method != r.name:
        out += f" → `{r.method}`"
    return out


def tests_cell(r: Row) -> str:
    if not r.emulated_on:
        return "–"
    return "<br>".join(f"`{t}`" for t in r.tests) or "**unpinned**"


def status_cell(r: Row) -> str:
    return r.status + (f": {r.note}" if r.note else "")


def table(rows: Sequence[Row]) -> list[str]:
    out = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        cells = [name_cell(r), status_cell(r), *r.cells, tests_cell(r)]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return out


def render(f: Fidelity | None = None) -> str:
    if f is None:
        f = collect()
    rows = f.rows()
    unpinned = [r for r in rows if r.unpinned]
    emulated = [r for r in rows if r.emulated_on]
    out = [
        f"# Fidelity to Linux {KERNEL_VERSION}",
        "",
        f"<!-- Generated by `{REGENERATE}` (ptshim/fidelity.py): edit the generator, the "
        "kernel classes' docstrings or the tests, not this file. -->",
        "",
        f"ptshim emulates one kernel: Linux {KERNEL_VERSION} (the 6.18 LTS line, "
        "`ptshim/version.py`).  One row per helper of "
        "`Documentation/mm/arch_pgtable_helpers.rst`, per public method of the kernel "
        "classes in `legacy/x86` and `legacy/arm64`, and per generic helper a known "
        "divergence concerns; for each architecture family, the kernel file (at "
        f"{KERNEL_VERSION}) the emulation follows, and the tests that pin its behaviour.  "
        "`tests/test_fidelity.py` fails when this page is stale, when an emulated helper has "
        f"no row, and when the [unpinned](#unpinned) list grows; regenerate with "
        f"`{REGENERATE}`.",
        "",
        "How the columns are made:",
        "",
        "- **x86**, **arm64**: the class that wins in each configuration's MRO, and the first "
        "kernel file cited by the method's docstring, else by a `name (file)` of the `# --` "
        "section comment above it, else by its module docstring's `file (names...)` lists, "
        "else the section comment's first file, else its class's docstring's, else its "
        "module's.  Configurations that differ are listed in brackets; *(folded)* "
        "marks the `pgtable-nop*.h` stubs of `legacy/folding.py`; *(ptshim extension)* a "
        "function the emulator adds where the kernel has none (its docstring, or its "
        "module's paragraph on extensions, says so).  A wrong file here is a wrong docstring "
        "in `legacy/`.",
        "- **status**: *emulated* on every configuration, on some, or *absent*: not emulated "
        "(no definition, or a body that only raises `NotImplementedError`), or a Kconfig "
        "switch the kernel needs is off (the gates of `ptshim/apiref.py`, see "
        "[legacy-api.md](legacy-api.md#kconfig-dependent-functions)).",
        f"- **pinned by**: at most {MAX_TESTS} tests that call the helper (`x.helper(...)` or "
        "`getattr(x, \"helper\")`), found by an `ast` scan of `tests/*.py` that follows the "
        "module-level functions and names a test refers to, decorators included; direct "
        "callers first.",
        "",
        f"{len(rows)} helpers listed; {len(emulated)} emulated on at least one "
        f"configuration, {len(emulated) - len(unpinned)} of them pinned by a test, "
        f"{len(unpinned)} unpinned.",
        "",
        "## Documentation/mm/arch_pgtable_helpers.rst",
        "",
        DOC_SOURCE,
        "",
    ]
    for title, rs in f.doc_rows:
        out += [f"### {title}", "", *table(rs), ""]
    out += [
        "## Architecture-specific helpers",
        "",
        "Every other public method the kernel classes of `legacy/x86` and `legacy/arm64` "
        "define (kernel functions, and the emulator's hooks such as `arch_geometry`).  "
        "Kernel `__x` names are `_x` in Python and are covered by the rows above where the "
        "document lists them.",
        "",
        *table(f.arch_rows),
        "",
        "## Generic helpers named by a divergence",
        "",
        "The other generic functions, and where each configuration gets them, are in "
        "[legacy-api.md](legacy-api.md).",
        "",
        *table(f.generic_rows),
        "",
        "## Known divergences (open)",
        "",
        f"Differences from {KERNEL_VERSION} found by re-reading the helpers against the "
        "kernel.  Each has a probe (`ptshim/fidelity.py` `DIVERGENCES`) run when this page is "
        "generated; fixing one in `legacy/` moves it to the next section and makes this page "
        "stale.",
        "",
    ]
    open_ = [(d, note) for d, is_open, note in f.divergences if is_open and not d.departure]
    kept = [(d, note) for d, is_open, note in f.divergences if is_open and d.departure]
    closed = [d for d, is_open, _note in f.divergences if not is_open]
    for i, (d, note) in enumerate(open_, 1):
        out += [f"{i}. **{d.title}**.  Kernel ({', '.join(f'`{x}`' for x in d.files)}): "
                f"{d.kernel}  ptshim: {d.emulator}" + (f"  ({note})" if note else ""), ""]
    if not open_:
        out += ["None.", ""]
    out += ["## Deliberate departures", "",
            "Differences kept on purpose, each with the reason; their probes still run, and "
            "one that no longer finds its departure moves to the next section.", ""]
    for i, (d, note) in enumerate(kept, 1):
        out += [f"{i}. **{d.title}**.  Kernel ({', '.join(f'`{x}`' for x in d.files)}): "
                f"{d.kernel}  ptshim: {d.emulator}  Why: {d.departure}"
                + (f"  ({note})" if note else ""), ""]
    if not kept:
        out += ["None.", ""]
    out += ["## Checked and not (or no longer) divergent", ""]
    out += [f"- **{d.title}**.  Kernel ({', '.join(f'`{x}`' for x in d.files)}): {d.kernel}  "
            f"ptshim: {d.emulator}" for d in closed] or ["None."]
    out += [
        "",
        "## Unpinned",
        "",
        "Emulated helpers no test calls.  `tests/test_fidelity.py` keeps this list from "
        "growing (`MAX_UNPINNED`): a new helper comes with a test.",
        "",
    ]
    out += [f"- {name_cell(r)}" for r in unpinned] or ["None."]
    return "\n".join(out).rstrip("\n") + "\n"


def doc_row_names(text: str) -> set[str]:
    """Every helper named in the first cell of a table row of ``text`` (both spellings of a
    renamed one)."""
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        first = line[2:].split(" | ", 1)[0]
        names |= set(re.findall(r"`([^`]+)`", first))
    return names


def missing_rows(helpers: Iterable[str], text: str) -> list[str]:
    """The helpers that have no row in ``text``, sorted."""
    have = doc_row_names(text)
    return sorted(set(helpers) - have)


def unpinned_listed(text: str) -> list[str]:
    """The helpers under "## Unpinned" in ``text``."""
    lines = text.splitlines()
    i = lines.index("## Unpinned")
    out = []
    for line in lines[i + 1:]:
        if line.startswith("## "):
            break
        m = re.match(r"- `([^`]+)`", line)
        if m:
            out.append(m.group(1))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    return generated_doc_main(argv, "ptshim.fidelity", __doc__, DOC_PATH, render)


if __name__ == "__main__":
    sys.exit(main())
