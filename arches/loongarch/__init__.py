"""LoongArch64 configuration ``loongarch64``: 16 KiB pages, 3 levels (the kernel's
default ``CONFIG_16KB_3LEVEL`` on 64-bit).  Two roots, ``PGDL`` and ``PGDH``.

Geometry from Linux v6.18 ``arch/loongarch/include/asm/pgtable.h`` (``PMD_SHIFT =
PAGE_SHIFT + PAGE_SHIFT - 3`` = 25, ``PGDIR_SHIFT`` = 36, ``PTRS_PER_* = PAGE_SIZE >> 3`` =
2048, ``VA_BITS`` = 47, ``VMALLOC_START``/``VMALLOC_END``), ``asm/sparsemem.h``
(``VMEMMAP_SIZE``), ``asm/addrspace.h`` (``PCI_IOSIZE``), ``asm/processor.h``
(``TASK_SIZE64``) and ``arch/loongarch/mm/tlb.c`` (``setup_ptwalker``); the CPU is a
Loongson 3A5000/3A6000 (VALEN = PALEN = 48, so ``vm_map_base = -2^48``).  The walker
(:mod:`arches.loongarch.walker`) is written from the LoongArch Reference Manual, Vol. 1
(second reading: QEMU's ``target/loongarch/cpu_helper.c``); no emulator checks it here.

``kernel_range`` is ``[vm_map_base, VMALLOC_END)``: the PCI I/O window, the modules area
and the vmalloc area, every kernel mapping made after boot (the kernel image and the linear
map are in the DMW windows, which need no tables).  It starts at ``vm_map_base``, not at
``VMALLOC_START`` (which is not 32M-aligned), so that every PT table of the kernel half
belongs to the kernel's (global) address space.
"""

from __future__ import annotations

from arches.config import ArchConfig, HwLevel
from arches.loongarch.bits import INVALID_PMD_TABLE_PA, INVALID_PTE_TABLE_PA
from arches.loongarch.registers import LoongarchRegisters
from arches.loongarch.walker import LoongarchWalker

VM_MAP_BASE = (-(1 << 48)) & ((1 << 64) - 1)
"""``vm_map_base = 0UL - (1UL << cpu_vabits)`` (cpu-probe.c), VALEN = 48."""
PCI_IOSIZE = 32 << 20
MODULES_VADDR = VM_MAP_BASE + PCI_IOSIZE + 2 * (1 << 14)
MODULES_END = MODULES_VADDR + (256 << 20)
VMALLOC_START = MODULES_END
VMEMMAP_SIZE = 64 * (1 << (48 + 1 - 14))
"""``sizeof(struct page) * (1UL << (cpu_pabits + 1 - PAGE_SHIFT))`` with a 64-byte
``struct page`` (CONFIG_SPARSEMEM_VMEMMAP)."""
VMALLOC_END = VM_MAP_BASE + min(2048 * 1 * 2048 * 2048 * (1 << 14), 1 << 48) \
    - (1 << 25) - VMEMMAP_SIZE
"""``vm_map_base + min(PTRS_PER_PGD * PTRS_PER_PUD * PTRS_PER_PMD * PTRS_PER_PTE *
PAGE_SIZE, 1 << cpu_vabits) - PMD_SIZE - VMEMMAP_SIZE - KFENCE_AREA_SIZE`` (no KFENCE)."""

LOONGARCH64 = ArchConfig(
    name="loongarch64",
    family="loongarch",
    description=(
        "LoongArch64 with 16K pages and 3 levels (Linux's default 16KB_3LEVEL): Dir3 (pgd) "
        "-> Dir1 (pmd) -> PT, 2048 8-byte entries per 16K table, 16K pages and 32M huge "
        "pages (a Dir1 entry with bit 6 set), VALEN = PALEN = 48. Two roots: PGDL for VAs "
        "with bit 63 clear (the mm's pgd), PGDH for bit 63 set (swapper_pg_dir). The TLB is "
        "refilled in software (LDDIR/LDPTE in Linux's handle_tlb_refill)."
    ),
    word_bits=64,
    va_bits=47,
    phys_bits=48,
    page_shift=14,
    endianness="little",
    hw_levels=(HwLevel("Dir3", 36, 2048, 8, leaf_ok=False),
               HwLevel("Dir1", 25, 2048, 8, leaf_ok=True),
               HwLevel("PT", 14, 2048, 8, leaf_ok=True)),
    user_range=(0, 1 << 47),
    kernel_range=(VM_MAP_BASE, VMALLOC_END),
    roots=("pgdl", "pgdh"),
    walker=LoongarchWalker(48, 48, frozenset({INVALID_PMD_TABLE_PA, INVALID_PTE_TABLE_PA})),
    make_registers=LoongarchRegisters(14, 3),
    range_flush_clears_walk_caches=True,
    notes=(
        "Facts come from the LoongArch Reference Manual, Vol. 1 and Linux v6.18 only: there "
        "is no LoongArch emulator here (Unicorn 2.1.4 has no LoongArch, drgn no LoongArch "
        "page-table walker), so the walker is checked against hand-built bytes alone.",
        "Directory entries have no valid bit: an empty pgd entry points at invalid_pmd_table "
        "and an empty pmd entry at invalid_pte_table (kernel image BSS), and the refill "
        "handler (csrrd PGD; lddir 3; lddir 1; ldpte 0; ldpte 1; tlbfill) reads through them "
        "to a PTE with V = 0. pmd_none() is 'points at invalid_pte_table', never 'is 0'.",
        "Directory entries hold the next table's *kernel virtual address* (CACHE_BASE | pa, "
        "0x9000... in the DMW1 window): pmd_page_vaddr() is pmd_val() itself; LDDIR uses "
        "only bits PALEN-1:0.",
        "Kernel PTE tables start as _PAGE_GLOBAL, not 0 (kernel_pte_init), and pte_clear() "
        "keeps _PAGE_GLOBAL: a TLB entry holds an even/odd PTE pair whose G must agree; "
        "pte_none() ignores G.",
        "The PGD register is chosen by VA bit 63, not bit 47: the kernel's vmalloc area "
        "starts at vm_map_base = -2^48 (bit 47 clear), and VA bit 47 is never an index bit "
        "of the 16K/3-level walk (indexes use bits 46:14), so it is not translated at all.",
        "USER_PTRS_PER_PGD = TASK_SIZE64 / PGDIR_SIZE = 2048 = PTRS_PER_PGD: pgd_alloc's "
        "memcpy of the kernel entries copies nothing; kernel addresses go through PGDH.",
        "No walk cache (software refill): the TLB holds leaf PTE pairs only, so no "
        "invalidation ever leaves a directory entry cached (range_flush_clears_walk_caches "
        "holds trivially). local_flush_tlb_range counts even/odd page pairs "
        "(PAGE_SIZE << 1) and drops the whole ASID past tlbsize / 8 pairs.",
        "Young/dirty are software bits the TLB exception handlers set: V doubles as "
        "_PAGE_ACCESSED, D (hardware writable) is set with _PAGE_MODIFIED only when "
        "_PAGE_WRITE is; PROT_NONE is _PAGE_PROTNONE | _PAGE_NO_READ with V = 0.",
        "The kernel's PAGE_KERNEL has no _PAGE_NO_EXEC (vmalloc memory is executable) and "
        "LoongArch defines no PAGE_KERNEL_RO/_EXEC/_ROX (include/linux/pgtable.h falls back "
        "to PAGE_KERNEL): the emulated kernel's r/rw/rx kernel protections are what "
        "set_memory_ro/_nx/_x (arch/loongarch/mm/pageattr.c) make of it, a documented "
        "departure (legacy/loongarch/pgtable.py).",
    ),
)

CONFIGS: dict[str, ArchConfig] = {LOONGARCH64.name: LOONGARCH64}

__all__ = ["CONFIGS", "LOONGARCH64", "LoongarchRegisters", "LoongarchWalker"]
