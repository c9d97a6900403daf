"""Classic (short-descriptor) 32-bit arm: hardware descriptor bits with their Linux names.

From ``arch/arm/include/asm/pgtable-2level-hwdef.h`` (first-level ``PMD_*`` and
second-level ``PTE_*`` bits), ``arch/arm/include/asm/domain.h`` (domain numbers and the
DACR Linux loads) and ``arch/arm/mm/proc-v7-2level.S`` (``TTB_*`` walk attributes,
``v7_crval``), Linux v6.18.  The hardware walker (:mod:`arches.arm.short`) does not use
these names: it has its own, from the ARM Architecture Reference Manual (ARMv7-A/R, B3.5),
so that it stays an independent oracle.
"""

from __future__ import annotations

# -- Level 1 descriptor (PMD) ---------------------------------------------------------------
PMD_TYPE_MASK = 3 << 0
PMD_TYPE_FAULT = 0 << 0
PMD_TYPE_TABLE = 1 << 0
PMD_TYPE_SECT = 2 << 0
PMD_PXNTABLE = 1 << 2  # v7
PMD_BIT4 = 1 << 4


def PMD_DOMAIN(x: int) -> int:
    """``PMD_DOMAIN(x)``: the domain field, bits 8:5."""
    return x << 5


PMD_DOMAIN_MASK = PMD_DOMAIN(0x0F)
PMD_PROTECTION = 1 << 9  # v5
# section
PMD_SECT_PXN = 1 << 0  # v7
PMD_SECT_BUFFERABLE = 1 << 2
PMD_SECT_CACHEABLE = 1 << 3
PMD_SECT_XN = 1 << 4  # v6
PMD_SECT_AP_WRITE = 1 << 10
PMD_SECT_AP_READ = 1 << 11


def PMD_SECT_TEX(x: int) -> int:
    return x << 12


PMD_SECT_APX = 1 << 15  # v6
PMD_SECT_S = 1 << 16  # v6
PMD_SECT_nG = 1 << 17  # v6
PMD_SECT_SUPER = 1 << 18  # v6 (pgtable-hwdef.h: "ARMv6 supersection")
PMD_SECT_AF = 0
PMD_SECT_WBWA = PMD_SECT_TEX(1) | PMD_SECT_CACHEABLE | PMD_SECT_BUFFERABLE

# -- Level 2 descriptor (PTE) ---------------------------------------------------------------
PTE_TYPE_MASK = 3 << 0
PTE_TYPE_FAULT = 0 << 0
PTE_TYPE_LARGE = 1 << 0
PTE_TYPE_SMALL = 2 << 0
PTE_TYPE_EXT = 3 << 0  # v5
PTE_BUFFERABLE = 1 << 2
PTE_CACHEABLE = 1 << 3
# extended small page
PTE_EXT_XN = 1 << 0  # v6
PTE_EXT_AP_MASK = 3 << 4
PTE_EXT_AP0 = 1 << 4
PTE_EXT_AP1 = 2 << 4


def PTE_EXT_TEX(x: int) -> int:
    return x << 6


PTE_EXT_APX = 1 << 9  # v6
PTE_EXT_SHARED = 1 << 10  # v6
PTE_EXT_NG = 1 << 11  # v6

# -- asm/domain.h (!CONFIG_IO_36, !CONFIG_CPU_USE_DOMAINS) ----------------------------------
DOMAIN_KERNEL = 0
DOMAIN_USER = 1
DOMAIN_IO = 2
DOMAIN_VECTORS = 3
DOMAIN_NOACCESS = 0
DOMAIN_CLIENT = 1
DOMAIN_MANAGER = 1
"""Without ``CONFIG_CPU_USE_DOMAINS`` "manager" is client: no domain skips the checks."""


def domain_val(dom: int, type_: int) -> int:
    return type_ << (2 * dom)


DACR_UACCESS_ENABLE = (domain_val(DOMAIN_KERNEL, DOMAIN_CLIENT)
                       | domain_val(DOMAIN_IO, DOMAIN_CLIENT)
                       | domain_val(DOMAIN_VECTORS, DOMAIN_CLIENT)
                       | domain_val(DOMAIN_USER, DOMAIN_CLIENT))
"""The DACR while user space runs (``CONFIG_CPU_SW_DOMAIN_PAN``: the kernel loads
``DACR_UACCESS_DISABLE``, the user domain no-access, on entry): 0x55."""

# -- asm/pgalloc.h, arch/arm/mm/mmu.c ----------------------------------------------------------
_PAGE_USER_TABLE = PMD_TYPE_TABLE | PMD_BIT4 | PMD_DOMAIN(DOMAIN_USER)
_PAGE_KERNEL_TABLE = PMD_TYPE_TABLE | PMD_BIT4 | PMD_DOMAIN(DOMAIN_KERNEL)

# -- proc-v7-2level.S ------------------------------------------------------------------------
TTB_S = 1 << 1
TTB_RGN_OC_WBWA = 1 << 3
TTB_NOS = 1 << 5
TTB_IRGN_WBWA = 1 << 6
TTB_FLAGS_SMP = TTB_IRGN_WBWA | TTB_S | TTB_NOS | TTB_RGN_OC_WBWA
"""What ``cpu_v7_switch_mm`` ORs into TTBR0 on SMP (walks cacheable, inner shareable)."""
V7_CRVAL_MMUSET = 0x10C03C7D
"""``v7_crval`` ``mmuset``: SCTLR with M, C, Z, I, V (high vectors), TRE; AFE clear."""
