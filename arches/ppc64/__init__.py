"""POWER (book3s64) radix configurations: 4K and 64K base pages, Linux's 52-bit trees.

Geometry from Linux v6.18 ``arch/powerpc/include/asm/book3s/64/radix-4k.h`` (index sizes
13/9/9/9), ``radix-64k.h`` (13/9/9/5), ``radix.h`` (``RADIX_KERN_VIRT_START``,
``RADIX_VMALLOC_*``) and ``asm/task_size_64.h`` (``TASK_SIZE_USER64``); the walker
(:mod:`arches.ppc64.walker`) is written from the Power ISA v3.0B, not from Linux.

``kernel_range`` is the vmalloc area ``[RADIX_VMALLOC_START, RADIX_VMALLOC_END)``.  Kernel
addresses (quadrant 3) are translated through PID 0's tree, ``swapper_pg_dir``; user
addresses through the running mm's PID: the process pgd holds no kernel entries.
"""

from __future__ import annotations

from arches.config import ArchConfig, HwLevel
from arches.ppc64.bits import (
    RADIX_PGD_INDEX_SIZE,
    RADIX_PMD_INDEX_SIZE,
    RADIX_PTE_INDEX_SIZE_4K,
    RADIX_PTE_INDEX_SIZE_64K,
    RADIX_PUD_INDEX_SIZE,
    RADIX_VMALLOC_END,
    RADIX_VMALLOC_START,
    TASK_SIZE_4PB,
    TASK_SIZE_64TB,
)
from arches.ppc64.registers import RadixRegisters
from arches.ppc64.walker import LEVEL_NAMES, RadixWalker

_BE_NOTE = (
    "Entries are big-endian in storage whatever the CPU's byte order (the radix MMU reads "
    "them so; Linux keeps pte_raw() as __be64 and converts with cpu_to_be64), and a "
    "directory entry holds its next table's size: NLS = log2(entries) in bits 4:0 "
    "(RADIX_PMD_VAL_BITS = _PAGE_PRESENT | RADIX_PTE_INDEX_SIZE...)."
)
_ROOT_NOTE = (
    "No root register: the CPU finds a tree through PTCR -> partition table (LPID 0) -> "
    "process table -> the entry of PIDR (quadrant 0, EA bits 63:62 = 0b00) or of PID 0 "
    "(quadrant 3, the kernel: swapper_pg_dir). Doubleword 0 of an entry is RTS | "
    "__pa(pgd) | RPDS = 13 (radix__get_tree_size: a 52-bit tree); the export gives those "
    "values with PIDR = 1."
)
_PGD_NOTE = (
    "The pgd has 8192 entries (64 KiB) with both page sizes, as RPDS = 13; EA bits 61:52 "
    "must be zero (segment interrupt)."
)
_PROT_NONE_NOTE = (
    "PROT_NONE is a valid leaf: PAGE_NONE = _PAGE_PRESENT | _PAGE_ACCESSED | "
    "_PAGE_PRIVILEGED with no R/W/X (EAA 0b1000), which the MMU caches and faults on any "
    "access; pte_protnone() is PRESENT | PTE without RWX. Write implies read: "
    "pte_mkwrite sets _PAGE_RW."
)
_TLBIE_NOTE = (
    "tlbie/tlbiel take a RIC: 0 flushes translations only, 1 the page-walk cache of a whole "
    "PID (there is no by-address PWC flush), 2 both. So flush_tlb_mm (RIC 0) keeps the walk "
    "cache; the mmu_gather flushes the PWC by PID when tables were freed, a range of "
    "PMD_SIZE or more flushes it too ('mremap() depends on this'), and "
    "flush_tlb_kernel_range is always RIC 2 of PID 0 (radix_tlb.c)."
)
_RC_NOTE = (
    "R (_PAGE_ACCESSED) and C (_PAGE_DIRTY) are set by the hardware; radix__pte_none() "
    "ignores them ('an empty PTE can still have a R or C writeback')."
)


def radix_config(page_shift: int) -> ArchConfig:
    """``ppc64-radix-4k`` or ``ppc64-radix-64k``."""
    pte_bits = RADIX_PTE_INDEX_SIZE_4K if page_shift == 12 else RADIX_PTE_INDEX_SIZE_64K
    bits = (RADIX_PGD_INDEX_SIZE, RADIX_PUD_INDEX_SIZE, RADIX_PMD_INDEX_SIZE, pte_bits)
    shifts = (page_shift + pte_bits + 18, page_shift + pte_bits + 9, page_shift + pte_bits,
              page_shift)
    leaf_ok = (False, True, True, True)  # Linux: 1G pud and 2M pmd leaves; no 512G page
    hw = tuple(HwLevel(LEVEL_NAMES[i], shifts[i], 1 << bits[i], 8, leaf_ok[i])
               for i in range(4))
    k = page_shift == 12
    size = "4k" if k else "64k"
    frag = ("one 4 KiB PTE table and one 4 KiB PMD table per page (PTE_FRAG_NR = "
            "PMD_FRAG_NR = 1); the 64 KiB pgd is an order-4 block (radix__pgd_alloc)"
            if k else
            "PTE tables are 256-byte fragments, 256 to a 64 KiB page, and PMD tables 4 KiB "
            "fragments, 16 to a page (pte_fragment_alloc/pmd_fragment_alloc: the fragments "
            "of a page belong to one mm and share its split lock); PUD tables are 4 KiB "
            "objects of the pgtable-2^9 slab cache; the pgd is one page")
    return ArchConfig(
        name=f"ppc64-radix-{size}",
        family="ppc64",
        description=(
            f"POWER9/10 radix MMU, {size.upper()} base pages: RPD -> PD1 -> PD2 -> PT with "
            f"{'/'.join(str(1 << b) for b in bits)} big-endian 8-byte entries (a 52-bit "
            "tree), 2M and 1G leaves; user space (quadrant 0) through PIDR's process-table "
            "entry, kernel space (quadrant 3, 0xc000...) through PID 0's."
        ),
        word_bits=64,
        va_bits=52,
        phys_bits=53,
        page_shift=page_shift,
        endianness="big",
        hw_levels=hw,
        user_range=(0, TASK_SIZE_64TB if k else TASK_SIZE_4PB),
        kernel_range=(RADIX_VMALLOC_START, RADIX_VMALLOC_END),
        roots=("prte_pidr", "prte_0"),
        walker=RadixWalker(bits, page_shift),
        make_registers=RadixRegisters(),
        addr_flush_reaches_walk_caches=False,
        notes=(
            f"Tables of the kernel's sizes: {frag}.",
            _BE_NOTE, _ROOT_NOTE, _PGD_NOTE, _PROT_NONE_NOTE, _RC_NOTE, _TLBIE_NOTE,
            "TASK_SIZE_USER64 is " + ("64 TiB (2^46) with 4K pages" if k else
                                      "4 PiB (2^52) with 64K pages (mmap stays below "
                                      "128 TiB without a hint)") + ".",
        ),
    )


PPC64_RADIX_4K = radix_config(12)
PPC64_RADIX_64K = radix_config(16)

CONFIGS: dict[str, ArchConfig] = {c.name: c for c in (PPC64_RADIX_4K, PPC64_RADIX_64K)}

__all__ = ["CONFIGS", "PPC64_RADIX_4K", "PPC64_RADIX_64K", "RadixRegisters", "RadixWalker"]
