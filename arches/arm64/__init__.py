"""arm64 configurations (VMSAv8-64 stage 1, EL1&0 regime): two roots, TTBR0 and TTBR1.

Geometry from the Arm ARM (D8.2 "Translation table walk", 4KB granule) and Linux
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

CONFIGS: dict[str, ArchConfig] = {c.name: c for c in (ARM64_4K_48,)}

__all__ = ["ARM64_4K_48", "CONFIGS", "Arm64Registers", "Arm64Walker"]
