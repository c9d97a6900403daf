"""s390x (z/Architecture DAT): ASCEs for two address spaces, up to five levels of tables.

Geometry from the Principles of Operation (chapter 3, "Dynamic Address Translation") and
Linux (``arch/s390/include/asm/pgtable.h``: ``_REGION1_SHIFT`` 53 ... ``_SEGMENT_SHIFT`` 20,
``_CRST_ENTRIES`` 2048, ``_PAGE_ENTRIES`` 256).  The walker (:mod:`arches.s390.walker`) is
written from the PoP, not from Linux.

Not yet registered in :data:`arches.CONFIGS` (see :mod:`legacy.s390` for what still
blocks it).  Its roots are ASCEs, whose type changes under a live mm: the harness takes them
from ``k.mm_root(mm)``.
"""

from __future__ import annotations

from arches.config import ArchConfig, HwLevel
from arches.s390.registers import S390Registers
from arches.s390.walker import S390Walker

KERNEL_START = 1 << 63
"""Start of the VA window the emulation translates through the kernel's home space (CR13)."""

S390X = ArchConfig(
    name="s390x",
    family="s390",
    description=(
        "s390x (z/Architecture DAT): an ASCE designates a region-first, region-second, "
        "region-third or segment table (5, 4, 3 or 2 levels); region and segment tables hold "
        "2048 8-byte entries (16 KiB), page tables 256 (2 KiB); 4K pages, 1M segment frames "
        "(EDAT-1) and 2G region-third frames (EDAT-2); big-endian entries. Two address "
        "spaces: the user's (CR1/CR7) and the kernel's home space (CR13)."
    ),
    word_bits=64,
    va_bits=64,
    phys_bits=64,
    page_shift=12,
    endianness="big",
    hw_levels=(
        HwLevel("RFT", 53, 2048, 8, leaf_ok=False),
        HwLevel("RST", 42, 2048, 8, leaf_ok=False),
        HwLevel("RTT", 31, 2048, 8, leaf_ok=True),
        HwLevel("ST", 20, 2048, 8, leaf_ok=True),
        HwLevel("PT", 12, 256, 8, leaf_ok=True),
    ),
    user_range=(0, KERNEL_START),
    kernel_range=(KERNEL_START, 2**64),
    roots=("cr1", "cr13"),
    walker=S390Walker(kernel_start=KERNEL_START),
    make_registers=S390Registers(),
    break_before_make=True,
    range_flush_clears_walk_caches=False,
    notes=(
        "The two address spaces overlap in VA: the hardware selects one by the PSW's "
        "address-space control. The emulation translates [0, 2^63) through the user ASCE "
        "(CR1) and [2^63, 2^64) through the kernel ASCE (CR13), so one VA names one "
        "translation; Linux itself allows user VAs up to TASK_SIZE_MAX = -PAGE_SIZE.",
        "A valid entry is never changed in place: the kernel invalidates with IPTE / IDTE "
        "(or CRDTE / CSPG), which set the invalid bit and purge the TLB entries formed from "
        "the entry in one operation (PoP: 'Modifying translation tables'); hence "
        "break-before-make. IPTE purges the page's TLB entries but not the region and "
        "segment entries cached from the walk (IDTE does).",
        "Empty entries are not zero: an invalid bit (I) plus, in region and segment entries, "
        "the table type (TT) of the table they are in.",
    ),
)

CONFIGS: dict[str, ArchConfig] = {S390X.name: S390X}

__all__ = ["CONFIGS", "KERNEL_START", "S390X", "S390Registers", "S390Walker"]
