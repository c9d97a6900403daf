"""Faulting in private anonymous memory: ``populate_vma_page_range`` (mm/gup.c) ->
``handle_mm_fault`` -> ``__handle_mm_fault`` -> ``handle_pte_fault`` -> ``do_pte_missing``
-> ``do_anonymous_page`` (mm/memory.c).

What ``mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE)`` does after ``mmap_region``: every
page of the vma is faulted in, with a write fault for a writable private vma ("to break
COW") and a read fault otherwise (``FOLL_FORCE``: a ``PROT_NONE`` vma is populated too):

- a write fault allocates a page, maps it ``pte_mkwrite(pte_mkdirty(mk_pte(page,
  vm_page_prot)))``, refcount 1, mapcount 1, anon-exclusive (``folio_add_new_anon_rmap``
  with ``RMAP_EXCLUSIVE``), after ``anon_vma_prepare``;
- a read fault maps the shared zero page: ``pte_mkspecial(pfn_pte(my_zero_pfn(addr),
  vm_page_prot))``, no reference, no anon_vma.

Simplifications (named where they apply): the GUP loop is reduced to "fault every page whose
pte is none" (``follow_page_pte`` finding the page present is the only other case here);
no THP for anonymous memory (``create_huge_pmd``/``create_huge_pud`` are not tried: base
pages only), no userfaultfd, no ``vmf_pte_changed`` race (nothing runs concurrently), no
``do_wp_page``: a write fault on a present read-only pte (COW) is never emulated.
"""

from __future__ import annotations

from dataclasses import dataclass

from legacy.generic import GenericKernel
from legacy.mm.internal import pte_offset_map_rw_nolock
from legacy.mm.page import (
    folio_add_new_anon_rmap,
    folio_put,
    my_zero_pfn,
    vma_alloc_zeroed_movable_folio,
)
from legacy.mm.vm_flags import VM_SHARED, VM_WRITE
from legacy.mm.vma import anon_vma_prepare, vma_is_anonymous
from legacy.mm_types import mmap_assert_locked, vm_area_struct
from legacy.types import PmdPtr, PtePtr, pgprot_t, pte_t

FAULT_FLAG_WRITE = 1 << 0
FAULT_FLAG_REMOTE = 1 << 7

VM_FAULT_OOM = 0x000001
VM_FAULT_SIGBUS = 0x000002
VM_FAULT_SIGSEGV = 0x000040

FOLL_WRITE = 0x01
FOLL_TOUCH = 0x02
FOLL_FORCE = 0x10

__all__ = [
    "FAULT_FLAG_WRITE", "FOLL_FORCE", "FOLL_TOUCH", "FOLL_WRITE", "VM_FAULT_OOM",
    "VM_FAULT_SIGBUS", "VM_FAULT_SIGSEGV", "do_anonymous_page", "handle_mm_fault",
    "populate_vma_page_range", "vm_fault",
]


@dataclass
class vm_fault:
    """``struct vm_fault`` (include/linux/mm.h), the fields these paths use."""

    vma: vm_area_struct
    address: int
    flags: int
    pmd: PmdPtr | None = None
    pte: PtePtr | None = None
    orig_pte: pte_t = pte_t(0)


def do_anonymous_page(k: GenericKernel, vmf: vm_fault) -> int:
    """We enter with non-exclusive mmap_lock (to exclude vma changes, but allow
    concurrent faults), and pte mapped but not yet locked.  Returns 0 or ``VM_FAULT_*``."""
    vma = vmf.vma
    mm = vma.vm_mm
    addr = vmf.address
    assert vmf.pmd is not None
    # File mapping without ->vm_ops ?
    if vma.vm_flags & VM_SHARED:
        return VM_FAULT_SIGBUS
    # Use pte_alloc() instead of pte_alloc_map(), so that OOM can be distinguished from a
    # transient failure of pte_offset_map().
    if k.pte_alloc(mm, vmf.pmd):
        return VM_FAULT_OOM

    # Use the zero-page for reads
    if not vmf.flags & FAULT_FLAG_WRITE:  # && !mm_forbids_zeropage(vma->vm_mm)
        entry = k.pte_mkspecial(k.pfn_pte(my_zero_pfn(k, addr), pgprot_t(vma.vm_page_prot)))
        mapped = k.pte_offset_map_lock(mm, vmf.pmd, addr)
        if mapped is None:
            return 0
        vmf.pte, ptl = mapped
        if not k.pte_none(k.ptep_get(vmf.pte)):  # vmf_pte_changed()
            k.pte_unmap_unlock(vmf.pte, ptl)
            return 0
        k.set_pte_at(mm, addr, vmf.pte, entry)  # setpte: set_ptes(..., 1)
        # No need to invalidate - it was non-present before (update_mmu_cache_range).
        k.pte_unmap_unlock(vmf.pte, ptl)
        return 0

    # Allocate our own private page.
    if anon_vma_prepare(k, vma):  # vmf_anon_prepare()
        return VM_FAULT_OOM
    folio = vma_alloc_zeroed_movable_folio(k, vma, addr)  # alloc_anon_folio(), order 0
    # __folio_mark_uptodate(folio): contents are not emulated.
    entry = k.mk_pte(folio, pgprot_t(vma.vm_page_prot))  # folio_mk_pte()
    # entry = pte_sw_mkyoung(entry): the identity except on MIPS (include/linux/pgtable.h).
    if vma.vm_flags & VM_WRITE:
        # pte_mkwrite(pte_mkdirty(entry), vma): pte_mkwrite_novma() without VM_SHADOW_STACK
        entry = k.pte_mkwrite_novma(k.pte_mkdirty(entry))

    mapped = k.pte_offset_map_lock(mm, vmf.pmd, addr)
    if mapped is None:
        folio_put(k, folio)  # release
        return 0
    vmf.pte, ptl = mapped
    if not k.pte_none(k.ptep_get(vmf.pte)):  # vmf_pte_changed(): update_mmu_tlb; release
        k.pte_unmap_unlock(vmf.pte, ptl)
        folio_put(k, folio)
        return 0
    # folio_ref_add(folio, nr_pages - 1): nr_pages == 1; add_mm_counter: no RSS counters.
    folio_add_new_anon_rmap(k, folio, vma, addr, True)  # RMAP_EXCLUSIVE
    # folio_add_lru_vma(folio, vma): no LRU.
    k.set_pte_at(mm, addr, vmf.pte, entry)  # setpte: set_ptes(..., nr_pages)
    # No need to invalidate - it was non-present before (update_mmu_cache_range).
    k.pte_unmap_unlock(vmf.pte, ptl)
    return 0


def do_pte_missing(k: GenericKernel, vmf: vm_fault) -> int:
    """``vma_is_anonymous``: ``do_anonymous_page``; file faults (``do_fault``) are not
    emulated (no vma here has a ``->fault``)."""
    if vma_is_anonymous(vmf.vma):
        return do_anonymous_page(k, vmf)
    return VM_FAULT_SIGBUS


def handle_pte_fault(k: GenericKernel, vmf: vm_fault) -> int:
    assert vmf.pmd is not None
    if k.pmd_none(k.pmdp_get(vmf.pmd)):
        # Leave __pte_alloc() until later: because vm_ops->fault may want to allocate
        # its own page table.
        vmf.pte = None
    else:
        mapped = pte_offset_map_rw_nolock(k, vmf.vma.vm_mm, vmf.pmd, vmf.address)
        if mapped is None:
            return 0
        vmf.pte = mapped[0]
        vmf.orig_pte = k.ptep_get(vmf.pte)
        if k.pte_none(vmf.orig_pte):
            k.pte_unmap(vmf.pte)
            vmf.pte = None
    if vmf.pte is None:
        return do_pte_missing(k, vmf)
    # A present pte: do_wp_page() (COW) and the access-flag update are not emulated; the
    # populate loop never faults a present pte (see populate_vma_page_range).
    k.pte_unmap(vmf.pte)
    return 0


def __handle_mm_fault(k: GenericKernel, vma: vm_area_struct, address: int, flags: int) -> int:
    """``__handle_mm_fault``: allocate the tables down to the PMD, then
    ``handle_pte_fault`` (huge pud/pmd faults are not tried: no anonymous THP here)."""
    mm = vma.vm_mm
    vmf = vm_fault(vma=vma, address=address & k.PAGE_MASK, flags=flags)
    pgd = k.pgd_offset(mm, address)
    p4d = k.p4d_alloc(mm, pgd, address)
    if p4d is None:
        return VM_FAULT_OOM
    pud = k.pud_alloc(mm, p4d, address)
    if pud is None:
        return VM_FAULT_OOM
    pmd = k.pmd_alloc(mm, pud, address)
    if pmd is None:
        return VM_FAULT_OOM
    vmf.pmd = pmd
    return handle_pte_fault(k, vmf)


def handle_mm_fault(k: GenericKernel, vma: vm_area_struct, address: int, flags: int) -> int:
    """The fault handler (mm/memory.c), reduced to the anonymous path; 0 or
    ``VM_FAULT_*``."""
    return __handle_mm_fault(k, vma, address, flags)


def _follow_page_pte(k: GenericKernel, vma: vm_area_struct, address: int, write: bool) -> bool:
    """Whether GUP finds the page already mapped (``follow_page_mask``): a present pte,
    writable if the access is a write."""
    mm = vma.vm_mm
    pgd = k.pgd_offset(mm, address)
    if k.pgd_none(k.pgdp_get(pgd)):
        return False
    p4d = k.p4d_offset(pgd, address)
    if k.p4d_none(k.p4dp_get(p4d)):
        return False
    pud = k.pud_offset(p4d, address)
    if k.pud_none(k.pudp_get(pud)) or k.pud_leaf(k.pudp_get(pud)):
        return False
    pmd = k.pmd_offset(pud, address)
    v = k.pmdp_get(pmd)
    if k.pmd_none(v) or k.pmd_leaf(v):
        return False
    pte = k.pte_offset_map(pmd, address)
    if pte is None:
        return False
    val = k.ptep_get(pte)
    k.pte_unmap(pte)
    return bool(k.pte_present(val) and (not write or k.pte_write(val)))


def populate_vma_page_range(k: GenericKernel, vma: vm_area_struct, start: int, end: int) -> int:
    """mm/gup.c: fault in ``[start, end)`` of ``vma`` (``mmap_lock`` held); returns the
    number of pages, or -ENOMEM (-12) / -EFAULT (-14) from the fault.

    "We want to touch writable mappings with a write fault in order to break COW, except
    for shared mappings because these don't COW and we would not want to dirty them for
    nothing.  Otherwise, do a read fault, and use FOLL_FORCE in case it's not readable."
    ``__get_user_pages`` is reduced to: for each page, if ``follow_page_mask`` does not
    find it, ``faultin_page`` -> ``handle_mm_fault``."""
    mm = vma.vm_mm
    if start & ~k.PAGE_MASK or end & ~k.PAGE_MASK:
        raise AssertionError("populate_vma_page_range: VM_BUG_ON(!PAGE_ALIGNED)")
    if start < vma.vm_start or end > vma.vm_end:
        raise AssertionError("populate_vma_page_range: VM_BUG_ON_VMA(range outside the vma)")
    mmap_assert_locked(mm)
    gup_flags = FOLL_TOUCH
    if (vma.vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE:
        gup_flags |= FOLL_WRITE
    else:
        gup_flags |= FOLL_FORCE
    fault_flags = FAULT_FLAG_WRITE if gup_flags & FOLL_WRITE else 0
    nr = 0
    for addr in range(start, end, k.PAGE_SIZE):
        if _follow_page_pte(k, vma, addr, bool(gup_flags & FOLL_WRITE)):
            nr += 1
            continue
        ret = handle_mm_fault(k, vma, addr, fault_flags)
        if ret & VM_FAULT_OOM:
            return -12
        if ret & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV):
            return -14
        nr += 1
    return nr
