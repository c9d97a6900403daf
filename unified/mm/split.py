"""Splitting a huge leaf at any level into a table of next-level leaves.

One routine, :func:`split_leaf`, replaces legacy ``split_huge_pmd`` (user: the anonymous-THP
path that withdraws the deposited PTE table), ``split_huge_pud`` (user: a new PMD table of
huge PMDs, each with a deposit of its own) and ``split_large_page`` (``init_mm``: the x86 cpa
split, unaccounted, followed by ``arch_sync_kernel_mappings`` when the legacy sync mask names
the level).  What differs between those is data, not code:

- where the lower table comes from: the leaf's deposit if it has one (:func:`deposits_at`),
  else a fresh allocation at the lower level (``pte_alloc_one_kernel``, ``pmd_alloc_one``);
- whether the new lower leaves need deposits of their own (a user huge PUD's huge PMDs);
- the protection of the new leaves (``LevelOps.split_prot``: ``pgprot_large_2_4k`` from a
  PMD, the PUD's own protection, PSE kept, from a PUD) and their value
  (``LevelOps.pfn_entry``: ``pfn_pte``, ``pfn_pmd``);
- user tables are accounted (``mm_inc_nr_*``), kernel ones are not (as cpa), and a kernel
  entry of a level every pgd keeps a copy of is rewritten in each copy (cpa's
  ``__set_pmd_pte``).

TLB: a leaf with a deposit is invalidated first (``pmdp_invalidate``, which flushes the
huge page: ``__split_huge_pmd_locked``); any other leaf is broken, flushed and only then
made a table -- ``pudp_huge_clear_flush`` for a user leaf, clear + ``flush_tlb_kernel_range``
for a kernel one, as a break-before-make MMU (arm64) requires and x86 tolerates -- and the
per-pgd copies of a kernel entry owe one more kernel flush.

The allocation order is the legacy one (lower table first, then its deposits), so the frames
the two paths pick are the same.  Every page keeps its translation: same pfn, same bits.
"""

from __future__ import annotations

from legacy import EntryPtr, OutOfMemory, spin_lock, spin_unlock, vm_area_struct
from unified.flush import TlbFlush
from unified.handles import Entry
from unified.levels import Level
from unified.mm._common import BUG_ON, ENOMEM, deposits_at, ops_of
from unified.pagetables import PageTables

__all__ = ["split_huge_leaf", "split_leaf", "split_leaf_at"]


def _fill(pt: PageTables, entry: Entry, first: EntryPtr, old: int, check_none: bool) -> None:
    """Write the leaves replacing the huge value ``old`` of ``entry`` into the table at
    ``first``: one per lower entry, consecutive pfns, the split protection (ptes with one
    ``set_ptes``, as ``__split_huge_pmd_locked``)."""
    mm = entry.mm
    lv = ops_of(pt, mm, entry.level)
    child = pt.lower(entry.table.group, mm)
    assert child is not None
    cl = ops_of(pt, mm, child.level)
    pfn = lv.pfn(old)
    prot = lv.split_prot(old)
    count = lv.pages // cl.pages
    if check_none:
        for i in range(count):
            BUG_ON(not cl.none(cl.get(first + i)), "VM_WARN_ON(!pte_none(ptep_get(pte + i)))")
    if child.level == Level.PTE:  # consecutive pages: one set_ptes
        cl.set_run(mm, entry.va, first, cl.pfn_entry(pfn, prot), count)
        return
    m = pt.k.ULONG_MASK
    addr = entry.va
    ptr = first
    for i in range(count):
        cl.set_at(mm, addr, ptr, cl.pfn_entry(pfn + i * cl.pages, prot))
        ptr = ptr + 1
        addr = (addr + cl.size) & m


def split_leaf(pt: PageTables, vma: vm_area_struct, entry: Entry) -> int:
    """Replace the huge leaf at ``entry`` by a lower table of leaves mapping the same pages
    with the same protection.  Returns 0, or -ENOMEM with nothing changed.  An entry that
    is no huge leaf any more (rechecked under the lock) is left alone."""
    mm = entry.mm
    level = entry.level
    lv = ops_of(pt, mm, level)
    child = pt.lower(entry.table.group, mm)
    if child is None:
        raise ValueError("a PTE is not a huge leaf: nothing to split")
    cl = ops_of(pt, mm, child.level)
    haddr = entry.va
    ptr = entry.ptr

    if deposits_at(level, mm):
        # The deposited table: invalidate, withdraw, fill, populate (__split_huge_pmd_locked).
        ptl = lv.lockptr(mm, ptr)
        spin_lock(ptl)
        try:
            if lv.trans_huge(lv.get(ptr)):
                old = lv.invalidate(vma, haddr, ptr)
                # "Withdraw the table only after we mark the pmd entry invalid."
                pgtable = lv.withdraw(mm, ptr)
                _fill(pt, entry, pgtable, old, check_none=True)
                lv.populate(mm, ptr, pgtable)
        finally:
            spin_unlock(ptl)
        return 0

    # A fresh lower table (and, for user leaves, the deposits its own leaves need).
    new = cl.alloc_one(mm, haddr)
    if new is None:
        return ENOMEM
    deposits: list[EntryPtr] = []
    if deposits_at(child.level, mm):
        tl = ops_of(pt, mm, Level.PTE)
        for _ in range(lv.pages // cl.pages):
            table = tl.alloc_one(mm, haddr)
            if table is None:
                for t in deposits:
                    tl.free(mm, t)
                cl.free(mm, new)
                return ENOMEM
            deposits.append(table)
    kernel = mm.is_init_mm
    ptl = mm.page_table_lock if kernel else lv.lockptr(mm, ptr)
    spin_lock(ptl)
    try:
        old = lv.get(ptr)
        if not (lv.leaf(old) if kernel else lv.trans_huge(old)):  # changed under us
            for t in deposits:
                ops_of(pt, mm, Level.PTE).free(mm, t)
            cl.free(mm, new)
            return 0
        _fill(pt, entry, new, old, check_none=False)
        if deposits:
            child_ptl = cl.lockptr(mm, new)
            spin_lock(child_ptl)
            tl = ops_of(pt, mm, Level.PTE)
            for i, pgtable in enumerate(deposits):
                tl.inc_nr(mm)
                cl.deposit(mm, new + i, pgtable)
            spin_unlock(child_ptl)
        if not kernel:
            cl.inc_nr(mm)
        # Break, invalidate, make (``pudp_huge_clear_flush`` / cpa + flush_tlb_kernel_range):
        # a valid leaf never becomes a valid table with its translation possibly cached.
        _, owed = pt.get_and_clear(entry)
        owed.flush(None if kernel else vma)
        lv.populate(mm, ptr, new)
    finally:
        spin_unlock(ptl)
    if kernel and lv.modified & pt.k.ARCH_PAGE_TABLE_SYNC_MASK:
        _set_in_every_pgd(pt, entry).flush()
    return 0


def _set_in_every_pgd(pt: PageTables, entry: Entry) -> TlbFlush:
    """cpa ``__set_pmd_pte``: after changing a kernel entry of a level that every pgd holds
    its own copy of (the level is in ``ARCH_PAGE_TABLE_SYNC_MASK``: i386's PMDs), write the
    new value into each copy.  The kernel walks ``pgd_list``; here every live mm, each
    under its ``page_table_lock``, as the legacy split does.  Returns the (kernel) flush
    the rewritten copies owe."""
    k = pt.k
    lv = ops_of(pt, entry.mm, entry.level)
    v = lv.get(entry.ptr)
    owed = pt.owe(k.init_mm, entry.level)
    end = (entry.va + lv.size) & k.ULONG_MASK
    for mm in list(k.mms):
        if mm is k.init_mm:
            continue
        table = pt.root_for(mm, entry.va)
        while table.group != entry.table.group:
            e = pt.entry(table, entry.va)
            if not pt.is_table(pt.read(e)):
                break
            table = pt.descend(e)
        else:
            copy = pt.entry(table, entry.va)
            spin_lock(mm.page_table_lock)
            if copy.ptr.pa != entry.ptr.pa:
                was = lv.get(copy.ptr)
                lv.set_at(mm, entry.va, copy.ptr, v)
                if lv.present(was) and was != v:
                    owed.add(entry.va, end)
            spin_unlock(mm.page_table_lock)
    return owed


def split_huge_leaf(pt: PageTables, vma: vm_area_struct, entry: Entry) -> None:
    """``split_huge_pmd``/``split_huge_pud`` for any level: split ``entry`` if it holds a
    huge leaf (``pXd_trans_huge``); raise :class:`OutOfMemory`, nothing changed, if a table
    cannot be allocated."""
    lv = ops_of(pt, entry.mm, entry.level)
    if not lv.trans_huge(lv.get(entry.ptr)):
        return
    if split_leaf(pt, vma, entry):
        raise OutOfMemory(f"split of the huge level-{entry.level} leaf at {entry.va:#x}: "
                          "no memory")


def split_leaf_at(pt: PageTables, vma: vm_area_struct, addr: int,
                  levels: tuple[int, ...] | None = None) -> None:
    """Split the huge leaves that straddle ``addr`` (``addr`` is not their first byte), top
    down, so that afterwards no leaf crosses ``addr``.

    With ``levels`` (``vma_adjust_trans_huge``: the THP level only), the lookup is
    ``mm_find_pmd``'s: it gives up at an entry above those levels that is not present or is
    a leaf.  Without (the kernel-range edges, cpa-style), every level is split and only
    empty entries stop the walk, as the legacy backend's ``pXd_none``/``pXd_leaf`` lookup."""
    mm = vma.vm_mm
    table = pt.root_for(mm, addr)
    while True:
        entry = pt.entry(table, addr)
        lv = ops_of(pt, entry.mm, entry.level)
        v = lv.get(entry.ptr)
        if lv.none(v):
            return
        target = levels is None or entry.level in levels
        if not target and not lv.present(v):
            return
        if entry.level != Level.PTE and lv.leaf(v):
            if target and addr & ~lv.mask:
                split_huge_leaf(pt, vma, entry)
                v = lv.get(entry.ptr)
            if lv.none(v) or lv.leaf(v):
                return
        if pt.lower(table.group, mm) is None or not pt.is_table(pt.read(entry)):
            return
        table = pt.descend(entry)
