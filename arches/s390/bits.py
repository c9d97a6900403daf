"""s390x (z/Architecture DAT) entry, ASCE and control-register bits with their Linux names.

Names and values: ``arch/s390/include/asm/pgtable.h`` (hardware and software bits of PTEs,
segment- and region-table entries and ASCEs, table geometry) and ``arch/s390/include/asm/
ctlreg.h`` (CR0 bit numbers), Linux v6.18.  Linux numbers bits LSB-0 here (``0x400`` is the
PTE invalid bit, MSB-0 bit 53 in the Principles of Operation).  The hardware walker
(:mod:`arches.s390.walker`) does not use these names: it has its own, from the PoP, so that it
stays an independent oracle.
"""

from __future__ import annotations

# -- page-table entries (pgtable.h) --------------------------------------------------------

_PAGE_NOEXEC = 0x100  # HW no-execute bit (IEP)
_PAGE_PROTECT = 0x200  # HW read-only bit
_PAGE_INVALID = 0x400  # HW invalid bit
_PAGE_LARGE = 0x800  # Bit to mark a large pte

_PAGE_PRESENT = 0x001  # SW pte present bit
_PAGE_SOFT_DIRTY = 0x002  # SW pte soft dirty bit (CONFIG_MEM_SOFT_DIRTY)
_PAGE_YOUNG = 0x004
_PAGE_DIRTY = 0x008
_PAGE_READ = 0x010
_PAGE_WRITE = 0x020
_PAGE_SPECIAL = 0x040
_PAGE_UNUSED = 0x080  # SW bit for pgste usage state
_PAGE_SW_BITS = 0xFF
_PAGE_SWP_EXCLUSIVE = _PAGE_LARGE

# -- address-space-control element -------------------------------------------------------

_ASCE_ORIGIN = ~0xFFF & (1 << 64) - 1
_ASCE_PRIVATE_SPACE = 0x100
_ASCE_ALT_EVENT = 0x80
_ASCE_SPACE_SWITCH = 0x40
_ASCE_REAL_SPACE = 0x20
_ASCE_TYPE_MASK = 0x0C
_ASCE_TYPE_REGION1 = 0x0C
_ASCE_TYPE_REGION2 = 0x08
_ASCE_TYPE_REGION3 = 0x04
_ASCE_TYPE_SEGMENT = 0x00
_ASCE_TABLE_LENGTH = 0x03
_ASCE_USER_BITS = _ASCE_SPACE_SWITCH | _ASCE_PRIVATE_SPACE | _ASCE_ALT_EVENT
"""pgtable.h: "A user page table pointer has the space-switch-event bit, the private-space-control
bit and the storage-alteration-event-control bit set. A kernel page table pointer doesn't need
them." """

# -- region-table entries ------------------------------------------------------------------

_REGION_ENTRY_ORIGIN = ~0xFFF & (1 << 64) - 1
_REGION_ENTRY_PROTECT = 0x200
_REGION_ENTRY_NOEXEC = 0x100
_REGION_ENTRY_OFFSET = 0xC0
_REGION_ENTRY_INVALID = 0x20
_REGION_ENTRY_TYPE_MASK = 0x0C
_REGION_ENTRY_TYPE_R1 = 0x0C
_REGION_ENTRY_TYPE_R2 = 0x08
_REGION_ENTRY_TYPE_R3 = 0x04
_REGION_ENTRY_LENGTH = 0x03
_REGION3_ENTRY_PRESENT = 0x0001  # SW, overlaps the table length (always 3 in a table entry)

_REGION1_ENTRY = _REGION_ENTRY_TYPE_R1 | _REGION_ENTRY_LENGTH
_REGION1_ENTRY_EMPTY = _REGION_ENTRY_TYPE_R1 | _REGION_ENTRY_INVALID
_REGION2_ENTRY = _REGION_ENTRY_TYPE_R2 | _REGION_ENTRY_LENGTH
_REGION2_ENTRY_EMPTY = _REGION_ENTRY_TYPE_R2 | _REGION_ENTRY_INVALID
_REGION3_ENTRY = _REGION_ENTRY_TYPE_R3 | _REGION_ENTRY_LENGTH | _REGION3_ENTRY_PRESENT
_REGION3_ENTRY_EMPTY = _REGION_ENTRY_TYPE_R3 | _REGION_ENTRY_INVALID

_REGION3_ENTRY_HARDWARE_BITS = 0xFFFFFFFFFFFFF6FF
_REGION3_ENTRY_HARDWARE_BITS_LARGE = 0xFFFFFFFF8001073C
_REGION3_ENTRY_ORIGIN_LARGE = ~0x7FFFFFFF & (1 << 64) - 1
_REGION3_ENTRY_DIRTY = 0x2000
_REGION3_ENTRY_YOUNG = 0x1000
_REGION3_ENTRY_COMM = 0x0010  # Common-Region, marks swap entry
_REGION3_ENTRY_LARGE = 0x0400  # RTTE-format control, large page
_REGION3_ENTRY_WRITE = 0x8000
_REGION3_ENTRY_READ = 0x4000
_REGION3_ENTRY_SOFT_DIRTY = 0x0002
_REGION_ENTRY_BITS = 0xFFFFFFFFFFFFF22F

# -- segment-table entries -----------------------------------------------------------------

_SEGMENT_ENTRY_BITS = 0xFFFFFFFFFFFFFE3F
_SEGMENT_ENTRY_HARDWARE_BITS = 0xFFFFFFFFFFFFFE3C
_SEGMENT_ENTRY_HARDWARE_BITS_LARGE = 0xFFFFFFFFFFF1073C
_SEGMENT_ENTRY_ORIGIN_LARGE = ~0xFFFFF & (1 << 64) - 1
_SEGMENT_ENTRY_ORIGIN = ~0x7FF & (1 << 64) - 1  # page table origin
_SEGMENT_ENTRY_PROTECT = 0x200
_SEGMENT_ENTRY_NOEXEC = 0x100
_SEGMENT_ENTRY_INVALID = 0x20
_SEGMENT_ENTRY_TYPE_MASK = 0x0C
_SEGMENT_ENTRY_PRESENT = 0x0001  # SW segment present bit
_SEGMENT_ENTRY = _SEGMENT_ENTRY_PRESENT
_SEGMENT_ENTRY_EMPTY = _SEGMENT_ENTRY_INVALID
_SEGMENT_ENTRY_DIRTY = 0x2000
_SEGMENT_ENTRY_YOUNG = 0x1000
_SEGMENT_ENTRY_COMM = 0x0010  # Common-Segment, marks swap entry
_SEGMENT_ENTRY_LARGE = 0x0400  # STE-format control, large page
_SEGMENT_ENTRY_WRITE = 0x8000
_SEGMENT_ENTRY_READ = 0x4000
_SEGMENT_ENTRY_SOFT_DIRTY = 0x0002

_RST_ENTRY_COMM = 0x0010
_RST_ENTRY_INVALID = 0x0020

# -- geometry ------------------------------------------------------------------------------

_CRST_ENTRIES = 2048
_PAGE_ENTRIES = 256
_CRST_TABLE_SIZE = _CRST_ENTRIES * 8
_PAGE_TABLE_SIZE = _PAGE_ENTRIES * 8
CRST_ALLOC_ORDER = 2  # arch/s390/include/asm/pgalloc.h: 16 KiB = four 4 KiB pages

_REGION1_SHIFT = 53
_REGION2_SHIFT = 42
_REGION3_SHIFT = 31
_SEGMENT_SHIFT = 20
_REGION1_SIZE = 1 << _REGION1_SHIFT
_REGION2_SIZE = 1 << _REGION2_SHIFT
_REGION3_SIZE = 1 << _REGION3_SHIFT
_SEGMENT_SIZE = 1 << _SEGMENT_SHIFT

# -- control register 0 (ctlreg.h, LSB-0 bit numbers) ----------------------------------------

CR0_EDAT_BIT = 63 - 40
CR0_INSTRUCTION_EXEC_PROTECTION_BIT = 63 - 43
CR0_EDAT = 1 << CR0_EDAT_BIT
CR0_INSTRUCTION_EXEC_PROTECTION = 1 << CR0_INSTRUCTION_EXEC_PROTECTION_BIT
