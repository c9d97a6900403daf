"""mm/memory.c: freeing page tables, zapping ranges, ``remap_pfn_range`` and fork's
``copy_page_range``, ported line for line.

Emulation notes (the rest is the kernel's code):

- ``struct page *`` is its pfn: ``vm_normal_page`` returns the pfn of a "normal" page or
  None.  Anonymous pages have a ``struct page`` with refcount, mapcount and the
  anon-exclusive bit (:mod:`legacy.mm.page`); zap drops their rmap and queues their
  reference on the gather (freed by ``tlb_batch_pages_flush`` after the TLB flush), fork
  takes a reference and a mapping and clears anon-exclusive.  A normal page without a
  ``struct page`` here (none is ever mapped) behaves as a file page.  RSS counters are not
  kept; no swap, migration or marker entries are ever created.
- ``need_resched()`` is always false, ``pfn_modify_allowed()`` and ``track_pfn_*`` (x86 PAT)
  always allow, mmu notifiers and cache flushes do nothing.
- ``BUG_ON`` raises :class:`~arches.errors.CheckFailed`; a BUG under a page-table lock
  releases the lock first so the machine stays usable.
- Huge entries are handed to :mod:`legacy.mm.huge_memory` (imported lazily).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from arches.errors import OutOfMemory
from legacy.generic import GenericKernel
from legacy.mm.internal import (
    BUG_ON,
    EINVAL,
    ENOMEM,
    PAGE_ALIGN,
    is_swap_pmd,
    pte_offset_map_rw_nolock,
)
from legacy.mm.mmu_gather import (
    _tlb_remove_page_size,
    mmu_gather,
    p4d_free_tlb,
    pmd_free_tlb,
    pte_free_tlb,
    pud_free_tlb,
    tlb_change_page_size,
    tlb_end_vma,
    tlb_finish_mmu,
    tlb_flush_mmu,
    tlb_flush_mmu_tlbonly,
    tlb_flush_rmaps,
    tlb_gather_mmu,
    tlb_remove_tlb_entries,
    tlb_remove_tlb_entry,
    tlb_start_vma,
)
from legacy.mm.page import (
    folio_dup_file_rmap_pte,
    folio_get,
    folio_mapcount,
    folio_remove_rmap_ptes,
    folio_test_anon,
    folio_try_dup_anon_rmap_pte,
    is_zero_pfn,
    pfn_to_page,
)
from legacy.mm.vm_flags import (
    VM_DONTDUMP,
    VM_DONTEXPAND,
    VM_IO,
    VM_MIXEDMAP,
    VM_PFNMAP,
    VM_SHARED,
    is_cow_mapping,
    is_vm_hugetlb_page,
)
from legacy.mm.vma import vma_anon_vma
from legacy.mm_types import mm_struct, spin_lock, vm_area_struct
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr, pgprot_t, pte_t

ZAP_FLAG_DROP_MARKER = 1 << 0
ZAP_FLAG_UNMAP = 1 << 1


@dataclass
class zap_details:
    """``struct zap_details`` (include/linux/mm.h): which pages a zap may drop."""

    even_cows: bool = False
    zap_flags: int = 0


# -- free_pgd_range: unhook and free the tables of an unmapped range ---------------------


def free_pte_range(k: GenericKernel, tlb: mmu_gather, pmd: PmdPtr, addr: int) -> None:
    """Note: this doesn't free the actual pages themselves. That has been handled earlier
    when unmapping all the memory regions."""
    token = k.pmd_pgtable(k.pmdp_get(pmd))
    k.pmd_clear(pmd)
    pte_free_tlb(k, tlb, token, addr)
    k.mm_dec_nr_ptes(tlb.mm)


def free_pmd_range(
    k: GenericKernel, tlb: mmu_gather, pud: PudPtr, addr: int, end: int, floor: int,
    ceiling: int,
) -> None:
    m = k.ULONG_MASK
    start = addr
    pmd = k.pmd_offset(pud, addr)
    while True:
        next = k.pmd_addr_end(addr, end)
        if not k.pmd_none_or_clear_bad(pmd):
            free_pte_range(k, tlb, pmd, addr)
        pmd, addr = pmd + 1, next
        if addr == end:
            break

    start &= k.PUD_MASK
    if start < floor:
        return
    if ceiling:
        ceiling &= k.PUD_MASK
        if not ceiling:
            return
    if (end - 1) & m > (ceiling - 1) & m:
        return

    pmd = k.pmd_offset(pud, start)
    k.pud_clear(pud)
    pmd_free_tlb(k, tlb, pmd, start)
    k.mm_dec_nr_pmds(tlb.mm)


def free_pud_range(
    k: GenericKernel, tlb: mmu_gather, p4d: P4dPtr, addr: int, end: int, floor: int,
    ceiling: int,
) -> None:
    m = k.ULONG_MASK
    start = addr
    pud = k.pud_offset(p4d, addr)
    while True:
        next = k.pud_addr_end(addr, end)
        if not k.pud_none_or_clear_bad(pud):
            free_pmd_range(k, tlb, pud, addr, next, floor, ceiling)
        pud, addr = pud + 1, next
        if addr == end:
            break

    start &= k.P4D_MASK
    if start < floor:
        return
    if ceiling:
        ceiling &= k.P4D_MASK
        if not ceiling:
            return
    if (end - 1) & m > (ceiling - 1) & m:
        return

    pud = k.pud_offset(p4d, start)
    k.p4d_clear(p4d)
    pud_free_tlb(k, tlb, pud, start)
    k.mm_dec_nr_puds(tlb.mm)


def free_p4d_range(
    k: GenericKernel, tlb: mmu_gather, pgd: PgdPtr, addr: int, end: int, floor: int,
    ceiling: int,
) -> None:
    m = k.ULONG_MASK
    start = addr
    p4d = k.p4d_offset(pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)
        if not k.p4d_none_or_clear_bad(p4d):
            free_pud_range(k, tlb, p4d, addr, next, floor, ceiling)
        p4d, addr = p4d + 1, next
        if addr == end:
            break

    start &= k.PGDIR_MASK
    if start < floor:
        return
    if ceiling:
        ceiling &= k.PGDIR_MASK
        if not ceiling:
            return
    if (end - 1) & m > (ceiling - 1) & m:
        return

    p4d = k.p4d_offset(pgd, start)
    k.pgd_clear(pgd)
    p4d_free_tlb(k, tlb, p4d, start)


def free_pgd_range(
    k: GenericKernel, tlb: mmu_gather, addr: int, end: int, floor: int, ceiling: int
) -> None:
    """This function frees user-level page tables of a process.

    "0 represents both the bottom of the address space and the top of it": addr 0 and
    floor 0 are the bottom, end 0 and ceiling 0 the top, so comparisons use ``end - 1``
    and ``ceiling - 1`` in ``unsigned long``.  A table is freed only when the whole region
    it maps lies in ``[floor, ceiling)``; the pgd page itself is never freed here.
    """
    m = k.ULONG_MASK
    addr &= k.PMD_MASK
    if addr < floor:
        addr = (addr + k.PMD_SIZE) & m
        if not addr:
            return
    if ceiling:
        ceiling &= k.PMD_MASK
        if not ceiling:
            return
    if (end - 1) & m > (ceiling - 1) & m:
        end = (end - k.PMD_SIZE) & m
    if addr > (end - 1) & m:
        return
    # We add page table cache pages with PAGE_SIZE, (see pte_free_tlb()), flush the tlb
    # if we need
    tlb_change_page_size(k, tlb, k.PAGE_SIZE)
    pgd = k.pgd_offset(tlb.mm, addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        if not k.pgd_none_or_clear_bad(pgd):
            free_p4d_range(k, tlb, pgd, addr, next, floor, ceiling)
        pgd, addr = pgd + 1, next
        if addr == end:
            break


def free_pgtables_ranges(
    k: GenericKernel, vmas: Sequence[vm_area_struct], ceiling: int
) -> Iterator[tuple[int, int, int]]:
    """The vma walk of ``free_pgtables``: ``(addr, end, next_start)`` for each run of
    nearby vmas that one ``free_pgd_range`` call frees, ``next_start`` being the next vma's
    start or ``ceiling``.  The kernel iterates a maple state bounded by ``ceiling - 1``;
    here it is the sorted list."""
    m = k.ULONG_MASK

    def mas_find(i: int) -> vm_area_struct | None:
        # Note: USER_PGTABLES_CEILING may be passed as ceiling and may be 0.  This will
        # underflow and is okay.
        if i < len(vmas) and vmas[i].vm_start <= (ceiling - 1) & m:
            return vmas[i]
        return None

    i = 0
    vma: vm_area_struct | None = vmas[0] if vmas else None
    while vma is not None:
        addr = vma.vm_start
        i += 1
        next = mas_find(i)
        # unlink_anon_vmas / unlink_file_vma: no rmap is emulated.
        # Optimization: gather nearby vmas into one call down (is_vm_hugetlb_page: no
        # hugetlb is emulated; such a vma would go to hugetlb_free_pgd_range).
        while (
            next is not None and next.vm_start <= (vma.vm_end + k.PMD_SIZE) & m
            and not is_vm_hugetlb_page(next)
        ):
            vma = next
            i += 1
            next = mas_find(i)
        yield addr, vma.vm_end, next.vm_start if next else ceiling
        vma = next


def free_pgtables(
    k: GenericKernel, tlb: mmu_gather, vmas: Sequence[vm_area_struct], floor: int,
    ceiling: int,
) -> None:
    """Free the page tables of ``vmas`` (sorted, already unmapped), gathering nearby vmas
    into one ``free_pgd_range`` call; ``[floor, ceiling)`` bounds what may be freed.

    No page-table lock is taken: the vmas are detached and ``mmap_lock`` is held for write
    (Documentation/mm/process_addrs.rst, "Page table teardown")."""
    with k.pgtable_lockless(tlb.mm, "free_pgtables (vmas detached)"):
        for addr, end, next_start in free_pgtables_ranges(k, vmas, ceiling):
            free_pgd_range(k, tlb, addr, end, floor, next_start)


# -- vm_normal_page ----------------------------------------------------------------------


def vm_normal_page(k: GenericKernel, vma: vm_area_struct, addr: int, pte: pte_t) -> int | None:
    """The "struct page" behind a present pte -- its pfn here -- or None for a special
    mapping (a raw ``VM_PFNMAP`` pte that was never COWed, the zero page...)."""
    pfn = k.pte_pfn(pte)
    if k.ARCH_HAS_PTE_SPECIAL:
        if not k.pte_special(pte):
            return pfn  # check_pfn: every pfn has a struct page here
        if vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP):
            return None
        if is_zero_pfn(k, pfn):
            return None
        k.pgd_ERROR("pte", pte)  # print_bad_pte: special pte in a normal vma
        return None
    # !CONFIG_ARCH_HAS_PTE_SPECIAL case follows:
    if vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP):
        if vma.vm_flags & VM_MIXEDMAP:
            return pfn
        off = (addr - vma.vm_start) >> k.PAGE_SHIFT
        if pfn == vma.vm_pgoff + off:
            return None
        if not is_cow_mapping(vma.vm_flags):
            return None
    if is_zero_pfn(k, pfn):
        return None
    return pfn


# -- zapping: clear the ptes of a range, keep the tables --------------------------------


def zap_present_folio_ptes(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, page: int, pte: PtePtr,
    ptent: pte_t, nr: int, addr: int, details: zap_details | None,
) -> tuple[bool, bool]:
    """Returns ``(force_flush, force_break)``.  An anonymous folio loses its rmap now; a
    dirty file folio's rmap removal is delayed until after the TLB flush
    (``tlb_delay_rmap``: CONFIG_SMP)."""
    mm = tlb.mm
    delay_rmap = False
    force_flush = force_break = False
    if not folio_test_anon(k, page):
        ptent = k.ptep_get_and_clear_full(mm, addr, pte, int(tlb.fullmm))  # nr == 1
        if k.pte_dirty(ptent):
            # folio_mark_dirty; tlb_delay_rmap() (CONFIG_SMP) sets delayed_rmap, is true
            tlb.delayed_rmap = True
            delay_rmap = True
            force_flush = True
    else:
        # We don't need up-to-date accessed/dirty bits.
        k.ptep_get_and_clear_full(mm, addr, pte, int(tlb.fullmm))  # clear_full_ptes
    tlb_remove_tlb_entries(k, tlb, pte, nr, addr)
    if not delay_rmap and pfn_to_page(k, page) is not None:
        folio_remove_rmap_ptes(k, page, nr, vma)
        BUG_ON(folio_mapcount(k, page) < 0, f"print_bad_pte: pfn {page:#x} mapcount < 0")
    if _tlb_remove_page_size(k, tlb, page, delay_rmap, k.PAGE_SIZE):
        force_flush = True
        force_break = True
    return force_flush, force_break


def zap_present_ptes(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pte: PtePtr, ptent: pte_t,
    max_nr: int, addr: int, details: zap_details | None,
) -> tuple[int, bool, bool]:
    """Zap one present pte (no large folios: never a batch).  Returns
    ``(nr, force_flush, force_break)``."""
    mm = tlb.mm
    page = vm_normal_page(k, vma, addr, ptent)
    if page is None:
        # We don't need up-to-date accessed/dirty bits.
        k.ptep_get_and_clear_full(mm, addr, pte, int(tlb.fullmm))
        tlb_remove_tlb_entry(k, tlb, pte, addr)
        return 1, False, False
    force_flush, force_break = zap_present_folio_ptes(
        k, tlb, vma, page, pte, ptent, 1, addr, details
    )
    return 1, force_flush, force_break


def zap_pte_range(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pmd: PmdPtr, addr: int, end: int,
    details: zap_details | None,
) -> int:
    force_flush = force_break = False
    mm = tlb.mm
    m = k.ULONG_MASK

    tlb_change_page_size(k, tlb, k.PAGE_SIZE)
    mapped = k.pte_offset_map_lock(mm, pmd, addr)
    if mapped is None:
        return addr
    start_pte, ptl = mapped
    pte = start_pte
    while True:
        ptent = k.ptep_get(pte)
        nr = 1
        if k.pte_none(ptent):
            pass
        elif k.pte_present(ptent):
            max_nr = ((end - addr) & m) // k.PAGE_SIZE
            nr, flush, force_break = zap_present_ptes(
                k, tlb, vma, pte, ptent, max_nr, addr, details
            )
            force_flush = force_flush or flush
            if force_break:
                addr = (addr + nr * k.PAGE_SIZE) & m
                break
        else:
            # Swap, migration and marker entries are never created in the emulation; a
            # genuine swap entry is dropped like this (clear_not_present_full_ptes).
            k.pte_clear(mm, addr, pte)
        pte, addr = pte + nr, (addr + k.PAGE_SIZE * nr) & m
        if addr == end:
            break

    # Do the actual TLB flush before dropping ptl
    if force_flush:
        tlb_flush_mmu_tlbonly(k, tlb)
        tlb_flush_rmaps(k, tlb, vma)
    k.pte_unmap_unlock(start_pte, ptl)

    # If we forced a TLB flush (either due to running out of batch buffers or because we
    # needed to flush dirty TLB entries before releasing the ptl), free the batched memory
    # too. Come back again if we didn't do everything.
    if force_flush:
        tlb_flush_mmu(k, tlb)
    return addr


def zap_pmd_range(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pud: PudPtr, addr: int, end: int,
    details: zap_details | None,
) -> int:
    m = k.ULONG_MASK
    pmd = k.pmd_offset(pud, addr)
    while True:
        next = k.pmd_addr_end(addr, end)
        zapped = False
        pmdval = k.pmdp_get(pmd)
        if is_swap_pmd(k, pmdval) or k.pmd_trans_huge(pmdval):
            from legacy.mm.huge_memory import split_huge_pmd, zap_huge_pmd

            if (next - addr) & m != k.PMD_SIZE:  # HPAGE_PMD_SIZE
                split_huge_pmd(k, vma, pmd, addr)  # __split_huge_pmd(vma, pmd, addr, false)
            elif zap_huge_pmd(k, tlb, vma, pmd, addr):
                zapped = True
            # fall through
        if zapped or k.pmd_none(k.pmdp_get(pmd)):
            addr = next
        else:
            addr = zap_pte_range(k, tlb, vma, pmd, addr, next, details)
            if addr != next:
                pmd = pmd - 1
        pmd = pmd + 1
        if addr == end:
            break
    return addr


def zap_pud_range(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, p4d: P4dPtr, addr: int, end: int,
    details: zap_details | None,
) -> int:
    m = k.ULONG_MASK
    pud = k.pud_offset(p4d, addr)
    while True:
        next = k.pud_addr_end(addr, end)
        zapped = False
        if k.pud_trans_huge(k.pudp_get(pud)):
            from legacy.mm.huge_memory import split_huge_pud, zap_huge_pud

            if (next - addr) & m != k.PUD_SIZE:  # HPAGE_PUD_SIZE
                try:
                    split_huge_pud(k, vma, pud, addr)
                except OutOfMemory:
                    # Our split allocates (the kernel's __split_huge_pud of a pfn pud does
                    # not: it clears the pud), and a zap cannot fail half way: the whole
                    # leaf is zapped instead -- what the kernel's split does -- through the
                    # gather; do_munmap reports -ENOMEM once the unmap is complete.
                    tlb.split_enomem = True
                    if zap_huge_pud(k, tlb, vma, pud, addr):
                        zapped = True
            elif zap_huge_pud(k, tlb, vma, pud, addr):
                zapped = True  # goto next
            # fall through
        if not zapped and not k.pud_none_or_clear_bad(pud):
            next = zap_pmd_range(k, tlb, vma, pud, addr, next, details)
        pud, addr = pud + 1, next
        if addr == end:
            break
    return addr


def zap_p4d_range(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pgd: PgdPtr, addr: int, end: int,
    details: zap_details | None,
) -> int:
    p4d = k.p4d_offset(pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)
        if not k.p4d_none_or_clear_bad(p4d):
            next = zap_pud_range(k, tlb, vma, p4d, addr, next, details)
        p4d, addr = p4d + 1, next
        if addr == end:
            break
    return addr


def unmap_page_range(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, addr: int, end: int,
    details: zap_details | None,
) -> None:
    BUG_ON(addr >= end, f"unmap_page_range({addr:#x}, {end:#x}): addr >= end")
    tlb_start_vma(k, tlb, vma)
    pgd = k.pgd_offset(vma.vm_mm, addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        if not k.pgd_none_or_clear_bad(pgd):
            next = zap_p4d_range(k, tlb, vma, pgd, addr, next, details)
        pgd, addr = pgd + 1, next
        if addr == end:
            break
    tlb_end_vma(k, tlb, vma)


def unmap_single_vma(
    k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, start_addr: int, end_addr: int,
    details: zap_details | None,
) -> None:
    start = max(vma.vm_start, start_addr)
    if start >= vma.vm_end:
        return
    end = min(vma.vm_end, end_addr)
    if end <= vma.vm_start:
        return
    # VM_PFNMAP: untrack_pfn() -- no PAT is emulated.
    if start != end:
        BUG_ON(is_vm_hugetlb_page(vma), "hugetlb vmas are not emulated")
        unmap_page_range(k, tlb, vma, start, end, details)


def unmap_vmas(
    k: GenericKernel, tlb: mmu_gather, vmas: Sequence[vm_area_struct], start_addr: int,
    end_addr: int,
) -> None:
    """Unmap ``[start_addr, end_addr)`` in each of ``vmas`` (sorted, as the maple state
    would yield them).  The page tables stay: ``free_pgtables`` frees them."""
    # Careful - we need to zap private pages too!
    details = zap_details(even_cows=True, zap_flags=ZAP_FLAG_DROP_MARKER | ZAP_FLAG_UNMAP)
    for vma in vmas:
        unmap_single_vma(k, tlb, vma, start_addr, end_addr, details)


def zap_page_range_single(
    k: GenericKernel, vma: vm_area_struct, address: int, size: int,
    details: zap_details | None = None,
) -> None:
    """Remove user pages in ``[address, address + size)``, which must fit into one VMA."""
    end = (address + size) & k.ULONG_MASK
    tlb = tlb_gather_mmu(k, vma.vm_mm)
    unmap_single_vma(k, tlb, vma, address, end, details)
    tlb_finish_mmu(k, tlb)


def zap_vma_ptes(k: GenericKernel, vma: vm_area_struct, address: int, size: int) -> None:
    """Remove ptes mapping the vma; only for ``VM_PFNMAP`` vmas."""
    end = address + size
    if not (vma.vm_start <= address and end <= vma.vm_end) or not vma.vm_flags & VM_PFNMAP:
        return
    zap_page_range_single(k, vma, address, size, None)


# -- remap_pfn_range ---------------------------------------------------------------------


def remap_pte_range(
    k: GenericKernel, mm: mm_struct, pmd: PmdPtr, addr: int, end: int, pfn: int,
    prot: pgprot_t,
) -> int:
    m = k.ULONG_MASK
    mapped = k.pte_alloc_map_lock(mm, pmd, addr)
    if mapped is None:
        return ENOMEM
    mapped_pte, ptl = mapped
    pte = mapped_pte
    try:
        while True:
            BUG_ON(not k.pte_none(k.ptep_get(pte)),
                   f"remap_pte_range: pte at {addr:#x} is not none")
            # pfn_modify_allowed(pfn, prot): no L1TF restriction is emulated.
            k.set_pte_at(mm, addr, pte, k.pte_mkspecial(k.pfn_pte(pfn, prot)))
            pfn += 1
            pte, addr = pte + 1, (addr + k.PAGE_SIZE) & m
            if addr == end:
                break
    finally:
        k.pte_unmap_unlock(mapped_pte, ptl)
    return 0


def remap_pmd_range(
    k: GenericKernel, mm: mm_struct, pud: PudPtr, addr: int, end: int, pfn: int,
    prot: pgprot_t,
) -> int:
    pfn -= addr >> k.PAGE_SHIFT
    pmd = k.pmd_alloc(mm, pud, addr)
    if pmd is None:
        return ENOMEM
    BUG_ON(k.pmd_trans_huge(k.pmdp_get(pmd)), "remap_pmd_range over a huge pmd")  # VM_BUG_ON
    while True:
        next = k.pmd_addr_end(addr, end)
        err = remap_pte_range(k, mm, pmd, addr, next, pfn + (addr >> k.PAGE_SHIFT), prot)
        if err:
            return err
        pmd, addr = pmd + 1, next
        if addr == end:
            break
    return 0


def remap_pud_range(
    k: GenericKernel, mm: mm_struct, p4d: P4dPtr, addr: int, end: int, pfn: int,
    prot: pgprot_t,
) -> int:
    pfn -= addr >> k.PAGE_SHIFT
    pud = k.pud_alloc(mm, p4d, addr)
    if pud is None:
        return ENOMEM
    while True:
        next = k.pud_addr_end(addr, end)
        err = remap_pmd_range(k, mm, pud, addr, next, pfn + (addr >> k.PAGE_SHIFT), prot)
        if err:
            return err
        pud, addr = pud + 1, next
        if addr == end:
            break
    return 0


def remap_p4d_range(
    k: GenericKernel, mm: mm_struct, pgd: PgdPtr, addr: int, end: int, pfn: int,
    prot: pgprot_t,
) -> int:
    pfn -= addr >> k.PAGE_SHIFT
    p4d = k.p4d_alloc(mm, pgd, addr)
    if p4d is None:
        return ENOMEM
    while True:
        next = k.p4d_addr_end(addr, end)
        err = remap_pud_range(k, mm, p4d, addr, next, pfn + (addr >> k.PAGE_SHIFT), prot)
        if err:
            return err
        p4d, addr = p4d + 1, next
        if addr == end:
            break
    return 0


def remap_pfn_range_internal(
    k: GenericKernel, vma: vm_area_struct, addr: int, pfn: int, size: int, prot: pgprot_t
) -> int:
    end = (addr + PAGE_ALIGN(k, size)) & k.ULONG_MASK
    mm = vma.vm_mm

    if addr & ~k.PAGE_MASK:  # WARN_ON_ONCE(!PAGE_ALIGNED(addr))
        return EINVAL
    # There's a horrible special case to handle copy-on-write behaviour that some
    # programs depend on. We mark the "original" un-COW'ed pages by matching them up with
    # "vma->vm_pgoff".  See vm_normal_page() for details.
    if is_cow_mapping(vma.vm_flags):
        if addr != vma.vm_start or end != vma.vm_end:
            return EINVAL
        vma.vm_pgoff = pfn

    vma.vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP

    BUG_ON(addr >= end, f"remap_pfn_range({addr:#x}, size {size:#x}): addr >= end")
    pfn -= addr >> k.PAGE_SHIFT
    pgd = k.pgd_offset(mm, addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        err = remap_p4d_range(k, mm, pgd, addr, next, pfn + (addr >> k.PAGE_SHIFT), prot)
        if err:
            return err
        pgd, addr = pgd + 1, next
        if addr == end:
            break
    return 0


def remap_pfn_range_notrack(
    k: GenericKernel, vma: vm_area_struct, addr: int, pfn: int, size: int, prot: pgprot_t
) -> int:
    error = remap_pfn_range_internal(k, vma, addr, pfn, size, prot)
    if not error:
        return 0
    # A partial pfn range mapping is dangerous: it does not maintain page reference
    # counts, and callers may free pages due to the error. So zap it early.
    zap_page_range_single(k, vma, addr, size, None)
    return error


def remap_pfn_range(
    k: GenericKernel, vma: vm_area_struct, addr: int, pfn: int, size: int, prot: pgprot_t
) -> int:
    """Map ``size`` bytes of physical memory from ``pfn`` at ``addr`` in ``vma``: special
    ptes, page tables allocated as needed; 0 or a negative errno (-ENOMEM, -EINVAL).  On
    failure the ptes already set are zapped; the tables stay for munmap/exit to free."""
    # track_pfn_remap(vma, &prot, pfn, addr, PAGE_ALIGN(size)): no PAT is emulated.
    return remap_pfn_range_notrack(k, vma, addr, pfn, size, prot)


# -- fork: copy_page_range ---------------------------------------------------------------


def copy_nonpresent_pte(
    k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pte: PtePtr,
    src_pte: PtePtr, addr: int,
) -> int:
    """Swap and migration entries are never created here: the entry is copied as the
    kernel copies a swap entry (``set_pte_at(dst_mm, addr, dst_pte, pte)``)."""
    k.set_pte_at(dst_vma.vm_mm, addr, dst_pte, k.ptep_get(src_pte))
    return 0


def _copy_present_ptes(
    k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pte: PtePtr,
    src_pte: PtePtr, pte: pte_t, addr: int, nr: int,
) -> None:
    """``__copy_present_ptes``."""
    src_mm = src_vma.vm_mm
    # If it's a COW mapping, write protect it both processes.
    if is_cow_mapping(src_vma.vm_flags) and k.pte_write(pte):
        for i in range(nr):  # wrprotect_ptes(src_mm, addr, src_pte, nr)
            k.ptep_set_wrprotect(src_mm, addr + i * k.PAGE_SIZE, src_pte + i)
        pte = k.pte_wrprotect(pte)
    # If it's a shared mapping, mark it clean in the child.
    if src_vma.vm_flags & VM_SHARED:
        pte = k.pte_mkclean(pte)
    pte = k.pte_mkold(pte)
    # pte_clear_uffd_wp: no userfaultfd is emulated, the bit is never set.
    for i in range(nr):  # set_ptes(dst_vma->vm_mm, addr, dst_pte, pte, nr)
        k.set_pte_at(dst_vma.vm_mm, addr + i * k.PAGE_SIZE, dst_pte + i, pte)


def copy_present_ptes(
    k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pte: PtePtr,
    src_pte: PtePtr, pte: pte_t, addr: int, max_nr: int,
) -> int:
    """Copy one present pte; returns the number copied (1: no large folios here).  A
    normal page gets a reference and a mapping; an anonymous one stops being
    anon-exclusive (``folio_try_dup_anon_rmap_pte``: no page is ever pinned, so it never
    has to be copied with ``copy_present_page``)."""
    page = vm_normal_page(k, src_vma, addr, pte)
    if page is not None and pfn_to_page(k, page) is not None:
        folio_get(k, page)
        if folio_test_anon(k, page):
            # If this page may have been pinned by the parent process, copy the page
            # immediately for the child (never: no page is pinned here).
            err = folio_try_dup_anon_rmap_pte(k, page, dst_vma, src_vma)
            BUG_ON(err != 0, "folio_try_dup_anon_rmap_pte failed: no page is pinned")
        else:
            folio_dup_file_rmap_pte(k, page, dst_vma)
    _copy_present_ptes(k, dst_vma, src_vma, dst_pte, src_pte, pte, addr, 1)
    return 1


def copy_pte_range(
    k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pmd: PmdPtr,
    src_pmd: PmdPtr, addr: int, end: int,
) -> int:
    dst_mm = dst_vma.vm_mm
    src_mm = src_vma.vm_mm
    m = k.ULONG_MASK

    dst_mapped = k.pte_alloc_map_lock(dst_mm, dst_pmd, addr)
    if dst_mapped is None:
        return ENOMEM
    dst_pte, dst_ptl = dst_mapped
    # We already hold the exclusive mmap_lock ... no need to get pmdval and do pmd_same().
    src_mapped = pte_offset_map_rw_nolock(k, src_mm, src_pmd, addr)
    if src_mapped is None:
        k.pte_unmap_unlock(dst_pte, dst_ptl)
        return 0
    src_pte, _dummy_pmdval, src_ptl = src_mapped
    spin_lock(src_ptl)  # spin_lock_nested(src_ptl, SINGLE_DEPTH_NESTING)
    orig_src_pte = src_pte
    orig_dst_pte = dst_pte

    while True:
        nr = 1
        ptent = k.ptep_get(src_pte)
        if k.pte_none(ptent):
            pass
        elif not k.pte_present(ptent):
            copy_nonpresent_pte(k, dst_vma, src_vma, dst_pte, src_pte, addr)
        else:
            max_nr = ((end - addr) & m) // k.PAGE_SIZE
            nr = copy_present_ptes(k, dst_vma, src_vma, dst_pte, src_pte, ptent, addr, max_nr)
        dst_pte, src_pte = dst_pte + nr, src_pte + nr
        addr = (addr + k.PAGE_SIZE * nr) & m
        if addr == end:
            break

    k.pte_unmap_unlock(orig_src_pte, src_ptl)
    k.pte_unmap_unlock(orig_dst_pte, dst_ptl)
    return 0


def copy_pmd_range(
    k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pud: PudPtr,
    src_pud: PudPtr, addr: int, end: int,
) -> int:
    dst_mm = dst_vma.vm_mm
    src_mm = src_vma.vm_mm
    m = k.ULONG_MASK

    dst_pmd = k.pmd_alloc(dst_mm, dst_pud, addr)
    if dst_pmd is None:
        return ENOMEM
    src_pmd = k.pmd_offset(src_pud, addr)
    while True:
        next = k.pmd_addr_end(addr, end)
        copied = False
        src_pmdval = k.pmdp_get(src_pmd)
        if is_swap_pmd(k, src_pmdval) or k.pmd_trans_huge(src_pmdval):
            from legacy.mm.huge_memory import copy_huge_pmd

            BUG_ON((next - addr) & m != k.PMD_SIZE, "copy_pmd_range: partial huge pmd")
            err = copy_huge_pmd(k, dst_mm, src_mm, dst_pmd, src_pmd, addr, dst_vma, src_vma)
            if err == ENOMEM:
                return ENOMEM
            copied = not err
            # fall through
        if not copied and not k.pmd_none_or_clear_bad(src_pmd):
            if copy_pte_range(k, dst_vma, src_vma, dst_pmd, src_pmd, addr, next):
                return ENOMEM
        dst_pmd, src_pmd, addr = dst_pmd + 1, src_pmd + 1, next
        if addr == end:
            break
    return 0


def copy_pud_range(
    k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_p4d: P4dPtr,
    src_p4d: P4dPtr, addr: int, end: int,
) -> int:
    dst_mm = dst_vma.vm_mm
    src_mm = src_vma.vm_mm
    m = k.ULONG_MASK

    dst_pud = k.pud_alloc(dst_mm, dst_p4d, addr)
    if dst_pud is None:
        return ENOMEM
    src_pud = k.pud_offset(src_p4d, addr)
    while True:
        next = k.pud_addr_end(addr, end)
        copied = False
        if k.pud_trans_huge(k.pudp_get(src_pud)):
            from legacy.mm.huge_memory import copy_huge_pud

            BUG_ON((next - addr) & m != k.PUD_SIZE, "copy_pud_range: partial huge pud")
            err = copy_huge_pud(k, dst_mm, src_mm, dst_pud, src_pud, addr, src_vma)
            if err == ENOMEM:
                return ENOMEM
            copied = not err
            # fall through
        if not copied and not k.pud_none_or_clear_bad(src_pud):
            if copy_pmd_range(k, dst_vma, src_vma, dst_pud, src_pud, addr, next):
                return ENOMEM
        dst_pud, src_pud, addr = dst_pud + 1, src_pud + 1, next
        if addr == end:
            break
    return 0


def copy_p4d_range(
    k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pgd: PgdPtr,
    src_pgd: PgdPtr, addr: int, end: int,
) -> int:
    dst_mm = dst_vma.vm_mm
    dst_p4d = k.p4d_alloc(dst_mm, dst_pgd, addr)
    if dst_p4d is None:
        return ENOMEM
    src_p4d = k.p4d_offset(src_pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)
        if not k.p4d_none_or_clear_bad(src_p4d):
            if copy_pud_range(k, dst_vma, src_vma, dst_p4d, src_p4d, addr, next):
                return ENOMEM
        dst_p4d, src_p4d, addr = dst_p4d + 1, src_p4d + 1, next
        if addr == end:
            break
    return 0


def vma_needs_copy(k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct) -> bool:
    """Copy at fork only what a fault could not rebuild: pfn mappings and vmas with an
    anon_vma (no userfaultfd is emulated).  "Don't copy ptes where a page fault will fill
    them correctly": a private vma that only ever had read faults (zero-page ptes, no
    anon_vma) is not copied; the child faults again."""
    if src_vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP):
        return True
    return vma_anon_vma(src_vma) is not None


def copy_page_range(k: GenericKernel, dst_vma: vm_area_struct, src_vma: vm_area_struct) -> int:
    """fork: copy the page tables of ``src_vma`` into ``dst_vma``'s mm, allocating the
    destination tables; COW mappings are write-protected in both.  0 or -ENOMEM."""
    addr = src_vma.vm_start
    end = src_vma.vm_end
    dst_mm = dst_vma.vm_mm
    src_mm = src_vma.vm_mm

    if not vma_needs_copy(k, dst_vma, src_vma):
        return 0
    BUG_ON(is_vm_hugetlb_page(src_vma), "hugetlb vmas are not emulated")
    # VM_PFNMAP: track_pfn_copy() -- no PAT is emulated.  is_cow: the mmu notifier range
    # and write_protect_seq have nothing to protect here.
    ret = 0
    dst_pgd = k.pgd_offset(dst_mm, addr)
    src_pgd = k.pgd_offset(src_mm, addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        if not k.pgd_none_or_clear_bad(src_pgd):
            if copy_p4d_range(k, dst_vma, src_vma, dst_pgd, src_pgd, addr, next):
                ret = ENOMEM
                break
        dst_pgd, src_pgd, addr = dst_pgd + 1, src_pgd + 1, next
        if addr == end:
            break
    return ret
