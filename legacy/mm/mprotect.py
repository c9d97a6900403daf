"""Changing the protection of a user range: ``mm/mprotect.c`` ``change_protection`` and its
per-level walkers (linux-next 2025).

``change_protection(k, vma, start, end, newprot)`` takes the new protection explicitly, as
the kernel did before 6.2 (now it reads ``vma->vm_page_prot``), and no ``mmu_gather``: no
TLB is emulated.  ``cp_flags`` (NUMA hinting, uffd-wp, ``MM_CP_TRY_CHANGE_WRITABLE``) are
not emulated either, so no pte is made writable behind the caller's back.  Present ptes get
``pte_modify(oldpte, newprot)`` between ``ptep_modify_prot_start`` / ``_commit`` (the generic
``ptep_get_and_clear`` + ``set_pte_at``); empty ones are left alone.  A huge pmd or pud the
range covers entirely is changed in place (``change_huge_pmd`` / ``change_huge_pud``);
one it covers partly is split first and the walk goes on below it.

A pseudo-vma of ``init_mm`` is accepted (the scenario layer protects kernel ranges this way;
the kernel uses ``set_memory_*``): its PTE tables are mapped with ``pte_offset_kernel``.
"""

from __future__ import annotations

from legacy.generic import GenericKernel
from legacy.mm.huge_memory import (
    HPAGE_PMD_NR,
    HPAGE_PUD_NR,
    change_huge_pmd,
    change_huge_pud,
    split_huge_pmd,
    split_huge_pud,
)
from legacy.mm_types import spinlock_t, vm_area_struct
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PudPtr, pgprot_t

EAGAIN = -11


def change_pte_range(k: GenericKernel, vma: vm_area_struct, pmd: PmdPtr, addr: int, end: int,
                     newprot: pgprot_t) -> int:
    """Pages changed, or -EAGAIN if the PTE table went away (the caller retries)."""
    m = k.ULONG_MASK
    pages = 0
    ptl: spinlock_t | None = None
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
            pages += 1
        # pte_none(): "Nobody plays with any none ptes besides userfaultfd";
        # swap entries: no migration or device-private entries are emulated.
        pte = pte + 1
        addr = (addr + k.PAGE_SIZE) & m
        if addr == end:
            break
    if ptl is not None:
        k.pte_unmap_unlock(pte - 1, ptl)
    return pages


def change_pmd_range(k: GenericKernel, vma: vm_area_struct, pud: PudPtr, addr: int, end: int,
                     newprot: pgprot_t) -> int:
    pages = 0
    pmd = k.pmd_offset(pud, addr)
    while True:  # again:
        next = k.pmd_addr_end(addr, end)
        if not k.pmd_none(k.pmdp_get(pmd)):
            _pmd = k.pmdp_get_lockless(pmd)
            handled = False
            if k.pmd_trans_huge(_pmd):
                if ((next - addr) & k.ULONG_MASK) != k.PMD_SIZE:
                    split_huge_pmd(k, vma, pmd, addr)
                else:
                    ret = change_huge_pmd(k, vma, pmd, addr, newprot)
                    if ret:
                        if ret == HPAGE_PMD_NR(k):
                            pages += HPAGE_PMD_NR(k)
                        handled = True  # huge pmd was handled
                # fall through, the trans huge pmd just split
            if not handled:
                ret = change_pte_range(k, vma, pmd, addr, next, newprot)
                if ret < 0:
                    continue  # goto again
                pages += ret
        # next:
        pmd = pmd + 1
        addr = next
        if addr == end:
            break
    return pages


def change_pud_range(k: GenericKernel, vma: vm_area_struct, p4d: P4dPtr, addr: int, end: int,
                     newprot: pgprot_t) -> int:
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
                ret = change_huge_pud(k, vma, pudp, addr, newprot)
                if ret == 0:
                    continue  # goto again
                # huge pud was handled
                if ret == HPAGE_PUD_NR(k):
                    pages += HPAGE_PUD_NR(k)
            else:
                pages += change_pmd_range(k, vma, pudp, addr, next, newprot)
        pudp = pudp + 1
        addr = next
        if addr == end:
            break
    return pages


def change_p4d_range(k: GenericKernel, vma: vm_area_struct, pgd: PgdPtr, addr: int, end: int,
                     newprot: pgprot_t) -> int:
    pages = 0
    p4d = k.p4d_offset(pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)
        if not k.p4d_none_or_clear_bad(p4d):
            pages += change_pud_range(k, vma, p4d, addr, next, newprot)
        p4d = p4d + 1
        addr = next
        if addr == end:
            break
    return pages


def change_protection_range(k: GenericKernel, vma: vm_area_struct, addr: int, end: int,
                            newprot: pgprot_t) -> int:
    mm = vma.vm_mm
    pages = 0
    if addr >= end:
        raise AssertionError(f"BUG_ON(addr >= end): {addr:#x} >= {end:#x}")
    pgd = k.pgd_offset(mm, addr)
    # tlb_start_vma(): no TLB
    while True:
        next = k.pgd_addr_end(addr, end)
        if not k.pgd_none_or_clear_bad(pgd):
            pages += change_p4d_range(k, vma, pgd, addr, next, newprot)
        pgd = pgd + 1
        addr = next
        if addr == end:
            break
    return pages


def change_protection(k: GenericKernel, vma: vm_area_struct, start: int, end: int,
                      newprot: pgprot_t) -> int:
    """Apply ``newprot`` to every mapped page of ``[start, end)`` in ``vma``; returns the
    number of base pages whose entry was rewritten."""
    return change_protection_range(k, vma, start, end, newprot)


__all__ = ["change_protection", "change_protection_range"]
