"""x86 configurations: 4-level and 5-level x86-64, 32-bit (2-level) and PAE i386.

Geometry: Intel SDM Vol. 3A §4.3-§4.5; address ranges from Linux
(``arch/x86/include/asm/page_64_types.h``, ``page_32_types.h``, ``pgtable_64_types.h``).
The walkers (:mod:`arches.x86.walker`) are written from the SDM, not from Linux.
"""

from __future__ import annotations

from arches.config import ArchConfig, HwLevel
from arches.x86.bits import CR4_LA57, CR4_PAE, CR4_PGE, CR4_PSE, EFER_LMA, EFER_LME, EFER_NXE
from arches.x86.registers import X86Registers
from arches.x86.walker import Ia32eWalker, PaeWalker, Paging32Walker

_PML5 = HwLevel("PML5", 48, 512, 8, leaf_ok=False)
_PML4 = HwLevel("PML4", 39, 512, 8, leaf_ok=False)
_PDPT = HwLevel("PDPT", 30, 512, 8, leaf_ok=True)
_PD = HwLevel("PD", 21, 512, 8, leaf_ok=True)
_PT = HwLevel("PT", 12, 512, 8, leaf_ok=True)

_EFER_64 = EFER_LME | EFER_LMA | EFER_NXE
_KERNEL_HALF_NOTE = (
    "The kernel half starts at PAGE_OFFSET (pgd slot 273, no KASLR); slots 256..272 are the "
    "per-mm guard hole and LDT remap and are not cloned from swapper_pg_dir."
)

X86_64 = ArchConfig(
    name="x86_64",
    family="x86",
    description=(
        "x86-64 with 4-level paging (CR4.LA57=0): PML4 -> PDPT -> PD -> PT, 512 8-byte entries "
        "per table, 4K pages, 2M (PDE.PS) and 1G (PDPTE.PS) leaves, 48-bit canonical VAs, "
        "52-bit physical addresses, NX. One root, CR3, for user and kernel."
    ),
    word_bits=64,
    va_bits=48,
    phys_bits=52,
    page_shift=12,
    endianness="little",
    hw_levels=(_PML4, _PDPT, _PD, _PT),
    user_range=(0, 2**47 - 4096),
    kernel_range=(0xFFFF_8880_0000_0000, 2**64),
    roots=("cr3",),
    range_flush_clears_walk_caches=True,
    walker=Ia32eWalker(levels=4, phys_bits=52),
    make_registers=X86Registers(CR4_PAE | CR4_PGE, _EFER_64, 4096, 2**52),
    notes=(
        "Linux compiles 5 levels and folds p4d at run time when LA57 is off: the pgd is the "
        "PML4 and p4d_offset() returns the pgd pointer.",
        "User space ends at TASK_SIZE_MAX = 2^47 - 4096: the highest canonical user page is "
        "never mapped, so a SYSCALL there cannot return through SYSRET to a non-canonical RIP.",
        _KERNEL_HALF_NOTE,
        "PS is reserved in a PML4E: there are no 512G leaves. Bit 7 of a PTE is PAT, not PS; "
        "bit 12 of a 2M/1G leaf is PAT.",
        "VAs must be canonical (bits 63:47 equal): a non-canonical access is #GP, not #PF.",
    ),
)

X86_64_LA57 = ArchConfig(
    name="x86_64-la57",
    family="x86",
    description=(
        "x86-64 with 5-level paging (CR4.LA57=1): PML5 -> PML4 -> PDPT -> PD -> PT, 57-bit "
        "canonical VAs, otherwise as x86_64."
    ),
    word_bits=64,
    va_bits=57,
    phys_bits=52,
    page_shift=12,
    endianness="little",
    hw_levels=(_PML5, _PML4, _PDPT, _PD, _PT),
    user_range=(0, 2**56 - 4096),
    kernel_range=(0xFF11_0000_0000_0000, 2**64),
    roots=("cr3",),
    range_flush_clears_walk_caches=True,
    walker=Ia32eWalker(levels=5, phys_bits=52),
    make_registers=X86Registers(CR4_PAE | CR4_PGE | CR4_LA57, _EFER_64, 4096, 2**52),
    notes=(
        "pgdir_shift = 48 and ptrs_per_p4d = 512 at run time: the pgd is the PML5, the p4d the "
        "PML4.",
        "mmap() stays below DEFAULT_MAP_WINDOW = 2^47 - 4096 unless given a higher hint; the "
        "hardware and TASK_SIZE_MAX allow up to 2^56 - 4096.",
        _KERNEL_HALF_NOTE,
        "PS is reserved in PML5Es and PML4Es. 0x0000800000000000 is canonical here but not "
        "with 4-level paging.",
    ),
)

I386 = ArchConfig(
    name="i386",
    family="x86",
    description=(
        "i386 with 32-bit (non-PAE) paging: PD -> PT, 1024 4-byte entries per table, 4K pages "
        "and 4M pages (PDE.PS with CR4.PSE), 32-bit physical addresses, no NX. 3G/1G split."
    ),
    word_bits=32,
    va_bits=32,
    phys_bits=32,
    page_shift=12,
    endianness="little",
    hw_levels=(HwLevel("PD", 22, 1024, 4, leaf_ok=True), HwLevel("PT", 12, 1024, 4, True)),
    user_range=(0, 0xC000_0000),
    kernel_range=(0xC000_0000, 2**32),
    roots=("cr3",),
    range_flush_clears_walk_caches=True,
    walker=Paging32Walker(phys_bits=32),
    make_registers=X86Registers(CR4_PSE | CR4_PGE, 0, 4096, 2**32),
    notes=(
        "Linux folds pud and pmd (pgtable-nopmd.h): pgd = pmd = the hardware PD.",
        "The kernel half (PD slots 768..1023) is copied from swapper_pg_dir by pgd_ctor().",
        "No execute-disable: every mapped page is executable; 4-byte entries have no bit 63.",
        "With MAXPHYADDR 32 there is no PSE-36: bits 21:13 of a 4M PDE are reserved.",
    ),
    has_nx=False,
)

I386_PAE = ArchConfig(
    name="i386-pae",
    family="x86",
    description=(
        "i386 with PAE paging: a 4-entry PDPT (CR3[31:5]) -> PD -> PT with 8-byte entries, "
        "4K and 2M pages, NX (IA32_EFER.NXE). 3G/1G split."
    ),
    word_bits=32,
    va_bits=32,
    # Linux's PAE __PHYSICAL_MASK_SHIFT (arch/x86/include/asm/page_32_types.h) is 52, "beyond
    # the 44 bit limit imposed by the 32bit long pfns", so inverted PROT_NONE entries keep all
    # host bits set (L1TF, 2018); older kernels used 44.
    phys_bits=52,
    page_shift=12,
    endianness="little",
    hw_levels=(
        HwLevel("PDPT", 30, 4, 8, leaf_ok=False),
        HwLevel("PD", 21, 512, 8, leaf_ok=True),
        HwLevel("PT", 12, 512, 8, leaf_ok=True),
    ),
    user_range=(0, 0xC000_0000),
    kernel_range=(0xC000_0000, 2**32),
    roots=("cr3",),
    range_flush_clears_walk_caches=True,
    walker=PaeWalker(phys_bits=52),
    make_registers=X86Registers(CR4_PAE | CR4_PGE, EFER_NXE, 32, 2**32),
    notes=(
        "Linux folds pud (pgtable-nopud.h): the pgd is the 4-entry PDPT, allocated as a whole "
        "page though the CPU needs only 32 bytes.",
        "pgd_alloc() preallocates all four PMDs; the kernel one (slot 3) gets a copy of "
        "swapper_pg_dir's. PDPTEs hold only P (plus PWT/PCD): R/W and U/S are reserved there.",
        "The CPU loads the four PDPTEs when CR3 is written, so Linux flushes the TLB (reloads "
        "CR3) after changing one.",
        "CR3 is 32 bits wide here: the PDPT must be below 4 GiB.",
    ),
)

CONFIGS: dict[str, ArchConfig] = {c.name: c for c in (X86_64, X86_64_LA57, I386, I386_PAE)}

__all__ = ["CONFIGS", "I386", "I386_PAE", "X86_64", "X86_64_LA57"]
