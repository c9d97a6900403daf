"""The ``arm-lpae`` configuration: ARMv7-A with the Large Physical Address Extension
(Long-descriptor format), a Cortex-A15 class CPU, Linux's CONFIG_ARM_LPAE with VMSPLIT_3G.

Geometry from the Arm ARM (DDI 0406C, B3.6) and Linux (``pgtable-3level.h``,
``pgtable-3level-hwdef.h``, ``memory.h``, ``proc-v7-3level.S``).  The walker
(:mod:`arches.arm.lpae_walker`) is written from the Arm ARM, not from Linux.
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.arm.lpae_bits import (
    NMRR,
    PRRR,
    TTB_FLAGS_SMP,
    TTBCR_EAE,
    TTBR1_OFFSET_VMSPLIT_3G,
    TTBR1_SIZE,
)
from arches.arm.lpae_walker import LpaeWalker
from arches.config import ArchConfig, HwLevel
from arches.errors import BadInput

PAGE_OFFSET = 0xC000_0000
"""CONFIG_PAGE_OFFSET with CONFIG_VMSPLIT_3G."""
TASK_SIZE = PAGE_OFFSET - 0x100_0000
"""arch/arm/include/asm/memory.h: ``PAGE_OFFSET - SZ_16M`` (no KASAN); the 16M between is
``MODULES_VADDR``..``PAGE_OFFSET``, translated through TTBR0."""


@dataclass(frozen=True)
class LpaeRegisters:
    """``make_registers``: what ``cpu_v7_switch_mm`` and ``v7_ttb_setup``
    (proc-v7-3level.S) load.  TTBCR = EAE | TTB_FLAGS_SMP for both halves | T1SZ from
    ``TTBR1_SIZE`` (T0SZ = 0); TTBR0 = ``__pa(mm->pgd)`` (ASID 0 in [55:48]); TTBR1 =
    ``__pa(swapper_pg_dir) + TTBR1_OFFSET``, the kernel pmd table behind the pgd page and
    three user pmds; MAIR0/MAIR1 = PRRR/NMRR."""

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        if user_root % 32 or not 0 <= user_root < 1 << 40:
            raise BadInput(f"user root {user_root:#x} is not a 32-byte aligned address "
                           "below 2^40, so TTBR0 cannot hold it")
        if kernel_root % 4096 or not 0 <= kernel_root < (1 << 40) - TTBR1_OFFSET_VMSPLIT_3G:
            raise BadInput(f"kernel root {kernel_root:#x} is not a page-aligned "
                           "swapper_pg_dir below 2^40")
        ttbcr = (TTBCR_EAE | TTB_FLAGS_SMP | TTB_FLAGS_SMP << 16 | TTBR1_SIZE(PAGE_OFFSET))
        return {
            "ttbcr": ttbcr,
            "ttbr0": user_root,
            "ttbr1": kernel_root + TTBR1_OFFSET_VMSPLIT_3G,
            "mair0": PRRR,
            "mair1": NMRR,
        }


ARM_LPAE = ArchConfig(
    name="arm-lpae",
    family="arm",
    description=(
        "32-bit arm with LPAE (ARMv7-A Long-descriptor format, Cortex-A15): L1 -> L2 -> L3, "
        "8-byte descriptors, a 4-entry L1 table, leaves 2M (L2) and 4K (L3), 40-bit "
        "physical addresses. Two roots split by TTBCR (T0SZ = 0, T1SZ = 2): TTBR0 = the "
        "process pgd below 0xC0000000, TTBR1 = swapper_pg_dir's kernel pmd for the top GiB."
    ),
    word_bits=32,
    va_bits=32,
    phys_bits=40,
    page_shift=12,
    endianness="little",
    hw_levels=(
        HwLevel("L1", 30, 4, 8, leaf_ok=False),
        HwLevel("L2", 21, 512, 8, leaf_ok=True),
        HwLevel("L3", 12, 512, 8, leaf_ok=True),
    ),
    user_range=(0, TASK_SIZE),
    kernel_range=(PAGE_OFFSET, 1 << 32),
    roots=("ttbr0", "ttbr1"),
    walker=LpaeWalker(),
    make_registers=LpaeRegisters(),
    break_before_make=True,
    notes=(
        "Linux builds CONFIG_PGTABLE_LEVELS = 3 and folds pud (and p4d) with "
        "pgtable-nopud.h: the pgd is the 4-entry L1 table, PGDIR_SHIFT = 30, PMD_SHIFT = 21; "
        "entries are 64 bits wide though unsigned long is 32.",
        "The pgd is 32 bytes from kmalloc (kmalloc_array(PTRS_PER_PGD, sizeof(pgd_t)), "
        "arch/arm/mm/pgd.c), a 64-byte kmalloc object with ARCH_DMA_MINALIGN = 64; TTBR0 "
        "needs only 32-byte alignment with T0SZ = 0.",
        "pgd_alloc copies swapper_pg_dir's kernel entry (slot 3) and allocates a pmd for "
        "MODULES_VADDR (slot 2), shared by the top of user space and the modules area: "
        "USER_PGTABLES_CEILING = TASK_SIZE = 0xBF000000 keeps free_pgtables off it, and "
        "pgd_free frees it.",
        "TTBCR.T1SZ = 2 gives TTBR1 the top GiB and the walk starts at level 2: TTBR1 = "
        "swapper_pg_dir + 4096 * (1 + 3), the fourth pmd behind the pgd page "
        "(TTBR1_OFFSET, !CONFIG_CPU_TTBR0_PAN); the copied pgd slot 3 is never walked. "
        "With CONFIG_CPU_TTBR0_PAN, TTBR1_OFFSET = TTBR1_SIZE = 0 (pgtable-3level-hwdef.h): "
        "TTBR1 is the whole swapper_pg_dir and TTBCR.T0SZ moves the split; not emulated.",
        "No hardware dirty or young state: L_PTE_YOUNG is AF (an old page takes an Access "
        "flag fault), a clean writable page is AP[2] = 1 (cpu_v7_set_pte_ext sets AP[2] for "
        "!L_PTE_DIRTY || L_PTE_RDONLY); PROT_NONE clears the valid bit.",
        "User pages carry PXN (build_mem_type_table: user_pgprot |= PTE_EXT_PXN) and nG "
        "(set_ptes).",
        "The hardware also has 1G level-1 blocks (the walker accepts them) but Linux never "
        "makes one: no pud_sect/pud_set_huge, hugetlb and THP use 2M sections only, so L1 "
        "is not counted as a leaf level here.",
    ),
)

CONFIGS: dict[str, ArchConfig] = {ARM_LPAE.name: ARM_LPAE}

__all__ = ["ARM_LPAE", "CONFIGS", "PAGE_OFFSET", "TASK_SIZE", "LpaeRegisters", "LpaeWalker"]
