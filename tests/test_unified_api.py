"""The unified page-table API (unified/) against the legacy API it wraps, per configuration.

Every expectation here comes from the legacy API (a second booted kernel running the legacy
calls the kernel would make) or from a stated kernel fact; the unified side may not touch
memory, but these tests may (``k.mem.image()``, ``k.mem.is_allocated``, ``k.ptdescs``).

Review points of the 2018 review (docs/unified-api.md, R1-R12) proven here: R1
(handles), R2 (levels), R3 (``range_end``), R4/R5/R8 (roots), R6 (``descend``), R7
(``ensure_table``/``free_table``);
R11 values are exercised on i386-pae (64-bit entries on a 32-bit configuration).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legacy
from legacy import (
    VM_READ,
    VM_WRITE,
    BadInput,
    EntryPtr,
    GenericKernel,
    P4dPtr,
    PgdPtr,
    PmdPtr,
    PtePtr,
    PtshimError,
    PudPtr,
    mm_struct,
    pgprot_t,
    vm_area_struct,
)
from legacy.mm.memory import free_pgd_range
from legacy.mm.mmu_gather import tlb_finish_mmu, tlb_gather_mmu
from legacy.mm.pagewalk import ACTION_AGAIN, ACTION_CONTINUE, mm_walk, mm_walk_ops, walk_page_range
from legacy.mm_types import mmap_write_locked
from ptshim.scenario import Limits
from unified import Entry, Level, LevelGroup, PageTables, Table, Value
from unified.walk import Action, walk_range

ARCHES = legacy.arch_names()
X86 = [n for n in ARCHES if n.startswith(("x86_64", "i386"))]

LEGACY_PTR: dict[Level, type[EntryPtr]] = {
    Level.PGD: PgdPtr, Level.P4D: P4dPtr, Level.PUD: PudPtr, Level.PMD: PmdPtr, Level.PTE: PtePtr,
}

# Facts from the kernel headers: the real levels of each configuration and its root.
#  x86_64: 4-level paging, p4d folded at run time (pgtable_l5_enabled() false): the pgd
#          entries are the PML4Es, whose meaningful predicates are the p4d ones.
#  x86_64-la57: 5 levels, nothing folded.
#  i386: 2-level, pgtable-nopmd.h (which includes -nopud.h, -nop4d.h): the pgd is the PMD.
#  i386-pae: 3-level, pgtable-nopud.h: the 4-entry PDPT is the pud level.
#  arm64-4k-48: CONFIG_PGTABLE_LEVELS=4, pgtable-nop4d.h.
#  arm64-4k-39, arm64-16k-47: CONFIG_PGTABLE_LEVELS=3, pgtable-nopud.h (root = L1 = pud).
#  arm64-16k-36, arm64-64k-42: CONFIG_PGTABLE_LEVELS=2, pgtable-nopmd.h (root = L2 = pmd).
#  arm64-16k-48: 4 levels, nop4d, a 2-entry L0 pgd; arm64-64k-48: 3, nopud, a 64-entry L1.
ROOT_LEVEL = {
    "x86_64": Level.P4D, "x86_64-la57": Level.PGD, "i386": Level.PMD, "i386-pae": Level.PUD,
    "arm64-4k-48": Level.P4D, "arm64-4k-39": Level.PUD, "arm64-16k-47": Level.PUD,
    "arm64-64k-42": Level.PMD, "arm64-16k-36": Level.PMD,
    "arm64-16k-48": Level.P4D, "arm64-64k-48": Level.PUD,
}
ROOT_ENTRIES = {"x86_64": 512, "x86_64-la57": 512, "i386": 1024, "i386-pae": 4,
                "arm64-4k-48": 512, "arm64-4k-39": 512, "arm64-16k-47": 2048,
                "arm64-64k-42": 8192, "arm64-16k-36": 2048, "arm64-16k-48": 2,
                "arm64-64k-48": 64}
ROOT_SPAN = {"x86_64": 1 << 39, "x86_64-la57": 1 << 48, "i386": 1 << 22, "i386-pae": 1 << 30,
             "arm64-4k-48": 1 << 39, "arm64-4k-39": 1 << 30, "arm64-16k-47": 1 << 36,
             "arm64-64k-42": 1 << 29, "arm64-16k-36": 1 << 25, "arm64-16k-48": 1 << 47,
             "arm64-64k-48": 1 << 42}
ROOT_LEVELS = {"x86_64": 4, "x86_64-la57": 5, "i386": 2, "i386-pae": 3, "arm64-4k-48": 4,
               "arm64-4k-39": 3, "arm64-16k-47": 3, "arm64-64k-42": 2, "arm64-16k-36": 2,
               "arm64-16k-48": 4, "arm64-64k-48": 3}
SEPARATE_KERNEL_ROOT = {"x86_64": False, "x86_64-la57": False, "i386": False,
                        "i386-pae": False, "arm64-4k-48": True, "arm64-4k-39": True,
                        "arm64-16k-47": True, "arm64-64k-42": True,
                        "arm64-16k-36": True, "arm64-16k-48": True, "arm64-64k-48": True}

HYP = settings(max_examples=100, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- helpers ------------------------------------------------------------------------------


def fresh(name: str) -> tuple[GenericKernel, PageTables, mm_struct]:
    """A freshly booted kernel, its unified API and a new user mm."""
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    return k, PageTables(k), mm


def relax(k: GenericKernel) -> None:
    """For fixtures that poke raw entries into tables (both APIs side by side): no lock
    assertions, no TLB marks (docs/tlb-and-locks.md: switched off narrowly)."""
    k.lockdep_enabled = False
    k.hw_tlb.enabled = False


def put(pt: PageTables, entry: Entry, value: Value) -> None:
    """``pt.write`` under the lock of the entry's table, flushing what it owes."""
    with pt.locked(entry.table):
        pt.write(entry, value).flush()


@functools.cache
def shared(name: str) -> tuple[GenericKernel, PageTables, mm_struct]:
    """One kernel per configuration for tests that only add tables (hypothesis loops)."""
    return fresh(name)


def user_addr(k: GenericKernel) -> int:
    """A user address with a non-zero index at the PTE and PMD levels."""
    return (k.PUD_SIZE + 3 * k.PMD_SIZE + 5 * k.PAGE_SIZE) & k.ULONG_MASK


def kernel_addr(k: GenericKernel) -> int:
    return k.config.kernel_range[0] + 2 * k.PMD_SIZE + 7 * k.PAGE_SIZE


def path(pt: PageTables, root: Table, addr: int) -> list[Table]:
    """The tables from ``root`` down to the PTE table for ``addr``, allocated if needed."""
    tables = [root]
    while tables[-1].level != Level.PTE:
        child = pt.ensure_table(pt.entry(tables[-1], addr))
        assert child is not None
        tables.append(child)
    return tables


def table_at(pt: PageTables, root: Table, addr: int, level: Level) -> Table:
    return next(t for t in path(pt, root, addr) if t.group.level == level)


def group_with(pt: PageTables, mm: mm_struct, level: Level) -> LevelGroup:
    return next(g for g in pt.levels(mm) if level in g.members)


def legacy_path(k: GenericKernel, mm: mm_struct, addr: int) -> PtePtr:
    """Build the path for ``addr`` the way the kernel's call sites do: ``pgd_offset``,
    ``p4d_alloc``, ``pud_alloc``, ``pmd_alloc``, ``pte_alloc`` (``pte_alloc_kernel``)."""
    pgd = k.pgd_offset(mm, addr)
    p4d = k.p4d_alloc(mm, pgd, addr)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, addr)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, addr)
    assert pmd is not None
    if mm is k.init_mm:
        assert k.pte_alloc_kernel(pmd, addr) is not None
    else:
        assert k.pte_alloc(mm, pmd) == 0
    return k.pte_offset_kernel(pmd, addr)


def legacy_chain(k: GenericKernel, mm: mm_struct, addr: int) -> dict[Level, EntryPtr]:
    """The legacy ``pXd_offset`` chain for a populated path: every level's entry pointer."""
    pgd = k.pgd_offset(mm, addr)
    p4d = k.p4d_offset(pgd, addr)
    pud = k.pud_offset(p4d, addr)
    pmd = k.pmd_offset(pud, addr)
    pte = k.pte_offset_kernel(pmd, addr)
    return {Level.PGD: pgd, Level.P4D: p4d, Level.PUD: pud, Level.PMD: pmd, Level.PTE: pte}


def legacy_addr_end(k: GenericKernel, level: Level, addr: int, end: int) -> int:
    """``pXd_addr_end`` of ``level``; the PTE level has none in the kernel (its loops step by
    ``PAGE_SIZE``), so its boundary is written out the same way."""
    if level is Level.PTE:
        m = k.ULONG_MASK
        boundary = (addr + k.PAGE_SIZE) & k.PAGE_MASK & m
        return boundary if ((boundary - 1) & m) < ((end - 1) & m) else end
    fn: Callable[[int, int], int] = getattr(k, f"{level.legacy_name}_addr_end")
    return fn(addr, end)


def reference_end(size: int, mask: int, addr: int, end: int) -> int:
    """First principles: the next multiple of ``size`` above ``addr`` in ``unsigned long``
    arithmetic, or ``end`` if that comes first, compared as ``boundary - 1 < end - 1``."""
    boundary = ((addr + size) & ~(size - 1)) & mask
    return boundary if ((boundary - 1) & mask) < ((end - 1) & mask) else end


def image(k: GenericKernel) -> list[tuple[int, bytes]]:
    return list(k.mem.image())


def prot(k: GenericKernel) -> pgprot_t:
    return k.vm_get_page_prot(VM_READ | VM_WRITE)


def leaf(k: GenericKernel, level: Level, pa: int) -> Value:
    """A present leaf at ``level`` mapping ``pa``, built with the legacy value helpers."""
    pfn = pa >> k.PAGE_SHIFT
    p = k.vm_get_page_prot(VM_READ | VM_WRITE)
    if level is Level.PTE:
        return Value(level, k.pfn_pte(pfn, p))
    if level is Level.PMD:
        return Value(level, k.pmd_mkhuge(k.pfn_pmd(pfn, p)))
    if level is Level.PUD:
        return Value(level, k.pud_mkhuge(k.pfn_pud(pfn, p)))
    raise AssertionError(level)


def walk_all(pt: PageTables, root: Table, start: int, end: int) -> Iterator[Table]:
    """Every table below ``root`` reachable over ``[start, end)`` (for accounting checks)."""
    for e, a, n in pt.entries(root, start, end):
        if pt.is_table(pt.read(e)):
            child = pt.descend(e)
            yield child
            yield from walk_all(pt, child, a, n)


# -- levels (R2) --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_levels_derived_from_legacy_folding(name: str) -> None:
    """Real levels = 5 - folded levels; every folded level sits inside a group below its
    top; the groups tile PGD..PTE; the root's level is the top group's; geometry is the
    legacy ``X_SHIFT``/``PTRS_PER_X`` of each group's geometry member.  For the process mm
    and for ``init_mm``, each from its own ``mm_p?d_folded`` (s390 folds per mm at run
    time: a new process has 3 levels, ``init_mm`` 5)."""
    k, pt, mm = fresh(name)
    by_mm: dict[str, dict[Level, bool]] = {}
    for m in (mm, k.init_mm):
        groups = pt.levels(m)
        folded = {Level.P4D: k.mm_p4d_folded(m), Level.PUD: k.mm_pud_folded(m),
                  Level.PMD: k.mm_pmd_folded(m), Level.PTE: False, Level.PGD: False}
        by_mm[m.name] = folded
        assert len(groups) == 5 - sum(folded.values())
        assert groups[0].top is Level.PGD and groups[-1] == LevelGroup(Level.PTE, Level.PTE)
        members = [lv for g in groups for lv in g.members]
        assert members == [Level.PGD, Level.P4D, Level.PUD, Level.PMD, Level.PTE]
        for g in groups:
            assert g.level == g.bottom
            assert not folded[g.top]
            assert all(folded[lv] for lv in g.members[1:]), g
            # geometry: the lowest member with more than one entry (s390's run-time
            # folding), else the top (pgtable-nop?d.h: the folded members have one)
            many = [lv for lv in reversed(g.members[1:])
                    if getattr(k, f"PTRS_PER_{lv.legacy_name.upper()}") > 1]
            assert g.geometry is (many[0] if many else g.top)
            top = g.geometry.legacy_name.upper()
            shift = k.PAGE_SHIFT if g.geometry is Level.PTE else getattr(
                k, "PGDIR_SHIFT" if g.geometry is Level.PGD else f"{top}_SHIFT")
            assert pt.level_size(g) == 1 << shift
            assert pt.entries_per_table(g) == getattr(k, f"PTRS_PER_{top}")
        for upper, lower in itertools.pairwise(groups):
            assert pt.lower(upper, m) == lower
            assert lower.top == upper.bottom - 1
            assert lower.level < upper.level
        assert pt.lower(groups[-1], m) is None
    # the same levels wherever the kernel folds the same ones (every compile-time folding)
    if by_mm[mm.name] == by_mm[k.init_mm.name]:
        assert pt.levels(k.init_mm) == pt.levels(mm)
    else:
        assert pt.levels(k.init_mm) != pt.levels(mm)
    groups = pt.levels(mm)
    root = pt.root_for(mm, 0)
    assert root.group == groups[0] and root.level == groups[0].level and root.is_root


@pytest.mark.parametrize("name", ARCHES)
def test_root_level_is_the_kernel_fact(name: str) -> None:
    """x86_64 root is P4D (p4d folded at run time), la57 PGD, i386 PMD, i386-pae PUD,
    arm64-4k-48 P4D: the root is named by the lowest level of its group."""
    if name not in ROOT_LEVEL:
        pytest.skip(f"no stated kernel facts for {name}")
    k, pt, mm = fresh(name)
    for root in (pt.root_for(mm, 0), pt.kernel_root()):
        assert root.level == ROOT_LEVEL[name]
        assert pt.entries_per_table(root.group) == ROOT_ENTRIES[name]
        assert pt.level_size(root.group) == ROOT_SPAN[name]
    assert len(pt.levels(mm)) == ROOT_LEVELS[name]
    assert pt.levels(mm)[-1].level == Level.PTE
    assert int(Level.PTE) == 0  # level 0 is the leaf-most level everywhere


# -- entries (R1) ---------------------------------------------------------------------------


def _draw_addr(data: st.DataObject, k: GenericKernel) -> int:
    lo_u, hi_u = k.config.user_range
    lo_k, hi_k = k.config.kernel_range
    page = k.PAGE_SIZE
    return data.draw(st.one_of(
        st.integers(lo_u, hi_u - 1),
        st.integers(lo_k, hi_k - 1),
        st.sampled_from([lo_u, hi_u - 1, lo_k, hi_k - 1, hi_k - page, lo_k + page - 1]),
    ))


def _mm_for(k: GenericKernel, mm: mm_struct, addr: int) -> mm_struct:
    return k.init_mm if k.config.is_kernel(addr) else mm


@pytest.mark.parametrize("name", ARCHES)
@HYP
@given(data=st.data())
def test_entry_matches_entry_at_and_legacy_offsets(name: str, data: st.DataObject) -> None:
    """``entry(table, addr)`` and ``entry_at(table, index)`` name the same slot; its pointer
    is the legacy ``pXd_offset`` chain's pointer at the group's lowest level; its ``va`` is
    ``addr`` rounded down to the entry's span (not sign-extended for ``entry_at`` on the
    root, as documented)."""
    k, pt, mm = shared(name)
    addr = _draw_addr(data, k)
    owner = _mm_for(k, mm, addr)
    tables = path(pt, pt.root_for(owner, addr), addr)
    chain = legacy_chain(k, owner, addr)
    m = k.ULONG_MASK
    for t in tables:
        e = pt.entry(t, addr)
        size = pt.level_size(t.group)
        assert e.ptr == chain[t.group.bottom]
        assert type(e.ptr) is LEGACY_PTR[t.group.bottom]
        assert e.va == addr & ~(size - 1) & m
        assert e.table is t and e.level == t.level and e.mm is owner
        at = pt.entry_at(t, e.index)
        assert (at.index, at.ptr, at.table) == (e.index, e.ptr, e.table)
        span = size * pt.entries_per_table(t.group)
        if t.is_root:
            assert at.va == e.va % span
        else:
            assert at.va == e.va
            assert pt.entry(t, at.va).ptr == at.ptr
    with pytest.raises(BadInput):
        pt.entry_at(tables[0], pt.entries_per_table(tables[0].group))
    with pytest.raises(BadInput):
        pt.entry_at(tables[-1], -1)


# -- range_end (R3) -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
@HYP
@given(data=st.data())
def test_range_end_is_legacy_addr_end(name: str, data: st.DataObject) -> None:
    """``range_end`` is the legacy ``pXd_addr_end`` of the group's top level on random
    ``addr``/``end``; a folded member's ``X_addr_end`` returns its ``end`` unchanged inside
    the group's range (so the legacy nested loops and the unified single loop step alike);
    both equal the first-principles definition."""
    k, pt, mm = shared(name)
    addr = _draw_addr(data, k)
    m = k.ULONG_MASK
    end = data.draw(st.one_of(
        st.integers(0, m),
        st.sampled_from([0, m, addr, (addr + 1) & m, (addr - 1) & m]),
        st.integers(0, 4 * k.PMD_SIZE).map(lambda d: (addr + d) & m),
    ))
    owner = _mm_for(k, mm, addr)
    for t in path(pt, pt.root_for(owner, addr), addr):
        e = pt.entry(t, addr)
        got = pt.range_end(e, addr, end)
        assert got == legacy_addr_end(k, t.group.geometry, addr, end)
        assert got == reference_end(pt.level_size(t.group), m, addr, end)
        for folded in t.group.members[1:]:
            assert legacy_addr_end(k, folded, addr, got) == got
        span = pt.entries_per_table(t.group) * pt.level_size(t.group)
        last = (end - 1) & m
        if t.parent is None or (t.va <= addr < t.va + span and t.va <= last < t.va + span):
            first = next(pt.entries(t, addr, end))
            assert first == (e, addr, got)
        else:  # the range runs off this table: iterating it would read past its end
            with pytest.raises(BadInput):
                next(pt.entries(t, addr, end))


@pytest.mark.parametrize("name", ARCHES)
def test_range_end_and_entries_at_the_top_of_the_address_space(name: str) -> None:
    """At the last entry of every table on the path of the last page (the top of the 64-bit
    or 32-bit space), with ``end == 0`` (= the top), ``range_end`` returns 0 and
    ``entries()``/``walk_range`` stop there instead of wrapping to address 0."""
    k, pt, _ = fresh(name)
    m = k.ULONG_MASK
    top = m + 1
    last = top - k.PAGE_SIZE
    assert top == 1 << k.config.word_bits
    tables = path(pt, pt.kernel_root(), last)
    for t in tables:
        e = pt.entry(t, last)
        assert e.index == pt.entries_per_table(t.group) - 1
        assert pt.range_end(e, e.va, 0) == 0
        assert pt.range_end(e, last, 0) == 0
        assert legacy_addr_end(k, t.group.top, e.va, 0) == 0
        # A wrapped boundary never looks smaller than a real end.
        assert pt.range_end(e, e.va, m) == m
        got = list(itertools.islice(pt.entries(t, e.va, 0), 10))
        assert [(x.index, a, n) for x, a, n in got] == [(e.index, e.va, 0)]
    pte_table = tables[-1]
    got = list(itertools.islice(pt.entries(pte_table, top - 3 * k.PAGE_SIZE, 0), 10))
    assert [(a, n) for _, a, n in got] == [
        (top - 3 * k.PAGE_SIZE, top - 2 * k.PAGE_SIZE),
        (top - 2 * k.PAGE_SIZE, last),
        (last, 0),
    ]
    # walk_range to the very top: the last two pages are mapped, everything else is a hole.
    for a in (last - k.PAGE_SIZE, last):
        pt.write(pt.entry(pte_table, a), leaf(k, Level.PTE, 0x200000 + (a & 0xFFFFF)))
    seen: list[tuple[int, int, int]] = []
    holes: list[tuple[int, int]] = []

    def visit(e: Entry, v: Value, a: int, n: int) -> None:
        seen.append((e.level, a, n))
        assert len(seen) < 100, "walk_range does not terminate at the top"

    start = top - 4 * k.PAGE_SIZE
    walk_range(pt, pt.kernel_root(), start, 0, visit, lambda a, n, lv: holes.append((a, n)))
    leaves = [(a, n) for lv, a, n in seen if lv == Level.PTE]
    assert leaves == [(last - k.PAGE_SIZE, last), (last, 0)]
    # Holes are reported per empty entry, not merged (like the legacy pte_hole).
    assert holes == [(start, start + k.PAGE_SIZE), (start + k.PAGE_SIZE, last - k.PAGE_SIZE)]


# -- descend (R6) ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_descend_returns_a_new_handle_one_real_level_down(name: str) -> None:
    """``descend`` leaves the entry alone and returns a new table handle at the next real
    level (skipping folded levels), whose first entry is where the legacy ``X_offset`` of
    the child's top level puts it; it raises on a none entry, a leaf and a PTE."""
    k, pt, mm = fresh(name)
    addr = user_addr(k)
    tables = path(pt, pt.root_for(mm, addr), addr)
    chain = legacy_chain(k, mm, addr)
    for parent, child in itertools.pairwise(tables):
        e = pt.entry(parent, addr)
        before = (e.table, e.index, e.ptr, e.va)
        got = pt.descend(e)
        assert (e.table, e.index, e.ptr, e.va) == before
        assert got is not child and got == child
        assert got.group == pt.lower(parent.group, mm)
        assert got.level < parent.level
        assert got.parent == e and not got.is_root
        assert got.va == e.va
        idx = pt.legacy[got.group.top].index(addr)
        assert got.first + idx == LEGACY_PTR[got.group.top](
            chain[got.group.top].pa, chain[got.group.top].size)
        assert pt.entry(got, addr).ptr == chain[got.group.bottom]
    # none
    pmd_table = table_at(pt, tables[0], addr, Level.PMD)
    none_entry = pt.entry(pmd_table, (pmd_table.va + k.PMD_SIZE * 7) & k.ULONG_MASK)
    assert pt.is_none(pt.read(none_entry))
    with pytest.raises(BadInput):
        pt.descend(none_entry)
    # leaf: a huge PMD, where the hardware has a leaf of PMD_SIZE (not classic arm's 2M pgd
    # entry, two 1M descriptors: no pfn_pmd/pmd_mkhuge without LPAE)
    if k.PMD_SIZE in k.config.leaf_sizes:
        put(pt, none_entry, leaf(k, Level.PMD, 64 * k.PMD_SIZE))
        assert pt.is_leaf(pt.read(none_entry)) and not pt.is_table(pt.read(none_entry))
        with pytest.raises(BadInput):
            pt.descend(none_entry)
        with pytest.raises(BadInput):
            pt.ensure_table(none_entry)
    # a PTE entry has nothing below it
    pte_entry = pt.entry(tables[-1], addr)
    put(pt, pte_entry, leaf(k, Level.PTE, 0x123000))
    with pytest.raises(BadInput):
        pt.descend(pte_entry)
    with pytest.raises(BadInput):
        pt.ensure_table(pte_entry)


# -- ensure_table / free_table (R7) --------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
@pytest.mark.parametrize("space", ["user", "kernel"])
def test_ensure_table_allocates_and_accounts_like_legacy(name: str, space: str) -> None:
    """Building paths with ``ensure_table`` on one kernel and with the legacy
    ``p4d_alloc``/``pud_alloc``/``pmd_alloc``/``pte_alloc`` (``pte_alloc_kernel`` for
    ``init_mm``) on another gives the same ``pgtables_bytes``, the same page descriptors
    (level, split lock) and byte-identical memory images."""
    k1, pt, m1 = fresh(name)
    k2 = legacy.boot(name)
    m2 = k2.mm_alloc()
    assert m2 is not None
    if space == "kernel":
        m1, m2 = k1.init_mm, k2.init_mm
        base = kernel_addr(k1)
    else:
        base = user_addr(k1)
    assert image(k1) == image(k2)
    mm_bytes0 = m1.pgtables_bytes
    addrs = [base, base + k1.PAGE_SIZE, base + k1.PMD_SIZE, base + 5 * k1.PUD_SIZE + k1.PAGE_SIZE]
    for a in addrs:
        a &= k1.ULONG_MASK
        tables = path(pt, pt.root_for(m1, a), a)
        ptep = legacy_path(k2, m2, a)
        assert pt.entry(tables[-1], a).ptr == ptep
        assert m1.pgtables_bytes == m2.pgtables_bytes
        assert image(k1) == image(k2)
        # Idempotent: an existing table is returned, nothing is allocated.
        n = len(k1.mem)
        assert path(pt, pt.root_for(m1, a), a) == tables
        assert len(k1.mem) == n
    if space == "user":
        assert m1.pgtables_bytes > mm_bytes0
    assert {pa: (d.level, d.ptl is None) for pa, d in k1.ptdescs.items()} == {
        pa: (d.level, d.ptl is None) for pa, d in k2.ptdescs.items()}


@pytest.mark.parametrize("name", ARCHES)
def test_ensure_table_enomem_returns_none_and_leaves_nothing(name: str) -> None:
    """With the next frame allocation failing (``k.mem.fail_after(1)``), ``ensure_table``
    on a none entry at every level returns None and changes nothing: same frames, same
    bytes, same ``pgtables_bytes``, same descriptors, no lock left held."""
    _, probe_pt, probe_mm = fresh(name)
    depth = len(probe_pt.levels(probe_mm)) - 1
    for d in range(depth):
        k, pt, mm = fresh(name)
        addr = user_addr(k)
        t = pt.root_for(mm, addr)
        for _ in range(d):
            nxt = pt.ensure_table(pt.entry(t, addr))
            assert nxt is not None
            t = nxt
        e = pt.entry(t, addr)
        if not pt.is_none(pt.read(e)):
            continue  # preallocated (the i386-pae PDPT's PMDs): nothing to allocate here
        before = (image(k), mm.pgtables_bytes, sorted(k.ptdescs), k.mem.allocations)
        k.mem.fail_after(1)
        assert pt.ensure_table(e) is None
        k.mem.fail_after(0)
        assert (image(k), mm.pgtables_bytes, sorted(k.ptdescs), k.mem.allocations) == before
        assert pt.is_none(pt.read(e))
        assert not mm.page_table_lock.held
        # and the next attempt succeeds
        assert pt.ensure_table(e) is not None


@pytest.mark.parametrize("name", ARCHES)
def test_free_table_refuses_roots_and_live_tables(name: str) -> None:
    """``free_table`` refuses a root (freed with its mm by ``pgd_free``) and any table that
    still has a non-empty entry (a leaf, or a lower table), leaving memory untouched."""
    k, pt, mm = fresh(name)
    addr = user_addr(k)
    tables = path(pt, pt.root_for(mm, addr), addr)
    with pytest.raises(BadInput):
        pt.free_table(tables[0])
    with pytest.raises(BadInput):
        pt.free_table(pt.kernel_root())
    put(pt, pt.entry(tables[-1], addr), leaf(k, Level.PTE, 0x123000))
    snapshot = (image(k), mm.pgtables_bytes, sorted(k.ptdescs))
    for t in tables[1:]:
        with pytest.raises(BadInput):
            pt.free_table(t)
    assert (image(k), mm.pgtables_bytes, sorted(k.ptdescs)) == snapshot


def table_bytes(k: GenericKernel, level: Level) -> int:
    """The size of a table of ``level``: ``PTRS_PER_PXD * sizeof(pXd_t)``."""
    name = level.legacy_name
    return int(getattr(k, f"PTRS_PER_{name.upper()}")) * int(
        getattr(k, f"SIZEOF_{name.upper()}", k.SIZEOF_PTE))


@pytest.mark.parametrize("name", ARCHES)
def test_free_table_releases_frame_lock_and_charge_like_free_pgd_range(name: str) -> None:
    """Freeing the path's tables bottom-up with ``free_table`` does what the legacy
    ``free_pgd_range`` (``pXd_clear`` + ``pXd_free_tlb`` + ``mm_dec_nr_*``) does on a second
    kernel: same memory image, same ``pgtables_bytes``; each freed table's frame is no
    longer allocated, its descriptor and split lock are gone, its charge is undone."""
    k1, pt, m1 = fresh(name)
    k2 = legacy.boot(name)
    m2 = k2.mm_alloc()
    assert m2 is not None
    addr = user_addr(k1)
    tables = path(pt, pt.root_for(m1, addr), addr)
    legacy_path(k2, m2, addr)
    assert image(k1) == image(k2)
    for t in reversed(tables[1:]):
        pa = t.first.pa
        had_lock = k1.ptdescs[pa].ptl is not None
        charge = m1.pgtables_bytes
        assert t.parent is not None
        with pt.locked(t.parent.table):
            owed = pt.free_table(t)  # unhooked and uncharged; the frame waits for the flush
        assert k1.mem.is_allocated(pa) and owed.pending
        owed.flush()  # invalidate (walk caches too), then free
        if table_bytes(k1, t.group.top) >= k1.PAGE_SIZE:  # (a fragment's page may stay)
            assert not k1.mem.is_allocated(pa)
        assert pa not in k1.ptdescs
        assert t.parent is not None and pt.is_none(pt.read(t.parent))
        top = t.group.top
        expect = {
            Level.PTE: k1.PTRS_PER_PTE * k1.SIZEOF_PTE,
            Level.PMD: 0 if k1.mm_pmd_folded(m1) else k1.PTRS_PER_PMD * k1.SIZEOF_PMD,
            Level.PUD: 0 if k1.mm_pud_folded(m1) else k1.PTRS_PER_PUD * k1.SIZEOF_PUD,
            Level.P4D: 0,  # p4d tables are not accounted (no mm_inc_nr_p4ds)
        }[top]
        assert charge - m1.pgtables_bytes == expect
        if top == Level.PTE or (top == Level.PMD and k1.USE_SPLIT_PMD_PTLOCKS):
            assert had_lock  # pagetable_pte_ctor / pagetable_pmd_ctor gave it a split lock
    # The legacy reference only gives the expected image here (its own TLB rules are
    # tests/test_tlb_model.py's business).
    k2.hw_tlb.enabled = False
    tlb = tlb_gather_mmu(k2, m2)
    with mmap_write_locked(m2), k2.pgtable_lockless(m2, "free_pgd_range"):
        free_pgd_range(k2, tlb, addr & k2.PAGE_MASK, (addr & k2.PAGE_MASK) + k2.PAGE_SIZE,
                       0, 0)
    tlb_finish_mmu(k2, tlb)
    k1.syscall_exit("free_table")
    k2.syscall_exit("free_pgd_range")
    assert m1.pgtables_bytes == m2.pgtables_bytes
    assert image(k1) == image(k2)
    assert sorted(k1.ptdescs) == sorted(k2.ptdescs)
    assert k1.mem.allocated_frames() == k2.mem.allocated_frames()
    # A stale handle cannot free anything: the frame is gone.
    with pytest.raises(PtshimError):
        pt.free_table(tables[-1])
    k1.mmdrop(m1)  # check_mm: nothing leaked, pgtables_bytes back to 0
    k2.mmdrop(m2)


# -- roots (R4, R5, R8) ---------------------------------------------------------------------


def _walk_to_pte(pt: PageTables, root: Table, addr: int) -> Entry:
    t = root
    while t.level != Level.PTE:
        t = pt.descend(pt.entry(t, addr))
    return pt.entry(t, addr)


def _map_kernel_page(k: GenericKernel, pt: PageTables, kaddr: int, pa: int) -> Entry:
    t = path(pt, pt.kernel_root(), kaddr)[-1]
    e = pt.entry(t, kaddr)
    pt.write(e, Value(Level.PTE, k.pfn_pte(pa >> k.PAGE_SHIFT, k.PAGE_KERNEL)))
    return e


@pytest.mark.parametrize("name", X86)
def test_root_for_kernel_address_on_x86_is_the_mm_pgd(name: str) -> None:
    """x86 has one root per mm (CR3): ``pgd_alloc`` clones the kernel half of
    ``swapper_pg_dir`` (or, on PAE, copies the kernel PMD), so ``root_for(mm, kaddr)`` is
    ``mm->pgd`` and walking a kernel mapping made in ``init_mm`` from it finds the same
    leaf, in the same (shared) PTE table."""
    assert not SEPARATE_KERNEL_ROOT[name]
    k = legacy.boot(name)
    pt = PageTables(k)
    kaddr = kernel_addr(k)
    kentry = _map_kernel_page(k, pt, kaddr, 0x5000000)
    mm = k.mm_alloc()  # after the kernel mapping: pgd_ctor clones it
    assert mm is not None
    root = pt.root_for(mm, kaddr)
    assert root.mm is mm and root.first == mm.pgd and root.is_root and root.parent is None
    assert pt.root_for(mm, user_addr(k)).first == mm.pgd
    assert pt.kernel_root().first == k.init_mm.pgd and pt.kernel_root().mm is k.init_mm
    assert pt.root_for(k.init_mm, kaddr).first == k.init_mm.pgd
    found = _walk_to_pte(pt, root, kaddr)
    assert pt.read(found) == pt.read(kentry)
    assert found.ptr == kentry.ptr


@pytest.mark.skipif("arm64-4k-48" not in ARCHES, reason="arm64-4k-48 not registered yet")
def test_root_for_kernel_address_on_arm64_is_the_kernel_root() -> None:
    """Andy Lutomirski asked (May 2018): on ARM, "what is supposed to happen if you do
    ptp_init(something that isn't init_mm) and then walk it to look for a kernel address?"

    Answer, as this test shows on arm64-4k-48: nothing good, which is why the unified API
    selects the root by mm *and address*.  The MMU translates kernel addresses through
    TTBR1_EL1 = ``swapper_pg_dir`` (``init_mm.pgd``) and never through the process root in
    TTBR0_EL1; arm64's ``pgd_alloc`` hands out a zeroed pgd with no kernel half.  Indexing a
    user pgd with a kernel address uses only the address's low 48 bits, so the walk finds
    either nothing or -- worse -- the *user* mapping that aliases those bits.
    ``root_for(mm, kaddr)`` therefore returns the kernel root (``kernel_root()``), and the
    walk from it finds the kernel mapping; ``root_for(mm, uaddr)`` is ``mm->pgd``."""
    name = "arm64-4k-48"
    assert SEPARATE_KERNEL_ROOT[name]
    k, pt, mm = fresh(name)
    kaddr = kernel_addr(k)
    kentry = _map_kernel_page(k, pt, kaddr, 0x5000000)
    root = pt.root_for(mm, kaddr)
    assert root.first == k.init_mm.pgd and root.mm is k.init_mm
    assert root == pt.kernel_root()
    assert pt.root_for(mm, user_addr(k)).first == mm.pgd
    found = _walk_to_pte(pt, root, kaddr)
    assert found.ptr == kentry.ptr and pt.read(found) == pt.read(kentry)
    # The user pgd has nothing for the kernel address...
    user_root = pt.root_for(mm, 0)
    assert pt.is_none(pt.read(pt.entry(user_root, kaddr)))
    # ...and once a user page aliases its low 48 bits, walking it finds the wrong leaf.
    alias = kaddr & ((1 << k.config.va_bits) - 1)
    assert k.config.is_user(alias)
    ue = pt.entry(path(pt, user_root, alias)[-1], alias)
    put(pt, ue, Value(Level.PTE, k.pfn_pte(0x7000, prot(k))))
    wrong = _walk_to_pte(pt, user_root, kaddr)
    assert wrong.ptr == ue.ptr and pt.read(wrong) != pt.read(kentry)
    assert _walk_to_pte(pt, pt.root_for(mm, kaddr), kaddr).ptr == kentry.ptr


@pytest.mark.parametrize("name", ARCHES)
def test_root_for_matches_the_stated_root_split(name: str) -> None:
    if name not in SEPARATE_KERNEL_ROOT:
        pytest.skip(f"no stated kernel facts for {name}")
    k, pt, mm = fresh(name)
    kroot = pt.root_for(mm, kernel_addr(k))
    assert (kroot.mm is k.init_mm) == SEPARATE_KERNEL_ROOT[name]
    assert pt.root_for(mm, user_addr(k)).mm is mm


# -- locks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_locked_takes_the_legacy_lock(name: str) -> None:
    """``locked(table)`` takes the split PTE lock of a PTE table (legacy ``pte_lockptr`` of
    the parent pmd), the split PMD lock of a PMD table (``pmd_lockptr``) unless the PMD is
    folded or the kernel has no split PMD locks (``USE_SPLIT_PMD_PTLOCKS``), and
    ``mm->page_table_lock`` for every other table (``pud_lockptr``); it releases it on
    exit, also on an exception."""
    k, pt, mm = fresh(name)
    addr = user_addr(k)
    for t in path(pt, pt.root_for(mm, addr), addr):
        e = pt.entry(t, addr)
        if t.level == Level.PTE:
            assert t.parent is not None
            legacy_lock = k.pte_lockptr(mm, PmdPtr(t.parent.ptr.pa, t.parent.ptr.size))
            assert legacy_lock is k.ptdescs[t.first.pa].ptl
        elif t.level == Level.PMD:
            legacy_lock = k.pmd_lockptr(mm, PmdPtr(e.ptr.pa, e.ptr.size))
            if k.mm_pmd_folded(mm) or not k.USE_SPLIT_PMD_PTLOCKS:  # (32-bit arm: none)
                assert legacy_lock is mm.page_table_lock
            else:
                assert legacy_lock is k.ptdescs[t.first.pa].ptl
        else:
            legacy_lock = k.pud_lockptr(mm, PudPtr(e.ptr.pa, e.ptr.size))
            assert legacy_lock is mm.page_table_lock
        assert pt.lockptr(t) is legacy_lock
        n = legacy_lock.acquisitions
        with pt.locked(t) as ptl:
            assert ptl is legacy_lock and ptl.held
        assert not legacy_lock.held and legacy_lock.acquisitions == n + 1
        with pytest.raises(RuntimeError), pt.locked(t):
            raise RuntimeError("callback failed")
        assert not legacy_lock.held


# -- none_or_clear_bad --------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_none_or_clear_bad_matches_legacy_on_non_leaves(name: str) -> None:
    """On none, table and corrupted (bad, non-leaf) entries, ``none_or_clear_bad`` answers,
    reports and clears exactly as the legacy ``pXd_none_or_clear_bad`` of the group's lowest
    level -- including arm64-4k-48's root, where ``__PAGETABLE_P4D_FOLDED`` makes
    ``p4d_clear_bad`` a no-op: the bad entry is skipped, not cleared.  (On a leaf it differs
    on purpose: it never clears a huge mapping.)"""
    k1, pt, m1 = fresh(name)
    k2 = legacy.boot(name)
    m2 = k2.mm_alloc()
    assert m2 is not None
    relax(k1)
    relax(k2)
    addr = user_addr(k1)
    tables = path(pt, pt.root_for(m1, addr), addr)
    legacy_path(k2, m2, addr)
    for t in tables[:-1]:
        e = pt.entry(t, addr)
        table_raw = pt.read(e).raw
        name = t.group.bottom.legacy_name
        fn = getattr(k2, f"{name}_none_or_clear_bad")
        lptr = LEGACY_PTR[t.group.bottom](e.ptr.pa, e.ptr.size)
        # the raw fixture values go in with the table-entry setters set_pmd/set_pud/...
        # on both kernels (set_pXd_at makes a leaf of anything on ppc64: _PAGE_PTE)
        set1, set2 = getattr(k1, f"set_{name}"), getattr(k2, f"set_{name}")
        for raw in (table_raw, table_raw ^ 1, 0):
            v = Value(t.level, raw)
            if pt.is_leaf(v):
                continue
            set1(lptr, raw)
            set2(lptr, raw)
            assert pt.none_or_clear_bad(e) == fn(lptr)
            assert image(k1) == image(k2)
            assert k1.bad_entries == k2.bad_entries  # the "bad pXd" reports (pXd_ERROR)
            set1(lptr, table_raw)
            set2(lptr, table_raw)


# -- walk_range vs walk_page_range --------------------------------------------------------


Leaf = tuple[int, int, int]  # (level, addr, raw)


class Scene:
    """A fresh kernel with one user mm, a vma over ``[start, end)`` (straddling a PUD
    boundary) and a mix of 4K leaves and, where the configuration has them, a huge PMD and
    a huge PUD leaf, all written with the unified API."""

    def __init__(self, name: str, pages: list[int], huge: bool = True) -> None:
        self.k, self.pt, self.mm = fresh(name)
        k = self.k
        relax(k)  # raw fixture stores, and hooks that rewrite entries mid-walk
        self.start = k.PUD_SIZE - 4 * k.PAGE_SIZE
        self.end = 3 * k.PUD_SIZE if k.PUD_SIZE != k.PMD_SIZE else 24 * k.PMD_SIZE
        self.mm.mmap.append(
            vm_area_struct(self.mm, self.start, self.end, VM_READ | VM_WRITE, prot(k)))
        self.root = self.pt.root_for(self.mm, self.start)
        for i in pages:
            self.map(Level.PTE, self.start + i * k.PAGE_SIZE)
        self.huge_pmd: int | None = None
        if huge and k.PMD_SIZE in k.config.leaf_sizes:
            self.huge_pmd = k.PUD_SIZE + 6 * k.PMD_SIZE
            self.map(Level.PMD, self.huge_pmd)
        if huge and builds_pud_leaves(k):
            self.map(Level.PUD, 2 * k.PUD_SIZE)

    def table_for(self, level: Level, a: int) -> Table:
        """The table whose entries are at ``level``'s group, allocated down to it."""
        group = group_with(self.pt, self.mm, level)
        t = self.root
        while t.group != group:
            child = self.pt.ensure_table(self.pt.entry(t, a))
            assert child is not None
            t = child
        return t

    def map(self, level: Level, a: int) -> None:
        size = self.pt.level_size(group_with(self.pt, self.mm, level))
        pa = (0x80000000 + (a & 0x3FFFFFFF)) & ~(size - 1)
        self.pt.write(self.pt.entry(self.table_for(level, a), a), leaf(self.k, level, pa))


def builds_pud_leaves(k: GenericKernel) -> bool:
    """Whether the kernel makes PUD leaves at all: the hardware has a leaf of ``PUD_SIZE``
    (above the PMD's) and a user or kernel map can use it (``Limits``: transparent huge
    puds or ``HAVE_ARCH_HUGE_VMAP``).  s390 has 2G region-third leaves, but at v6.18 no
    ``pfn_pud``/``pud_mkhuge`` (only hugetlb and the kernel's identity map make them)."""
    lim = Limits.from_kernel(k)
    return k.PUD_SIZE != k.PMD_SIZE and k.PUD_SIZE in {*lim.user_leaf_sizes,
                                                       *lim.kernel_leaf_sizes}


PmdCallback = Callable[[PmdPtr, int, int, mm_walk], int]


def legacy_leaves(scene: Scene, pmd_hook: PmdCallback | None = None) -> list[Leaf]:
    """Leaves seen by the legacy ``walk_page_range``: huge pud/pmd leaves through
    ``pud_entry``/``pmd_entry`` (which then ``ACTION_CONTINUE``), 4K ones through
    ``pte_entry``.  ``pmd_hook`` runs first in ``pmd_entry`` and may set the action."""
    k = scene.k
    out: list[Leaf] = []

    def pte_entry(pte: PtePtr, a: int, n: int, walk: mm_walk) -> int:
        v = k.ptep_get(pte)
        if not k.pte_none(v):
            out.append((Level.PTE, a, v))
        return 0

    def pmd_entry(pmd: PmdPtr, a: int, n: int, walk: mm_walk) -> int:
        if pmd_hook is not None:
            r = pmd_hook(pmd, a, n, walk)
            if r or walk.action != 0:
                return r
        v = k.pmdp_get(pmd)
        if k.pmd_leaf(v):
            out.append((Level.PMD, a, v))
            walk.action = ACTION_CONTINUE
        return 0

    def pud_entry(pud: PudPtr, a: int, n: int, walk: mm_walk) -> int:
        v = k.pudp_get(pud)
        if k.pud_leaf(v):
            out.append((Level.PUD, a, v))
            walk.action = ACTION_CONTINUE
        return 0

    ops = mm_walk_ops(pud_entry=pud_entry, pmd_entry=pmd_entry, pte_entry=pte_entry)
    assert walk_page_range(k, scene.mm, scene.start, scene.end, ops) == 0
    return out


Visit = Callable[[Entry, Value, int, int], "Action | None"]


def unified_leaves(scene: Scene, hook: Visit | None = None,
                   holes: list[tuple[int, int]] | None = None) -> list[Leaf]:
    """Leaves seen by ``walk_range``; ``hook`` runs first and may return an action."""
    pt = scene.pt
    out: list[Leaf] = []

    def visit(e: Entry, v: Value, a: int, n: int) -> Action | None:
        if hook is not None:
            action = hook(e, v, a, n)
            if action is not None:
                return action
        if pt.is_leaf(v):
            out.append((v.level, a, v.raw))
            return Action.CONTINUE
        return None

    walk_range(pt, scene.root, scene.start, scene.end, visit,
               None if holes is None else (lambda a, n, empty: holes.append((a, n))))
    return out


PAGES_IN_WINDOW = 4 + 3 * 512  # pages from start to past the third PMD of the window


@pytest.mark.parametrize("name", ARCHES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages=st.sets(st.integers(0, PAGES_IN_WINDOW), max_size=10))
def test_walk_range_visits_the_legacy_leaves(name: str, pages: set[int]) -> None:
    """``walk_range`` sees exactly the leaves ``walk_page_range`` sees (same addresses,
    levels and values, in the same order), and its holes plus its leaves tile
    ``[start, end)``."""
    scene = Scene(name, sorted(pages | {0, 3, 4, 5}))
    holes: list[tuple[int, int]] = []
    got = unified_leaves(scene, holes=holes)
    assert got == legacy_leaves(scene)
    sizes = {int(lv): scene.pt.level_size(group_with(scene.pt, scene.mm, lv))
             for lv in (Level.PTE, Level.PMD, Level.PUD)}
    spans = sorted(holes + [(a, a + sizes[lv]) for lv, a, _ in got])
    assert spans[0][0] == scene.start and spans[-1][1] == scene.end
    for (_, e1), (s2, _) in itertools.pairwise(spans):
        assert e1 == s2


@pytest.mark.parametrize("name", ARCHES)
def test_walk_range_continue_skips_the_subtree_like_legacy(name: str) -> None:
    """``Action.CONTINUE`` on a PMD-level table entry skips its PTEs, as ``ACTION_CONTINUE``
    from ``pmd_entry`` does."""
    scene = Scene(name, [0, 3, 4, 5, 4 + 512 + 1, 4 + 512 + 9])
    k = scene.k
    skip = k.PUD_SIZE  # the PMD entry covering start+4 pages .. start+4+511 pages
    pmd_level = group_with(scene.pt, scene.mm, Level.PMD).level

    def hook(e: Entry, v: Value, a: int, n: int) -> Action | None:
        if e.level == pmd_level and a <= skip < n and scene.pt.is_table(v):
            return Action.CONTINUE
        return None

    def pmd_hook(pmd: PmdPtr, a: int, n: int, walk: mm_walk) -> int:
        if a <= skip < n and not k.pmd_leaf(k.pmdp_get(pmd)):
            walk.action = ACTION_CONTINUE
        return 0

    got = unified_leaves(scene, hook)
    assert got == legacy_leaves(scene, pmd_hook)
    assert all(not (skip <= a < skip + k.PMD_SIZE) for _, a, _ in got)
    assert any(a < skip for _, a, _ in got) and any(a > skip for _, a, _ in got)


@pytest.mark.parametrize("name", ARCHES)
def test_walk_range_again_revisits_like_legacy(name: str) -> None:
    """A callback that replaces a huge PMD leaf by a PTE table and returns ``Action.AGAIN``
    is called once more for the entry, and the walk then descends into the new table --
    as ``ACTION_AGAIN`` from ``pmd_entry`` does.  Both kernels end byte-identical."""
    pages = [0, 3, 4, 5]
    uni, leg = Scene(name, pages), Scene(name, pages)
    assert image(uni.k) == image(leg.k)
    if uni.k.PMD_SIZE not in uni.k.config.leaf_sizes:
        pytest.skip("no leaf of PMD_SIZE on this hardware (classic arm: 1M sections)")
    h = uni.huge_pmd
    assert h is not None and h == leg.huge_pmd
    k, pt = uni.k, uni.pt
    pmd_level = group_with(pt, uni.mm, Level.PMD).level
    offs = [0, 3 * k.PAGE_SIZE]
    calls = {"unified": 0, "legacy": 0}

    def hook(e: Entry, v: Value, a: int, n: int) -> Action | None:
        if e.level == pmd_level and a == h:
            calls["unified"] += 1
            if pt.is_leaf(v):
                pt.clear(e)
                t = pt.ensure_table(e)
                assert t is not None
                for off in offs:
                    pt.write(pt.entry(t, h + off), leaf(k, Level.PTE, 0x9000000 + off))
                return Action.AGAIN
        return None

    k2 = leg.k

    def pmd_hook(pmd: PmdPtr, a: int, n: int, walk: mm_walk) -> int:
        if a == h:
            calls["legacy"] += 1
            if k2.pmd_leaf(k2.pmdp_get(pmd)):
                k2.pmd_clear(pmd)
                assert k2.pte_alloc(leg.mm, pmd) == 0
                for off in offs:
                    pte = k2.pte_offset_kernel(pmd, h + off)
                    k2.set_pte_at(leg.mm, h + off, pte,
                                  k2.pfn_pte((0x9000000 + off) >> k2.PAGE_SHIFT, prot(k2)))
                walk.action = ACTION_AGAIN
        return 0

    got = unified_leaves(uni, hook)
    want = legacy_leaves(leg, pmd_hook)
    assert got == want
    assert calls == {"unified": 2, "legacy": 2}
    assert [(lv, a) for lv, a, _ in got if h <= a < h + k.PMD_SIZE] == [
        (Level.PTE, h + off) for off in offs]
    assert image(uni.k) == image(leg.k)
    assert uni.mm.pgtables_bytes == leg.mm.pgtables_bytes


# -- docs/unified-api.md ---------------------------------------------------------------------


def test_doc_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Every ```python block of docs/unified-api.md runs, in order, in one namespace; a
    ``print(...)  # text`` line must print ``text``."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "unified-api.md"
    blocks = re.findall(r"^```python\n(.*?)^```", doc.read_text(), re.S | re.M)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "unified_api_doc"}
    for block in blocks:
        expected = [line.split("#", 1)[1].strip() for line in block.splitlines()
                    if line.startswith("print(") and "#" in line]
        exec(compile(block, str(doc), "exec"), namespace)
        out = capsys.readouterr().out.splitlines()
        assert [o.strip() for o in out] == expected, block


def test_doc_references_exist() -> None:
    """Every ``tests/…py::name`` (and ``::name`` continuing it) and every ``unified/…py:name``
    cited in docs/unified-api.md exists."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    text = (repo / "docs" / "unified-api.md").read_text()
    missing: list[str] = []
    current: Path | None = None
    for m in re.finditer(r"`(tests/[\w/]+\.py)(?:::([\w]+)[^`]*)?`|`::([\w]+)[^`]*`", text):
        if m.group(1):
            current = repo / m.group(1)
            if not current.exists():
                missing.append(m.group(1))
                continue
            name = m.group(2)
        else:
            name = m.group(3)
        if name and current is not None and current.exists():
            if not re.search(rf"^def {name}\(", current.read_text(), re.M):
                missing.append(f"{current.relative_to(repo)}::{name}")
    for m in re.finditer(r"`(unified/[\w/]+\.py):([\w.,]+)", text):
        src = (repo / m.group(1)).read_text()
        for dotted in m.group(2).split(","):
            for part in dotted.split("."):
                pattern = rf"^\s*(?:def|class) {part}\b|^\s*(?:self\.)?{part}\s*[:=]"
                if not re.search(pattern, src, re.M):
                    missing.append(f"{m.group(1)}:{part}")
    assert not missing, f"docs/unified-api.md cites missing names: {missing}"


def test_level_numbers_out_of_range_are_refused() -> None:
    """A level number is checked where a caller hands one in (``owe``) and where a Value's
    level picks the leaf operations: -1 is not "the top level" (a tuple's -1 would be)."""
    _k, pt, mm = fresh("x86_64")
    with pytest.raises(ValueError):
        pt.owe(mm, -1)
    with pytest.raises(ValueError):
        pt.owe(mm, 5)
    for level in (-1, Level.P4D, 7):
        with pytest.raises(BadInput, match="have no leaf operations"):
            pt.is_writable(Value(level, 0x1))
    assert pt.is_writable(Value(Level.PTE, 0x3))  # present | RW
