"""32-bit arm LPAE descriptor and register bits with their Linux names.

From ``arch/arm/include/asm/pgtable-3level-hwdef.h`` (hardware fields, ``TTBR1_OFFSET``,
``TTBR1_SIZE``, ``TTBCR_*``), ``arch/arm/include/asm/pgtable-3level.h`` (the ``L_PTE_*`` /
``L_PMD_SECT_*`` software bits, ``L_PGD_SWAPPER``) and ``arch/arm/mm/proc-v7-3level.S``
(``TTB_*`` flags, PRRR/NMRR = MAIR0/MAIR1), Linux v6.x.  The hardware walker
(:mod:`arches.arm.lpae_walker`) does not use these names: it has its own, from the Arm ARM.
"""

from __future__ import annotations

# -- pgtable-3level-hwdef.h: level 1/2 descriptors -----------------------------------------
PUD_TABLE_BIT = 1 << 1
PMD_TYPE_MASK = 3 << 0
PMD_TYPE_FAULT = 0 << 0
PMD_TYPE_TABLE = 3 << 0
PMD_TYPE_SECT = 1 << 0
PMD_TABLE_BIT = 1 << 1
PMD_APTABLE_SHIFT = 61
PMD_PXNTABLE = 1 << 59
PMD_SECT_BUFFERABLE = 1 << 2
PMD_SECT_CACHEABLE = 1 << 3
PMD_SECT_USER = 1 << 6  # AP[1]
PMD_SECT_AP2 = 1 << 7  # read only
PMD_SECT_S = 3 << 8
PMD_SECT_AF = 1 << 10
PMD_SECT_nG = 1 << 11
PMD_SECT_PXN = 1 << 53
PMD_SECT_XN = 1 << 54
PMD_SECT_WBWA = 7 << 2
PMD_SECT_CACHE_MASK = 7 << 2

# -- pgtable-3level-hwdef.h: level 3 descriptor -------------------------------------------
PTE_TYPE_MASK = 3 << 0
PTE_TYPE_FAULT = 0 << 0
PTE_TYPE_PAGE = 3 << 0
PTE_TABLE_BIT = 1 << 1
PTE_AP2 = 1 << 7
PTE_EXT_SHARED = 3 << 8
PTE_EXT_AF = 1 << 10
PTE_EXT_NG = 1 << 11
PTE_EXT_PXN = 1 << 53
PTE_EXT_XN = 1 << 54

PHYS_MASK_SHIFT = 40
PHYS_MASK = (1 << PHYS_MASK_SHIFT) - 1

# -- pgtable-3level.h: "Linux" PTE bits (overlapping the hardware ones) ----------------
L_PTE_VALID = 1 << 0
L_PTE_PRESENT = 3 << 0
L_PTE_USER = 1 << 6  # AP[1]
L_PTE_SHARED = 3 << 8  # SH[1:0], inner shareable
L_PTE_YOUNG = 1 << 10  # AF
L_PTE_XN = 1 << 54
L_PTE_DIRTY = 1 << 55
L_PTE_SPECIAL = 1 << 56
L_PTE_NONE = 1 << 57  # PROT_NONE
L_PTE_RDONLY = 1 << 58
L_PTE_SWP_EXCLUSIVE = 1 << 7  # "We borrow bit 7 to store the exclusive marker"

L_PMD_SECT_VALID = 1 << 0
L_PMD_SECT_DIRTY = 1 << 55
L_PMD_SECT_NONE = 1 << 57
L_PMD_SECT_RDONLY = 1 << 58

L_PTE_MT_UNCACHED = 0 << 2
L_PTE_MT_BUFFERABLE = 1 << 2
L_PTE_MT_WRITETHROUGH = 2 << 2
L_PTE_MT_WRITEBACK = 3 << 2
L_PTE_MT_WRITEALLOC = 7 << 2
L_PTE_MT_DEV_SHARED = 4 << 2
L_PTE_MT_MASK = 7 << 2

L_PGD_SWAPPER = 1 << 55
"""Software PGD flag: a ``swapper_pg_dir`` entry (head.S sets it on all four)."""

# -- pgtable-3level-hwdef.h: TTBCR, the 3G/1G TTBR split (!CONFIG_CPU_TTBR0_PAN) ----------
TTBCR_EAE = 1 << 31
TTBCR_EPD1 = 1 << 23
TTBCR_EPD0 = 1 << 7
TTBCR_T1SZ_SHIFT = 16


def TTBR1_SIZE(page_offset: int) -> int:
    """``(((PAGE_OFFSET >> 30) - 1) << 16)``: TTBCR.T1SZ = 2 for ``PAGE_OFFSET`` 3G."""
    return ((page_offset >> 30) - 1) << 16


TTBR1_OFFSET_VMSPLIT_3G = 4096 * (1 + 3)
"""``TTBR1_OFFSET`` with CONFIG_VMSPLIT_3G: "only L2, skip pgd + 3*pmd"."""

# -- arch/arm/mm/proc-v7-3level.S -------------------------------------------------------
TTB_IRGN_WBWA = 1 << 8
TTB_RGN_OC_WBWA = 1 << 10
TTB_S = 3 << 12
TTB_FLAGS_SMP = TTB_IRGN_WBWA | TTB_S | TTB_RGN_OC_WBWA
PRRR = 0xEEAA4400
"""MAIR0 with the Long-descriptor format (``.equ PRRR``)."""
NMRR = 0xFF000004
"""MAIR1 (``.equ NMRR``)."""
