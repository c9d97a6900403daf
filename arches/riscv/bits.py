"""RISC-V PTE and ``satp`` bits with their Linux names.

Bit positions and names: ``arch/riscv/include/asm/pgtable-bits.h`` (the PTE bits every XLEN
shares), ``pgtable-64.h`` (``_PAGE_PFN_MASK``, Svnapot ``_PAGE_NAPOT``, Svpbmt
``_PAGE_*_SVPBMT``), ``pgtable-32.h`` and ``csr.h`` (``SATP_*``), Linux v6.18.  The hardware
walker (:mod:`arches.riscv.walker`) does not use these names: it has its own, taken from the
privileged specification, so that it stays an independent oracle.
"""

from __future__ import annotations

_PAGE_ACCESSED_OFFSET = 6

_PAGE_PRESENT = 1 << 0
_PAGE_READ = 1 << 1  # Readable
_PAGE_WRITE = 1 << 2  # Writable
_PAGE_EXEC = 1 << 3  # Executable
_PAGE_USER = 1 << 4  # User
_PAGE_GLOBAL = 1 << 5  # Global
_PAGE_ACCESSED = 1 << 6  # Set by hardware on any access
_PAGE_DIRTY = 1 << 7  # Set by hardware on any write
_PAGE_SOFT = 3 << 8  # Reserved for software (RSW)

_PAGE_SPECIAL = 1 << 8  # RSW: 0x1
_PAGE_TABLE = _PAGE_PRESENT

_PAGE_PROT_NONE = _PAGE_GLOBAL
""""_PAGE_PROT_NONE is set on not-present pages (and ignored by the hardware) to distinguish
them from swapped out pages": the Global bit, meaningless while V = 0."""

_PAGE_SWP_EXCLUSIVE = _PAGE_ACCESSED
"""Used for swap PTEs only (bit 6)."""

_PAGE_PFN_SHIFT = 10
_PAGE_PFN_MASK_64 = ((1 << 54) - 1) & ~((1 << 10) - 1)
"""``GENMASK(53, 10)`` (pgtable-64.h)."""
_PAGE_PFN_MASK_32 = ((1 << 32) - 1) & ~((1 << 10) - 1)
"""``GENMASK(31, 10)`` (pgtable-32.h)."""

_PAGE_LEAF = _PAGE_READ | _PAGE_WRITE | _PAGE_EXEC
"""When all of R/W/X are zero, the PTE is a pointer to the next level of the page table;
otherwise, it is a leaf PTE."""

# pgtable-64.h: Svnapot and Svpbmt
_PAGE_NAPOT_SHIFT = 63
_PAGE_NAPOT = 1 << _PAGE_NAPOT_SHIFT
NAPOT_CONT_ORDER_BASE = 4
NAPOT_CONT64KB_ORDER = 4
"""Only 64KB (order 4) napot ptes supported."""
_PAGE_NOCACHE_SVPBMT = 1 << 61
_PAGE_IO_SVPBMT = 1 << 62
_PAGE_MTMASK_SVPBMT = _PAGE_NOCACHE_SVPBMT | _PAGE_IO_SVPBMT

# csr.h: satp
SATP_PPN_32 = 0x003FFFFF
SATP_MODE_32 = 0x80000000
SATP_ASID_SHIFT_32 = 22
SATP_PPN_64 = 0x00000FFFFFFFFFFF
SATP_MODE_39 = 0x8000000000000000
SATP_MODE_48 = 0x9000000000000000
SATP_MODE_57 = 0xA000000000000000
SATP_ASID_SHIFT_64 = 44

ENVCFG_ADUE = 1 << 61
"""``menvcfg.ADUE`` (csr.h ``ENVCFG_ADUE``): Svadu hardware A/D updating, set by M-mode
firmware."""
