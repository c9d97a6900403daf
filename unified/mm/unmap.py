"""Unmapping user ranges: zap the leaves, then free the page tables, through the
``mmu_gather``.  Level-generic ports of mm/memory.c's ``unmap_page_range`` cascade
(``zap_p4d_range`` ... ``zap_pte_range``) and ``free_pgd_range`` cascade
(``free_p4d_range`` ... ``free_pte_range``): one recursive routine each.

**Zap** (:func:`zap_range`).  At every level, for each entry covering the range:

- a huge leaf (``pXd_trans_huge``, or a non-present huge PMD) that the range covers only
  partly is split first (:func:`~unified.mm.split.split_huge_leaf`; if that runs out of
  memory the leaf is zapped whole and ``tlb.split_enomem`` set), one the range covers
  whole is zapped: get-and-clear, TLB range noted, its deposited table freed;
- an empty or bad entry is skipped (bad ones are reported and cleared);
- a table is descended into.

A PTE table is zapped under its split lock, entry by entry: a normal page
(``vm_normal_page``) loses its rmap (an anonymous one at once, a dirty file one after the
flush: ``tlb_flush_rmaps``) and goes to the gather's page batch, whose filling up forces
a flush and a restart of that table exactly where the kernel restarts it.  Tables stay allocated.

**Free** (:func:`free_pgd_range`).  The kernel's floor/ceiling rule, generalised: a table is
freed when the whole range its parent entry maps lies in ``[floor, ceiling)`` (0 meaning the
bottom for ``floor`` and the top for ``ceiling``, compared as ``x - 1`` in ``unsigned
long``).  For the lowest tables (PTE tables) the rule is applied once, up front, by trimming
``[addr, end)`` to whole parent entries -- exactly ``free_pgd_range``'s ``PMD_MASK``
rounding -- and every PTE table left in the range is freed.  Every other table is checked
after its entries, with the mask of its parent entry's span, as ``free_pXd_range`` does.  A
freed table goes to the gather (``pte_free_tlb``... through
:class:`~unified.legacy_ops.LevelOps`), its charge is dropped at once (``mm_dec_nr_*``), and
the frame is freed at ``tlb_finish_mmu`` after the TLB flush.  The root is never freed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from legacy import OutOfMemory, spin_lock, spin_unlock, vm_area_struct
from legacy.mm.memory import free_pgtables_ranges, vm_normal_page, zap_details
from legacy.mm.mmu_gather import (
    _tlb_remove_page_size,
    mmu_gather,
    tlb_change_page_size,
    tlb_end_vma,
    tlb_finish_mmu,
    tlb_flush_mmu,
    tlb_flush_mmu_tlbonly,
    tlb_flush_rmaps,
    tlb_gather_mmu,
    tlb_start_vma,
)
from legacy.mm.page import folio_mapcount, folio_remove_rmap_ptes, folio_test_anon, pfn_to_page
from legacy.mm.vm_flags import is_vm_hugetlb_page
from unified.handles import Table
from unified.legacy_ops import gather_table_free
from unified.levels import Level
from unified.mm._common import BUG_ON, deposits_at, ops_of
from unified.mm.split import split_huge_leaf
from unified.pagetables import PageTables

__all__ = [
    "ZAP_DETAILS_UNMAP", "free_pgd_range", "free_pgtables", "unmap_page_range",
    "unmap_single_vma", "unmap_vmas", "zap_page_range_single", "zap_range",
]

ZAP_FLAG_DROP_MARKER = 1 << 0
ZAP_FLAG_UNMAP = 1 << 1
ZAP_DETAILS_UNMAP = zap_details(even_cows=True, zap_flags=ZAP_FLAG_DROP_MARKER | ZAP_FLAG_UNMAP)
"""What ``unmap_vmas`` passes: "we need to zap private pages too"."""


@dataclass
class _Zap:
    pt: PageTables
    tlb: mmu_gather
    vma: vm_area_struct
    details: zap_details | None


# -- zap ---------------------------------------------------------------------------------


def _zap_huge_leaf(z: _Zap, table: Table, level: int, ptr: object, addr: int) -> bool:
    """Clear a whole huge leaf (``zap_huge_pmd``/``zap_huge_pud``); False if it is not
    huge any more under its lock."""
    pt, tlb = z.pt, z.tlb
    mm = tlb.mm
    lv = ops_of(pt, mm, level)
    tlb_change_page_size(pt.k, tlb, lv.size)
    ptl = lv.lockptr(mm, ptr)
    spin_lock(ptl)
    try:
        if not lv.trans_huge(lv.get(ptr)):
            return False
        lv.get_and_clear_full(z.vma, addr, ptr, int(tlb.fullmm))
        lv.tlb_remove_entry(pt.k, tlb, ptr, addr)
        if deposits_at(level, mm):  # zap_deposited_table
            tl = ops_of(pt, mm, Level.PTE)
            tl.free(mm, lv.withdraw(mm, ptr))
            tl.dec_nr(mm)
    finally:
        spin_unlock(ptl)
    return True


def _zap_leaves(z: _Zap, table: Table, addr: int, end: int) -> int:
    """Zap the leaves of a PTE table in ``[addr, end)`` under the table's lock
    (``zap_pte_range``).  Returns where it stopped: ``end``, or earlier when the page
    batch filled up (the caller comes back for the rest)."""
    pt, tlb, vma = z.pt, z.tlb, z.vma
    k = pt.k
    mm = tlb.mm
    lv = ops_of(pt, mm, table.level)
    get, none, present = lv.get, lv.none, lv.present
    get_and_clear_full = lv.get_and_clear_full
    tlb_remove_entry = lv.tlb_remove_entry
    full = int(tlb.fullmm)
    force_flush = False
    tlb_change_page_size(k, tlb, lv.size)
    ptl = pt.lockptr(table)
    spin_lock(ptl)
    try:
        for ptr, a, nxt in pt.slots(table, addr, end):
            v = get(ptr)
            if none(v):
                continue
            if not present(v):
                # Swap and marker entries are never created here; one is dropped as
                # clear_not_present_full_ptes drops it.
                lv.clear(mm, a, ptr)
                continue
            page = vm_normal_page(k, vma, a, v)  # type: ignore[arg-type]
            if page is None:
                # "We don't need up-to-date accessed/dirty bits."
                get_and_clear_full(vma, a, ptr, full)
                tlb_remove_entry(k, tlb, ptr, a)
                continue
            delay_rmap = False
            if not folio_test_anon(k, page):
                v = get_and_clear_full(vma, a, ptr, full)
                if k.pte_dirty(v):  # type: ignore[arg-type]
                    tlb.delayed_rmap = True
                    delay_rmap = True
                    force_flush = True
            else:
                # "We don't need up-to-date accessed/dirty bits."
                get_and_clear_full(vma, a, ptr, full)
            tlb_remove_entry(k, tlb, ptr, a)
            if not delay_rmap and pfn_to_page(k, page) is not None:
                folio_remove_rmap_ptes(k, page, 1, vma)
                BUG_ON(folio_mapcount(k, page) < 0, f"pfn {page:#x} mapcount < 0")
            if _tlb_remove_page_size(k, tlb, page, delay_rmap, lv.size):
                force_flush = True
                addr = nxt
                break
            addr = nxt
        else:
            addr = end
        # Do the actual TLB flush before dropping ptl
        if force_flush:
            tlb_flush_mmu_tlbonly(k, tlb)
            tlb_flush_rmaps(k, tlb, vma)
    finally:
        spin_unlock(ptl)
    if force_flush:
        tlb_flush_mmu(k, tlb)
    return addr


def zap_range(z: _Zap, table: Table, addr: int, end: int) -> int:
    """Zap ``[addr, end)`` below ``table``; returns ``end`` (the address reached)."""
    pt = z.pt
    if pt.is_bottom(table):
        return _zap_leaves(z, table, addr, end)
    mm = table.mm
    lv = ops_of(pt, mm, table.level)
    for entry, a, nxt in pt.entries(table, addr, end):
        v = lv.get(entry.ptr)
        if lv.swap(v) or lv.trans_huge(v):
            if (nxt - a) & pt.k.ULONG_MASK != lv.size:
                try:
                    split_huge_leaf(pt, z.vma, entry)
                except OutOfMemory:
                    # A zap cannot fail half way: zap the leaf whole (what the kernel's
                    # split of a pfn pud does) and let do_munmap report -ENOMEM.
                    z.tlb.split_enomem = True
                    if _zap_huge_leaf(z, table, entry.level, entry.ptr, a):
                        continue
            elif _zap_huge_leaf(z, table, entry.level, entry.ptr, a):
                continue
        if lv.none_or_clear_bad(entry.ptr):
            continue
        child = pt.descend(entry)
        while a != nxt:  # a PTE table comes back unfinished when the page batch filled up
            a = zap_range(z, child, a, nxt)
    return end


def unmap_page_range(pt: PageTables, tlb: mmu_gather, vma: vm_area_struct, addr: int,
                     end: int, details: zap_details | None) -> None:
    BUG_ON(addr >= end, f"unmap_page_range({addr:#x}, {end:#x}): addr >= end")
    tlb_start_vma(pt.k, tlb, vma)
    zap_range(_Zap(pt, tlb, vma, details), pt.root_for(vma.vm_mm, addr), addr, end)
    tlb_end_vma(pt.k, tlb, vma)


def unmap_single_vma(pt: PageTables, tlb: mmu_gather, vma: vm_area_struct, start_addr: int,
                     end_addr: int, details: zap_details | None) -> None:
    start = max(vma.vm_start, start_addr)
    if start >= vma.vm_end:
        return
    end = min(vma.vm_end, end_addr)
    if end <= vma.vm_start:
        return
    if start != end:
        BUG_ON(is_vm_hugetlb_page(vma), "hugetlb vmas are not emulated")
        unmap_page_range(pt, tlb, vma, start, end, details)


def unmap_vmas(pt: PageTables, tlb: mmu_gather, vmas: Sequence[vm_area_struct],
               start_addr: int, end_addr: int) -> None:
    """Zap ``[start_addr, end_addr)`` in each of ``vmas``; the tables stay."""
    for vma in vmas:
        unmap_single_vma(pt, tlb, vma, start_addr, end_addr, ZAP_DETAILS_UNMAP)


def zap_page_range_single(pt: PageTables, vma: vm_area_struct, address: int, size: int,
                          details: zap_details | None = None) -> None:
    """Remove the user pages of ``[address, address + size)`` (inside one vma)."""
    end = (address + size) & pt.k.ULONG_MASK
    tlb = tlb_gather_mmu(pt.k, vma.vm_mm)
    unmap_single_vma(pt, tlb, vma, address, end, details)
    tlb_finish_mmu(pt.k, tlb)


# -- free page tables --------------------------------------------------------------------


def _free_tables(pt: PageTables, tlb: mmu_gather, table: Table, addr: int, end: int,
                 floor: int, ceiling: int) -> None:
    """Free the tables below ``table`` in ``[addr, end)``, then ``table`` itself if the
    range its parent entry maps lies in ``[floor, ceiling)``."""
    k = pt.k
    m = k.ULONG_MASK
    mm = tlb.mm
    lv = ops_of(pt, mm, table.level)
    child = pt.lower(table.group, mm)
    assert child is not None
    folded = table.group.members[1:]
    top = pt.legacy[table.group.top]
    for entry, a, nxt in pt.entries(table, addr, end):
        if lv.none_or_clear_bad(entry.ptr):
            if folded and not top.none(top.get(entry.ptr)):
                # The kernel still enters free_p?d_range of the folded levels (x86-64 folds
                # p4d at run time: pgd_none() is 0) and runs their closing step.
                _folded_steps(pt, tlb, folded, entry.ptr, a, nxt, floor, ceiling)
            continue
        if child.level == Level.PTE:
            # free_pte_range: the trim in free_pgd_range already applied the rule.
            token = lv.pgtable(lv.get(entry.ptr))
            lv.clear(mm, a, entry.ptr)
            cl = ops_of(pt, mm, Level.PTE)
            cl.free_tlb(k, tlb, token, a)
            cl.dec_nr(mm)
        else:
            _free_tables(pt, tlb, pt.descend(entry), a, nxt, floor, ceiling)

    parent = table.parent
    if parent is None:  # the root goes with the mm (pgd_free)
        return
    pl = ops_of(pt, mm, parent.level)
    start = addr & pl.mask
    if start < floor:
        return
    if ceiling:
        ceiling &= pl.mask
        if not ceiling:
            return
    if (end - 1) & m > (ceiling - 1) & m:
        return
    pl.clear(mm, start, parent.ptr)
    tl = ops_of(pt, mm, table.group.top)
    tl.free_tlb(k, tlb, table.first, start)
    tl.dec_nr(mm)
    # The levels folded into the parent's table have their free_p?d_range step too, over
    # the same span and with the same conditions.
    for member in reversed(parent.table.group.members[1:]):
        gather_table_free(k, tlb, member, parent.ptr, start)


def _folded_steps(pt: PageTables, tlb: mmu_gather, folded: tuple[Level, ...], ptr: object,
                  addr: int, end: int, floor: int, ceiling: int) -> None:
    """The closing step of ``free_p?d_range`` for levels folded into a table's entries,
    innermost first, when the kernel walks into them: ``p?d_free_tlb`` if the span lies in
    ``[floor, ceiling)``.  With compile-time folding (pgtable-nop*.h) the macro is empty;
    x86-64's run-time folded p4d keeps it: the range is noted, ``freed_tables`` set, and
    ``__p4d_free_tlb`` frees nothing."""
    k = pt.k
    m = k.ULONG_MASK
    mask = pt.legacy[folded[-1]].shift
    mask = ~((1 << mask) - 1) & m
    start = addr & mask
    if start < floor:
        return
    if ceiling:
        ceiling &= mask
        if not ceiling:
            return
    if (end - 1) & m > (ceiling - 1) & m:
        return
    for member in reversed(folded):
        gather_table_free(k, tlb, member, ptr, start)  # type: ignore[arg-type]


def free_pgd_range(pt: PageTables, tlb: mmu_gather, addr: int, end: int, floor: int,
                   ceiling: int) -> None:
    """Free the user page tables of ``[addr, end)`` that lie wholly in ``[floor,
    ceiling)`` (see the module docstring); the root stays."""
    k = pt.k
    m = k.ULONG_MASK
    mm = tlb.mm
    groups = pt.levels(mm)
    if len(groups) < 2:
        return
    # The trim: whole entries of the level that points to PTE tables.
    span = pt.level_size(groups[-2])
    mask = ~(span - 1) & m
    addr &= mask
    if addr < floor:
        addr = (addr + span) & m
        if not addr:
            return
    if ceiling:
        ceiling &= mask
        if not ceiling:
            return
    if (end - 1) & m > (ceiling - 1) & m:
        end = (end - span) & m
    if addr > (end - 1) & m:
        return
    # "We add page table cache pages with PAGE_SIZE, (see pte_free_tlb()), flush the tlb
    # if we need"
    tlb_change_page_size(k, tlb, k.PAGE_SIZE)
    _free_tables(pt, tlb, pt.root_for(mm, addr), addr, end, floor, ceiling)


def free_pgtables(pt: PageTables, tlb: mmu_gather, vmas: Sequence[vm_area_struct], floor: int,
                  ceiling: int) -> None:
    """Free the page tables of ``vmas`` (sorted, already zapped), nearby vmas gathered into
    one :func:`free_pgd_range` (mm/memory.c ``free_pgtables``; the vma walk itself is the
    legacy one, :func:`legacy.mm.memory.free_pgtables_ranges`).  No page-table lock is
    taken: the vmas are detached and ``mmap_lock`` is held for write (asserted)."""
    with pt.k.pgtable_lockless(tlb.mm, "free_pgtables (vmas detached)"):
        for addr, end, next_start in free_pgtables_ranges(pt.k, vmas, ceiling):
            free_pgd_range(pt, tlb, addr, end, floor, next_start)
