"""Side-by-side testing of a user's own call sites: a legacy function and its unified port.

A *call-site pair* is two callables::

    def my_legacy(k, mm, start, end): ...     # k = legacy.boot(arch)
    def my_unified(pt, mm, start, end): ...   # pt = unified.PageTables(k)

each acting on the process ``mm`` of a populated machine over the user range
``[start, end)`` and returning anything comparable with ``==``.

An *example* is, for one configuration: a random machine (a valid scenario from
:class:`~ptshim.scenario_gen.ScenarioGen`, run by the legacy backend: base pages, huge
PMD/PUD leaves user and kernel, PROT_NONE, neighbouring vmas, tables at the top of the user
range; then the seeded variety step of :func:`add_variety`: old/clean/young/dirty and
soft-dirty PTEs, swap and migration entries where the configuration has them) and a random
user range biased towards what breaks migrations (table and leaf boundaries, partly covered
huge leaves, the last entry of a table, empty tables, the top of the user range). The
machine is built twice from the same scenario; the legacy function runs on one, the unified
function on the other, and the two are compared on:

- the outcome: both return equal values, or both raise the same kind of exception;
- the page-table memory, ``pgtables_bytes`` and whatever else :func:`ptshim.compare.compare`
  covers;
- the spinlocks held on return (none may be: split PTE/PMD locks, ``page_table_lock``);
- the hardware walker's leaves.

Every example is seeded from ``(seed, arch, index)`` alone, so a run is reproducible from
its seed whatever the number of processes.  A divergence is shrunk (machine ops removed and
simplified, the range narrowed) and written as a JSON reproducer that ``ptshim diff --pair
SPEC --replay FILE`` (or :func:`replay`) runs again.

Public API: :class:`Pair` (:meth:`Pair.load` for ``MODULE:FN,MODULE:FN`` specs),
:func:`compare_pair` (a campaign over configurations, returning a :class:`Report`),
:func:`run_example` (one machine and range), :func:`replay`, :func:`build_machine`,
:func:`choose_range`, :func:`range_tags`, :func:`add_variety`. The campaign engine
(:func:`run_campaigns`) also runs the built-in backends' comparison of ``ptshim diff``
(``ptshim.diff``).
"""

from __future__ import annotations

import bisect
import importlib
import importlib.util
import inspect
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from arches.errors import BadInput
from legacy import GenericKernel, arch_names, boot, mm_struct, mm_types, vm_area_struct
from legacy.mm.memory import vm_normal_page
from legacy.mm.vm_flags import VM_PFNMAP
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PudPtr, pte_t
from ptshim.compare import compare, snapshot
from ptshim.decode import (
    TableMap,
    describe_translation,
    describe_value,
    entry_diffs,
    kernel_level_name,
)
from ptshim.dump import top_table_span
from ptshim.scenario import Limits, Op, Scenario, op_to_json, parse_scenario, validate
from ptshim.scenario_gen import ScenarioGen
from ptshim.session import Session
from unified import PageTables
from unified.handles import Table
from unified.levels import Level

__all__ = [
    "TAGS", "ConfigReport", "Divergence", "EntryDiff", "Example", "ExampleResult", "LegacyFn",
    "Pair", "Report", "UnifiedFn", "build_machine", "choose_range", "compare_pair", "example_rng",
    "replay", "range_tags", "run_campaigns", "run_example", "shrink_example",
]

LegacyFn = Callable[[GenericKernel, mm_struct, int, int], object]
"""``f(k, mm, start, end)``: the legacy call site."""
UnifiedFn = Callable[[PageTables, mm_struct, int, int], object]
"""``g(pt, mm, start, end)``: its unified port."""


# -- loading a pair --------------------------------------------------------------------------


def _load_module(name: str) -> Any:
    """An importable module, or a ``.py`` file (its directory goes first on ``sys.path``,
    as for a script)."""
    path = Path(name)
    if name.endswith(".py") or os.sep in name or "/" in name:
        if not path.is_file():
            raise BadInput(f"--pair: no such file {name!r}")
        mod_name = "ptshim_pair_" + "".join(c if c.isalnum() else "_"
                                            for c in str(path.resolve().with_suffix("")))
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise BadInput(f"--pair: cannot load {name!r} as a Python file")
        module = importlib.util.module_from_spec(spec)
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[mod_name]
            raise BadInput(f"--pair: importing {name!r} raised {type(e).__name__}: {e}"
                           ) from None
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise BadInput(f"--pair: no module named {e.name or name!r}") from None
    except Exception as e:
        raise BadInput(f"--pair: importing {name!r} raised {type(e).__name__}: {e}") from None


def _check_signature(fn: Callable[..., object], what: str, first: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: let the call decide
    try:
        sig.bind(object(), object(), 0, 0)
    except TypeError:
        raise BadInput(f"--pair: {what} has the signature {sig}, but a call-site pair calls "
                       f"it as f({first}, mm, start, end)") from None


def _load_callable(part: str, default_module: str | None, what: str) -> tuple[str, Any]:
    module, sep, fn_name = part.rpartition(":")
    if not sep:
        if default_module is None:
            raise BadInput(f"--pair: {part!r} is not MODULE:FUNCTION")
        module, fn_name = default_module, part
    if not module or not fn_name:
        raise BadInput(f"--pair: {part!r} is not MODULE:FUNCTION")
    mod = _load_module(module)
    fn = getattr(mod, fn_name, None)
    if fn is None:
        raise BadInput(f"--pair: {module} has no function {fn_name!r}")
    if not callable(fn):
        raise BadInput(f"--pair: {module}:{fn_name} is not callable")
    _check_signature(fn, f"{what} function {module}:{fn_name}", "k" if what == "legacy"
                     else "pt")
    return module, fn


@dataclass(frozen=True)
class Pair:
    """A legacy call site and its unified port (see the module docstring).  ``spec`` is the
    ``MODULE:FN,MODULE:FN`` text it was loaded from, if any (worker processes started with
    "spawn" reload it from there)."""

    legacy: LegacyFn
    unified: UnifiedFn
    spec: str | None = None

    @property
    def name(self) -> str:
        if self.spec is not None:
            return self.spec
        return f"{_qualname(self.legacy)},{_qualname(self.unified)}"

    @classmethod
    def load(cls, spec: str) -> Pair:
        """``MODULE:LEGACY_FN,MODULE:UNIFIED_FN`` (the second ``MODULE:`` may be left out
        when both live in one module); MODULE is an importable module or a ``.py`` path.
        :class:`BadInput` (one line) if a module or function is missing or a function does
        not take ``(k|pt, mm, start, end)``."""
        parts = spec.split(",")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise BadInput(f"--pair {spec!r}: expected MODULE:LEGACY_FN,MODULE:UNIFIED_FN")
        mod, legacy_fn = _load_callable(parts[0].strip(), None, "legacy")
        _, unified_fn = _load_callable(parts[1].strip(), mod, "unified")
        return cls(legacy_fn, unified_fn, spec)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.spec is not None:
            return (Pair.load, (self.spec,))
        return (Pair, (self.legacy, self.unified, None))


def _qualname(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


# -- examples: machines and ranges ---------------------------------------------------------


def example_rng(kind: str, seed: int, arch: str, index: int) -> random.Random:
    """The generator of example ``index`` of ``arch``: depends on nothing else."""
    return random.Random(f"ptshim-{kind}:{seed}:{arch}:{index}")


_GENS: dict[str, ScenarioGen] = {}


def scenario_gen(arch: str, rng: random.Random) -> ScenarioGen:
    """A (per-process cached) scenario generator for ``arch`` drawing from ``rng``."""
    gen = _GENS.get(arch)
    if gen is None:
        gen = _GENS[arch] = ScenarioGen(arch, rng)
    gen.rng = rng
    return gen


Zap = tuple[int, int]
"""``[start, end)`` of user pages zapped after the scenario, tables kept (``MADV_DONTNEED``:
``zap_vma_ptes`` in each vma it meets): how a machine gets empty page tables."""


def _mmap_locked(mm: mm_struct, fn: Callable[[], object]) -> object:
    """``fn()`` with ``mmap_lock`` held for write, as a system call runs a call site (where
    the emulated ``mm`` has an ``mmap_lock``)."""
    lock = getattr(mm_types, "mmap_write_locked", None)
    if lock is None:
        return fn()
    with lock(mm):
        return fn()


def zap(s: Session, start: int, end: int) -> None:
    """Zap the user pages of ``[start, end)`` in every vma it meets; the tables stay."""
    from legacy.mm.memory import zap_vma_ptes

    def run() -> None:
        for vma in list(s.mm.mmap):
            lo, hi = max(start, vma.vm_start), min(end, vma.vm_end)
            if lo < hi:
                zap_vma_ptes(s.k, vma, lo, hi - lo)

    _mmap_locked(s.mm, run)


def build_machine(arch: str, scenario: Scenario, zaps: Sequence[Zap] = (),
                  variety: int | None = None) -> Session:
    """A legacy-backend session of ``arch`` with ``scenario`` run on it, then ``zaps``,
    then (unless ``variety`` is None) the :func:`add_variety` step seeded by ``variety``."""
    s = Session(arch, "legacy")
    s.run(scenario)
    for lo, hi in zaps:
        zap(s, lo, hi)
    if variety is not None:
        add_variety(s, variety)
    _clean_tlb(s)
    return s


VARIETY_SWAP = 0.08
"""Chance that a present PTE of a PFN-mapped vma becomes a swap or migration entry."""
VARIETY_FLAGS = 0.35
"""Chance that a present PTE gets its young/dirty/soft-dirty bits changed."""


def _variety_pte(k: GenericKernel, vma: vm_area_struct, addr: int, ptent: pte_t,
                 rng: random.Random) -> pte_t | None:
    """The new value of one present PTE (None: left alone)."""
    swap_ok = bool(getattr(k, "SWP_ENTRY_EMULATED", False))
    r = rng.random()
    if (swap_ok and r < VARIETY_SWAP and vma.vm_flags & VM_PFNMAP
            and vm_normal_page(k, vma, addr, ptent) is None):
        # No struct page behind it (a raw PFN mapping): no refcount/mapcount to keep.
        pfn = k.pte_pfn(ptent)
        kinds = ["swap"] + (["read", "read-excl"] + (["write"] if k.pte_write(ptent) else [])
                            if k.MIGRATION else [])
        kind = rng.choice(kinds)
        if kind == "swap":
            entry = k.swp_entry(rng.randrange(min(4, k.MAX_SWAPFILES)),
                                rng.randrange(1, 1 << 16))
        elif kind == "read":
            entry = k.make_readable_migration_entry(pfn)
        elif kind == "read-excl":
            entry = k.make_readable_exclusive_migration_entry(pfn)
        else:
            entry = k.make_writable_migration_entry(pfn)
        new = k.swp_entry_to_pte(entry)
        if k.MEM_SOFT_DIRTY and rng.random() < 0.5:
            new = k.pte_swp_mksoft_dirty(new)
        return new
    if r > VARIETY_SWAP + VARIETY_FLAGS:
        return None
    arch: Any = k  # pte_mkyoung is an arch primitive (x86 and arm64 both have it)
    changes: list[Callable[[pte_t], pte_t]] = [k.pte_mkold, k.pte_mkclean, arch.pte_mkyoung]
    if k.pte_write(ptent):  # a write fault dirties a writable PTE only
        changes.append(k.pte_mkdirty)
    if k.MEM_SOFT_DIRTY:
        changes += [k.pte_mksoft_dirty, k.pte_clear_soft_dirty]
    new = ptent
    for change in rng.sample(changes, rng.randint(1, 2)):
        new = change(new)
    return None if new == ptent else new


def _variety_pte_range(k: GenericKernel, mm: mm_struct, vma: vm_area_struct, pmd: PmdPtr,
                       addr: int, end: int, rng: random.Random) -> bool:
    """Vary the present PTEs of ``[addr, end)`` under the table's lock; True if any
    changed."""
    mapped = k.pte_offset_map_lock(mm, pmd, addr)
    if mapped is None:
        return False
    start_pte, ptl = mapped
    pte, changed = start_pte, False
    while True:
        ptent = k.ptep_get(pte)
        if k.pte_present(ptent):
            new = _variety_pte(k, vma, addr, ptent, rng)
            if new is not None:
                # mm/rmap.c page_mkclean_one's pattern: clear and flush, then store (a
                # present pte is never rewritten in place: s390 invalidates it first)
                k.ptep_clear_flush(vma, addr, pte)
                k.set_pte_at(mm, addr, pte, new)
                changed = True
        pte, addr = pte + 1, (addr + k.PAGE_SIZE) & k.ULONG_MASK
        if addr == end:
            break
    k.pte_unmap_unlock(start_pte, ptl)
    return changed


def _variety_vma(k: GenericKernel, mm: mm_struct, vma: vm_area_struct,
                 rng: random.Random) -> bool:
    """Walk ``vma`` as kernel code does (one ``pXd_offset`` / ``pXd_addr_end`` loop per
    level: a folded level's ``pXd_addr_end`` is ``end``), varying the PTEs of its PTE
    tables; huge leaves are left alone."""
    changed = False

    def pmd_range(pud: PudPtr, addr: int, end: int) -> None:
        nonlocal changed
        pmd = k.pmd_offset(pud, addr)
        while True:
            nxt = k.pmd_addr_end(addr, end)
            if not k.pmd_leaf(k.pmdp_get(pmd)) and not k.pmd_none_or_clear_bad(pmd):
                changed |= _variety_pte_range(k, mm, vma, pmd, addr, nxt, rng)
            pmd, addr = pmd + 1, nxt
            if addr == end:
                break

    def pud_range(p4d: P4dPtr, addr: int, end: int) -> None:
        pud = k.pud_offset(p4d, addr)
        while True:
            nxt = k.pud_addr_end(addr, end)
            if not k.pud_leaf(k.pudp_get(pud)) and not k.pud_none_or_clear_bad(pud):
                pmd_range(pud, addr, nxt)
            pud, addr = pud + 1, nxt
            if addr == end:
                break

    def p4d_range(pgd: PgdPtr, addr: int, end: int) -> None:
        p4d = k.p4d_offset(pgd, addr)
        while True:
            nxt = k.p4d_addr_end(addr, end)
            if not k.p4d_none_or_clear_bad(p4d):
                pud_range(p4d, addr, nxt)
            p4d, addr = p4d + 1, nxt
            if addr == end:
                break

    addr, end = vma.vm_start, vma.vm_end
    pgd = k.pgd_offset(mm, addr)
    while True:
        nxt = k.pgd_addr_end(addr, end)
        if not k.pgd_none_or_clear_bad(pgd):
            p4d_range(pgd, addr, nxt)
        pgd, addr = pgd + 1, nxt
        if addr == end:
            break
    return changed


def add_variety(s: Session, seed: int) -> None:
    """The *variety* step of an example's machine, seeded by ``seed``, run through the
    legacy API as kernel code would (``mmap_lock`` held, each PTE table's lock taken with
    ``pte_offset_map_lock``, a flush of every vma changed, then ``k.syscall_exit``):

    - some present PTEs of the process are made old, clean, young or dirty (a writable one
      only), soft-dirty or not soft-dirty (where ``k.MEM_SOFT_DIRTY``);
    - where ``k.SWP_ENTRY_EMULATED``, a few present PTEs of PFN-mapped vmas (no struct page
      behind them: anonymous pages are never replaced) become swap entries and, where
      ``k.MIGRATION``, migration entries (read, read-exclusive, write for a writable PTE),
      soft-dirty or not.  The kernel's zap path clears them (``mmput`` leaks nothing).

    Huge leaves and the other processes (fork children) are left alone."""
    k, mm = s.k, s.mm
    rng = random.Random(f"ptshim-variety:{seed}")

    def run() -> None:
        for vma in list(mm.mmap):
            if _variety_vma(k, mm, vma, rng):
                flush = getattr(k, "flush_tlb_range", None)
                if flush is not None:
                    flush(vma, vma.vm_start, vma.vm_end)
                else:  # pragma: no cover - every configuration emulates the TLB
                    k.flush_tlb_mm(mm)

    _mmap_locked(mm, run)
    exit_check = getattr(k, "syscall_exit", None)
    if exit_check is not None:
        exit_check("variety")


def _clean_tlb(s: Session) -> None:
    """The pair's calls start from a TLB with nothing stale (whatever the ops left)."""
    flush_all = getattr(s.k, "flush_tlb_all", None)
    if flush_all is not None:
        flush_all()


def choose_zaps(s: Session, rng: random.Random) -> tuple[Zap, ...]:
    """Sometimes one or two zaps of a vma's pages, often whole PMD-aligned spans (which
    leave empty PTE tables behind)."""
    vmas = [(v.vm_start, v.vm_end) for v in s.mm.mmap]
    if not vmas or rng.random() < 0.6:
        return ()
    page, pmd = s.k.PAGE_SIZE, s.k.PMD_SIZE
    out = []
    for _ in range(rng.choice((1, 1, 2))):
        vs, ve = rng.choice(vmas)
        if rng.random() < 0.6:
            lo = -(-vs // pmd) * pmd
            hi = lo + pmd * rng.randint(1, 2)
        else:
            lo = vs + rng.randrange(0, (ve - vs) // page) * page
            hi = lo + page * rng.randint(1, 64)
        lo, hi = max(lo, vs), min(hi, ve)
        if lo < hi:
            out.append((lo, hi))
    return tuple(out)


def _walk(pt: PageTables, table: Table, lo: int, hi: int,
          visit: Callable[[Table, int, int, int, int], bool],
          leaves: Callable[[Table, int, int, list[int]], None]) -> None:
    """Call ``visit(table, index, entry_va, addr, next)`` for each non-none entry of an
    upper table covering ``[lo, hi)``, root first, descending where it returns True into a
    table entry; call ``leaves(table, addr, next, raw)`` once per PTE table met, with the
    raw values of its entries covering ``[addr, next)``."""
    if pt.is_bottom(table):
        lv = pt.ops(table.mm)[Level.PTE]
        leaves(table, lo, hi, [lv.get(p) for p, _, _ in pt.slots(table, lo, hi)])
        return
    for entry, a, nxt in pt.entries(table, lo, hi):
        v = pt.read(entry)
        if pt.is_none(v):
            continue
        if visit(table, entry.index, entry.va, a, nxt) and pt.is_table(v):
            _walk(pt, pt.descend(entry), a, nxt, visit, leaves)


def _table_span(pt: PageTables, table: Table) -> int:
    return pt.entries_per_table(table.group) * pt.level_size(table.group)


def user_range(s: Session) -> tuple[int, int]:
    """The user range of ``s``'s process as its page tables translate it now: the
    configuration's, ending where the top table does (s390: a 3-level mm reaches 4 TiB,
    ``asce_limit``; past it ``pgd_offset`` wraps, and the kernel's callers never go)."""
    lo, hi = s.config.user_range
    return lo, min(hi, top_table_span(s.k, s.mm))


def interesting_points(s: Session) -> list[int]:
    """Addresses where the user half of ``s``'s machine changes: table bounds and the last
    entry of each table, leaf bounds and points inside huge leaves, runs of PTEs, vma
    bounds, the top of the user range."""
    k, mm = s.k, s.mm
    pt = PageTables(k)
    lo, hi = user_range(s)
    page = k.PAGE_SIZE
    none = pt.ops(mm)[Level.PTE].none
    pts: set[int] = {hi}
    for vma in mm.mmap:
        pts.update((vma.vm_start, vma.vm_end))

    def bounds(table: Table) -> None:
        span = _table_span(pt, table)
        pts.update((table.va, table.va + span, table.va + span - pt.level_size(table.group)))

    def visit(table: Table, index: int, va: int, a: int, nxt: int) -> bool:
        size = pt.level_size(table.group)
        if not table.is_root and index == 0:
            bounds(table)
        if pt.is_leaf(pt.read(pt.entry(table, va))):
            pts.update((va, va + size, va + page, va + size // 2, va + size - page))
            return False
        return True

    def leaves(table: Table, a: int, nxt: int, raw: list[int]) -> None:
        bounds(table)
        prev = True
        for i, v in enumerate(raw):
            cur = none(v)
            if cur != prev:
                pts.add(a + i * page)
            prev = cur
        if not prev:
            pts.add(a + len(raw) * page)
        present = [i for i, v in enumerate(raw) if not none(v)]
        for i in present[:: max(1, len(present) // 16)]:
            pts.update((a + i * page, a + (i + 1) * page))

    _walk(pt, pt.root_for(mm, lo), lo, hi, visit, leaves)
    return sorted(p for p in pts if lo <= p <= hi and p % page == 0)


def choose_range(s: Session, rng: random.Random) -> tuple[int, int]:
    """A user range ``[start, end)`` of ``s``'s machine, page aligned, biased towards
    :func:`interesting_points`."""
    lo, hi = user_range(s)
    page = s.k.PAGE_SIZE
    pts = interesting_points(s)

    def clamp(p: int, low: int) -> int:
        return max(low, min(hi, p - p % page))

    def pick() -> int:
        if pts and rng.random() < 0.85:
            p = rng.choice(pts)
        else:
            p = lo + rng.randrange(0, (hi - lo) // page) * page
        if rng.random() < 0.3:
            p += rng.choice((-2, -1, 1, 2)) * page
        return clamp(p, lo)

    start = min(pick(), hi - page)
    r = rng.random()
    if r < 0.1:
        end = hi
    elif r < 0.55:
        i = bisect.bisect_right(pts, start)
        end = pts[min(len(pts) - 1, i + rng.randrange(0, 6))] if i < len(pts) else hi
    elif r < 0.8:
        end = start + page * rng.choice((1, 2, 3, rng.randint(1, 1100)))
    else:
        end = pick()
    if end <= start:
        start, end = (end, start + page) if end < start else (start, start + page)
    return clamp(start, lo), clamp(end, lo + page)


TAGS = ("pte", "pmd-leaf", "pud-leaf", "p4d-leaf", "partial", "folded", "folded-leaf",
        "last-entry", "empty-table", "crosses-table", "top", "swap", "old-clean", "soft-dirty")
"""What an example's range can hit (the coverage line counts examples per tag):

- ``pte``: a non-none PTE; ``pmd-leaf``/``pud-leaf``: a huge leaf at that kernel level;
- ``partial``: a huge leaf the range covers only partly;
- ``folded``: a non-none entry of a table holding folded levels (x86-64's pgd/p4d,
  i386's pgd..pmd); ``folded-leaf``: a huge leaf in such a table (i386's 4M pages);
- ``last-entry``: the non-none last entry of a table;
- ``empty-table``: a table with no entry at all (left by an unmap);
- ``crosses-table``: the range spans more than one PTE table;
- ``top``: the range ends at the top of the user range;
- ``swap``: a swap or migration entry (a non-none, non-present PTE: the variety step,
  :func:`add_variety`, where the configuration emulates swap entries);
- ``old-clean``: a present PTE that is old or clean;
- ``soft-dirty``: a PTE (present, or a swap entry) with the soft-dirty bit set (where
  ``MEM_SOFT_DIRTY``)."""


def range_tags(s: Session, start: int, end: int) -> frozenset[str]:
    """The :data:`TAGS` the range ``[start, end)`` of ``s``'s machine hits."""
    k, mm = s.k, s.mm
    pt = PageTables(k)
    tags: set[str] = set()
    if end == user_range(s)[1]:
        tags.add("top")
    groups = pt.levels(mm)
    leaf_group = groups[-1]
    table_span = pt.entries_per_table(leaf_group) * pt.level_size(leaf_group)
    if start // table_span != (end - 1) // table_span:
        tags.add("crosses-table")
    none = pt.ops(mm)[Level.PTE].none

    def visit(table: Table, index: int, va: int, a: int, nxt: int) -> bool:
        g = table.group
        folded = len(g.members) > 1
        if folded:
            tags.add("folded")
        if index == pt.entries_per_table(g) - 1:
            tags.add("last-entry")
        entry = pt.entry(table, va)
        v = pt.read(entry)
        if pt.is_leaf(v):
            tags.add(f"{g.bottom.legacy_name}-leaf")
            if folded:
                tags.add("folded-leaf")
            if a != va or nxt - va != pt.level_size(g):
                tags.add("partial")
            return False
        if pt.is_table(v):
            child = pt.descend(entry)
            lv = pt.ops(mm)[Level(child.level)]
            if all(lv.none(lv.get(p)) for p, _, _ in
                   pt.slots(child, child.va, child.va + _table_span(pt, child))):
                tags.add("empty-table")
        return True

    soft = bool(k.MEM_SOFT_DIRTY)
    arch: Any = k
    young: Callable[[pte_t], bool] = arch.pte_young  # an arch primitive (x86, arm64)

    def leaves(table: Table, a: int, nxt: int, raw: list[int]) -> None:
        if not all(none(v) for v in raw):
            tags.add("pte")
        for v in raw:
            p = pte_t(v)
            if none(v):
                continue
            if not k.pte_present(p):
                tags.add("swap")
                if soft and k.pte_swp_soft_dirty(p):
                    tags.add("soft-dirty")
                continue
            if not young(p) or not k.pte_dirty(p):
                tags.add("old-clean")
            if soft and k.pte_soft_dirty(p):
                tags.add("soft-dirty")
        if nxt == table.va + _table_span(pt, table) and raw and not none(raw[-1]):
            tags.add("last-entry")

    _walk(pt, pt.root_for(mm, start), start, end, visit, leaves)
    return frozenset(tags)


def applicable_tags(arch: str) -> tuple[str, ...]:
    """The :data:`TAGS` an example of ``arch`` can hit (its user leaf levels, folding)."""
    k = boot(arch)
    mm = k.mm_alloc()
    assert mm is not None
    pt = PageTables(k)
    groups = pt.levels(mm)
    sizes = set(Limits.from_kernel(k).user_leaf_sizes)
    leaf_groups = [g for g in groups if g.bottom is not Level.PTE and pt.level_size(g) in sizes]
    out = {"pte", "last-entry", "empty-table", "crosses-table", "top", "old-clean"}
    if getattr(k, "SWP_ENTRY_EMULATED", False):
        out.add("swap")
    if k.MEM_SOFT_DIRTY:
        out.add("soft-dirty")
    out.update(f"{g.bottom.legacy_name}-leaf" for g in leaf_groups)
    if leaf_groups:
        out.add("partial")
    if any(len(g.members) > 1 for g in groups):
        out.add("folded")
    if any(len(g.members) > 1 for g in leaf_groups):
        out.add("folded-leaf")
    return tuple(t for t in TAGS if t in out)


# -- comparing one example -----------------------------------------------------------------


@dataclass(frozen=True)
class EntryDiff:
    """One page-table entry that differs between the two machines, located and decoded."""

    where: str
    """VA range, level (kernel and hardware names), table PA and index."""
    legacy: str
    unified: str
    """The two values, decoded into the architecture's flag names."""
    walker_legacy: str = ""
    walker_unified: str = ""
    """What the hardware walker makes of the entry's first address on each machine."""

    def lines(self) -> list[str]:
        out = [self.where, f"  legacy:  {self.legacy}", f"  unified: {self.unified}"]
        if self.walker_legacy or self.walker_unified:
            out.append(f"  walker:  legacy {self.walker_legacy}; unified "
                       f"{self.walker_unified}")
        return out


@dataclass(frozen=True)
class Divergence:
    """Where and how the two sides of one example stopped agreeing."""

    arch: str
    scenario: Scenario
    start: int | None
    end: int | None
    """The range the pair was called on (None for the built-in backends' comparison)."""
    step: str
    """``call`` for a pair; ``op N (kind)``, ``verify`` or ``teardown`` for the backends."""
    problems: tuple[str, ...]
    entries: tuple[EntryDiff, ...] = ()
    example: int = -1
    seed: int = 0
    zaps: tuple[Zap, ...] = ()
    variety: int | None = None
    """The seed of the machine's :func:`add_variety` step (None: no variety)."""

    @property
    def what(self) -> str:
        return "; ".join(self.problems)

    def describe(self) -> str:
        rng = ("" if self.start is None or self.end is None
               else f" on [{self.start:#x}, {self.end:#x})")
        n = len(self.scenario.ops)
        zaps = "".join(f", zap [{lo:#x}, {hi:#x})" for lo, hi in self.zaps)
        if self.variety is not None:
            zaps += f", variety {self.variety}"
        head = f"{self.arch}: {self.step}{rng} after {n} machine op{'s' if n != 1 else ''}{zaps}"
        if self.example >= 0:
            head += f" (example {self.example}, seed {self.seed})"
        lines = [head] + [f"- {p}" for p in self.problems]
        for e in self.entries:
            lines += ["  " + ln for ln in e.lines()]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Side:
    outcome: str
    """``ok`` or ``Kind: message``."""
    value: object


def _call(fn: Callable[[], object]) -> _Side:
    try:
        return _Side("ok", fn())
    except Exception as e:  # the call site may fail in any way: that is what we compare
        return _Side(f"{type(e).__name__}: {' '.join(str(e).split())[:200]}", None)


def _held_locks(k: GenericKernel) -> list[str]:
    mms = list(k.mms) + ([k.init_mm] if k.init_mm not in k.mms else [])
    held = [repr(m.page_table_lock) for m in mms if m.page_table_lock.held]
    held += [repr(d.ptl) for d in k.ptdescs.values() if d.ptl is not None and d.ptl.held]
    return held


def _values_equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def _decode_entries(sa: Session, sb: Session, limit: int = 8) -> list[EntryDiff]:
    """The differing entries of two machines with the same frames, decoded."""
    ka, kb = sa.k, sb.k
    esize = max(ka.SIZEOF_PTE, ka.SIZEOF_PGD)
    diffs = entry_diffs(dict(ka.mem.image()), dict(kb.mem.image()), esize, limit)
    if not diffs:
        return []
    tmap = TableMap(ka, sa.mm)
    order: Literal["little", "big"] = "little" if ka.config.endianness == "little" else "big"
    regs_a, regs_b = sa.registers(), sb.registers()
    walker = ka.config.walker
    out = []
    for pa, xa, xb in diffs:
        va_ = int.from_bytes(xa, order)
        vb_ = int.from_bytes(xb, order)
        loc = tmap.locate(pa)
        if loc is None:
            frame = ka.frame_of(pa)
            out.append(EntryDiff(
                f"PA {pa:#x} (frame {frame:#x} offset {pa - frame:#x}: "
                f"{tmap.owner_of(frame)})", f"{va_:#x}", f"{vb_:#x}"))
            continue
        g = loc.table.group
        wl = wu = ""
        if loc.va is not None:
            wl = describe_translation(walker.translate(ka.mem, regs_a, loc.va))
            wu = describe_translation(walker.translate(kb.mem, regs_b, loc.va))
        out.append(EntryDiff(loc.describe(), describe_value(ka, g, va_),
                             describe_value(kb, g, vb_), wl, wu))
    return out


def _walker_diff(sa: Session, sb: Session) -> str | None:
    la = set(sa.hardware_leaves())
    lb = set(sb.hardware_leaves())
    if la == lb:
        return None
    only_a = sorted(la - lb, key=lambda t: t.va)
    only_b = sorted(lb - la, key=lambda t: t.va)

    def show(ts: Sequence[Any]) -> str:
        return (", ".join(f"{t.va:#x} -> {describe_translation(t)}" for t in ts[:3])
                + (f" (+{len(ts) - 3} more)" if len(ts) > 3 else "")) or "none"

    return (f"hardware walker: only the legacy machine has {show(only_a)}; only the unified "
            f"machine has {show(only_b)}")


def _run_side(s: Session, fn: Callable[[], object], who: str) -> tuple[_Side, list[str]]:
    """Run one side as a system call would (``mmap_lock`` held for write), then the
    end-of-call-site checks: ``k.syscall_exit`` where the kernel has it (no stale TLB
    entry, no lock held), else no spinlock may be held."""
    side = _call(lambda: _mmap_locked(s.mm, fn))
    exit_check = getattr(s.k, "syscall_exit", None)
    if exit_check is None:
        return side, [f"the {who} function returned holding {lock}"
                      for lock in _held_locks(s.k)]
    r = _call(lambda: exit_check(f"the {who} function"))
    return side, ([] if r.outcome == "ok" else [f"after the {who} function: {r.outcome}"])


def _compare_sides(pair: Pair, sa: Session, sb: Session, start: int, end: int
                   ) -> tuple[list[str], list[EntryDiff]]:
    ra, exit_a = _run_side(sa, lambda: pair.legacy(sa.k, sa.mm, start, end), "legacy")
    rb, exit_b = _run_side(sb, lambda: pair.unified(PageTables(sb.k), sb.mm, start, end),
                           "unified")
    problems: list[str] = []
    if ra.outcome == "ok" and rb.outcome == "ok":
        if not _values_equal(ra.value, rb.value):
            problems.append(f"return value: legacy {ra.value!r}, unified {rb.value!r}")
    elif ra.outcome.split(":")[0] != rb.outcome.split(":")[0]:
        problems.append(f"outcome: legacy {_outcome_text(ra)}, unified {_outcome_text(rb)}")
    esize = max(sa.k.SIZEOF_PTE, sa.k.SIZEOF_PGD)
    d = compare(snapshot(sa), snapshot(sb), esize)
    entries: list[EntryDiff] = []
    if d is not None:
        problems.append(d)
        entries = _decode_entries(sa, sb)
    problems += exit_a + exit_b
    w = _walker_diff(sa, sb)
    if w is not None:
        problems.append(w)
    return problems, entries


def _outcome_text(s: _Side) -> str:
    return f"returned {s.value!r}" if s.outcome == "ok" else f"raised {s.outcome}"


def run_example(pair: Pair, arch: str, scenario: Scenario, start: int, end: int,
                example: int = -1, seed: int = 0, zaps: Sequence[Zap] = (),
                built: Session | None = None, variety: int | None = None
                ) -> Divergence | None:
    """Build the machine of ``scenario`` (``zaps``, ``variety``) twice, run the legacy side on one
    and the unified side on the other over ``[start, end)``, compare; None when they agree.
    :class:`BadInput` if the scenario is not valid on ``arch`` or the range is not a
    page-aligned part of the user range.  ``built``, if given, is a fresh build of the same
    machine to use as the legacy side."""
    sa = build_machine(arch, scenario, zaps, variety) if built is None else built
    lo, hi = user_range(sa)
    page = sa.k.PAGE_SIZE
    if not (lo <= start < end <= hi) or start % page or end % page:
        raise BadInput(f"range [{start:#x}, {end:#x}) is not a page-aligned part of the user "
                       f"range [{lo:#x}, {hi:#x}) of {arch} (as the process's page tables "
                       "reach it)")
    sb = build_machine(arch, scenario, zaps, variety)
    esize = max(sa.k.SIZEOF_PTE, sa.k.SIZEOF_PGD)
    same = compare(snapshot(sa), snapshot(sb), esize)
    if same is not None:  # pragma: no cover - the emulator is deterministic
        raise RuntimeError(f"{arch}: two builds of one scenario differ: {same}")
    problems, entries = _compare_sides(pair, sa, sb, start, end)
    if not problems:
        return None
    return Divergence(arch, scenario, start, end, "call", tuple(problems), tuple(entries),
                      example, seed, tuple(zaps), variety)


@dataclass(frozen=True)
class Example:
    """One example: a machine (scenario + zaps) of one configuration and a user range."""

    arch: str
    scenario: Scenario
    zaps: tuple[Zap, ...]
    start: int
    end: int
    index: int = -1
    seed: int = 0
    variety: int | None = None
    """The seed of the machine's :func:`add_variety` step (None: no variety)."""

    def build(self) -> Session:
        return build_machine(self.arch, self.scenario, self.zaps, self.variety)

    def run(self, pair: Pair, built: Session | None = None) -> Divergence | None:
        """:func:`run_example` of this example (``built``: a fresh build to reuse)."""
        return run_example(pair, self.arch, self.scenario, self.start, self.end, self.index,
                           self.seed, self.zaps, built, self.variety)


def make_example(arch: str, seed: int, index: int) -> tuple[Example, Session]:
    """Example ``index`` of ``arch`` for ``seed``, and its machine built once (before any
    call).  Depends on ``(seed, arch, index)`` only."""
    rng = example_rng("pair", seed, arch, index)
    gen = scenario_gen(arch, rng)
    sc = gen.scenario(rng.randint(1, 8), f"pair-{arch}-seed{seed}-{index}")
    s = build_machine(arch, sc)
    zaps = choose_zaps(s, rng)
    for lo, hi in zaps:
        zap(s, lo, hi)
    # its own generator: the scenario, zaps and range draws stay what they were
    variety = example_rng("variety", seed, arch, index).randrange(1 << 32)
    add_variety(s, variety)
    _clean_tlb(s)
    start, end = choose_range(s, rng)
    return Example(arch, sc, zaps, start, end, index, seed, variety), s


# -- shrinking -----------------------------------------------------------------------------


def _reindex(ops: Sequence[Op]) -> tuple[Op, ...]:
    return tuple(replace(op, index=i) for i, op in enumerate(ops))


def shrink_example(pair: Pair, d: Divergence, budget_s: float = 30.0) -> Divergence:
    """A smaller example that still diverges: machine ops removed and simplified, the range
    narrowed.  ``d`` must come from :func:`run_example`."""
    from ptshim.diff import _simpler

    assert d.start is not None and d.end is not None
    arch = d.arch
    k = boot(arch)
    lim = Limits.from_kernel(k)
    page = k.PAGE_SIZE
    split = Session(arch, "legacy").split_size
    deadline = time.monotonic() + budget_s
    best = d

    keep = object()

    def attempt(ops: Sequence[Op], start: int, end: int,
                zaps: Sequence[Zap] | None = None, variety: object = keep
                ) -> Divergence | None:
        cand = Scenario(_reindex(ops), d.scenario.name)
        vs = best.variety if variety is keep else variety
        assert vs is None or isinstance(vs, int)
        try:
            validate(cand, lim, split)
            r = run_example(pair, arch, cand, start, end, d.example, d.seed,
                            best.zaps if zaps is None else zaps, variety=vs)
        except (BadInput, ValueError):
            return None
        return r

    def drop_zaps() -> None:
        nonlocal best
        for i in range(len(best.zaps) - 1, -1, -1):
            assert best.start is not None and best.end is not None
            r = attempt(best.scenario.ops, best.start, best.end,
                        best.zaps[:i] + best.zaps[i + 1:])
            if r is not None:
                best = r

    def narrow() -> None:
        nonlocal best
        changed = True
        while changed and time.monotonic() < deadline:
            changed = False
            s, e = best.start, best.end
            assert s is not None and e is not None
            pages = (e - s) // page
            mid = s + pages // 2 * page
            cands = [(s, mid), (mid, e), (s + page, e), (s, e - page)] if pages > 1 else []
            for cs, ce in cands:
                if cs >= ce:
                    continue
                r = attempt(best.scenario.ops, cs, ce)
                if r is not None:
                    best, changed = r, True
                    break

    def drop_ops() -> None:
        nonlocal best
        ops = list(best.scenario.ops)
        n = 2
        while ops and time.monotonic() < deadline:
            chunk = -(-len(ops) // n)
            for lo in range(len(ops) - chunk, -chunk, -chunk):
                lo = max(0, lo)
                cand = ops[:lo] + ops[lo + chunk:]
                assert best.start is not None and best.end is not None
                r = attempt(cand, best.start, best.end)
                if r is not None:
                    ops, best = cand, r
                    n = max(n - 1, 2)
                    break
            else:
                if n >= len(ops):
                    break
                n = min(len(ops), n * 2)

    def simplify_ops() -> None:
        nonlocal best
        changed = True
        while changed and time.monotonic() < deadline:
            changed = False
            ops = list(best.scenario.ops)
            for i, op in enumerate(ops):
                for simpler in _simpler(op, page):
                    assert best.start is not None and best.end is not None
                    r = attempt(ops[:i] + [simpler] + ops[i + 1:], best.start, best.end)
                    if r is not None:
                        best, changed = r, True
                        break
                if changed:
                    break

    def drop_variety() -> None:
        nonlocal best
        if best.variety is not None:
            assert best.start is not None and best.end is not None
            r = attempt(best.scenario.ops, best.start, best.end, variety=None)
            if r is not None:
                best = r

    drop_variety()
    drop_zaps()
    drop_ops()
    narrow()
    simplify_ops()
    narrow()
    return best


# -- reproducers -------------------------------------------------------------------------------


def _hex(n: int) -> str:
    return f"{n:#x}"


def reproducer_json(pair: Pair, d: Divergence) -> dict[str, object]:
    """A reproducer file's contents: a scenario (the format of docs/cli.md) plus the pair, the
    range and the divergence (keys the scenario parser ignores)."""
    assert d.start is not None and d.end is not None
    return {
        "pair": pair.name,
        "arch": d.arch,
        "seed": d.seed,
        "example": d.example,
        "range": {"start": _hex(d.start), "end": _hex(d.end)},
        "zaps": [[_hex(lo), _hex(hi)] for lo, hi in d.zaps],
        "variety": d.variety,
        "divergence": list(d.problems),
        "ops": [op_to_json(op) for op in d.scenario.ops],
    }


def _parse_int(v: object, what: str) -> int:
    if isinstance(v, bool):
        raise BadInput(f"{what}: not an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            pass
    raise BadInput(f"{what}: {v!r} is not an integer")


def load_reproducer(path: str | Path) -> dict[str, Any]:
    """A reproducer file as a dict (:class:`BadInput` if unreadable or not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise BadInput(f"--replay {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"--replay {path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or "arch" not in data or "ops" not in data:
        raise BadInput(f"--replay {path}: not a ptshim diff reproducer (no 'arch'/'ops')")
    return data


def replay(pair: Pair, path: str | Path) -> Divergence | None:
    """Run a reproducer written by ``ptshim diff --pair``; its divergence, or None."""
    data = load_reproducer(path)
    rng = data.get("range")
    if not isinstance(rng, dict):
        raise BadInput(f"--replay {path}: no 'range' (a reproducer of the built-in backends? "
                       "replay it without --pair)")
    sc = parse_scenario(data, Path(path).stem)
    arch = str(data["arch"])
    if arch not in arch_names():
        raise BadInput(f"--replay {path}: unknown arch {arch!r}")
    zaps = data.get("zaps", [])
    if not isinstance(zaps, list) or not all(isinstance(z, list) and len(z) == 2
                                             for z in zaps):
        raise BadInput(f"--replay {path}: 'zaps' must be a list of [start, end] pairs")
    variety = data.get("variety")  # absent (older files) or null: no variety step
    return run_example(pair, arch, sc, _parse_int(rng.get("start"), "range.start"),
                       _parse_int(rng.get("end"), "range.end"),
                       _parse_int(data.get("example", -1), "example"),
                       _parse_int(data.get("seed", 0), "seed"),
                       tuple((_parse_int(a, "zap"), _parse_int(b, "zap")) for a, b in zaps),
                       variety=None if variety is None else _parse_int(variety, "variety"))


# -- campaigns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleResult:
    """What one example did: its coverage tags, the machine ops it ran, and a one-line
    summary of its divergence (None if the sides agreed)."""

    index: int
    tags: frozenset[str]
    ops: int
    divergence: str | None = None
    seconds: float = 0.0


class Subject(Protocol):
    """What a campaign compares: a user's pair, or the built-in backends (``ptshim.diff``)."""

    kind: str

    def example(self, arch: str, seed: int, index: int) -> ExampleResult: ...

    def shrink(self, arch: str, seed: int, index: int, budget_s: float) -> Divergence: ...

    def applicable(self, arch: str) -> tuple[str, ...]: ...


@dataclass
class PairSubject:
    """A user's pair as a campaign :class:`Subject`."""

    pair: Pair
    kind: str = "pair"

    def example(self, arch: str, seed: int, index: int) -> ExampleResult:
        ex, s = make_example(arch, seed, index)
        tags = range_tags(s, ex.start, ex.end)
        d = ex.run(self.pair, s)
        return ExampleResult(index, tags, len(ex.scenario.ops),
                             None if d is None else d.problems[0])

    def shrink(self, arch: str, seed: int, index: int, budget_s: float) -> Divergence:
        ex, _ = make_example(arch, seed, index)
        d = ex.run(self.pair)
        if d is None:  # pragma: no cover - examples are deterministic
            raise RuntimeError(f"{arch}: example {index} no longer diverges")
        return shrink_example(self.pair, d, budget_s)

    def applicable(self, arch: str) -> tuple[str, ...]:
        return applicable_tags(arch)


@dataclass
class ConfigReport:
    """One configuration of a campaign."""

    arch: str
    examples: int
    """Examples run (up to and including the first diverging one)."""
    ops: int
    """Machine ops those examples ran."""
    coverage: dict[str, int]
    """Examples that hit each tag (:data:`TAGS`, or the scenario tags of ``ptshim diff``)."""
    applicable: tuple[str, ...]
    seconds: float
    """Time spent in the examples (summed over the worker processes)."""
    divergence: Divergence | None = None
    first_seen: str | None = None
    """The divergence as first seen, before shrinking."""
    reproducer: Path | None = None

    @property
    def identical(self) -> bool:
        return self.divergence is None

    def coverage_line(self) -> str:
        """``pte 40/50, pmd-leaf 12/50, ...; never hit: folded-leaf``."""
        n = self.examples
        hit = [f"{t} {self.coverage.get(t, 0)}" for t in self.applicable
               if self.coverage.get(t, 0)]
        missed = [t for t in self.applicable if not self.coverage.get(t, 0)]
        line = f"coverage of {n} example{'s' if n != 1 else ''}: " + (", ".join(hit) or "-")
        if missed:
            line += "; never hit: " + ", ".join(missed)
        return line


@dataclass
class Report:
    """A campaign: one :class:`ConfigReport` per configuration run."""

    subject: str
    seed: int
    configs: list[ConfigReport] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    """Configurations skipped after the first divergence (without ``keep_going``)."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.identical for c in self.configs)

    @property
    def divergences(self) -> list[Divergence]:
        return [c.divergence for c in self.configs if c.divergence is not None]

    def describe(self) -> str:
        """Every configuration's verdict, coverage and time, then each divergence."""
        lines = []
        for c in self.configs:
            verdict = "identical" if c.identical else "DIVERGED"
            lines.append(f"{c.arch}: {verdict}, {c.examples} examples, {c.ops} ops, "
                         f"{c.seconds:.1f} s")
            lines.append("  " + c.coverage_line())
        for c in self.configs:
            if c.divergence is not None:
                lines.append(c.divergence.describe())
        if self.not_run:
            lines.append("not run (stopped at the first divergence): " + ", ".join(self.not_run))
        return "\n".join(lines)


class Progress:
    """``arch: done/total examples, ETA`` on one rewritten stderr line, only on a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total
        self.done = 0
        self.t0 = time.monotonic()
        self.width = 0

    def update(self, arch: str, n: int, arch_done: int, arch_total: int) -> None:
        self.done += n
        if not self.enabled:
            return
        el = time.monotonic() - self.t0
        eta = el / self.done * (self.total - self.done) if self.done else 0.0
        msg = (f"{arch}: {arch_done}/{arch_total} examples; all: {self.done}/{self.total}, "
               f"ETA {eta:.0f} s")
        self.stream.write("\r" + msg.ljust(self.width))
        self.width = len(msg)
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


_SUBJECT: Subject | None = None


def _init_worker(subject: Subject) -> None:
    global _SUBJECT
    _SUBJECT = subject


def _timed(subject: Subject, arch: str, seed: int, index: int) -> ExampleResult:
    t = time.perf_counter()
    r = subject.example(arch, seed, index)
    return replace(r, seconds=time.perf_counter() - t)


def _run_chunk(arch: str, seed: int, lo: int, hi: int) -> list[ExampleResult]:
    """Examples ``lo`` .. ``hi - 1`` of ``arch`` in a worker; stops after a divergence."""
    assert _SUBJECT is not None
    out = []
    for i in range(lo, hi):
        r = _timed(_SUBJECT, arch, seed, i)
        out.append(r)
        if r.divergence is not None:
            break
    return out


def _run_shrink(arch: str, seed: int, index: int, budget_s: float) -> Divergence:
    assert _SUBJECT is not None
    return _SUBJECT.shrink(arch, seed, index, budget_s)


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_campaigns(subject: Subject, arches: Sequence[str], examples: int, seed: int, *,
                  jobs: int = 1, keep_going: bool = False, shrink: bool = True,
                  shrink_budget_s: float = 30.0, progress: Progress | None = None,
                  name: str = "") -> Report:
    """``examples`` examples of ``subject`` on each of ``arches``.

    Examples run in ``jobs`` processes (1: in this one), in chunks; results do not depend
    on ``jobs``: each configuration reports its lowest-numbered diverging example.  Without
    ``keep_going`` the campaign stops at the first divergence (in configuration order, then
    example order) and the configurations after it are listed in :attr:`Report.not_run`."""
    t0 = time.monotonic()
    results: dict[str, dict[int, ExampleResult]] = {a: {} for a in arches}
    first_div: dict[str, int] = {}
    order = {a: i for i, a in enumerate(arches)}
    stop: tuple[int, int] | None = None
    prog = progress or Progress(len(arches) * examples, enabled=False)

    def record(arch: str, rs: Iterable[ExampleResult]) -> None:
        nonlocal stop
        n = 0
        for r in rs:
            results[arch][r.index] = r
            n += 1
            if r.divergence is not None:
                first_div[arch] = min(first_div.get(arch, r.index), r.index)
                if not keep_going:
                    key = (order[arch], r.index)
                    stop = key if stop is None else min(stop, key)
        prog.update(arch, n, len(results[arch]), examples)

    def wanted(arch: str, lo: int) -> bool:
        if arch in first_div and lo > first_div[arch]:
            return False
        return stop is None or (order[arch], lo) <= stop

    pool: ProcessPoolExecutor | None = None
    try:
        if jobs <= 1 or examples * len(arches) <= 1:
            _init_worker(subject)
            for a in arches:
                for i in range(examples):
                    if not wanted(a, i):
                        break
                    record(a, [_timed(subject, a, seed, i)])
        else:
            pool = ProcessPoolExecutor(jobs, mp_context=_context(), initializer=_init_worker,
                                       initargs=(subject,))
            chunk = max(1, min(8, examples // (jobs * 2) or 1))
            futs: dict[Future[list[ExampleResult]], tuple[str, int]] = {}
            # round robin over configurations: the slow ones do not all queue at the end
            for lo in range(0, examples, chunk):
                for a in arches:
                    f = pool.submit(_run_chunk, a, seed, lo, min(examples, lo + chunk))
                    futs[f] = (a, lo)
            pending = set(futs)
            from concurrent.futures import FIRST_COMPLETED, wait
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=lambda f: order[futs[f][0]] * examples + futs[f][1]):
                    a, lo = futs[f]
                    if f.cancelled():
                        continue
                    record(a, f.result())
                for f in list(pending):
                    if not wanted(*futs[f]) and f.cancel():
                        pending.discard(f)
        # per-configuration reports, only what a sequential run would have seen
        report = Report(name, seed)
        applicable = {a: subject.applicable(a) for a in arches}
        shrinks: dict[str, Future[Divergence] | Divergence] = {}
        for a in arches:
            if stop is not None and order[a] > stop[0]:
                report.not_run.append(a)
                continue
            if shrink and a in first_div:
                if pool is not None:
                    shrinks[a] = pool.submit(_run_shrink, a, seed, first_div[a],
                                             shrink_budget_s)
                else:
                    shrinks[a] = subject.shrink(a, seed, first_div[a], shrink_budget_s)
            last = first_div.get(a, examples - 1)
            rs = [r for i, r in sorted(results[a].items()) if i <= last]
            cov: Counter[str] = Counter()
            for r in rs:
                cov.update(r.tags)
            report.configs.append(ConfigReport(
                a, len(rs), sum(r.ops for r in rs), dict(cov), applicable[a],
                sum(r.seconds for r in rs),
                first_seen=None if a not in first_div else results[a][first_div[a]].divergence,
            ))
        for c in report.configs:
            s = shrinks.get(c.arch)
            if isinstance(s, Future):
                s = s.result()
            if s is not None:
                c.divergence = s
            elif c.first_seen is not None:
                c.divergence = Divergence(c.arch, Scenario((), ""), None, None, "example "
                                          f"{first_div[c.arch]}", (c.first_seen,),
                                          example=first_div[c.arch], seed=seed)
    finally:
        prog.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    report.seconds = time.monotonic() - t0
    return report


def resolve_arches(arch: str | Sequence[str]) -> list[str]:
    """``all``, one name, or a list of names; :class:`BadInput` naming the known ones."""
    names = arch_names()
    want = names if arch == "all" else ([arch] if isinstance(arch, str) else list(arch))
    for a in want:
        if a not in names:
            raise BadInput(f"unknown --arch {a!r} (known: {', '.join(names)}, all)")
    return want


def compare_pair(legacy: LegacyFn | Pair | str, unified: UnifiedFn | None = None, *,
                 arch: str | Sequence[str] = "all", examples: int = 50, seed: int = 0,
                 jobs: int = 1, keep_going: bool = True, out: str | Path | None = None,
                 shrink: bool = True, progress: bool = False) -> Report:
    """Run a call-site pair side by side on ``examples`` examples of each configuration.

    ``legacy`` is the legacy function (with ``unified``), a :class:`Pair`, or a
    ``MODULE:FN,MODULE:FN`` spec.  With ``out`` a reproducer is written there for each
    divergence (:attr:`ConfigReport.reproducer`).  Returns the :class:`Report`;
    ``report.ok`` is True when every configuration was identical."""
    if isinstance(legacy, str):
        pair = Pair.load(legacy)
    elif isinstance(legacy, Pair):
        pair = legacy
    else:
        if unified is None:
            raise BadInput("compare_pair: a legacy function needs its unified function")
        pair = Pair(legacy, unified)
    if examples < 0:
        raise BadInput("--examples must be >= 0")
    arches = resolve_arches(arch)
    prog = Progress(len(arches) * examples, enabled=None if progress else False)
    report = run_campaigns(PairSubject(pair), arches, examples, seed, jobs=jobs,
                           keep_going=keep_going, shrink=shrink, progress=prog,
                           name=pair.name)
    if out is not None:
        write_reproducers(pair, report, Path(out))
    return report


def write_reproducers(pair: Pair, report: Report, out: Path) -> None:
    """``pair-<arch>-seed<S>.json`` in ``out`` for each shrunk divergence of ``report``."""
    for c in report.configs:
        d = c.divergence
        if d is None or d.start is None:
            continue
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"pair-{c.arch}-seed{report.seed}.json"
        path.write_text(json.dumps(reproducer_json(pair, d), indent=1) + "\n",
                        encoding="utf-8")
        c.reproducer = path


__all__ += ["PairSubject", "Progress", "Subject", "applicable_tags", "default_jobs",
            "interesting_points", "kernel_level_name", "load_reproducer", "make_example",
            "reproducer_json", "resolve_arches", "scenario_gen", "write_reproducers", "zap", "Zap",
            "choose_zaps", "add_variety"]
