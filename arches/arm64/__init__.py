"""arm64 configurations (VMSAv8-64 stage 1, EL1&0 regime): two roots, TTBR0 and TTBR1.

Geometry from the Arm ARM (D8.2 "Translation table walk", 4KB/16KB/64KB granules) and Linux
(``arch/arm64/include/asm/pgtable-hwdef.h``, ``memory.h``, Kconfig ``PGTABLE_LEVELS``).
The walker (:mod:`arches.arm64.walker`) is written from the Arm ARM, not from Linux.
"""

from __future__ import annotations

from arches.arm64.registers import Arm64Registers
from arches.arm64.walker import Arm64Walker
from arches.config import ArchConfig, HwLevel

_SIZE = {12: "4K", 14: "16K", 16: "64K", 21: "2M", 25: "32M", 29: "512M", 30: "1G"}


def vmsa_config(granule: int, va_bits: int, block_levels: tuple[str, ...],
                notes: tuple[str, ...]) -> ArchConfig:
    """A VMSAv8-64 stage-1 configuration from its granule (page shift) and VA size.

    The Arm ARM (D8.2) fixes the rest: each level resolves ``granule - 3`` VA bits with
    8-byte descriptors, the walk ends at L3 and starts at whatever level covers ``va_bits``
    (the start table holding only the entries it needs); ``block_levels`` are the levels
    where Linux makes blocks.  TTBR0_EL1 serves ``0 .. 2^va_bits`` (user), TTBR1_EL1
    ``-(1 << va_bits) .. 2^64`` (``swapper_pg_dir``)."""
    per_level = granule - 3
    nlevels = -(-(va_bits - granule) // per_level)
    levels = []
    for i in range(nlevels):
        n = 4 - nlevels + i
        shift = granule + per_level * (nlevels - 1 - i)
        entries = 1 << min(per_level, va_bits - shift)
        levels.append(HwLevel(f"L{n}", shift, entries, 8, leaf_ok=f"L{n}" in block_levels
                              or n == 3))
    pgd_bytes = levels[0].table_bytes
    walk = " -> ".join(lv.name for lv in levels)
    leaves = ", ".join(f"{_SIZE.get(lv.shift, hex(1 << lv.shift))} ({lv.name})"
                       for lv in levels if lv.leaf_ok)
    return ArchConfig(
        name=f"arm64-{_SIZE[granule].lower()}-{va_bits}",
        family="arm64",
        description=(
            f"arm64 with the {_SIZE[granule]}B granule and {va_bits}-bit VAs (T0SZ = T1SZ = "
            f"{64 - va_bits}): {walk}, {levels[-1].entries} 8-byte descriptors per "
            f"{_SIZE[granule]} table, leaves {leaves}, 48-bit physical addresses. Two roots: "
            f"TTBR0_EL1 (user, VA[55] = 0) and TTBR1_EL1 (swapper_pg_dir, VA[55] = 1)."
        ),
        word_bits=64,
        va_bits=va_bits,
        phys_bits=48,
        page_shift=granule,
        endianness="little",
        hw_levels=tuple(levels),
        user_range=(0, 2**va_bits),
        kernel_range=(2**64 - 2**va_bits, 2**64),
        roots=("ttbr0_el1", "ttbr1_el1"),
        break_before_make=True,
        walker=Arm64Walker(granule=granule, va_bits=va_bits, pa_bits=48),
        make_registers=Arm64Registers(page_shift=granule, va_bits=va_bits,
                                      pgd_bytes=pgd_bytes),
        notes=notes + (
            f"TTBR0_EL1 = mm->pgd for 0 .. 2^{va_bits}, TTBR1_EL1 = swapper_pg_dir for "
            f"PAGE_OFFSET = -(1 << {va_bits}) .. 2^64: pgd_alloc() clones no kernel half and "
            "no kernel mapping needs syncing (ARCH_PAGE_TABLE_SYNC_MASK = 0).",
            f"tcr_el1 leaves TBI0 clear (Linux sets it for tagged user pointers) so that VA "
            f"bits 63:{va_bits} must be all 0 (TTBR0) or all 1 (TTBR1); anything else is a "
            "Translation fault.",
        ),
    )


ARM64_4K_48 = vmsa_config(12, 48, ("L1", "L2"), (
    "Linux builds CONFIG_PGTABLE_LEVELS = 4 and folds p4d with pgtable-nop4d.h: the pgd is "
    "the L0 table, PGDIR_SHIFT = 39, PUD_SHIFT = 30, PMD_SHIFT = 21.",
    "L0 descriptors cannot be blocks (no 512G leaves without FEAT_LPA2); bits[1:0] = 0b01 "
    "at L3 is reserved (Translation fault).",
    "Clean writable pages are PTE_RDONLY | PTE_WRITE (= DBM): tcr_el1 sets HA and HD, so "
    "the hardware makes them writable on the first write and the walker reports them "
    "writable. Table descriptors carry PXNTable (user) or UXNTable (kernel).",
))

ARM64_4K_39 = vmsa_config(12, 39, ("L1", "L2"), (
    "Linux builds CONFIG_PGTABLE_LEVELS = 3 and folds pud (and p4d) with "
    "pgtable-nopud.h: the pgd is the L1 table, PGDIR_SHIFT = PUD_SHIFT = 30, "
    "PMD_SHIFT = 21, PTRS_PER_PGD = 512.",
    "1G blocks live in the pgd entries: Linux makes them as pud sections of the folded "
    "pud (pud_sect(), pud_set_huge(); pud_sect_supported() is true for 4K pages).",
))

ARM64_64K_42 = vmsa_config(16, 42, ("L2",), (
    "Linux builds CONFIG_PGTABLE_LEVELS = 2 and folds pmd (and pud, p4d) with "
    "pgtable-nopmd.h: the pgd is the L2 table, PGDIR_SHIFT = PMD_SHIFT = 29, "
    "PTRS_PER_PGD = PTRS_PER_PTE = 8192; every table is one 64K page.",
    "512M blocks live in the pgd entries: Linux makes them as pmd sections of the folded "
    "pmd. No L1 blocks (4T, FEAT_LPA only): pud_sect() is hard-wired false for 64K.",
))

ARM64_16K_47 = vmsa_config(14, 47, ("L2",), (
    "Linux builds CONFIG_PGTABLE_LEVELS = 3 and folds pud (and p4d) with "
    "pgtable-nopud.h: the pgd is the L1 table, PGDIR_SHIFT = PUD_SHIFT = 36, "
    "PMD_SHIFT = 25, PTRS_PER_PGD = 2048; every table is one 16K page.",
    "No L1 blocks (64G needs FEAT_LPA2): pud_sect_supported() is PAGE_SIZE == SZ_4K, so "
    "Linux never makes pud sections; 32M pmd blocks at L2.",
))

ARM64_16K_36 = vmsa_config(14, 36, ("L2",), (
    "Linux builds CONFIG_PGTABLE_LEVELS = 2 (CONFIG_ARM64_VA_BITS_36 needs EXPERT) and "
    "folds pmd (and pud, p4d) with pgtable-nopmd.h: the pgd is the L2 table, "
    "PGDIR_SHIFT = PMD_SHIFT = 25, PTRS_PER_PGD = PTRS_PER_PTE = 2048; every table is "
    "one 16K page.",
    "32M blocks live in the pgd entries: Linux makes them as pmd sections of the folded "
    "pmd. No L1 (64G blocks need FEAT_LPA2; with 36-bit VAs there is no L1 table).",
))

ARM64_16K_48 = vmsa_config(14, 48, ("L2",), (
    "Linux builds CONFIG_PGTABLE_LEVELS = 4 and folds p4d with pgtable-nop4d.h: the pgd is "
    "the L0 table, PGDIR_SHIFT = 47, PUD_SHIFT = 36, PMD_SHIFT = 25. The 16K granule "
    "resolves 11 bits per level, so 48-bit VAs leave ONE bit for L0: PTRS_PER_PGD = 2, a "
    "16-byte pgd (pgtable-hwdef.h).",
    "A 16-byte pgd is smaller than a page: pgd_alloc() takes it from the slab cache "
    "pgd_cache (kmem_cache_create(\"pgd_cache\", PGD_SIZE, PGD_SIZE, ...), "
    "arch/arm64/mm/pgd.c), so up to 1024 mms' pgds share one 16K frame; no ptdesc, no "
    "page-table ctor. swapper_pg_dir stays a whole page in the kernel image.",
    "TTBR0_EL1 then points 16 bytes into a frame: the Arm ARM only asks a translation "
    "table to be aligned to its size (the 64-byte minimum comes with 52-bit PAs). No L1 "
    "blocks (64G needs FEAT_LPA2); 32M pmd blocks at L2.",
))

ARM64_64K_48 = vmsa_config(16, 48, ("L2",), (
    "Linux builds CONFIG_PGTABLE_LEVELS = 3 and folds pud (and p4d) with "
    "pgtable-nopud.h: the pgd is the L1 table, PGDIR_SHIFT = PUD_SHIFT = 42, "
    "PMD_SHIFT = 29. The 64K granule resolves 13 bits per level, so L1 keeps 6 bits: "
    "PTRS_PER_PGD = 64, a 512-byte pgd (pgtable-hwdef.h).",
    "A 512-byte pgd is smaller than a page: pgd_alloc() takes it from the slab cache "
    "pgd_cache (arch/arm64/mm/pgd.c), 128 pgds per 64K frame, each aligned to 512 bytes "
    "as TTBR0_EL1 requires. No L1 blocks (4T needs FEAT_LPA: pud_sect() is false for "
    "64K); 512M pmd blocks at L2.",
))

CONFIGS: dict[str, ArchConfig] = {
    c.name: c
    for c in (ARM64_4K_39, ARM64_4K_48, ARM64_16K_36, ARM64_16K_47, ARM64_16K_48,
              ARM64_64K_42, ARM64_64K_48)
}

__all__ = [
    "ARM64_4K_39",
    "ARM64_4K_48",
    "ARM64_16K_36",
    "ARM64_16K_47",
    "ARM64_16K_48",
    "ARM64_64K_42",
    "ARM64_64K_48",
    "CONFIGS",
    "Arm64Registers",
    "Arm64Walker",
]
