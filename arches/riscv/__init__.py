"""RISC-V configurations: Sv32 on RV32, Sv39, Sv48 and Sv57 on RV64.  One root, ``satp``.

Geometry from the RISC-V privileged specification ("Sv32", "Sv39", "Sv48", "Sv57": 4 KiB
pages, ``PAGESIZE / PTESIZE`` PTEs per table, a leaf at any level) and Linux v6.18
(``arch/riscv/include/asm/pgtable.h``, ``pgtable-64.h``, ``page.h``: ``TASK_SIZE``,
``VMALLOC_START``/``VMALLOC_END``).  The walker (:mod:`arches.riscv.walker`) is written
from the specification, not from Linux.

``kernel_range`` is the vmalloc area ``[VMALLOC_START, VMALLOC_END = PAGE_OFFSET)``: where
Linux makes kernel mappings after boot.  On RV64 ``pgtable_cache_init`` preallocates the
second-level tables of that whole area in ``swapper_pg_dir`` (``preallocate_pgd_pages_range``,
``arch/riscv/mm/init.c``), so the copy ``pgd_alloc`` makes of the kernel pgd entries stays
valid forever.
"""

from __future__ import annotations

from arches.config import ArchConfig, HwLevel
from arches.riscv.bits import SATP_MODE_32, SATP_MODE_39, SATP_MODE_48, SATP_MODE_57
from arches.riscv.registers import RiscvRegisters
from arches.riscv.walker import MODE_SV32, MODE_SV39, MODE_SV48, MODE_SV57, SvWalker

_SBI_NOTE = (
    "sfence.vma with an address invalidates only the *leaf* PTEs cached for it (privileged "
    "spec, \"Supervisor Memory-Management Fence Instruction\"): walk caches survive every "
    "by-address flush, so Linux's tlb_flush() flushes the whole ASID as soon as page tables "
    "were freed, and a range of more than tlb_flush_all_threshold = 64 pages becomes a full "
    "flush (arch/riscv/mm/tlbflush.c)."
)
_AD_NOTE = (
    "A and D: the emulated hart has Svadu enabled (menvcfg.ADUE = 1), so the hardware sets "
    "them; with ADUE = 0 (Svade) A = 0 is a page fault and a clean (D = 0) page is not "
    "writable. Linux's user protections carry _PAGE_ACCESSED but not _PAGE_DIRTY."
)
_PROT_NONE_NOTE = (
    "PROT_NONE is V = 0 with G = 1 and R = 1 (PAGE_NONE = _PAGE_PROT_NONE | _PAGE_READ, "
    "_PAGE_PROT_NONE = _PAGE_GLOBAL): pte_present() tests V | G, so a not-present PTE "
    "with G set is a PROT_NONE page, never a swap entry (whose bit 5 stays 0)."
)
_PUD_PROT_NONE_NOTE = (
    "A PROT_NONE 1G leaf is lost by the kernel: pud_present() is V alone and pud_leaf() "
    "needs it (pgtable-64.h), so after pud_modify(PAGE_NONE) the leaf is pud_bad and "
    "zap_pud_range/vunmap_pud_range clear it as bad (pud_none_or_clear_bad, without the "
    "page-table lock). ptshim refuses a map or protect that would make a whole 1G leaf PROT_NONE "
    "(bad input, exit 2); PROT_NONE 2M leaves are fine (pmd_present() also tests "
    "_PAGE_PROT_NONE | _PAGE_LEAF)."
)
_RSVD_NOTE = (
    "W = 1 with R = 0 is a reserved encoding (page fault; Zicfiss gives it to shadow stacks); "
    "a non-leaf PTE with U, A or D set, and a superpage whose low PPN fields are not zero "
    "(misaligned superpage) are page faults too. A non-leaf PTE is V alone (_PAGE_TABLE)."
)


def _levels(names: tuple[str, ...], first_shift: int, bits: int, entry: int,
            leaf_names: tuple[str, ...]) -> tuple[HwLevel, ...]:
    n = len(names)
    return tuple(HwLevel(names[i], first_shift - bits * i, 1 << bits, entry,
                         leaf_ok=names[i] in leaf_names) for i in range(n))


def sv64_config(mode: int, levels: int, vmalloc_start: int, page_offset: int,
                notes: tuple[str, ...]) -> ArchConfig:
    """An RV64 configuration: ``levels`` levels of 512 8-byte PTEs, 56-bit physical
    addresses, user space ``[0, TASK_SIZE_64 = PGDIR_SIZE * PTRS_PER_PGD / 2)``."""
    va_bits = 12 + 9 * levels
    names = tuple(f"L{i}" for i in range(levels - 1, -1, -1))
    leaf_names = ("L2", "L1", "L0")  # Linux makes no 512G/256T leaves
    hw = _levels(names, 12 + 9 * (levels - 1), 9, 8, leaf_names)
    satp = {MODE_SV39: SATP_MODE_39, MODE_SV48: SATP_MODE_48, MODE_SV57: SATP_MODE_57}[mode]
    walk = " -> ".join(names)
    return ArchConfig(
        name=f"riscv64-sv{va_bits}",
        family="riscv",
        description=(
            f"RV64 with Sv{va_bits} (satp.MODE = {mode}): {walk}, 512 8-byte PTEs per 4K "
            f"table, a leaf at any level (Linux: 4K, 2M, 1G), bits 63:{va_bits} of a VA "
            f"must equal bit {va_bits - 1}, 56-bit physical addresses. One root, satp, for "
            "user and kernel."
        ),
        word_bits=64,
        va_bits=va_bits,
        phys_bits=56,
        page_shift=12,
        endianness="little",
        hw_levels=hw,
        user_range=(0, 1 << (va_bits - 1)),
        kernel_range=(vmalloc_start, page_offset),
        roots=("satp",),
        walker=SvWalker(mode),
        make_registers=RiscvRegisters(satp, 44),
        addr_flush_reaches_walk_caches=False,
        notes=notes + (_PROT_NONE_NOTE, _PUD_PROT_NONE_NOTE, _RSVD_NOTE, _SBI_NOTE,
                       _AD_NOTE),
    )


RISCV64_SV39 = sv64_config(MODE_SV39, 3, 0xFFFF_FFC6_0000_0000, 0xFFFF_FFD6_0000_0000, (
    "Linux compiles 5 levels (CONFIG_PGTABLE_LEVELS = 5) and folds p4d and pud at run time "
    "(pgtable_l4_enabled = pgtable_l5_enabled = false): PGDIR_SHIFT = P4D_SHIFT = PUD_SHIFT "
    "= 30, yet PTRS_PER_P4D = PTRS_PER_PUD = 512 (PAGE_SIZE / sizeof), unlike x86-64's "
    "ptrs_per_p4d = 1; p4d_offset()/pud_offset() return the pgd pointer.",
    "No 1G vmap leaves: arch_vmap_pud_supported() is pgtable_l4_enabled || "
    "pgtable_l5_enabled (asm/vmalloc.h); 1G leaves in the pgd come from PUD THP only.",
    "pgtable_cache_init() preallocates a PMD table under each of the 64 pgd entries of the "
    "64G vmalloc area at boot (preallocate_pgd_pages_range), so pgd_alloc's copy of the "
    "kernel half never goes stale.",
))

RISCV64_SV48 = sv64_config(MODE_SV48, 4, 0xFFFF_8F80_0000_0000, 0xFFFF_AF80_0000_0000, (
    "Linux folds p4d at run time (pgtable_l4_enabled = true, pgtable_l5_enabled = false): "
    "PGDIR_SHIFT = P4D_SHIFT = 39, PTRS_PER_P4D stays 512.",
    "The 64 pgd entries of the 32T vmalloc area get their PUD table at boot "
    "(preallocate_pgd_pages_range). L3 (512G) leaves exist in hardware, never in Linux.",
))

RISCV64_SV57 = sv64_config(MODE_SV57, 5, 0xFF20_0000_0000_0000, 0xFF60_0000_0000_0000, (
    "Nothing folded: pgd (L4) -> p4d (L3) -> pud -> pmd -> pte. mmap() stays below 2^47 "
    "(MMAP_VA_BITS_64 = 48) unless given a higher hint; TASK_SIZE is 2^56.",
    "The 64 pgd entries of the 16P vmalloc area get their P4D table at boot "
    "(preallocate_pgd_pages_range). L4 and L3 leaves exist in hardware, never in Linux.",
))

RISCV32_SV32 = ArchConfig(
    name="riscv32-sv32",
    family="riscv",
    description=(
        "RV32 with Sv32 (satp.MODE = 1): L1 -> L0, 1024 4-byte PTEs per 4K table, 4K pages "
        "and 4M megapages, 34-bit physical addresses (PPN[1] is 12 bits wide), no "
        "Svnapot/Svpbmt bits. One root, satp. User space below TASK_SIZE = FIXADDR_START."
    ),
    word_bits=32,
    va_bits=32,
    phys_bits=34,
    page_shift=12,
    endianness="little",
    hw_levels=(HwLevel("L1", 22, 1024, 4, leaf_ok=True), HwLevel("L0", 12, 1024, 4, True)),
    user_range=(0, 0x9D80_0000),
    kernel_range=(0xA000_0000, 0xC000_0000),
    roots=("satp",),
    walker=SvWalker(MODE_SV32),
    make_registers=RiscvRegisters(SATP_MODE_32, 22),
    addr_flush_reaches_walk_caches=False,
    notes=(
        "Linux folds pud and pmd (pgtable-32.h includes pgtable-nopmd.h): pgd = pmd = the "
        "L1 table; 4M megapages would be pmd leaves, but THP and huge vmap are 64BIT-only: "
        "only the boot-time linear map uses them.",
        "TASK_SIZE = FIXADDR_START = 0x9d800000 (below the fixmap, PCI I/O and vmemmap "
        "windows under VMALLOC_START = 0xa0000000), so pgd_alloc copies entries 630..1023 "
        "(USER_PTRS_PER_PGD = TASK_SIZE / PGDIR_SIZE) from swapper_pg_dir.",
        "Kernel mappings made later reach other pgds through vmalloc_fault() "
        "(arch/riscv/mm/fault.c), which the emulation, taking no faults, does eagerly "
        "(arch_sync_kernel_mappings): a documented departure.",
        _PROT_NONE_NOTE, _RSVD_NOTE, _SBI_NOTE, _AD_NOTE,
    ),
)

CONFIGS: dict[str, ArchConfig] = {
    c.name: c for c in (RISCV32_SV32, RISCV64_SV39, RISCV64_SV48, RISCV64_SV57)
}

__all__ = ["CONFIGS", "RISCV32_SV32", "RISCV64_SV39", "RISCV64_SV48", "RISCV64_SV57",
           "RiscvRegisters", "SvWalker"]
