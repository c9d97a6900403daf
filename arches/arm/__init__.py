"""32-bit arm: the classic short-descriptor MMU (``arm``) and LPAE (under construction, staged).

This package's ``__init__`` describes the classic configuration; the LPAE one lives in its
own modules (``arches/arm/lpae*.py``) and is imported from there.

``arm``: an ARMv7-A CPU (a Cortex-A15: VMSAv7 with the Multiprocessing Extensions and PXN,
SMP) running a classic (``!CONFIG_ARM_LPAE``) Linux v6.18 with ``VMSPLIT_3G``
(``PAGE_OFFSET`` 0xC0000000), high vectors and at least 760 MiB of RAM (so that
``high_memory`` is ``vmalloc_min`` = 0xF0000000).  Geometry from the ARM ARM (ARMv7-A/R, B3.5)
and Linux (``arch/arm/include/asm/pgtable-2level.h``, ``pgtable.h``, ``memory.h``): user
space ``[0, TASK_SIZE = PAGE_OFFSET - 16M)``, the vmalloc area ``[VMALLOC_START =
(high_memory + 8M) & ~(8M - 1), VMALLOC_END = 0xFF800000)``.  The walker
(:mod:`arches.arm.short`) is written from the manual, not from Linux.
"""

from __future__ import annotations

from arches.arm.registers_short import ShortRegisters
from arches.arm.short import ShortWalker
from arches.config import ArchConfig, HwLevel

PAGE_OFFSET = 0xC000_0000
TASK_SIZE = PAGE_OFFSET - 0x0100_0000
"""``TASK_SIZE = UL(CONFIG_PAGE_OFFSET) - UL(SZ_16M)`` (asm/memory.h): the modules area sits
in the 16 MiB below PAGE_OFFSET."""
VMALLOC_START = 0xF080_0000
"""``(high_memory + VMALLOC_OFFSET) & ~(VMALLOC_OFFSET - 1)`` with ``high_memory`` =
``vmalloc_min`` = ``VMALLOC_END - (240 << 20) - VMALLOC_OFFSET`` = 0xF0000000
(arch/arm/mm/mmu.c): the default 240 MiB vmalloc area."""
VMALLOC_END = 0xFF80_0000

ARM = ArchConfig(
    name="arm",
    family="arm",
    description=(
        "ARMv7-A (Cortex-A15) with the Short-descriptor format (TTBCR.EAE = 0, N = 0): "
        "TTBR0 -> a 4096-entry first-level table (16 KiB, 1M per entry: page-table "
        "descriptor, 1M section or 16M supersection) -> 256-entry second-level tables "
        "(1 KiB: 4K small and 64K large pages), 4-byte little-endian descriptors, XN, PXN, "
        "16 domains (DACR), 32-bit physical addresses. One root for user and kernel; "
        "VMSPLIT_3G."
    ),
    word_bits=32,
    va_bits=32,
    phys_bits=32,
    page_shift=12,
    endianness="little",
    hw_levels=(HwLevel("L1", 20, 4096, 4, leaf_ok=True), HwLevel("L2", 12, 256, 4, True)),
    user_range=(0, TASK_SIZE),
    kernel_range=(VMALLOC_START, VMALLOC_END),
    roots=("ttbr0",),
    walker=ShortWalker(),
    make_registers=ShortRegisters(),
    notes=(
        "Linux sees 2048 8-byte pgd entries (PGDIR_SHIFT = 21) where the hardware has 4096 "
        "4-byte first-level descriptors: a pgd_t is a pair of hardware words, pmd_offset() "
        "returns the pgd pointer as a pmd_t * (the first word), pmd_populate() writes both "
        "(the second points 1 KiB further) and pmd_clear() clears both "
        "(arch/arm/include/asm/pgtable-2level.h, pgalloc.h).",
        "A PTE page holds two 256-entry Linux tables (offsets 0 and 1024, the state the "
        "hardware lacks: young, dirty, user, read-only...) and the two hardware tables "
        "(offsets 2048 and 3072): PTRS_PER_PTE = 512, and set_pte_ext() "
        "(cpu_v7_set_pte_ext, proc-v7-2level.S) stores the Linux PTE and the hardware PTE it "
        "derives 2048 bytes further.",
        "No hardware access or dirty bits: an old, PROT_NONE or not-present Linux PTE gets a "
        "zero (fault) hardware PTE, a clean one AP[2] = 1 (read-only), so the first access "
        "or write faults and the kernel sets young/dirty.",
        "__pte_free_tlb widens the gather's range to 2 pages around the 1M boundary inside "
        "the 2M the freed PTE page maps (arch/arm/include/asm/tlb.h): its two first-level "
        "descriptors each cover 1M, and TLBIMVA drops only the walk entries of its own MVA.",
        "pgd_alloc() takes 16 KiB (order 2) and copies the kernel entries [USER_PTRS_PER_PGD "
        "= 1528, 2048) from swapper_pg_dir; a later vmalloc pgd entry reaches a process "
        "through __check_vmalloc_seq at switch_mm or a translation fault "
        "(arch/arm/mm/ioremap.c, fault.c), which the emulation does eagerly.",
        "FIRST_USER_ADDRESS = 2 * PAGE_SIZE: free_pgtables() never frees the PTE page under "
        "pgd entry 0, pgd_free() does (arch/arm/mm/pgd.c).",
        "User page tables carry PXNTable (user_pmd_table, arch/arm/mm/mmu.c: ID_MMFR0 "
        "VMSA >= 4) and domain 1 (DOMAIN_USER); kernel ones domain 0.",
    ),
)

CONFIGS: dict[str, ArchConfig] = {ARM.name: ARM}

__all__ = ["ARM", "CONFIGS", "PAGE_OFFSET", "ShortRegisters", "ShortWalker", "TASK_SIZE",
           "VMALLOC_END", "VMALLOC_START"]
