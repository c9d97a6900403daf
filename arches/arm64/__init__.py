"""arm64 configurations (VMSAv8-64 stage 1, EL1&0 regime): two roots, TTBR0 and TTBR1.

Geometry from the Arm ARM (D8.2 "Translation table walk", 4KB/16KB/64KB granules) and Linux
(``arch/arm64/include/asm/pgtable-hwdef.h``, ``memory.h``, Kconfig ``PGTABLE_LEVELS``).
The walker (:mod:`arches.arm64.walker`) is written from the Arm ARM, not from Linux.
"""

from __future__ import annotations

from arches.arm64.registers import Arm64Registers
from arches.arm64.walker import Arm64Walker
from arches.config import ArchConfig, HwLevel

ARM64_4K_48 = ArchConfig(
    name="arm64-4k-48",
    family="arm64",
    description=(
        "arm64 with the 4KB granule and 48-bit VAs (T0SZ = T1SZ = 16): L0 -> L1 -> L2 -> L3, "
        "512 8-byte descriptors per table, 4K pages, 2M (L2) and 1G (L1) blocks, 48-bit "
        "physical addresses. Two roots: TTBR0_EL1 (user, VA[55] = 0) and TTBR1_EL1 "
        "(swapper_pg_dir, VA[55] = 1)."
    ),
    word_bits=64,
    va_bits=48,
    phys_bits=48,
    page_shift=12,
    endianness="little",
    hw_levels=(
        HwLevel("L0", 39, 512, 8, leaf_ok=False),
        HwLevel("L1", 30, 512, 8, leaf_ok=True),
        HwLevel("L2", 21, 512, 8, leaf_ok=True),
        HwLevel("L3", 12, 512, 8, leaf_ok=True),
    ),
    user_range=(0, 2**48),
    kernel_range=(2**64 - 2**48, 2**64),
    roots=("ttbr0_el1", "ttbr1_el1"),
    walker=Arm64Walker(granule=12, va_bits=48, pa_bits=48),
    make_registers=Arm64Registers(page_shift=12, va_bits=48, pgd_bytes=4096),
    notes=(
        "Linux builds CONFIG_PGTABLE_LEVELS = 4 and folds p4d with pgtable-nop4d.h: the pgd is "
        "the L0 table, PGDIR_SHIFT = 39, PUD_SHIFT = 30, PMD_SHIFT = 21.",
        "TTBR0_EL1 = mm->pgd for VA[55] = 0 (0 .. 2^48), TTBR1_EL1 = swapper_pg_dir for "
        "VA[55] = 1 (PAGE_OFFSET = -(1 << 48) .. 2^64): pgd_alloc() clones no kernel half and "
        "no kernel mapping needs syncing (ARCH_PAGE_TABLE_SYNC_MASK = 0).",
        "L0 descriptors cannot be blocks (no 512G leaves without FEAT_LPA2); bits[1:0] = 0b01 "
        "at L3 is reserved (Translation fault).",
        "Clean writable pages are PTE_RDONLY | PTE_WRITE (= DBM): tcr_el1 sets HA and HD, so "
        "the hardware makes them writable on the first write and the walker reports them "
        "writable. Table descriptors carry PXNTable (user) or UXNTable (kernel).",
        "tcr_el1 leaves TBI0 clear (Linux sets it for tagged user pointers) so that VA bits "
        "63:48 must be all 0 (TTBR0) or all 1 (TTBR1); anything else is a Translation fault.",
    ),
)

ARM64_4K_39 = ArchConfig(
    name="arm64-4k-39",
    family="arm64",
    description=(
        "arm64 with the 4KB granule and 39-bit VAs (T0SZ = T1SZ = 25): the walk starts at "
        "L1 -> L2 -> L3, 512 8-byte descriptors per table, 4K pages, 2M (L2) and 1G (L1) "
        "blocks, 48-bit physical addresses. Two roots: TTBR0_EL1 (user) and TTBR1_EL1 "
        "(swapper_pg_dir)."
    ),
    word_bits=64,
    va_bits=39,
    phys_bits=48,
    page_shift=12,
    endianness="little",
    hw_levels=(
        HwLevel("L1", 30, 512, 8, leaf_ok=True),
        HwLevel("L2", 21, 512, 8, leaf_ok=True),
        HwLevel("L3", 12, 512, 8, leaf_ok=True),
    ),
    user_range=(0, 2**39),
    kernel_range=(2**64 - 2**39, 2**64),
    roots=("ttbr0_el1", "ttbr1_el1"),
    walker=Arm64Walker(granule=12, va_bits=39, pa_bits=48),
    make_registers=Arm64Registers(page_shift=12, va_bits=39, pgd_bytes=4096),
    notes=(
        "Linux builds CONFIG_PGTABLE_LEVELS = 3 and folds pud (and p4d) with "
        "pgtable-nopud.h: the pgd is the L1 table, PGDIR_SHIFT = PUD_SHIFT = 30, "
        "PMD_SHIFT = 21, PTRS_PER_PGD = 512.",
        "1G blocks live in the pgd entries: Linux makes them as pud sections of the folded "
        "pud (pud_sect(), pud_set_huge(); pud_sect_supported() is true for 4K pages).",
        "TTBR0_EL1 = mm->pgd for 0 .. 2^39, TTBR1_EL1 = swapper_pg_dir for "
        "PAGE_OFFSET = -(1 << 39) .. 2^64; no kernel mapping needs syncing.",
        "tcr_el1 leaves TBI0 clear, so VA bits 63:39 must be all 0 (TTBR0) or all 1 (TTBR1).",
    ),
)

ARM64_64K_42 = ArchConfig(
    name="arm64-64k-42",
    family="arm64",
    description=(
        "arm64 with the 64KB granule and 42-bit VAs (T0SZ = T1SZ = 22): the walk starts at "
        "L2 -> L3, 8192 8-byte descriptors per 64K table, 64K pages and 512M (L2) blocks, "
        "48-bit physical addresses. Two roots: TTBR0_EL1 (user) and TTBR1_EL1 "
        "(swapper_pg_dir)."
    ),
    word_bits=64,
    va_bits=42,
    phys_bits=48,
    page_shift=16,
    endianness="little",
    hw_levels=(
        HwLevel("L2", 29, 8192, 8, leaf_ok=True),
        HwLevel("L3", 16, 8192, 8, leaf_ok=True),
    ),
    user_range=(0, 2**42),
    kernel_range=(2**64 - 2**42, 2**64),
    roots=("ttbr0_el1", "ttbr1_el1"),
    walker=Arm64Walker(granule=16, va_bits=42, pa_bits=48),
    make_registers=Arm64Registers(page_shift=16, va_bits=42, pgd_bytes=65536),
    notes=(
        "Linux builds CONFIG_PGTABLE_LEVELS = 2 and folds pmd (and pud, p4d) with "
        "pgtable-nopmd.h: the pgd is the L2 table, PGDIR_SHIFT = PMD_SHIFT = 29, "
        "PTRS_PER_PGD = PTRS_PER_PTE = 8192; every table is one 64K page.",
        "512M blocks live in the pgd entries: Linux makes them as pmd sections of the folded "
        "pmd. No L1 blocks (4T, FEAT_LPA only): pud_sect() is hard-wired false for 64K.",
        "TTBR0_EL1 = mm->pgd for 0 .. 2^42, TTBR1_EL1 = swapper_pg_dir for "
        "PAGE_OFFSET = -(1 << 42) .. 2^64; no kernel mapping needs syncing.",
        "tcr_el1 leaves TBI0 clear, so VA bits 63:42 must be all 0 (TTBR0) or all 1 (TTBR1).",
    ),
)

ARM64_16K_47 = ArchConfig(
    name="arm64-16k-47",
    family="arm64",
    description=(
        "arm64 with the 16KB granule and 47-bit VAs (T0SZ = T1SZ = 17): the walk starts at "
        "L1 -> L2 -> L3, 2048 8-byte descriptors per 16K table, 16K pages and 32M (L2) "
        "blocks, 48-bit physical addresses. Two roots: TTBR0_EL1 (user) and TTBR1_EL1 "
        "(swapper_pg_dir)."
    ),
    word_bits=64,
    va_bits=47,
    phys_bits=48,
    page_shift=14,
    endianness="little",
    hw_levels=(
        HwLevel("L1", 36, 2048, 8, leaf_ok=False),
        HwLevel("L2", 25, 2048, 8, leaf_ok=True),
        HwLevel("L3", 14, 2048, 8, leaf_ok=True),
    ),
    user_range=(0, 2**47),
    kernel_range=(2**64 - 2**47, 2**64),
    roots=("ttbr0_el1", "ttbr1_el1"),
    walker=Arm64Walker(granule=14, va_bits=47, pa_bits=48),
    make_registers=Arm64Registers(page_shift=14, va_bits=47, pgd_bytes=16384),
    notes=(
        "Linux builds CONFIG_PGTABLE_LEVELS = 3 and folds pud (and p4d) with "
        "pgtable-nopud.h: the pgd is the L1 table, PGDIR_SHIFT = PUD_SHIFT = 36, "
        "PMD_SHIFT = 25, PTRS_PER_PGD = 2048; every table is one 16K page.",
        "No L1 blocks (64G needs FEAT_LPA2): pud_sect_supported() is PAGE_SIZE == SZ_4K, so "
        "Linux never makes pud sections; 32M pmd blocks at L2.",
        "TTBR0_EL1 = mm->pgd for 0 .. 2^47, TTBR1_EL1 = swapper_pg_dir for "
        "PAGE_OFFSET = -(1 << 47) .. 2^64; no kernel mapping needs syncing.",
        "tcr_el1 leaves TBI0 clear, so VA bits 63:47 must be all 0 (TTBR0) or all 1 (TTBR1).",
    ),
)

ARM64_16K_36 = ArchConfig(
    name="arm64-16k-36",
    family="arm64",
    description=(
        "arm64 with the 16KB granule and 36-bit VAs (T0SZ = T1SZ = 28): the walk starts at "
        "L2 -> L3, 2048 8-byte descriptors per 16K table, 16K pages and 32M (L2) blocks, "
        "48-bit physical addresses. Two roots: TTBR0_EL1 (user) and TTBR1_EL1 "
        "(swapper_pg_dir)."
    ),
    word_bits=64,
    va_bits=36,
    phys_bits=48,
    page_shift=14,
    endianness="little",
    hw_levels=(
        HwLevel("L2", 25, 2048, 8, leaf_ok=True),
        HwLevel("L3", 14, 2048, 8, leaf_ok=True),
    ),
    user_range=(0, 2**36),
    kernel_range=(2**64 - 2**36, 2**64),
    roots=("ttbr0_el1", "ttbr1_el1"),
    walker=Arm64Walker(granule=14, va_bits=36, pa_bits=48),
    make_registers=Arm64Registers(page_shift=14, va_bits=36, pgd_bytes=16384),
    notes=(
        "Linux builds CONFIG_PGTABLE_LEVELS = 2 (CONFIG_ARM64_VA_BITS_36 needs EXPERT) and "
        "folds pmd (and pud, p4d) with pgtable-nopmd.h: the pgd is the L2 table, "
        "PGDIR_SHIFT = PMD_SHIFT = 25, PTRS_PER_PGD = PTRS_PER_PTE = 2048; every table is "
        "one 16K page.",
        "32M blocks live in the pgd entries: Linux makes them as pmd sections of the folded "
        "pmd. No L1 (64G blocks need FEAT_LPA2; with 36-bit VAs there is no L1 table).",
        "TTBR0_EL1 = mm->pgd for 0 .. 2^36, TTBR1_EL1 = swapper_pg_dir for "
        "PAGE_OFFSET = -(1 << 36) .. 2^64; no kernel mapping needs syncing.",
        "tcr_el1 leaves TBI0 clear, so VA bits 63:36 must be all 0 (TTBR0) or all 1 (TTBR1).",
    ),
)

CONFIGS: dict[str, ArchConfig] = {
    c.name: c
    for c in (ARM64_4K_39, ARM64_4K_48, ARM64_16K_36, ARM64_16K_47, ARM64_64K_42)
}

__all__ = [
    "ARM64_4K_39",
    "ARM64_4K_48",
    "ARM64_16K_36",
    "ARM64_16K_47",
    "ARM64_64K_42",
    "CONFIGS",
    "Arm64Registers",
    "Arm64Walker",
]
