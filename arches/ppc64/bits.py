"""Book3S-64 radix PTE/PDE bits with their Linux names (values as the CPU reads the big-endian
doubleword, LSB-0).

From ``arch/powerpc/include/asm/book3s/64/pgtable.h`` (the bits hash and radix share),
``radix.h`` (``RADIX_*_VAL_BITS``, ``RADIX_*_BAD_BITS``, ``RADIX_PTE_NONE_MASK``,
``radix__get_tree_size``), ``radix-4k.h`` / ``radix-64k.h`` (index sizes) and
``arch/powerpc/include/asm/book3s/64/mmu.h`` (``PATB_HR``, ``PRTB_*``), Linux v6.18.  The
hardware walker (:mod:`arches.ppc64.walker`) uses the Power ISA's own names instead, so that
it stays an independent oracle.
"""

from __future__ import annotations

_PAGE_BIT_SWAP_TYPE = 0

_PAGE_EXEC = 0x00001  # execute permission
_PAGE_WRITE = 0x00002  # write access allowed
_PAGE_READ = 0x00004  # read access allowed
_PAGE_RW = _PAGE_READ | _PAGE_WRITE
_PAGE_RWX = _PAGE_READ | _PAGE_WRITE | _PAGE_EXEC
_PAGE_PRIVILEGED = 0x00008  # kernel access only
_PAGE_SAO = 0x00010  # Strong access order
_PAGE_NON_IDEMPOTENT = 0x00020  # non idempotent memory
_PAGE_TOLERANT = 0x00030  # tolerant memory, cache inhibited
_PAGE_DIRTY = 0x00080  # C: page changed
_PAGE_ACCESSED = 0x00100  # R: page referenced

_RPAGE_SW0 = 0x2000000000000000
_RPAGE_SW1 = 0x00800
_RPAGE_SW2 = 0x00400
_RPAGE_SW3 = 0x00200
_RPAGE_RSV1 = 0x00040

_PAGE_PTE = 0x4000000000000000
"""Distinguishes PTEs from pointers: the ISA's leaf bit, set on leaves at every level."""
_PAGE_PRESENT = 0x8000000000000000
"""pte contains a translation: the ISA's valid bit."""
_PAGE_INVALID = _RPAGE_SW0
"""Marks a present entry invalid while it is being changed (pmdp_invalidate,
ptep_set_access_flags): "used only when _PAGE_PRESENT is cleared"."""

_PAGE_PA_MAX = 53
"""Max physical address bit Linux uses (the radix RPN goes to ``_RPAGE_PA_MAX`` = 56)."""
_RPAGE_PA_MAX = 56

_PAGE_SOFT_DIRTY = _RPAGE_SW3
_PAGE_SPECIAL = _RPAGE_SW2
_PAGE_SWP_EXCLUSIVE = _PAGE_NON_IDEMPOTENT
_PAGE_SWP_SOFT_DIRTY = _PAGE_SOFT_DIRTY
_PAGE_CACHE_CTL = _PAGE_SAO | _PAGE_NON_IDEMPOTENT | _PAGE_TOLERANT

_PAGE_KERNEL_RW = _PAGE_PRIVILEGED | _PAGE_RW | _PAGE_DIRTY
_PAGE_KERNEL_RO = _PAGE_PRIVILEGED | _PAGE_READ
_PAGE_KERNEL_ROX = _PAGE_PRIVILEGED | _PAGE_READ | _PAGE_EXEC
_PAGE_KERNEL_RWX = _PAGE_PRIVILEGED | _PAGE_DIRTY | _PAGE_RW | _PAGE_EXEC
_PAGE_BASE_NC = _PAGE_PRESENT | _PAGE_ACCESSED
_PAGE_BASE = _PAGE_BASE_NC

RADIX_PTE_NONE_MASK = _PAGE_DIRTY | _PAGE_ACCESSED
"""An empty PTE can still have a R or C writeback."""
RADIX_BAD_BITS = 0x60000000000000E0
"""``RADIX_PMD_BAD_BITS`` = ``RADIX_PUD_BAD_BITS`` = ``RADIX_PGD_BAD_BITS``: "Don't have
anything in the reserved bits and leaf bits"."""
MASKED_BITS = 0xC0000000000000FF
"""``PMD_MASKED_BITS`` / ``PUD_MASKED_BITS`` / ``P4D_MASKED_BITS``: what is not the next
table's address in a directory entry."""

RADIX_PGD_INDEX_SIZE = 13
RADIX_PUD_INDEX_SIZE = 9
RADIX_PMD_INDEX_SIZE = 9
RADIX_PTE_INDEX_SIZE_4K = 9
RADIX_PTE_INDEX_SIZE_64K = 5

RADIX_KERN_VIRT_START = 0xC008000000000000
RADIX_KERN_MAP_SIZE = 1 << 49
RADIX_VMALLOC_START = RADIX_KERN_VIRT_START
RADIX_VMALLOC_END = RADIX_VMALLOC_START + RADIX_KERN_MAP_SIZE
TASK_SIZE_64TB = 1 << 46
TASK_SIZE_4PB = 1 << 52

RTS_FIELD = (0x5 << 5) | (0x2 << 61)
"""``radix__get_tree_size``: RTS = 52 - 31 = 21 = 0b10101, bits 0-2 of RTS in bits 5-7 and
bits 3-4 in bits 61-62 of the process-table entry."""
PATB_HR = 1 << 63
"""Partition-table entry: host radix."""
LPCR_UPRT = 1 << 22
LPCR_HR = 1 << 20
