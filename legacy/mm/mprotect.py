"""Changing the protection of a user range: ``mm/mprotect.c`` ``change_protection`` and its
per-level walkers (Linux v6.18).

The per-level walkers take the ``mmu_gather`` as in v6.18: ``change_pte_range`` queues a
pte's page with ``tlb_flush_pte_range`` when ``pte_needs_flush(oldpte, ptent)`` (x86: a
demotion, asm/tlbflush.h; every other architecture: always), ``change_huge_pmd`` with
``tlb_flush_pmd_range``, ``change_huge_pud`` with ``tlb_flush_pud_range``, and
``change_protection_range`` brackets the walk with ``tlb_start_vma``/``tlb_end_vma`` (which
flushes: no emulated architecture merges vmas).

Departure: ``change_protection(k, vma, start, end, newprot)`` keeps its pre-6.2 signature
(the new protection is explicit, no ``mmu_gather``: ``ptshim.backends`` and the unified ports
call it so) and gathers itself: ``tlb_gather_mmu`` ... ``tlb_finish_mmu`` around the walk,
which is what ``do_mprotect_pkey`` does around its ``mprotect_fixup`` loop, one gather per
vma instead of one per syscall (the flushes are the same: ``tlb_end_vma`` flushes each vma).
``cp_flags`` (NUMA hinting, uffd-wp, ``MM_CP_TRY_CHANGE_WRITABLE``) are
not emulated either, so no pte is made writable behind the caller's back.  Present ptes get
``pte_modify(oldpte, newprot)`` between ``ptep_modify_prot_start`` / ``_commit`` (the generic
``ptep_get_and_clear`` + ``set_pte_at``); a writable migration entry is made readable
(:func:`change_swap_pte`); empty ones are left alone.  A huge pmd or pud the
range covers entirely is changed in place (``change_huge_pmd`` / ``change_huge_pud``);
one it covers partly is split first and the walk goes on below it.

A pseudo-vma of ``init_mm`` is accepted (the scenario layer protects kernel ranges this way;
the kernel uses ``set_memory_*``): its PTE tables are mapped with ``pte_offset_kernel``.
"""

from __future__ import annotations

from arches.errors import BadInput
from legacy.generic import GenericKernel
from legacy.mm.huge_memory import (
    HPAGE_PMD_NR,
    HPAGE_PUD_NR,
    change_huge_pmd,
    change_huge_pud,
    split_huge_pmd,
    split_huge_pud,
)
from legacy.mm.internal import BUG_ON
from legacy.mm.mmu_gather import (
    mmu_gather,
    tlb_change_page_size,
    tlb_end_vma,
    tlb_finish_mmu,
    tlb_flush_pte_range,
    tlb_gather_mmu,
    tlb_start_vma,
)
from legacy.mm.page import folio_test_anon
from legacy.mm_types import spinlock_t, vm_area_struct
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PudPtr, pgprot_t, pte_t

EAGAIN = -11


def pte_needs_flush(k: GenericKernel, oldpte: pte_t, newpte: pte_t) -> bool:
    """``pte_needs_flush``: the architecture's (x86 asm/tlbflush.h), else
    include/linux/pgtable.h's ``true``."""
    return k.pte_needs_flush(oldpte, newpte)


def change_swap_pte(k: GenericKernel, oldpte: pte_t) -> pte_t:
    """What ``change_pte_range`` makes of a swap pte (mm/mprotect.c, v6.18): a writable
    migration entry becomes readable -- "A protection check is difficult so just be safe
    and disable write" -- exclusive if its folio is anonymous, soft-dirty kept; anything else
    stays (device-private entries and pte markers are not emulated, nor uffd-wp)."""
    entry = k.pte_to_swp_entry(oldpte)
    if not k.is_writable_migration_entry(entry):
        return oldpte
    pfn = k.swp_offset(entry)  # pfn_swap_entry_folio(entry)
    if folio_test_anon(k, pfn):
        entry = k.make_readable_exclusive_migration_entry(pfn)
    else:
        entry = k.make_readable_migration_entry(pfn)
    newpte = k.swp_entry_to_pte(entry)
    if k.pte_swp_soft_dirty(oldpte):
        newpte = k.pte_swp_mksoft_dirty(newpte)
    return newpte


def change_pte_range(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pmd: PmdPtr,
                     addr: int, end: int, newprot: pgprot_t) -> int:
    """Pages changed, or -EAGAIN if the PTE table went away (the caller retries)."""
    m = k.ULONG_MASK
    pages = 0
    ptl: spinlock_t | None = None
    tlb_change_page_size(k, tlb, k.PAGE_SIZE)
    if vma.vm_mm.is_init_mm:
        # Not a kernel path (set_memory_* changes kernel protections): kernel PTE tables
        # have no split lock, so map them as apply_to_pte_range() does for init_mm.
        pte = k.pte_offset_kernel(pmd, addr)
    else:
        r = k.pte_offset_map_lock(vma.vm_mm, pmd, addr)
        if r is None:
            return EAGAIN
        pte, ptl = r
    while True:
        oldpte = k.ptep_get(pte)
        if k.pte_present(oldpte):
            # modify_prot_start_ptes() / modify_prot_commit_ptes(), nr_ptes = 1
            oldpte = k.ptep_get_and_clear(vma.vm_mm, addr, pte)
            ptent = k.pte_modify(oldpte, newprot)
            k.set_pte_at(vma.vm_mm, addr, pte, ptent)
            # prot_commit_flush_ptes()
            if pte_needs_flush(k, oldpte, ptent):
                tlb_flush_pte_range(k, tlb, addr, k.PAGE_SIZE)
            pages += 1
        elif k.is_swap_pte(oldpte):
            newpte = change_swap_pte(k, oldpte)
            if not k.pte_same(oldpte, newpte):
                k.set_pte_at(vma.vm_mm, addr, pte, newpte)
                pages += 1
        # else pte_none(): "Nobody plays with any none ptes besides userfaultfd"
        pte = pte + 1
        addr = (addr + k.PAGE_SIZE) & m
        if addr == end:
            break
    if ptl is not None:
        k.pte_unmap_unlock(pte - 1, ptl)
    return pages


def change_pmd_range(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pud: PudPtr,
                     addr: int, end: int, newprot: pgprot_t) -> int:
    pages = 0
    pmd = k.pmd_offset(pud, addr)
    while True:  # again:
        next = k.pmd_addr_end(addr, end)
        if not k.pmd_none(k.pmdp_get(pmd)):
            _pmd = k.pmdp_get_lockless(pmd)
            handled = False
            if k.is_swap_pmd(_pmd):
                # change_huge_pmd's is_swap_pmd branch (and __split_huge_pmd of a PMD
                # migration entry) are not emulated: refuse rather than retry forever.
                raise BadInput(f"mprotect: the PMD migration entry at {addr:#x} is not "
                               "emulated (mm/huge_memory.c change_huge_pmd)")
            if k.pmd_trans_huge(_pmd):
                if ((next - addr) & k.ULONG_MASK) != k.PMD_SIZE:
                    split_huge_pmd(k, vma, pmd, addr)
                else:
                    ret = change_huge_pmd(k, tlb, vma, pmd, addr, newprot)
                    if ret:
                        if ret == HPAGE_PMD_NR(k):
                            pages += HPAGE_PMD_NR(k)
                        handled = True  # huge pmd was handled
                # fall through, the trans huge pmd just split
            if not handled:
                ret = change_pte_range(k, tlb, vma, pmd, addr, next, newprot)
                if ret < 0:
                    continue  # goto again
                pages += ret
        # next:
        pmd = pmd + 1
        addr = next
        if addr == end:
            break
    return pages


def change_pud_range(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, p4d: P4dPtr,
                     addr: int, end: int, newprot: pgprot_t) -> int:
    pages = 0
    pudp = k.pud_offset(p4d, addr)
    while True:  # again:
        next = k.pud_addr_end(addr, end)
        pud = k.pudp_get(pudp)
        if not k.pud_none(pud):
            if k.pud_leaf(pud):
                if ((next - addr) & k.ULONG_MASK) != k.PUD_SIZE:
                    split_huge_pud(k, vma, pudp, addr)
                    continue  # goto again
                ret = change_huge_pud(k, tlb, vma, pudp, addr, newprot)
                if ret == 0:
                    continue  # goto again
                # huge pud was handled
                if ret == HPAGE_PUD_NR(k):
                    pages += HPAGE_PUD_NR(k)
            else:
                pages += change_pmd_range(k, tlb, vma, pudp, addr, next, newprot)
        pudp = pudp + 1
        addr = next
        if addr == end:
            break
    return pages


def change_p4d_range(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pgd: PgdPtr,
                     addr: int, end: int, newprot: pgprot_t) -> int:
    pages = 0
    p4d = k.p4d_offset(pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)
        if not k.p4d_none_or_clear_bad(p4d):
            pages += change_pud_range(k, tlb, vma, p4d, addr, next, newprot)
        p4d = p4d + 1
        addr = next
        if addr == end:
            break
    return pages


def change_protection_range(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, addr: int,
                            end: int, newprot: pgprot_t) -> int:
    mm = vma.vm_mm
    pages = 0
    BUG_ON(addr >= end, f"change_protection: {addr:#x} >= {end:#x}")
    pgd = k.pgd_offset(mm, addr)
    tlb_start_vma(k, tlb, vma)
    while True:
        next = k.pgd_addr_end(addr, end)
        if not k.pgd_none_or_clear_bad(pgd):
            pages += change_p4d_range(k, tlb, vma, pgd, addr, next, newprot)
        pgd = pgd + 1
        addr = next
        if addr == end:
            break
    tlb_end_vma(k, tlb, vma)
    return pages


def change_protection(k: GenericKernel, vma: vm_area_struct, start: int, end: int,
                      newprot: pgprot_t) -> int:
    """Apply ``newprot`` to every mapped page of ``[start, end)`` in ``vma``; returns the
    number of base pages whose entry was rewritten.  Gathers and flushes itself (see the
    module docstring): the caller holds ``mmap_lock`` for write, as ``do_mprotect_pkey``."""
    tlb = tlb_gather_mmu(k, vma.vm_mm)
    pages = change_protection_range(k, tlb, vma, start, end, newprot)
    tlb_finish_mmu(k, tlb)
    return pages


__all__ = ["change_protection", "change_protection_range"]
