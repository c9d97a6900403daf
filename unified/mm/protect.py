"""Changing the protection of a range: a level-generic ``change_protection``
(mm/mprotect.c ``change_protection_range`` -> ``change_p4d_range`` ... ``change_pte_range``,
``change_huge_pmd``/``change_huge_pud``).

At every level, for each entry covering the range: an empty entry is left alone; a huge
leaf the range covers whole is rewritten in place (under its lock: invalidate, ``pXd_modify``,
set), one the range covers partly is split first and the walk goes on below it; a table is
descended into.  In a PTE table each present entry gets ``pte_modify`` between
``ptep_get_and_clear`` and ``set_pte_at`` (``ptep_modify_prot_start``/``_commit``) under the
table's lock.  Returns the number of base pages whose entry was rewritten.

TLB (v6.18 ``change_protection(tlb, ...)``): the changed entries are gathered into an
``mmu_gather`` -- one flush obligation per PTE run (``tlb_flush_pte_range`` where
``pte_needs_flush``), one per huge leaf (``tlb_flush_pmd_range``/``_pud_range``) -- and
flushed by ``tlb_finish_mmu`` when :func:`change_protection` made the gather itself (a
caller passing ``tlb`` finishes it).  :func:`set_memory_prot` flushes
``flush_tlb_kernel_range(start, end)``, as ``__change_memory_common``.

The new protection is passed explicitly (the kernel reads ``vma->vm_page_prot``);
``init_mm`` ranges (a pseudo-vma) take the same walk.
"""

from __future__ import annotations

from legacy import BadInput, spin_lock, spin_unlock, vm_area_struct
from legacy.mm.mmu_gather import (
    mmu_gather,
    tlb_change_page_size,
    tlb_finish_mmu,
    tlb_gather_mmu,
)
from unified.handles import Entry, Table
from unified.mm._common import BUG_ON, EINVAL, ops_of
from unified.mm.split import _set_in_every_pgd, split_huge_leaf
from unified.pagetables import PageTables

__all__ = ["change_protection", "change_range", "set_memory_prot"]


def _huge(pt: PageTables, vma: vm_area_struct, level: int, v: int) -> bool:
    """A huge leaf for ``change_protection``: the legacy walk tests ``pmd_trans_huge`` at
    the PMD level and ``pud_leaf`` at the PUD level; either predicate counts here (they
    agree on every huge leaf the emulated kernels make)."""
    lv = ops_of(pt, vma.vm_mm, level)
    return lv.trans_huge(v) or lv.leaf(v)


def _change_leaves(pt: PageTables, tlb: mmu_gather, vma: vm_area_struct, table: Table,
                   addr: int, end: int, newprot: int) -> int:
    mm = vma.vm_mm
    lv = ops_of(pt, mm, table.level)
    get, present = lv.get, lv.present
    get_and_clear, set_at, modify = lv.get_and_clear, lv.set_at, lv.modify
    needs_flush = lv.needs_flush
    owed = pt.owe(mm, table.level)
    pages = 0
    tlb_change_page_size(pt.k, tlb, lv.size)  # a gather of one page size (powerpc flushes)
    ptl = pt.lockptr(table)
    spin_lock(ptl)
    try:
        for ptr, a, nxt in pt.slots(table, addr, end):
            v = get(ptr)
            if present(v):
                old = get_and_clear(mm, a, ptr)
                new = modify(old, newprot)
                set_at(mm, a, ptr, new)
                if needs_flush(old, new):
                    owed.add(a, nxt)
                pages += 1
            elif lv.swap(v):  # a writable migration entry loses write; nothing cached
                new = lv.change_swap(v)
                if new != v:
                    set_at(mm, a, ptr, new)
                    pages += 1
        owed.gather(tlb)
    finally:
        spin_unlock(ptl)
    return pages


def _change_huge_leaf(pt: PageTables, tlb: mmu_gather, vma: vm_area_struct, entry: Entry,
                      newprot: int) -> int:
    """``change_huge_pmd``/``change_huge_pud``: 0 if not huge any more under the lock, else
    the base pages the leaf maps."""
    mm = vma.vm_mm
    lv = ops_of(pt, mm, entry.level)
    tlb_change_page_size(pt.k, tlb, lv.size)
    ptl = lv.lockptr(mm, entry.ptr)
    spin_lock(ptl)
    try:
        if not _huge(pt, vma, entry.level, lv.get(entry.ptr)):
            return 0
        # "Can't clear PMD or it can race with concurrent zapping"
        old = lv.invalidate_ad(vma, entry.va, entry.ptr)
        new = lv.modify(old, newprot)
        lv.set_at(mm, entry.va, entry.ptr, new)
        if lv.needs_flush(old, new):
            end = (entry.va + lv.size) & pt.k.ULONG_MASK
            pt.owe(mm, entry.level, entry.va, end).gather(tlb)
    finally:
        spin_unlock(ptl)
    return lv.pages


def change_range(pt: PageTables, tlb: mmu_gather, vma: vm_area_struct, table: Table,
                 addr: int, end: int, newprot: int) -> int:
    """Apply ``newprot`` below ``table`` in ``[addr, end)``, gathering the flushes into
    ``tlb``; the pages changed."""
    if pt.is_bottom(table):
        return _change_leaves(pt, tlb, vma, table, addr, end, newprot)
    m = pt.k.ULONG_MASK
    lv = ops_of(pt, vma.vm_mm, table.level)
    pages = 0
    for entry, a, nxt in pt.entries(table, addr, end):
        while True:  # again:
            v = lv.get(entry.ptr)
            if lv.none(v):
                break
            if lv.swap(v):  # as the legacy walk: a PMD migration entry is not emulated
                raise BadInput(f"mprotect: the PMD migration entry at {a:#x} is not "
                               "emulated (mm/huge_memory.c change_huge_pmd)")
            if _huge(pt, vma, table.level, v):
                if (nxt - a) & m != lv.size:
                    split_huge_leaf(pt, vma, entry)
                    continue
                ret = _change_huge_leaf(pt, tlb, vma, entry, newprot)
                if not ret:
                    continue
                pages += ret
                break
            if not lv.none_or_clear_bad(entry.ptr):
                pages += change_range(pt, tlb, vma, pt.descend(entry), a, nxt, newprot)
            break
    return pages


def change_protection(pt: PageTables, vma: vm_area_struct, start: int, end: int,
                      newprot: int, tlb: mmu_gather | None = None) -> int:
    """Apply ``newprot`` to every mapped page of ``[start, end)`` in ``vma``; returns the
    number of base pages whose entry was rewritten.  The flushes go to ``tlb``; without
    one, a gather of ``vma->vm_mm`` is made and finished here (``do_mprotect_pkey``)."""
    BUG_ON(start >= end, f"change_protection: {start:#x} >= {end:#x}")
    k = pt.k
    gather = tlb if tlb is not None else tlb_gather_mmu(k, vma.vm_mm)
    pages = change_range(pt, gather, vma, pt.root_for(vma.vm_mm, start), start, end, newprot)
    if tlb is None:
        tlb_finish_mmu(k, gather)
    return pages


def set_memory_prot(pt: PageTables, start: int, end: int, newprot: int) -> int:
    """Kernel-range protection change, the unified ``change_memory_common``
    (legacy/mm/pageattr.py): one walk of ``init_mm``
    (:func:`~unified.walk.walk_range`) that rewrites every leaf with ``pXd_modify`` --
    whole huge leaves, whose subtree is skipped, and present PTEs.  The huge leaves
    straddling ``start`` or ``end`` must have been split first.  Where every pgd holds its
    own copy of a level (``ARCH_PAGE_TABLE_SYNC_MASK``), a rewritten leaf is written into
    each copy too (cpa's ``__set_pmd_pte``)."""
    from unified.handles import Value
    from unified.walk import Action, walk_range

    k = pt.k
    m = k.ULONG_MASK
    mm = k.init_mm
    # __change_memory_common: flush_tlb_kernel_range(start, end) whatever changed.
    owed = pt.owe(mm, 0, start, end)

    def visit(entry: Entry, value: Value, addr: int, nxt: int) -> Action:
        nonlocal owed
        lv = ops_of(pt, mm, entry.level)
        v = value.raw
        if entry.level == 0:
            if lv.present(v):
                lv.set_at(mm, addr, entry.ptr, lv.modify(v, newprot))
            return Action.CONTINUE
        if lv.leaf(v):
            BUG_ON((nxt - addr) & m != lv.size,
                   f"set_memory: huge level-{entry.level} leaf at {addr:#x} partly covered")
            lv.set_at(mm, addr, entry.ptr, lv.modify(v, newprot))
            if lv.modified & k.ARCH_PAGE_TABLE_SYNC_MASK:
                owed |= _set_in_every_pgd(pt, entry)  # the copies: inside the range
            return Action.CONTINUE
        return Action.SUBTREE

    if start >= end:
        # walk_kernel_page_table_range refuses it (an end that wrapped to 0 included);
        # __change_memory_common still flushes the range.
        owed.flush()
        return EINVAL
    walk_range(pt, pt.kernel_root(), start, end, visit)
    owed.flush()
    return 0
