"""LoongArch64 page-table entry bits and CSR values with their Linux names.

Bit positions and names: ``arch/loongarch/include/asm/pgtable-bits.h`` (64-bit layout),
``loongarch.h`` (``CSR_DMW1_*``, ``CSR_PWCTL*``), ``addrspace.h`` (``TO_PHYS_MASK``,
``PHYSADDR``) and ``arch/loongarch/mm/tlb.c`` (``setup_ptwalker``), Linux v6.18 as read
from the stored tree closest to it plus the v6.19 32-bit rework's context lines (which show
v6.18: no ``_PAGE_DEVMAP`` any more).  The walker (:mod:`arches.loongarch.walker`) does not
use these names: it has the reference manual's, so that it stays an independent oracle.

Also here: where the emulated kernel *image* keeps the tables that empty directory entries
point at (``invalid_pg_dir``, ``invalid_pmd_table``, ``invalid_pte_table``: page-aligned BSS
of ``arch/loongarch/mm/init.c`` / ``head.S``).  They are link-time symbols, so their
addresses are fixed for a given kernel build; the emulation places them at fixed physical
addresses below the frame allocator's first frame (16 MiB), inside the image loaded at
``PHYS_LINK_KADDR`` = 2 MiB (``load-y = 0x9000000000200000``).
"""

from __future__ import annotations

_PAGE_VALID_SHIFT = 0
_PAGE_ACCESSED_SHIFT = 0  # Reuse Valid for Accessed
_PAGE_DIRTY_SHIFT = 1
_PAGE_PLV_SHIFT = 2  # 2~3, two bits
_CACHE_SHIFT = 4  # 4~5, two bits
_PAGE_GLOBAL_SHIFT = 6
_PAGE_HUGE_SHIFT = 6  # HUGE is a PMD bit
_PAGE_PRESENT_SHIFT = 7
_PAGE_WRITE_SHIFT = 8
_PAGE_MODIFIED_SHIFT = 9
_PAGE_PROTNONE_SHIFT = 10
_PAGE_SPECIAL_SHIFT = 11
_PAGE_PFN_SHIFT = 12
_PAGE_HGLOBAL_SHIFT = 12  # HGlobal is a PMD bit
_PAGE_SWP_EXCLUSIVE_SHIFT = 23
_PAGE_PFN_END_SHIFT = 48
_PAGE_PRESENT_INVALID_SHIFT = 60
_PAGE_NO_READ_SHIFT = 61
_PAGE_NO_EXEC_SHIFT = 62
_PAGE_RPLV_SHIFT = 63

# Used by software
_PAGE_PRESENT = 1 << _PAGE_PRESENT_SHIFT
_PAGE_PRESENT_INVALID = 1 << _PAGE_PRESENT_INVALID_SHIFT
_PAGE_WRITE = 1 << _PAGE_WRITE_SHIFT
_PAGE_ACCESSED = 1 << _PAGE_ACCESSED_SHIFT
_PAGE_MODIFIED = 1 << _PAGE_MODIFIED_SHIFT
_PAGE_PROTNONE = 1 << _PAGE_PROTNONE_SHIFT
_PAGE_SPECIAL = 1 << _PAGE_SPECIAL_SHIFT
_PAGE_SWP_EXCLUSIVE = 1 << _PAGE_SWP_EXCLUSIVE_SHIFT
"""We borrow bit 23 to store the exclusive marker in swap PTEs."""

# Used by TLB hardware (placed in EntryLo*)
_PAGE_VALID = 1 << _PAGE_VALID_SHIFT
_PAGE_DIRTY = 1 << _PAGE_DIRTY_SHIFT
_PAGE_PLV = 3 << _PAGE_PLV_SHIFT
_PAGE_GLOBAL = 1 << _PAGE_GLOBAL_SHIFT
_PAGE_HUGE = 1 << _PAGE_HUGE_SHIFT
_PAGE_HGLOBAL = 1 << _PAGE_HGLOBAL_SHIFT
_PAGE_NO_READ = 1 << _PAGE_NO_READ_SHIFT
_PAGE_NO_EXEC = 1 << _PAGE_NO_EXEC_SHIFT
_PAGE_RPLV = 1 << _PAGE_RPLV_SHIFT
_CACHE_MASK = 3 << _CACHE_SHIFT

PLV_KERN = 0
PLV_USER = 3
_PAGE_USER = PLV_USER << _PAGE_PLV_SHIFT
_PAGE_KERN = PLV_KERN << _PAGE_PLV_SHIFT

_CACHE_SUC = 0 << _CACHE_SHIFT  # Strong-ordered UnCached
_CACHE_CC = 1 << _CACHE_SHIFT  # Coherent Cached
_CACHE_WUC = 2 << _CACHE_SHIFT  # Weak-ordered UnCached


def pfn_pte_shift(page_shift: int) -> int:
    """``PFN_PTE_SHIFT = PAGE_SHIFT - 12 + _PAGE_PFN_SHIFT`` (= ``_PFN_SHIFT``)."""
    return page_shift - 12 + _PAGE_PFN_SHIFT


def pfn_mask(page_shift: int) -> int:
    """``_PFN_MASK``: bits ``_PAGE_PFN_END_SHIFT - 1 .. PFN_PTE_SHIFT``."""
    return ~((1 << pfn_pte_shift(page_shift)) - 1) & ((1 << _PAGE_PFN_END_SHIFT) - 1)


# addrspace.h / loongarch.h: the cached direct-mapped window the kernel runs in.
DMW_PABITS = 48
TO_PHYS_MASK = (1 << DMW_PABITS) - 1
"""``PHYSADDR(a) = a & TO_PHYS_MASK``."""
CSR_DMW1_PLV0 = 1 << 0
CSR_DMW1_MAT = 1 << 4
CSR_DMW1_VSEG = 0x9000
CSR_DMW1_BASE = CSR_DMW1_VSEG << DMW_PABITS
CSR_DMW1_INIT = CSR_DMW1_BASE | CSR_DMW1_MAT | CSR_DMW1_PLV0
CACHE_BASE = CSR_DMW1_BASE
"""``PAGE_OFFSET`` = ``CACHE_BASE``: a page table's kernel address is ``CACHE_BASE | pa``."""

# The emulated kernel image (see the module docstring): link-time addresses of the tables
# empty entries point at, as physical addresses.
KERNEL_IMAGE_PA = 0x0020_0000
INVALID_PG_DIR_PA = 0x00E0_0000
INVALID_PMD_TABLE_PA = 0x00E0_4000
INVALID_PTE_TABLE_PA = 0x00E0_8000
