"""Faulting in private anonymous memory on the unified API: the port of
:mod:`legacy.mm.anon` (mm/gup.c ``populate_vma_page_range`` -> mm/memory.c
``handle_mm_fault`` -> ``do_anonymous_page``).

The walk down is level-generic: from the root, every missing table on the way is allocated
with the lower level's legacy ``*_alloc`` (:meth:`PageTables.ensure_table`: ``p4d_alloc``,
``pud_alloc``, ``pmd_alloc``, then ``pte_alloc`` as ``do_anonymous_page`` does), in the
order ``__handle_mm_fault`` allocates them, so both paths get the same frames.  The leaf is
a PTE (anonymous memory is mapped with base pages only here, as in the legacy path):

- a write fault (writable private vma): a new page (``alloc_anon_folio``, order 0),
  ``pte_mkwrite(pte_mkdirty(mk_pte(page, vm_page_prot)))``, ``folio_add_new_anon_rmap``
  exclusive, after ``anon_vma_prepare``;
- a read fault: ``pte_mkspecial(pfn_pte(my_zero_pfn(addr), vm_page_prot))``.

Each leaf is written under its PTE table's lock.  A store into an empty entry owes no TLB
flush ("No need to invalidate - it was non-present before").
"""

from __future__ import annotations

from legacy import EntryPtr, pgprot_t, spin_lock, spin_unlock, vm_area_struct
from legacy.mm.anon import FOLL_FORCE, FOLL_TOUCH, FOLL_WRITE
from legacy.mm.page import (
    folio_add_new_anon_rmap,
    folio_put,
    my_zero_pfn,
    vma_alloc_zeroed_movable_folio,
)
from legacy.mm.vm_flags import VM_SHARED, VM_WRITE
from legacy.mm.vma import anon_vma_prepare, vma_is_anonymous
from legacy.mm_types import mmap_assert_locked
from unified.handles import Table
from unified.levels import Level
from unified.mm._common import EFAULT, ENOMEM, ops_of
from unified.pagetables import PageTables

__all__ = ["fault_in_anon", "populate_vma_page_range"]


def _pte_table(pt: PageTables, vma: vm_area_struct, addr: int,
               end: int | None = None) -> tuple[Table, int] | None:
    """The PTE table for ``addr`` and the end of what it maps (clipped to ``end``),
    allocating the missing tables on the way down (``__handle_mm_fault`` + ``pte_alloc``);
    None on -ENOMEM."""
    table: Table | None = pt.root_for(vma.vm_mm, addr)
    limit = addr + pt.k.PAGE_SIZE if end is None else end
    while table is not None and not pt.is_bottom(table):
        entry = pt.entry(table, addr)
        limit = pt.range_end(entry, addr, limit)
        table = pt.ensure_table(entry)
    return None if table is None else (table, limit)


def fault_in_anon(pt: PageTables, vma: vm_area_struct, addr: int, write: bool) -> int:
    """One anonymous fault at ``addr`` whose pte is none (``do_anonymous_page``): 0 or
    -errno (-ENOMEM for a table that could not be allocated, -EFAULT for a vma that is
    not anonymous or is shared)."""
    if not vma_is_anonymous(vma) or vma.vm_flags & VM_SHARED:
        return EFAULT  # VM_FAULT_SIGBUS
    found = _pte_table(pt, vma, addr)
    if found is None:
        return ENOMEM  # VM_FAULT_OOM
    ptr, _a, _n = next(pt.slots(found[0], addr, addr + pt.k.PAGE_SIZE))
    return _fault_slot(pt, vma, found[0], ptr, addr, write)


def _fault_slot(pt: PageTables, vma: vm_area_struct, table: Table, ptr: EntryPtr, addr: int,
                write: bool) -> int:
    """``do_anonymous_page`` into the slot ``ptr`` (for ``addr``) of the PTE table
    ``table``, which exists."""
    k = pt.k
    mm = vma.vm_mm
    if not vma_is_anonymous(vma) or vma.vm_flags & VM_SHARED:
        return EFAULT  # VM_FAULT_SIGBUS
    lv = ops_of(pt, mm, Level.PTE)
    prot = pgprot_t(vma.vm_page_prot)
    folio = None
    if not write:  # Use the zero-page for reads
        v = lv.mkspecial(lv.pfn_entry(my_zero_pfn(k, addr), prot))
    else:
        if anon_vma_prepare(k, vma):
            return ENOMEM
        folio = vma_alloc_zeroed_movable_folio(k, vma, addr)
        entry = k.mk_pte(folio, prot)
        if vma.vm_flags & VM_WRITE:
            entry = k.pte_mkwrite_novma(k.pte_mkdirty(entry))
        v = int(entry)
    ptl = pt.lockptr(table)
    spin_lock(ptl)
    try:
        if not lv.none(lv.get(ptr)):  # vmf_pte_changed(): release
            if folio is not None:
                folio_put(k, folio)
            return 0
        if folio is not None:
            folio_add_new_anon_rmap(k, folio, vma, addr, True)  # RMAP_EXCLUSIVE
        lv.set_at(mm, addr, ptr, v)  # it was non-present before: nothing to flush
    finally:
        spin_unlock(ptl)
    return 0


def populate_vma_page_range(pt: PageTables, vma: vm_area_struct, start: int, end: int) -> int:
    """Fault in ``[start, end)`` of ``vma`` (``mmap_lock`` held): write faults for a
    writable private vma ("to break COW"), read faults (``FOLL_FORCE``) otherwise.
    Returns the number of pages, or -ENOMEM / -EFAULT."""
    k = pt.k
    if start & ~k.PAGE_MASK or end & ~k.PAGE_MASK or start < vma.vm_start or end > vma.vm_end:
        raise AssertionError("populate_vma_page_range: range not page aligned inside the vma")
    mmap_assert_locked(vma.vm_mm)
    gup_flags = FOLL_TOUCH
    if (vma.vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE:
        gup_flags |= FOLL_WRITE
    else:
        gup_flags |= FOLL_FORCE
    write = bool(gup_flags & FOLL_WRITE)
    lv = ops_of(pt, vma.vm_mm, Level.PTE)
    nr = 0
    addr = start
    while addr < end:
        # One walk per PTE table, not per page: a page GUP finds mapped (a present pte,
        # writable for a write) is counted; a missing one is faulted in its slot.
        found = _pte_table(pt, vma, addr, end)
        if found is None:
            return ENOMEM
        table, table_end = found
        for ptr, a, _n in pt.slots(table, addr, table_end):
            v = lv.get(ptr)
            if not (lv.present(v) and (not write or lv.write(v))):
                err = _fault_slot(pt, vma, table, ptr, a, write)
                if err:
                    return err
            nr += 1
        addr = table_end
    return nr
