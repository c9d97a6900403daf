"""fork: copying a vma's page tables into the child, level-generically (mm/memory.c
``copy_page_range`` -> ``copy_p4d_range`` ... ``copy_pte_range``, ``copy_huge_pmd``,
``copy_huge_pud``).  The 2018 proof of concept's ``copy_pt_range``, built on
the legacy API.

One recursive routine walks the source; for each source entry covering the range:

- a huge leaf is copied whole (the range must cover it): the child gets the value, old
  (``pXd_mkold``), and its own deposited table when the leaf carries one; a leaf with a
  deposit is an anonymous-style THP (legacy/mm/huge_memory.py), write-protected in both
  unless special, any other leaf is write-protected in both when the mapping is COW and
  the leaf writable;
- an empty or bad entry is skipped (bad ones reported and cleared);
- a table: the child's table is allocated if missing (``*_alloc``), then the walk goes down.

A PTE table is copied under both tables' locks: non-present entries as they are, present
ones write-protected in both for a COW mapping, cleaned for a shared one, made old; a
normal page gets a reference and a mapping, an anonymous one loses anon-exclusive
(``copy_present_ptes``).  Only pfn mappings and vmas with an anon_vma are copied
(``vma_needs_copy``): the rest is refaulted in the child.  The parent's write-protects are
raw stores: ``dup_mmap`` flushes the whole parent mm at the end (``flush_tlb_mm(oldmm)``),
so no per-entry flush obligation is made.
"""

from __future__ import annotations

from legacy import spin_lock, spin_unlock, vm_area_struct
from legacy.mm.memory import vm_normal_page, vma_needs_copy
from legacy.mm.page import (
    folio_dup_file_rmap_pte,
    folio_get,
    folio_test_anon,
    folio_try_dup_anon_rmap_pte,
    pfn_to_page,
)
from legacy.mm.vm_flags import VM_SHARED, is_cow_mapping, is_vm_hugetlb_page
from unified.handles import Entry, Table
from unified.levels import Level
from unified.mm._common import BUG_ON, EAGAIN, ENOMEM, deposits_at, ops_of
from unified.pagetables import PageTables

__all__ = ["copy_page_range", "copy_range"]


def _copy_leaves(pt: PageTables, dst_vma: vm_area_struct, src_vma: vm_area_struct,
                 dst: Table, src: Table, addr: int, end: int) -> None:
    k = pt.k
    dst_mm, src_mm = dst_vma.vm_mm, src_vma.vm_mm
    lv = ops_of(pt, src_mm, src.level)
    get, none, present, set_at = lv.get, lv.none, lv.present, lv.set_at
    cow = is_cow_mapping(src_vma.vm_flags)
    shared = bool(src_vma.vm_flags & VM_SHARED)
    dst_ptl = pt.lockptr(dst)
    spin_lock(dst_ptl)
    src_ptl = pt.lockptr(src)
    spin_lock(src_ptl)  # spin_lock_nested(src_ptl, SINGLE_DEPTH_NESTING)
    try:
        dst_slots = pt.slots(dst, addr, end)
        for src_ptr, a, _ in pt.slots(src, addr, end):
            dst_ptr, _a, _n = next(dst_slots)
            v = get(src_ptr)
            if none(v):
                continue
            if not present(v):  # copy_nonpresent_pte: as a swap entry is copied
                set_at(dst_mm, a, dst_ptr, get(src_ptr))
                continue
            page = vm_normal_page(k, src_vma, a, v)  # type: ignore[arg-type]
            if page is not None and pfn_to_page(k, page) is not None:
                folio_get(k, page)
                if folio_test_anon(k, page):
                    # Clears anon-exclusive; never fails: no page is pinned here.
                    err = folio_try_dup_anon_rmap_pte(k, page, dst_vma, src_vma)
                    BUG_ON(err != 0, "folio_try_dup_anon_rmap_pte failed")
                else:
                    folio_dup_file_rmap_pte(k, page, dst_vma)
            # "If it's a COW mapping, write protect it both processes."
            if cow and lv.write(v):
                lv.set_wrprotect(src_mm, a, src_ptr)
                v = lv.wrprotect(v)
            # "If it's a shared mapping, mark it clean in the child."
            if shared:
                v = lv.mkclean(v)
            set_at(dst_mm, a, dst_ptr, lv.mkold(v))
    finally:
        spin_unlock(src_ptl)
        spin_unlock(dst_ptl)


def _copy_huge_leaf(pt: PageTables, dst_vma: vm_area_struct, src_vma: vm_area_struct,
                    dst_e: Entry, src_e: Entry, addr: int) -> int:
    """``copy_huge_pmd``/``copy_huge_pud``: 0, -ENOMEM, or -EAGAIN (not huge any more)."""
    dst_mm, src_mm = dst_vma.vm_mm, src_vma.vm_mm
    level = src_e.level
    lv = ops_of(pt, src_mm, level)
    tl = ops_of(pt, dst_mm, Level.PTE)
    deposit = deposits_at(level, dst_mm)
    pgtable = None
    if deposit:
        pgtable = tl.alloc_one(dst_mm, addr)
        if pgtable is None:
            return ENOMEM
    dst_ptl = lv.lockptr(dst_mm, dst_e.ptr)
    spin_lock(dst_ptl)
    src_ptl = lv.lockptr(src_mm, src_e.ptr)
    spin_lock(src_ptl)  # spin_lock_nested(src_ptl, SINGLE_DEPTH_NESTING)
    try:
        v = lv.get(src_e.ptr)
        if not lv.trans_huge(v):
            if pgtable is not None:
                tl.free(dst_mm, pgtable)
            return EAGAIN
        if pgtable is not None:
            tl.inc_nr(dst_mm)
            lv.deposit(dst_mm, dst_e.ptr, pgtable)
        if deposits_at(level, src_mm):  # an anonymous-style THP: COW unless special
            wrprotect = not lv.special(v)
        else:
            wrprotect = is_cow_mapping(src_vma.vm_flags) and lv.write(v)
        if wrprotect:
            lv.set_wrprotect(src_mm, addr, src_e.ptr)
            v = lv.wrprotect(v)
        lv.set_at(dst_mm, addr, dst_e.ptr, lv.mkold(v))
    finally:
        spin_unlock(src_ptl)
        spin_unlock(dst_ptl)
    return 0


def copy_range(pt: PageTables, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst: Table,
               src: Table, addr: int, end: int) -> int:
    """Copy ``[addr, end)`` from below ``src`` to below ``dst``: 0 or -ENOMEM."""
    if pt.is_bottom(src):
        _copy_leaves(pt, dst_vma, src_vma, dst, src, addr, end)
        return 0
    m = pt.k.ULONG_MASK
    lv = ops_of(pt, src_vma.vm_mm, src.level)
    for src_e, a, nxt in pt.entries(src, addr, end):
        dst_e = pt.entry(dst, a)
        v = lv.get(src_e.ptr)
        if lv.swap(v) or lv.trans_huge(v):
            BUG_ON((nxt - a) & m != lv.size, f"copy_range: partial huge leaf at {a:#x}")
            err = _copy_huge_leaf(pt, dst_vma, src_vma, dst_e, src_e, a)
            if err == ENOMEM:
                return ENOMEM
            if not err:
                continue
        if lv.none_or_clear_bad(src_e.ptr):
            continue
        dst_child = pt.ensure_table(dst_e)
        if dst_child is None:
            return ENOMEM
        if copy_range(pt, dst_vma, src_vma, dst_child, pt.descend(src_e), a, nxt):
            return ENOMEM
    return 0


def copy_page_range(pt: PageTables, dst_vma: vm_area_struct, src_vma: vm_area_struct) -> int:
    """Copy the page tables of ``src_vma`` into ``dst_vma``'s mm: 0 or -ENOMEM."""
    if not vma_needs_copy(pt.k, dst_vma, src_vma):
        return 0
    BUG_ON(is_vm_hugetlb_page(src_vma), "hugetlb vmas are not emulated")
    addr, end = src_vma.vm_start, src_vma.vm_end
    return copy_range(pt, dst_vma, src_vma, pt.root_for(dst_vma.vm_mm, addr),
                      pt.root_for(src_vma.vm_mm, addr), addr, end)
