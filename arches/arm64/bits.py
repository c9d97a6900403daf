"""arm64 (VMSAv8-64 stage 1) descriptor and register bits with their Linux names.

Bit positions and names: ``arch/arm64/include/asm/pgtable-hwdef.h`` (hardware fields) and
``arch/arm64/include/asm/pgtable-prot.h`` (software bits and protections), Linux ~6.12-6.16.
The hardware walker (:mod:`arches.arm64.walker`) does not use these names: it has its own,
taken from the Arm ARM, so that it stays an independent oracle.

Where a reference note and the kernel differ, the kernel is
followed: e.g. ``PTE_ADDR_LOW`` covers bits 49:PAGE_SHIFT in current kernels (it was
47:PAGE_SHIFT before the 52-bit/LPA2 rework), and ``PTE_PRESENT_INVALID`` is ``PTE_NG`` (bit 11,
meaningful only when ``PTE_VALID`` is clear) since v6.10, replacing ``PTE_PROT_NONE`` (bit 58)
and ``PMD_PRESENT_INVALID`` (bit 59).
"""

from __future__ import annotations


def _bit(n: int) -> int:
    return 1 << n


# -- pgtable-hwdef.h: level -1 / 0 / 1 / 2 table and section descriptors -----------------

PGD_TYPE_TABLE = 3 << 0
PGD_TABLE_BIT = 1 << 1
PGD_TYPE_MASK = 3 << 0
PGD_TABLE_AF = _bit(10)  # Ignored if no FEAT_HAFT
PGD_TABLE_PXN = _bit(59)
PGD_TABLE_UXN = _bit(60)

P4D_TYPE_TABLE = 3 << 0
P4D_TABLE_BIT = 1 << 1
P4D_TYPE_MASK = 3 << 0
P4D_TYPE_SECT = 1 << 0
P4D_SECT_RDONLY = _bit(7)  # AP[2]
P4D_TABLE_AF = _bit(10)
P4D_TABLE_PXN = _bit(59)
P4D_TABLE_UXN = _bit(60)

PUD_TYPE_TABLE = 3 << 0
PUD_TABLE_BIT = 1 << 1
PUD_TYPE_MASK = 3 << 0
PUD_TYPE_SECT = 1 << 0
PUD_SECT_RDONLY = _bit(7)  # AP[2]
PUD_TABLE_AF = _bit(10)
PUD_TABLE_PXN = _bit(59)
PUD_TABLE_UXN = _bit(60)

PMD_TYPE_MASK = 3 << 0
PMD_TYPE_TABLE = 3 << 0
PMD_TYPE_SECT = 1 << 0
PMD_TABLE_BIT = 1 << 1
PMD_TABLE_AF = _bit(10)

PMD_SECT_USER = _bit(6)  # AP[1]
PMD_SECT_RDONLY = _bit(7)  # AP[2]
PMD_SECT_S = 3 << 8
PMD_SECT_AF = _bit(10)
PMD_SECT_NG = _bit(11)
PMD_SECT_CONT = _bit(52)
PMD_SECT_PXN = _bit(53)
PMD_SECT_UXN = _bit(54)
PMD_TABLE_PXN = _bit(59)
PMD_TABLE_UXN = _bit(60)

PMD_ATTRINDX_MASK = 7 << 2


def PMD_ATTRINDX(t: int) -> int:
    return t << 2


# -- pgtable-hwdef.h: level 3 descriptor (PTE); the same fields in block descriptors --------

PTE_VALID = _bit(0)
PTE_TYPE_MASK = 3 << 0
PTE_TYPE_PAGE = 3 << 0
PTE_TABLE_BIT = _bit(1)
PTE_USER = _bit(6)  # AP[1]
PTE_RDONLY = _bit(7)  # AP[2]
PTE_SHARED = 3 << 8  # SH[1:0], inner shareable
PTE_AF = _bit(10)  # Access Flag
PTE_NG = _bit(11)  # nG
PTE_GP = _bit(50)  # BTI guarded
PTE_DBM = _bit(51)  # Dirty Bit Management
PTE_CONT = _bit(52)  # Contiguous range
PTE_PXN = _bit(53)  # Privileged XN
PTE_UXN = _bit(54)  # User XN
PTE_SWBITS_MASK = _bit(63) | (0xF << 55)  # BIT(63) | GENMASK(58, 55)
PTE_ATTRINDX_MASK = 7 << 2
PTE_PO_IDX_MASK = 7 << 60  # GENMASK_ULL(62, 60): POIndex[2:0] (FEAT_S1POE)
S1_TABLE_AP = 3 << 61  # hierarchical permission APTable[1:0]


def PTE_ATTRINDX(t: int) -> int:
    return t << 2


def PTE_ADDR_LOW(page_shift: int) -> int:
    """``PTE_ADDR_LOW``: bits 49:PAGE_SHIFT (no CONFIG_ARM64_PA_BITS_52 high part)."""
    return ((1 << (50 - page_shift)) - 1) << page_shift


# -- pgtable-prot.h: software bits ----------------------------------------------------------

PTE_WRITE = PTE_DBM  # same as DBM (51)
PTE_SWP_EXCLUSIVE = _bit(2)  # only for swp ptes
PTE_DIRTY = _bit(55)
PTE_SPECIAL = _bit(56)
PTE_PRESENT_INVALID = PTE_NG  # only when !PTE_VALID (v6.10+)
PTE_UFFD_WP = _bit(58)  # uffd-wp tracking (CONFIG_HAVE_ARCH_USERFAULTFD_WP)
PTE_SWP_UFFD_WP = _bit(3)  # only for swp ptes

# -- arch/arm64/include/asm/memory.h: MAIR indexes ------------------------------------------

MT_NORMAL = 0
MT_NORMAL_TAGGED = 1
MT_NORMAL_NC = 2
MT_DEVICE_nGnRnE = 3
MT_DEVICE_nGnRE = 4

MAIR_ATTR_DEVICE_nGnRnE = 0x00
MAIR_ATTR_DEVICE_nGnRE = 0x04
MAIR_ATTR_NORMAL_NC = 0x44
MAIR_ATTR_NORMAL = 0xFF


def MAIR_ATTRIDX(attr: int, idx: int) -> int:
    return attr << (idx * 8)


MAIR_EL1_SET = (
    MAIR_ATTRIDX(MAIR_ATTR_DEVICE_nGnRnE, MT_DEVICE_nGnRnE)
    | MAIR_ATTRIDX(MAIR_ATTR_DEVICE_nGnRE, MT_DEVICE_nGnRE)
    | MAIR_ATTRIDX(MAIR_ATTR_NORMAL_NC, MT_NORMAL_NC)
    | MAIR_ATTRIDX(MAIR_ATTR_NORMAL, MT_NORMAL)
    | MAIR_ATTRIDX(MAIR_ATTR_NORMAL, MT_NORMAL_TAGGED)
)
"""``MAIR_EL1_SET`` (memory.h): MT_NORMAL_TAGGED starts as plain Normal (no MTE emulated)."""

# -- pgtable-hwdef.h: TCR_EL1 ---------------------------------------------------------------

TCR_T0SZ_OFFSET = 0
TCR_T1SZ_OFFSET = 16


def TCR_T0SZ(x: int) -> int:
    return (64 - x) << TCR_T0SZ_OFFSET


def TCR_T1SZ(x: int) -> int:
    return (64 - x) << TCR_T1SZ_OFFSET


def TCR_TxSZ(x: int) -> int:
    return TCR_T0SZ(x) | TCR_T1SZ(x)


TCR_TxSZ_WIDTH = 6
TCR_T0SZ_MASK = ((1 << TCR_TxSZ_WIDTH) - 1) << TCR_T0SZ_OFFSET
TCR_T1SZ_MASK = ((1 << TCR_TxSZ_WIDTH) - 1) << TCR_T1SZ_OFFSET
TCR_EPD0_MASK = _bit(7)
TCR_IRGN0_WBWA = 1 << 8
TCR_ORGN0_WBWA = 1 << 10
TCR_SH0_INNER = 3 << 12
TCR_TG0_SHIFT = 14
TCR_TG0_MASK = 3 << TCR_TG0_SHIFT
TCR_TG0_4K = 0 << TCR_TG0_SHIFT
TCR_TG0_64K = 1 << TCR_TG0_SHIFT
TCR_TG0_16K = 2 << TCR_TG0_SHIFT
TCR_A1 = _bit(22)
TCR_EPD1_MASK = _bit(23)
TCR_IRGN1_WBWA = 1 << 24
TCR_ORGN1_WBWA = 1 << 26
TCR_SH1_INNER = 3 << 28
TCR_TG1_SHIFT = 30
TCR_TG1_MASK = 3 << TCR_TG1_SHIFT
TCR_TG1_16K = 1 << TCR_TG1_SHIFT
TCR_TG1_4K = 2 << TCR_TG1_SHIFT
TCR_TG1_64K = 3 << TCR_TG1_SHIFT
TCR_IPS_SHIFT = 32
TCR_IPS_MASK = 7 << TCR_IPS_SHIFT
TCR_ASID16 = _bit(36)
TCR_TBI0 = _bit(37)
TCR_TBI1 = _bit(38)
TCR_HA = _bit(39)
TCR_HD = _bit(40)
TCR_HPD0 = _bit(41)
TCR_HPD1 = _bit(42)
TCR_DS = _bit(59)

TCR_IRGN_WBWA = TCR_IRGN0_WBWA | TCR_IRGN1_WBWA
TCR_ORGN_WBWA = TCR_ORGN0_WBWA | TCR_ORGN1_WBWA
TCR_SHARED = TCR_SH0_INNER | TCR_SH1_INNER
TCR_CACHE_FLAGS = TCR_IRGN_WBWA | TCR_ORGN_WBWA  # arch/arm64/mm/proc.S
TCR_SMP_FLAGS = TCR_SHARED

ID_AA64MMFR0_PARANGE_48 = 0b0101
"""PARange / TCR_EL1.IPS encoding of a 48-bit (256 TB) physical address space."""
