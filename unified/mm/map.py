"""Mapping a pfn range into a user ``mm`` with leaves of one size, at any level.

:func:`map_pfn_range` is one recursive routine for what the legacy path does with
``remap_pfn_range`` (4K leaves; mm/memory.c ``remap_p4d_range`` ... ``remap_pte_range``) and
with one ``vmf_insert_pfn_pmd``/``vmf_insert_pfn_pud`` per huge page
(legacy/mm/huge_memory.py ``insert_pfn_pmd``/``insert_pfn_pud``):

- going down, every table on the way is allocated if missing with the lower level's legacy
  ``*_alloc`` (:meth:`PageTables.ensure_table`), in address order -- the order in which the
  legacy functions allocate, so both paths get the same frames;
- at the level whose entry size is the page size, each empty entry gets
  ``pXd_mkspecial(pXd_mkhuge(pfn_pXd(pfn, prot)))`` (``pte_mkspecial(pfn_pte())`` at the
  PTE level) under the table's lock; a user huge PMD also gets its deposited PTE table
  (allocated before the lock, charged with ``mm_inc_nr_ptes``), as ``insert_pfn_pmd`` does;
- an entry in the way (a leaf where a table is needed, a non-empty leaf slot) is -EBUSY.

On an error the leaves already written stay (the caller unmaps them, as the legacy
backend's ``do_munmap`` and ``remap_pfn_range_notrack``'s zap do).
"""

from __future__ import annotations

from legacy import BadInput, spin_lock, spin_unlock, vm_area_struct
from legacy.mm.internal import PAGE_ALIGN
from legacy.mm.vm_flags import VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_PFNMAP, is_cow_mapping
from unified.handles import Table
from unified.levels import Level, LevelGroup
from unified.mm._common import BUG_ON, EBUSY, EFAULT, EINVAL, ENOMEM, deposits_at, ops_of
from unified.mm.unmap import zap_page_range_single
from unified.pagetables import PageTables

__all__ = ["leaf_group", "map_pfn_range", "map_range", "remap_pfn_range"]


def leaf_group(pt: PageTables, vma: vm_area_struct, page_size: int) -> LevelGroup:
    """The real level whose entries map ``page_size`` bytes."""
    for g in pt.levels(vma.vm_mm):
        if pt.level_size(g) == page_size:
            return g
    raise BadInput(f"no level maps {page_size:#x}-byte leaves")


def _map_leaves(pt: PageTables, vma: vm_area_struct, table: Table, addr: int, end: int,
                pfn_of: int, prot: int) -> int:
    """Fill the empty leaf slots of ``table`` in ``[addr, end)``; ``pfn_of + (a >>
    PAGE_SHIFT)`` is the pfn for address ``a``."""
    k = pt.k
    mm = vma.vm_mm
    lv = ops_of(pt, mm, table.level)
    shift = k.PAGE_SHIFT
    get, none, set_at = lv.get, lv.none, lv.set_at
    pfn_entry, mkhuge, mkspecial = lv.pfn_entry, lv.mkhuge, lv.mkspecial
    if not deposits_at(table.level, mm):
        # One lock for the run (the PTE table's split lock, as pte_alloc_map_lock takes).
        ptl = pt.lockptr(table)
        spin_lock(ptl)
        try:
            for ptr, a, _ in pt.slots(table, addr, end):
                if not none(get(ptr)):
                    return EBUSY
                set_at(mm, a, ptr, mkspecial(mkhuge(pfn_entry(pfn_of + (a >> shift), prot))))
        finally:
            spin_unlock(ptl)
        return 0
    # Leaves with a deposit: the table is allocated first, outside the lock.
    tl = ops_of(pt, mm, Level.PTE)
    for ptr, a, _ in pt.slots(table, addr, end):
        pgtable = tl.alloc_one(mm, a)
        if pgtable is None:
            return ENOMEM
        ptl = lv.lockptr(mm, ptr)
        spin_lock(ptl)
        if not none(get(ptr)):
            spin_unlock(ptl)
            tl.free(mm, pgtable)
            return EBUSY
        entry = mkspecial(mkhuge(pfn_entry(pfn_of + (a >> shift), prot)))
        lv.deposit(mm, ptr, pgtable)
        tl.inc_nr(mm)
        set_at(mm, a, ptr, entry)
        spin_unlock(ptl)
    return 0


def map_range(pt: PageTables, vma: vm_area_struct, table: Table, addr: int, end: int,
              pfn_of: int, prot: int, leaf: LevelGroup) -> int:
    """Map ``[addr, end)`` below ``table`` with leaves at level ``leaf``; 0 or -errno."""
    if table.group == leaf:
        return _map_leaves(pt, vma, table, addr, end, pfn_of, prot)
    for entry, a, nxt in pt.entries(table, addr, end):
        v = pt.read(entry)
        if pt.is_leaf(v):
            return EBUSY  # insert_pfn_pmd: "if (pud_leaf(*pud)) return -EBUSY"
        if pt.is_none(v):
            child = pt.ensure_table(entry)
            if child is None:
                return ENOMEM
        else:
            child = pt.descend(entry)
        err = map_range(pt, vma, child, a, nxt, pfn_of, prot, leaf)
        if err:
            return err
    return 0


def map_pfn_range(pt: PageTables, vma: vm_area_struct, addr: int, pfn: int, size: int,
                  prot: int, page_size: int) -> int:
    """Map ``size`` bytes at ``addr`` of ``vma`` to ``pfn`` with ``page_size`` leaves.

    Base pages follow ``remap_pfn_range_internal`` (the COW-mapping rule for
    ``vm_pgoff``, the ``VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP`` flags); huge
    pages follow ``vmf_insert_pfn_pXd`` (the block must lie in the vma, the pfn must be
    block aligned).  0 or -errno; on error what was mapped stays mapped."""
    k = pt.k
    m = k.ULONG_MASK
    leaf = leaf_group(pt, vma, page_size)
    if page_size == k.PAGE_SIZE:
        end = (addr + PAGE_ALIGN(k, size)) & m
        if addr & ~k.PAGE_MASK:
            return EINVAL
        if is_cow_mapping(vma.vm_flags):
            if addr != vma.vm_start or end != vma.vm_end:
                return EINVAL
            vma.vm_pgoff = pfn
        vma.vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP
    else:
        end = (addr + size) & m
        if addr & (page_size - 1) or size & (page_size - 1):
            return EINVAL
        if addr < vma.vm_start or end > vma.vm_end:
            return EFAULT
        if pfn & ((page_size >> k.PAGE_SHIFT) - 1):
            return EINVAL
    BUG_ON(addr >= end, f"map_pfn_range({addr:#x}, size {size:#x}): addr >= end")
    pfn_of = pfn - (addr >> k.PAGE_SHIFT)
    return map_range(pt, vma, pt.root_for(vma.vm_mm, addr), addr, end, pfn_of, prot, leaf)


def remap_pfn_range(pt: PageTables, vma: vm_area_struct, addr: int, pfn: int, size: int,
                    prot: int) -> int:
    """``remap_pfn_range``: 4K special leaves; on failure the leaves already set are zapped
    ("A partial pfn range mapping is dangerous"), the tables stay."""
    err = map_pfn_range(pt, vma, addr, pfn, size, prot, pt.k.PAGE_SIZE)
    if err:
        zap_page_range_single(pt, vma, addr, size, None)
    return err
