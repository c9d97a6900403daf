"""Mapping physical ranges into the kernel's page tables: ``mm/vmalloc.c`` and
``mm/pgalloc-track.h``.

``vmap_range`` is ``vmap_range_noflush`` (+ the no-op cache flush): ``vmap_p4d/pud/pmd/pte_range``
try a huge leaf at each level (``vmap_try_huge_pXd``: the architecture must support it, the
chunk must be exactly one aligned ``PXD_SIZE`` of VA and PA, and a table in the way is freed
with ``pXd_free_pYd_page``), and every level records what it changed in ``pgtbl_mod_mask``;
if that touches ``ARCH_PAGE_TABLE_SYNC_MASK`` the architecture copies the new top-level
entries into every pgd (``arch_sync_kernel_mappings``; x86-64: ``sync_global_pgds``).
``vunmap_range`` clears ptes and huge leaves (``pXd_clear_huge``) and, like the kernel,
frees no page table; then ``flush_tlb_kernel_range(addr, end)`` (the architecture's: on arm64
last level only, enough since no table was freed).  A table that a huge leaf replaces is
freed by ``pXd_free_pYd_page``, which flushes as the architecture does (x86
``flush_tlb_kernel_range``, whose INVLPG drops the paging-structure caches; arm64
``__flush_tlb_kernel_pgtable``).  Kernel entries need no page-table lock except populating a
table (``init_mm.page_table_lock``, taken by ``__p?d_alloc``/``__pte_alloc_kernel``).

Out-parameters: ``pgtbl_mod_mask *mask`` is a one-element list.  The kernel's ``BUG()`` on
remapping an already-mapped page is :class:`~arches.errors.BadInput` here, and so, as a
deliberate departure (docs/fidelity.md), is mapping over a huge leaf, which the kernel does
not check: there its outcome is architecture-specific memory corruption (x86
``pmd_free_pte_page`` frees the leaf's data page as a table; arm64 walks the block as one).
"""

from __future__ import annotations

from arches.errors import BadInput
from legacy.generic import GenericKernel
from legacy.mm.internal import EINVAL, ENOMEM
from legacy.mm_types import mm_struct
from legacy.pgtable import (
    PGTBL_P4D_MODIFIED,
    PGTBL_PGD_MODIFIED,
    PGTBL_PMD_MODIFIED,
    PGTBL_PTE_MODIFIED,
    PGTBL_PUD_MODIFIED,
)
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr, pgprot_t

pgtbl_mod_mask = list[int]
"""``pgtbl_mod_mask *``: a one-element list the callee ORs ``PGTBL_*_MODIFIED`` into."""


# -- mm/pgalloc-track.h ------------------------------------------------------------------


def p4d_alloc_track(k: GenericKernel, mm: mm_struct, pgd: PgdPtr, address: int,
                    mod_mask: pgtbl_mod_mask) -> P4dPtr | None:
    if k.pgd_none(k.pgdp_get(pgd)):
        if k._p4d_alloc(mm, pgd, address):
            return None
        mod_mask[0] |= PGTBL_PGD_MODIFIED
    return k.p4d_offset(pgd, address)


def pud_alloc_track(k: GenericKernel, mm: mm_struct, p4d: P4dPtr, address: int,
                    mod_mask: pgtbl_mod_mask) -> PudPtr | None:
    if k.p4d_none(k.p4dp_get(p4d)):
        if k._pud_alloc(mm, p4d, address):
            return None
        mod_mask[0] |= PGTBL_P4D_MODIFIED
    return k.pud_offset(p4d, address)


def pmd_alloc_track(k: GenericKernel, mm: mm_struct, pud: PudPtr, address: int,
                    mod_mask: pgtbl_mod_mask) -> PmdPtr | None:
    if k.pud_none(k.pudp_get(pud)):
        if k._pmd_alloc(mm, pud, address):
            return None
        mod_mask[0] |= PGTBL_PUD_MODIFIED
    return k.pmd_offset(pud, address)


def pte_alloc_kernel_track(k: GenericKernel, pmd: PmdPtr, address: int,
                           mask: pgtbl_mod_mask) -> PtePtr | None:
    if k.pmd_none(k.pmdp_get(pmd)):
        if k._pte_alloc_kernel(pmd):
            return None
        mask[0] |= PGTBL_PMD_MODIFIED
    return k.pte_offset_kernel(pmd, address)


# -- vmap ----------------------------------------------------------------------------------


def _remapping(what: str, addr: int) -> BadInput:
    """The kernel's ``BUG()`` ("remapping already mapped page")."""
    return BadInput(f"vmap: remapping already mapped {what} at {addr:#x}")


def vmap_pte_range(k: GenericKernel, pmd: PmdPtr, addr: int, end: int, phys_addr: int,
                   prot: pgprot_t, max_page_shift: int, mask: pgtbl_mod_mask) -> int:
    """One PTE table's worth of 4K pages (``arch_vmap_pte_range_map_size`` is the generic
    ``PAGE_SIZE``: no contiguous-PTE hints emulated)."""
    m = k.ULONG_MASK
    if (end - addr) & m & ~k.PAGE_MASK:  # WARN_ON_ONCE(!PAGE_ALIGNED(end - addr))
        return EINVAL

    pfn = phys_addr >> k.PAGE_SHIFT
    if k.pmd_leaf(k.pmdp_get(pmd)):
        raise _remapping("huge pmd", addr)
    pte = pte_alloc_kernel_track(k, pmd, addr, mask)
    if pte is None:
        return ENOMEM

    while True:
        if not k.pte_none(k.ptep_get(pte)):
            raise _remapping("page", addr)
        k.set_pte_at(k.init_mm, addr, pte, k.pfn_pte(pfn, prot))
        pfn += 1
        pte = pte + 1
        addr = (addr + k.PAGE_SIZE) & m
        if addr == end:
            break
    mask[0] |= PGTBL_PTE_MODIFIED
    return 0


def vmap_try_huge_pmd(k: GenericKernel, pmd: PmdPtr, addr: int, end: int, phys_addr: int,
                      prot: pgprot_t, max_page_shift: int) -> int:
    if max_page_shift < k.PMD_SHIFT:
        return 0
    if not k.arch_vmap_pmd_supported(prot):
        return 0
    if ((end - addr) & k.ULONG_MASK) != k.PMD_SIZE:
        return 0
    if addr & (k.PMD_SIZE - 1):
        return 0
    if phys_addr & (k.PMD_SIZE - 1):
        return 0
    cur = k.pmdp_get(pmd)
    if k.pmd_leaf(cur):
        raise _remapping("huge pmd", addr)
    if k.pmd_present(cur) and not k.pmd_free_pte_page(pmd, addr):
        return 0
    return k.pmd_set_huge(pmd, phys_addr, prot)


def vmap_pmd_range(k: GenericKernel, pud: PudPtr, addr: int, end: int, phys_addr: int,
                   prot: pgprot_t, max_page_shift: int, mask: pgtbl_mod_mask) -> int:
    err = 0
    if k.pud_leaf(k.pudp_get(pud)):
        raise _remapping("huge pud", addr)
    pmd = pmd_alloc_track(k, k.init_mm, pud, addr, mask)
    if pmd is None:
        return ENOMEM
    while True:
        next = k.pmd_addr_end(addr, end)

        if vmap_try_huge_pmd(k, pmd, addr, next, phys_addr, prot, max_page_shift):
            mask[0] |= PGTBL_PMD_MODIFIED
        else:
            err = vmap_pte_range(k, pmd, addr, next, phys_addr, prot, max_page_shift, mask)
            if err:
                break
        pmd = pmd + 1
        phys_addr += (next - addr) & k.ULONG_MASK
        addr = next
        if addr == end:
            break
    return err


def vmap_try_huge_pud(k: GenericKernel, pud: PudPtr, addr: int, end: int, phys_addr: int,
                      prot: pgprot_t, max_page_shift: int) -> int:
    if max_page_shift < k.PUD_SHIFT:
        return 0
    if not k.arch_vmap_pud_supported(prot):
        return 0
    if ((end - addr) & k.ULONG_MASK) != k.PUD_SIZE:
        return 0
    if addr & (k.PUD_SIZE - 1):
        return 0
    if phys_addr & (k.PUD_SIZE - 1):
        return 0
    cur = k.pudp_get(pud)
    if k.pud_leaf(cur):
        raise _remapping("huge pud", addr)
    if k.pud_present(cur) and not k.pud_free_pmd_page(pud, addr):
        return 0
    return k.pud_set_huge(pud, phys_addr, prot)


def vmap_pud_range(k: GenericKernel, p4d: P4dPtr, addr: int, end: int, phys_addr: int,
                   prot: pgprot_t, max_page_shift: int, mask: pgtbl_mod_mask) -> int:
    err = 0
    pud = pud_alloc_track(k, k.init_mm, p4d, addr, mask)
    if pud is None:
        return ENOMEM
    while True:
        next = k.pud_addr_end(addr, end)

        if vmap_try_huge_pud(k, pud, addr, next, phys_addr, prot, max_page_shift):
            mask[0] |= PGTBL_PUD_MODIFIED
        else:
            err = vmap_pmd_range(k, pud, addr, next, phys_addr, prot, max_page_shift, mask)
            if err:
                break
        pud = pud + 1
        phys_addr += (next - addr) & k.ULONG_MASK
        addr = next
        if addr == end:
            break
    return err


def vmap_try_huge_p4d(k: GenericKernel, p4d: P4dPtr, addr: int, end: int, phys_addr: int,
                      prot: pgprot_t, max_page_shift: int) -> int:
    if max_page_shift < k.P4D_SHIFT:
        return 0
    if not k.arch_vmap_p4d_supported(prot):
        return 0
    if ((end - addr) & k.ULONG_MASK) != k.P4D_SIZE:
        return 0
    if addr & (k.P4D_SIZE - 1):
        return 0
    if phys_addr & (k.P4D_SIZE - 1):
        return 0
    if k.p4d_present(k.p4dp_get(p4d)) and not k.p4d_free_pud_page(p4d, addr):
        return 0
    return k.p4d_set_huge(p4d, phys_addr, prot)


def vmap_p4d_range(k: GenericKernel, pgd: PgdPtr, addr: int, end: int, phys_addr: int,
                   prot: pgprot_t, max_page_shift: int, mask: pgtbl_mod_mask) -> int:
    err = 0
    p4d = p4d_alloc_track(k, k.init_mm, pgd, addr, mask)
    if p4d is None:
        return ENOMEM
    while True:
        next = k.p4d_addr_end(addr, end)

        if vmap_try_huge_p4d(k, p4d, addr, next, phys_addr, prot, max_page_shift):
            mask[0] |= PGTBL_P4D_MODIFIED
        else:
            err = vmap_pud_range(k, p4d, addr, next, phys_addr, prot, max_page_shift, mask)
            if err:
                break
        p4d = p4d + 1
        phys_addr += (next - addr) & k.ULONG_MASK
        addr = next
        if addr == end:
            break
    return err


def vmap_range_noflush(k: GenericKernel, addr: int, end: int, phys_addr: int, prot: pgprot_t,
                       max_page_shift: int) -> int:
    mask: pgtbl_mod_mask = [0]
    if addr >= end:
        raise BadInput(f"vmap_range: empty range {addr:#x}..{end:#x}")  # BUG_ON

    start = addr
    pgd = k.pgd_offset_k(addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        err = vmap_p4d_range(k, pgd, addr, next, phys_addr, prot, max_page_shift, mask)
        if err:
            break
        pgd = pgd + 1
        phys_addr += (next - addr) & k.ULONG_MASK
        addr = next
        if addr == end:
            break

    if mask[0] & k.ARCH_PAGE_TABLE_SYNC_MASK:
        k.arch_sync_kernel_mappings(start, end)

    return err


def vmap_range(k: GenericKernel, addr: int, end: int, phys_addr: int, prot: pgprot_t,
               max_page_shift: int) -> int:
    """Map ``[addr, end)`` of init_mm to ``phys_addr`` with leaves up to ``1 <<
    max_page_shift`` bytes (mm/vmalloc.c ``vmap_range``, 5.13+; later
    ``vmap_page_range``, which also applies ``pgprot_nx``).  0 or -ENOMEM / -EINVAL."""
    err = vmap_range_noflush(k, addr, end, phys_addr, prot, max_page_shift)
    # flush_cache_vmap(addr, end): no caches emulated.
    return err


# -- vunmap --------------------------------------------------------------------------------


def vunmap_pte_range(k: GenericKernel, pmd: PmdPtr, addr: int, end: int,
                     mask: pgtbl_mod_mask) -> None:
    m = k.ULONG_MASK
    pte = k.pte_offset_kernel(pmd, addr)
    while True:
        # WARN_ON(!pte_none(ptent) && !pte_present(ptent)): a swap entry in a kernel table.
        k.ptep_get_and_clear(k.init_mm, addr, pte)
        pte = pte + 1
        addr = (addr + k.PAGE_SIZE) & m
        if addr == end:
            break
    mask[0] |= PGTBL_PTE_MODIFIED


def vunmap_pmd_range(k: GenericKernel, pud: PudPtr, addr: int, end: int,
                     mask: pgtbl_mod_mask) -> None:
    pmd = k.pmd_offset(pud, addr)
    while True:
        next = k.pmd_addr_end(addr, end)

        cleared = k.pmd_clear_huge(pmd)
        if cleared or k.pmd_bad(k.pmdp_get(pmd)):
            mask[0] |= PGTBL_PMD_MODIFIED

        # cleared: WARN_ON(next - addr < PMD_SIZE) -- a partial unmap drops the whole leaf.
        if not cleared and not k.pmd_none_or_clear_bad(pmd):
            vunmap_pte_range(k, pmd, addr, next, mask)
        pmd = pmd + 1
        addr = next
        if addr == end:
            break


def vunmap_pud_range(k: GenericKernel, p4d: P4dPtr, addr: int, end: int,
                     mask: pgtbl_mod_mask) -> None:
    pud = k.pud_offset(p4d, addr)
    while True:
        next = k.pud_addr_end(addr, end)

        cleared = k.pud_clear_huge(pud)
        if cleared or k.pud_bad(k.pudp_get(pud)):
            mask[0] |= PGTBL_PUD_MODIFIED

        if not cleared and not k.pud_none_or_clear_bad(pud):
            vunmap_pmd_range(k, pud, addr, next, mask)
        pud = pud + 1
        addr = next
        if addr == end:
            break


def vunmap_p4d_range(k: GenericKernel, pgd: PgdPtr, addr: int, end: int,
                     mask: pgtbl_mod_mask) -> None:
    p4d = k.p4d_offset(pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)

        k.p4d_clear_huge(p4d)
        if k.p4d_bad(k.p4dp_get(p4d)):
            mask[0] |= PGTBL_P4D_MODIFIED

        if not k.p4d_none_or_clear_bad(p4d):
            vunmap_pud_range(k, p4d, addr, next, mask)
        p4d = p4d + 1
        addr = next
        if addr == end:
            break


def vunmap_range_noflush(k: GenericKernel, start: int, end: int) -> None:
    """``__vunmap_range_noflush`` (kmsan hook not emulated)."""
    addr = start
    mask: pgtbl_mod_mask = [0]
    if addr >= end:
        raise BadInput(f"vunmap_range: empty range {addr:#x}..{end:#x}")  # BUG_ON

    pgd = k.pgd_offset_k(addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        if k.pgd_bad(k.pgdp_get(pgd)):
            mask[0] |= PGTBL_PGD_MODIFIED
        if not k.pgd_none_or_clear_bad(pgd):
            vunmap_p4d_range(k, pgd, addr, next, mask)
        pgd = pgd + 1
        addr = next
        if addr == end:
            break

    if mask[0] & k.ARCH_PAGE_TABLE_SYNC_MASK:
        k.arch_sync_kernel_mappings(start, end)


def vunmap_range(k: GenericKernel, addr: int, end: int) -> None:
    """Clear the kernel mappings of ``[addr, end)`` and flush them; page tables stay
    allocated."""
    # flush_cache_vunmap(addr, end): no caches emulated.
    vunmap_range_noflush(k, addr, end)
    k.flush_tlb_kernel_range(addr, end)


__all__ = [
    "p4d_alloc_track", "pmd_alloc_track", "pte_alloc_kernel_track", "pud_alloc_track",
    "vmap_range", "vmap_range_noflush", "vunmap_range", "vunmap_range_noflush",
]
