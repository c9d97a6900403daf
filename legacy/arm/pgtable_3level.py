"""32-bit arm with LPAE (``CONFIG_ARM_LPAE``, ``arm-lpae``): the kernel's page-table API.

Follows ``arch/arm/include/asm/pgtable.h``, ``pgtable-3level.h``, ``pgtable-3level-hwdef.h``,
``pgtable-3level-types.h``, ``pgalloc.h``, ``page.h``, ``memory.h``, ``arch/arm/mm/pgd.c``
(``pgd_alloc``/``pgd_free``), ``arch/arm/mm/mmu.c`` (``build_mem_type_table``,
``protection_map``, ``set_ptes``) and ``arch/arm/mm/proc-v7-3level.S``
(``cpu_v7_set_pte_ext``), Linux v6.x as read in a 2024-2025 tree; bit names come from
:mod:`arches.arm.lpae_bits`.

The kernel emulated: ARMv7 SMP (Cortex-A15), ``CONFIG_VMSPLIT_3G`` (``PAGE_OFFSET``
0xC0000000, ``TASK_SIZE`` = ``MODULES_VADDR`` = 0xBF000000), no KASAN, no
``CONFIG_CPU_TTBR0_PAN`` (so TTBR1 serves the top GiB with T1SZ = 2), THP (``select
HAVE_ARCH_TRANSPARENT_HUGEPAGE if ARM_LPAE``), no huge vmap, no THP migration, no NUMA
balancing, no soft-dirty, no uffd-wp, no split PMD locks (arm does not select
``ARCH_ENABLE_SPLIT_PMD_PTLOCK``).

Surprises kept:

- entries are u64 (``pteval_t``) while ``unsigned long`` is 32 bits: ``pte_pfn`` masks with
  ``PHYS_MASK`` (40 bits) and ``pmd_pfn`` with ``PMD_MASK``, an ``int`` that sign-extends;
- ``L_PTE_PRESENT`` is 3 and ``pte_present`` is "either bit" (``pte_isset`` of a multi-bit
  value); ``pte_valid`` is bit 0 alone.  PROT_NONE is stored with the valid bit *cleared*
  by ``cpu_v7_set_pte_ext`` (and by ``set_pmd_at`` for a section), which also computes the
  hardware AP[2] from ``L_PTE_DIRTY``/``L_PTE_RDONLY``: the value read back is not the value
  written;
- ``pmd_present`` is ``L_PMD_SECT_VALID`` only, so a PROT_NONE section is *not* present,
  while ``pmd_trans_huge`` (``pmd_val && !pmd_table``) still holds; ``pmd_bad`` is "no
  table bit", true of every section;
- ``set_ptes`` adds nG only to valid user ptes below ``TASK_SIZE``; ``pte_same`` ignores nG
  for present ptes;
- the pgd is 32 bytes from kmalloc, and ``pgd_alloc`` allocates a pmd table for
  ``MODULES_VADDR`` (pgd slot 2) that user space shares: ``USER_PGTABLES_CEILING`` =
  ``TASK_SIZE``; ``FIRST_USER_ADDRESS`` = 2 pages, so ``free_pgtables`` never frees the
  table under address 0 and ``pgd_free`` does.

ptshim extensions (arm has no such functions): ``pmd_pgprot``, ``pgprot_large_2_4k``,
``pte_pgprot`` (used by the emulation's split code and tests), ``set_pte`` (a
``set_pte_ext(ptep, pte, 0)``), ``PAGE_KERNEL_RO``/``PAGE_KERNEL_ROX`` (``PAGE_KERNEL`` and
``PAGE_KERNEL_EXEC`` with ``L_PTE_RDONLY``, what ``set_memory_ro`` makes of them).
"""

from __future__ import annotations

from arches import ArchConfig
from arches.arm.lpae import PAGE_OFFSET, TASK_SIZE
from arches.arm.lpae_bits import (
    L_PGD_SWAPPER,
    L_PMD_SECT_DIRTY,
    L_PMD_SECT_NONE,
    L_PMD_SECT_RDONLY,
    L_PMD_SECT_VALID,
    L_PTE_DIRTY,
    L_PTE_MT_BUFFERABLE,
    L_PTE_MT_MASK,
    L_PTE_MT_UNCACHED,
    L_PTE_MT_WRITEALLOC,
    L_PTE_NONE,
    L_PTE_PRESENT,
    L_PTE_RDONLY,
    L_PTE_SHARED,
    L_PTE_SPECIAL,
    L_PTE_SWP_EXCLUSIVE,
    L_PTE_USER,
    L_PTE_VALID,
    L_PTE_XN,
    L_PTE_YOUNG,
    PHYS_MASK,
    PMD_SECT_AF,
    PMD_SECT_AP2,
    PMD_SECT_USER,
    PMD_SECT_XN,
    PMD_TABLE_BIT,
    PMD_TYPE_MASK,
    PMD_TYPE_SECT,
    PMD_TYPE_TABLE,
    PTE_AP2,
    PTE_EXT_AF,
    PTE_EXT_NG,
    PTE_EXT_PXN,
    PTE_TABLE_BIT,
    PUD_TABLE_BIT,
    PMD_SECT_nG,
)
from arches.errors import BadInput
from legacy.arm.pgtable import ArmPgtable
from legacy.arm.ptdump_lpae import ArmLpaePtdump
from legacy.arm.tlbflush_lpae import ArmLpaeTlbflush
from legacy.folding import Nopud
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.swapops import swp_entry_t
from legacy.types import (
    P4dPtr,
    PgdPtr,
    PmdPtr,
    PtePtr,
    PudPtr,
    p4d_t,
    pgd_t,
    pgprot_t,
    pmd_t,
    pte_t,
    pud_t,
)

U64 = (1 << 64) - 1
SZ_16M = 0x100_0000


def _s32_mask(shift: int) -> int:
    """``(~((1 << shift) - 1))`` as an ``int`` promoted to u64: sign-extended."""
    return ~((1 << shift) - 1) & U64


class ArmLpaeKernel(ArmPgtable, Nopud, ArmLpaeTlbflush, ArmLpaePtdump, GenericKernel):
    """``CONFIG_ARM_LPAE``: asm/pgtable.h includes pgtable-nopud.h and pgtable-3level.h."""

    # pgtable-3level.h's Linux pte bits, for asm/pgtable.h (legacy.arm.pgtable)
    L_PTE_VALID = L_PTE_VALID
    L_PTE_PRESENT = L_PTE_PRESENT
    L_PTE_YOUNG = L_PTE_YOUNG
    L_PTE_DIRTY = L_PTE_DIRTY
    L_PTE_RDONLY = L_PTE_RDONLY
    L_PTE_USER = L_PTE_USER
    L_PTE_XN = L_PTE_XN
    L_PTE_SWP_EXCLUSIVE = L_PTE_SWP_EXCLUSIVE

    HAVE_ARCH_TRANSPARENT_HUGEPAGE = True  # select ... if ARM_LPAE
    TRANSPARENT_HUGEPAGE = True
    HUGETLB_PAGE = True  # ARCH_SUPPORTS_HUGETLBFS if ARM_LPAE (values only)
    SWP_ENTRY_EMULATED = True
    SEPARATE_KERNEL_ROOT = True
    SOFTWARE_YOUNG_DIRTY = True
    """No hardware Access flag or dirty management: an old page has AF = 0 (Access flag
    fault), a clean writable one AP[2] = 1 (cpu_v7_set_pte_ext)."""
    """TTBR1 translates the top GiB through ``swapper_pg_dir``'s kernel pmd."""
    USE_SPLIT_PMD_PTLOCKS = False
    FIRST_USER_ADDRESS = 2 * 4096  # asm/pgtable.h: (PAGE_SIZE * 2)
    USER_PGTABLES_CEILING = TASK_SIZE
    PGD_ALLOC_PINNED_PMDS = (PAGE_OFFSET - SZ_16M,)  # MODULES_VADDR's (arch/arm/mm/pgd.c)
    ARCH_HAS_DEBUG_VM_PGTABLE = False  # arch/arm/Kconfig does not select it
    """asm/pgtable.h, CONFIG_ARM_LPAE: "to avoid freeing the modules pmd ... (pmd page
    shared between user and kernel)"."""
    TTBR1_OFFSET = 4096 * (1 + 3)

    def __init__(self, config: ArchConfig) -> None:
        self.vm_warnings: list[str] = []
        super().__init__(config)

    # -- geometry (pgtable-3level.h, memory.h) ---------------------------------------------

    def arch_geometry(self) -> None:
        """pgtable-3level.h: 4 x 8-byte pgd entries of 1G, 512-entry pmd and pte tables."""
        self.PAGE_SHIFT = 12
        self.PGDIR_SHIFT = 30
        self.PMD_SHIFT = 21
        self.PTRS_PER_PGD = 4
        self.PTRS_PER_PMD = 512
        self.PTRS_PER_PTE = 512
        self.SIZEOF_PGD = self.SIZEOF_PMD = self.SIZEOF_PTE = 8  # u64 pgdval_t, pteval_t

    def derive_sizes(self) -> None:
        """Masks, address-space layout (memory.h) and protections (mmu.c
        ``build_mem_type_table`` for an SMP ARMv7 with LPAE: write-allocate, shared)."""
        super().derive_sizes()
        self.PAGE_OFFSET = PAGE_OFFSET
        self.MODULES_VADDR = PAGE_OFFSET - SZ_16M
        self.TASK_SIZE_MAX = TASK_SIZE
        self.USER_PTRS_PER_PGD = PAGE_OFFSET // self.PGDIR_SIZE
        self.VMALLOC_START, self.VMALLOC_END = self.config.kernel_range
        self.PMD_MASK_U64 = _s32_mask(self.PMD_SHIFT)
        self.PAGE_MASK_U64 = _s32_mask(self.PAGE_SHIFT)
        p = pgprot_t
        user_pgprot = L_PTE_MT_WRITEALLOC | L_PTE_SHARED | PTE_EXT_PXN
        kern_pgprot = L_PTE_MT_WRITEALLOC | L_PTE_SHARED | PTE_EXT_AF
        self.pgprot_user = p(L_PTE_PRESENT | L_PTE_YOUNG | user_pgprot)
        self.pgprot_kernel = p(L_PTE_PRESENT | L_PTE_YOUNG | L_PTE_DIRTY | kern_pgprot)
        default = L_PTE_PRESENT | L_PTE_YOUNG  # _L_PTE_DEFAULT
        none = p(default | L_PTE_RDONLY | L_PTE_XN | L_PTE_NONE | user_pgprot)
        ro = p(default | L_PTE_USER | L_PTE_RDONLY | L_PTE_XN | user_pgprot)
        ro_x = p(default | L_PTE_USER | L_PTE_RDONLY | user_pgprot)
        shared = p(default | L_PTE_USER | L_PTE_XN | user_pgprot)
        shared_x = p(default | L_PTE_USER | user_pgprot)
        self.PAGE_NONE = p(self.pgprot_user | L_PTE_XN | L_PTE_RDONLY | L_PTE_NONE)
        self.PAGE_SHARED = p(self.pgprot_user | L_PTE_USER | L_PTE_XN)
        self.PAGE_SHARED_EXEC = p(self.pgprot_user | L_PTE_USER)
        self.PAGE_COPY = p(self.pgprot_user | L_PTE_USER | L_PTE_RDONLY | L_PTE_XN)
        self.PAGE_COPY_EXEC = p(self.pgprot_user | L_PTE_USER | L_PTE_RDONLY)
        self.PAGE_READONLY = self.PAGE_COPY
        self.PAGE_READONLY_EXEC = self.PAGE_COPY_EXEC
        self.PAGE_KERNEL = p(self.pgprot_kernel | L_PTE_XN)
        self.PAGE_KERNEL_EXEC = self.pgprot_kernel
        # ptshim extensions: arm defines no PAGE_KERNEL_RO (include/linux/pgtable.h would
        # fall back to PAGE_KERNEL) nor PAGE_KERNEL_ROX; these are what arm's set_memory_ro
        # makes of PAGE_KERNEL / PAGE_KERNEL_EXEC (L_PTE_RDONLY, as mmu.c's MT_MEMORY_RO).
        self.PAGE_KERNEL_RO = p(self.pgprot_kernel | L_PTE_XN | L_PTE_RDONLY)
        self.PAGE_KERNEL_ROX = p(self.pgprot_kernel | L_PTE_RDONLY)
        # mmu.c protection_map[] (__P/__S) | user_pgprot.
        self.protection_map = (
            none, ro, ro, ro, ro_x, ro_x, ro_x, ro_x,
            none, ro, shared, shared, ro_x, ro_x, shared_x, shared_x,
        )

    # -- pfn and conversions ------------------------------------------------------------

    def _check_pfn(self, pfn: int, shift: int, what: str) -> None:
        """Not in the kernel: a frame above ``PHYS_MASK`` would spill into the software
        bits, so the emulation refuses it."""
        if pfn < 0 or pfn << self.PAGE_SHIFT & ~PHYS_MASK or pfn & ((1 << shift) - 1):
            raise BadInput(f"{what}: pfn {pfn:#x} is not a 40-bit physical address "
                           f"aligned to 2^{shift + self.PAGE_SHIFT}")

    def pte_pfn(self, pte: pte_t) -> int:
        """``(pte_val(pte) & PHYS_MASK) >> PAGE_SHIFT``."""
        return (pte & PHYS_MASK) >> self.PAGE_SHIFT

    def pfn_pte(self, page_nr: int, pgprot: pgprot_t) -> pte_t:
        """``__pte(__pfn_to_phys(pfn) | pgprot_val(prot))``."""
        self._check_pfn(page_nr, 0, "pfn_pte")
        return pte_t((page_nr << self.PAGE_SHIFT) | pgprot)

    def pte_pgprot(self, pte: pte_t) -> pgprot_t:
        """ptshim extension: the bits outside the output address."""
        return pgprot_t(pte & ~(PHYS_MASK & self.PAGE_MASK_U64) & U64)

    def pte_advance_pfn(self, pte: pte_t, nr: int) -> pte_t:
        """``pte_next_pfn`` repeated: ``PFN_PTE_SHIFT`` = ``PAGE_SHIFT``."""
        return pte_t(pte + (nr << self.PAGE_SHIFT))

    def pmd_pfn(self, pmd: pmd_t) -> int:
        """``((pmd_val(pmd) & PMD_MASK) & PHYS_MASK) >> PAGE_SHIFT``."""
        return (pmd & self.PMD_MASK_U64 & PHYS_MASK) >> self.PAGE_SHIFT

    def pfn_pmd(self, page_nr: int, pgprot: pgprot_t) -> pmd_t:
        self._check_pfn(page_nr, 0, "pfn_pmd")
        return pmd_t((page_nr << self.PAGE_SHIFT) | pgprot)

    def mk_pmd(self, pfn: int, pgprot: pgprot_t) -> pmd_t:
        return self.pfn_pmd(pfn, pgprot)

    def pmd_pgprot(self, pmd: pmd_t) -> pgprot_t:
        """ptshim extension (arm has none): the bits outside the section address."""
        return pgprot_t(pmd & ~(PHYS_MASK & self.PMD_MASK_U64) & U64)

    def pgprot_large_2_4k(self, pgprot: pgprot_t) -> pgprot_t:
        """ptshim extension (x86's name): a section's protection made a page's again --
        the table bit ``pmd_mkhuge`` cleared."""
        return pgprot_t(pgprot | PTE_TABLE_BIT)

    def pgprot_noncached(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~L_PTE_MT_MASK & U64) | L_PTE_MT_UNCACHED)

    def pgprot_writecombine(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~L_PTE_MT_MASK & U64) | L_PTE_MT_BUFFERABLE)

    def pgprot_nx(self, prot: pgprot_t) -> pgprot_t:
        """include/linux/pgtable.h default is the identity; arm has no ``pgprot_nx``."""
        return prot

    # -- pte predicates (asm/pgtable.h, pgtable-3level.h) --------------------------------

    def pte_present(self, pte: pte_t) -> bool:
        """``pte_isset(pte, L_PTE_PRESENT)``: L_PTE_PRESENT is 3, so *either* bit."""
        return bool(pte & L_PTE_PRESENT)

    def pte_accessible(self, mm: mm_struct, pte: pte_t) -> bool:
        """``mm_tlb_flush_pending(mm) ? pte_present(pte) : pte_valid(pte)``."""
        if getattr(mm, "tlb_flush_pending", 0):
            return self.pte_present(pte)
        return self.pte_valid(pte)

    def pte_special(self, pte: pte_t) -> bool:
        return bool(pte & L_PTE_SPECIAL)

    def pte_huge(self, pte: pte_t) -> bool:
        return bool(pte) and not pte & PTE_TABLE_BIT

    def pte_same(self, a: pte_t, b: pte_t) -> bool:
        """pgtable-3level.h: nG masked off for present ptes (the hugetlb_cow leak fix)."""
        va = a & ~PTE_EXT_NG & U64 if self.pte_present(a) else a
        vb = b & ~PTE_EXT_NG & U64 if self.pte_present(b) else b
        return va == vb

    # -- pte modifiers ----------------------------------------------------------------------

    def pte_mkwrite_novma(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_RDONLY & U64)

    def pte_mkwrite(self, pte: pte_t, vma: vm_area_struct | None = None) -> pte_t:
        """include/linux/pgtable.h: ``pte_mkwrite_novma`` (no shadow stacks on arm)."""
        return self.pte_mkwrite_novma(pte)

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_DIRTY & U64)

    def pte_mkold(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_YOUNG & U64)

    def pte_mkexec(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_XN & U64)

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        return pte_t(pte | L_PTE_SPECIAL)

    def pte_mkhuge(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~PTE_TABLE_BIT & U64)

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        """Take XN, RDONLY, USER, NONE and VALID from ``newprot``."""
        mask = L_PTE_XN | L_PTE_RDONLY | L_PTE_USER | L_PTE_NONE | L_PTE_VALID
        return pte_t((pte & ~mask & U64) | (newprot & mask))

    # -- setters: cpu_v7_set_pte_ext (proc-v7-3level.S), set_ptes (mmu.c) ------------------

    def cpu_set_pte_ext(self, ptep: PtePtr, pte: int) -> None:
        """``cpu_v7_set_pte_ext``: a valid pte with ``L_PTE_NONE`` loses ``L_PTE_VALID``;
        another valid one gets AP[2] iff ``!L_PTE_DIRTY || L_PTE_RDONLY``; then the store."""
        if pte & L_PTE_VALID:
            if pte & L_PTE_NONE:
                pte &= ~L_PTE_VALID & U64
            elif not pte & L_PTE_DIRTY or pte & L_PTE_RDONLY:
                pte |= PTE_AP2
            else:
                pte &= ~PTE_AP2 & U64
        self._write(ptep, pte)

    def set_pte_ext(self, ptep: PtePtr, pte: pte_t, ext: int) -> None:
        """pgtable-3level.h: ``cpu_set_pte_ext(ptep, __pte(pte_val(pte) | (ext)))``."""
        self.cpu_set_pte_ext(ptep, pte | ext)

    def set_pte(self, ptep: PtePtr, pte: pte_t) -> None:
        """ptshim extension: arm defines no ``set_pte``; a kernel store is
        ``set_pte_ext(ptep, pte, 0)``."""
        self.set_pte_ext(ptep, pte, 0)

    def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t, nr: int) -> None:
        """arch/arm/mm/mmu.c: nG for a valid user pte below ``TASK_SIZE``, then
        ``set_pte_ext`` on ``nr`` entries, the pfn advanced each time."""
        ext = 0
        if addr < TASK_SIZE and self.pte_valid_user(pte):
            ext |= PTE_EXT_NG  # (__sync_icache_dcache: no caches emulated)
        while True:
            self.set_pte_ext(ptep, pte, ext)
            nr -= 1
            if nr == 0:
                break
            ptep = ptep + 1
            pte = self.pte_advance_pfn(pte, 1)

    def pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        """asm/pgtable.h: ``set_pte_ext(ptep, __pte(0), 0)``."""
        self.set_pte_ext(ptep, pte_t(0), 0)

    # -- pmd (pgtable-3level.h) ----------------------------------------------------------

    def pmd_present(self, pmd: pmd_t) -> bool:
        """``L_PMD_SECT_VALID`` (bit 0) only: a PROT_NONE section is not present."""
        return bool(pmd & L_PMD_SECT_VALID)

    def pmd_bad(self, pmd: pmd_t) -> bool:
        """``!(pmd_val(pmd) & PMD_TABLE_BIT)``: every section is "bad"."""
        return not pmd & PMD_TABLE_BIT

    def pmd_table(self, pmd: pmd_t) -> bool:
        return (pmd & PMD_TYPE_MASK) == PMD_TYPE_TABLE

    def pmd_sect(self, pmd: pmd_t) -> bool:
        return (pmd & PMD_TYPE_MASK) == PMD_TYPE_SECT

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        return self.pmd_sect(pmd)

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        """``pmd_val(pmd) && !pmd_table(pmd)``."""
        return bool(pmd) and not self.pmd_table(pmd)

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        """asm/pgtable.h: ``__va(pmd_val(pmd) & PHYS_MASK & (s32)PAGE_MASK)``."""
        return PtePtr(pmd & PHYS_MASK & self.PAGE_MASK_U64, self.SIZEOF_PTE)

    def pmd_write(self, pmd: pmd_t) -> bool:
        return not pmd & L_PMD_SECT_RDONLY

    def pmd_dirty(self, pmd: pmd_t) -> bool:
        return bool(pmd & L_PMD_SECT_DIRTY)

    def pmd_young(self, pmd: pmd_t) -> bool:
        return bool(pmd & PMD_SECT_AF)

    def pmd_hugewillfault(self, pmd: pmd_t) -> bool:
        return not self.pmd_young(pmd) or not self.pmd_write(pmd)

    def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | L_PMD_SECT_RDONLY)

    def pmd_mkold(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~PMD_SECT_AF & U64)

    def pmd_mkwrite_novma(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~L_PMD_SECT_RDONLY & U64)

    def pmd_mkwrite(self, pmd: pmd_t, vma: vm_area_struct | None = None) -> pmd_t:
        return self.pmd_mkwrite_novma(pmd)

    def pmd_mkdirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | L_PMD_SECT_DIRTY)

    def pmd_mkclean(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~L_PMD_SECT_DIRTY & U64)

    def pmd_mkyoung(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | PMD_SECT_AF)

    def pmd_mkhuge(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~PMD_TABLE_BIT & U64)

    def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t:
        """"represent a notpresent pmd by faulting entry": clear ``L_PMD_SECT_VALID``."""
        return pmd_t(pmd & ~L_PMD_SECT_VALID & U64)

    def pmd_modify(self, pmd: pmd_t, newprot: pgprot_t) -> pmd_t:
        mask = (PMD_SECT_USER | PMD_SECT_XN | L_PMD_SECT_RDONLY | L_PMD_SECT_VALID
                | L_PMD_SECT_NONE)
        return pmd_t((pmd & ~mask & U64) | (newprot & mask))

    def set_pmd_at(self, mm: mm_struct, addr: int, pmdp: PmdPtr, pmd: pmd_t) -> None:
        """``BUG_ON(addr >= TASK_SIZE)``; PROT_NONE clears the valid bit; AP[2] unless
        writable and dirty; nG always."""
        if addr >= TASK_SIZE:
            raise AssertionError(f"set_pmd_at: BUG_ON(addr >= TASK_SIZE) at {addr:#x}")
        if pmd & L_PMD_SECT_NONE:
            pmd = pmd_t(pmd & ~L_PMD_SECT_VALID & U64)
        if self.pmd_write(pmd) and self.pmd_dirty(pmd):
            pmd = pmd_t(pmd & ~PMD_SECT_AP2 & U64)
        else:
            pmd = pmd_t(pmd | PMD_SECT_AP2)
        self._write(pmdp, pmd | PMD_SECT_nG)

    # -- pud = the pgd entry (pgtable-nopud.h + pgtable-3level.h) -------------------------

    def pud_none(self, pud: pud_t) -> bool:
        return pud == 0

    def pud_bad(self, pud: pud_t) -> bool:
        return not pud & PUD_TABLE_BIT

    def pud_present(self, pud: pud_t) -> bool:
        return bool(pud)

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        """``__va(pud_val(pud) & PHYS_MASK & (s32)PAGE_MASK)``: ``L_PGD_SWAPPER`` (bit 55)
        falls outside."""
        return PmdPtr(pud & PHYS_MASK & self.PAGE_MASK_U64, self.SIZEOF_PMD)

    def pud_write(self, pud: pud_t) -> bool:
        return self.pmd_write(pmd_t(pud))

    def pud_leaf(self, pud: pud_t) -> bool:
        """include/linux/pgtable.h default: arm makes no pud leaves."""
        return False

    def pud_trans_huge(self, pud: pud_t) -> bool:
        return False

    def pgd_page_vaddr(self, pgd: pgd_t) -> P4dPtr:
        """pgtable-nop4d.h: ``p4d_pgtable((p4d_t){ pgd })``."""
        return P4dPtr(self.p4d_pgtable(p4d_t(pgd)).pa, self.SIZEOF_P4D)

    def p4d_pgtable(self, p4d: p4d_t) -> PudPtr:
        """pgtable-nopud.h: ``(pud_t *)(pud_pgtable((pud_t){ p4d }))``."""
        return PudPtr(self.pud_pgtable(pud_t(p4d)).pa, self.SIZEOF_PUD)

    # -- populate (asm/pgalloc.h) ----------------------------------------------------------

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        """``set_pud(pud, __pud(__pa(pmd) | PMD_TYPE_TABLE))``."""
        self.set_pud(pud, pud_t(pmd.pa | PMD_TYPE_TABLE))

    def _pmd_populate(self, pmdp: PmdPtr, pte: int, prot: int) -> None:
        """``__pmd_populate``: one entry with LPAE (``PTE_HWTABLE_OFF`` is 0)."""
        self._write(pmdp, pte | prot)

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        """``_PAGE_KERNEL_TABLE`` = ``PMD_TYPE_TABLE`` (PMD_BIT4, PMD_DOMAIN are 0)."""
        self._pmd_populate(pmd, pte.pa, PMD_TYPE_TABLE)

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        """``_PAGE_USER_TABLE`` with LPAE (``user_pmd_table`` is the short format's)."""
        self._pmd_populate(pmd, pte.pa, PMD_TYPE_TABLE)

    # -- swapper_pg_dir, pgd_alloc / pgd_free (head.S, arch/arm/mm/pgd.c) ----------------

    def paging_init(self) -> PgdPtr:
        """``swapper_pg_dir``: the pgd page and its four pmd tables right behind it
        (head.S ``__create_page_tables``, ``PG_DIR_SIZE`` 0x5000), every pgd entry
        ``pmd | 3 | L_PGD_SWAPPER``.  TTBR1 points at the fourth pmd (``TTBR1_OFFSET``)."""
        swapper = super().paging_init()
        for i in range(self.PTRS_PER_PGD):
            pmd = self.pagetable_alloc("pmd", self.init_mm)
            if pmd != swapper.pa + 4096 * (i + 1):
                raise AssertionError("swapper_pg_dir's pmds must follow it in memory")
            self._write(swapper + i, pmd | PMD_TYPE_TABLE | L_PGD_SWAPPER)
        self.pgd_cache = self.kmem_cache_create("kmalloc-64", 64, 64, "pgd")
        return swapper

    def _pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """``kmalloc_array(PTRS_PER_PGD, sizeof(pgd_t), GFP_KERNEL | __GFP_ZERO)``: 32
        bytes from kmalloc-64 (ARCH_KMALLOC_MINALIGN = ARCH_DMA_MINALIGN = 64 on v7)."""
        pa = self.kmem_cache_alloc(self.pgd_cache, mm)
        return None if pa is None else PgdPtr(pa, self.SIZEOF_PGD)

    def _pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        self.kmem_cache_free(self.pgd_cache, pgd.pa)

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """Copy the kernel pgd entries, then allocate the pmd for ``MODULES_VADDR`` ("for
        modules and pkmap mappings"); vectors are always high with LPAE."""
        new_pgd = self._pgd_alloc(mm)
        if new_pgd is None:
            return None
        init_pgd = self.pgd_offset_k(0)
        n = self.USER_PTRS_PER_PGD
        self.mem.copy((new_pgd + n).pa, (init_pgd + n).pa,
                      (self.PTRS_PER_PGD - n) * self.SIZEOF_PGD)
        new_p4d = self.p4d_alloc(mm, new_pgd + self.pgd_index(self.MODULES_VADDR),
                                 self.MODULES_VADDR)
        if new_p4d is None:
            self._pgd_free(mm, new_pgd)
            return None
        new_pud = self.pud_alloc(mm, new_p4d, self.MODULES_VADDR)
        if new_pud is None:
            self.p4d_free(mm, new_p4d)
            self._pgd_free(mm, new_pgd)
            return None
        if self.pmd_alloc(mm, new_pud, 0) is None:
            self.pud_free(mm, new_pud)
            self.p4d_free(mm, new_p4d)
            self._pgd_free(mm, new_pgd)
            return None
        return new_pgd

    def pgd_free_lpae(self, mm: mm_struct, pgd_base: PgdPtr) -> None:
        """``pgd_free``'s ``CONFIG_ARM_LPAE`` part: "Free modules/pkmap or identity pmd
        tables." -- the pmd of every pgd slot not tagged ``L_PGD_SWAPPER``, without looking
        below it."""
        for i in range(self.PTRS_PER_PGD):
            pgd = pgd_base + i
            if self.pgd_none_or_clear_bad(pgd):
                continue
            if self.pgdp_get(pgd) & L_PGD_SWAPPER:
                continue
            p4d = self.p4d_offset(pgd, 0)
            if self.p4d_none_or_clear_bad(p4d):
                continue
            pud = self.pud_offset(p4d, 0)
            if self.pud_none_or_clear_bad(pud):
                continue
            pmd = self.pmd_offset(pud, 0)
            self.pud_clear(pud)
            self.pmd_free(mm, pmd)
            self.mm_dec_nr_pmds(mm)
            self.p4d_clear(p4d)
            self.pud_free(mm, pud)
            self.mm_dec_nr_puds(mm)
            self.pgd_clear(pgd)
            self.p4d_free(mm, p4d)

    def mm_root(self, mm: mm_struct) -> int:
        """``cpu_v7_switch_mm``: TTBR0 = ``__pa(mm->pgd)`` (the ASID in [55:48] is 0
        here); for ``init_mm`` the register builder adds ``TTBR1_OFFSET``."""
        return mm.pgd.pa

    # -- read-modify-write helpers: the generic ones (no __HAVE_ARCH_PTEP_* on arm) --------

    def ptep_test_and_clear_young(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> int:
        pte = self.ptep_get(ptep)
        if not self.pte_young(pte):
            return 0
        self.set_pte_at(vma.vm_mm, addr, ptep, self.pte_mkold(pte))
        return 1

    def ptep_clear_flush_young(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> int:
        """mm/pgtable-generic.c: flush the page when it was young."""
        young = self.ptep_test_and_clear_young(vma, addr, ptep)
        if young:
            self.flush_tlb_page(vma, addr)
        return young

    def ptep_set_access_flags(self, vma: vm_area_struct, addr: int, ptep: PtePtr,
                              entry: pte_t, dirty: int) -> int:
        """mm/pgtable-generic.c: store ``entry`` if ``!pte_same``, then
        ``flush_tlb_fix_spurious_fault``."""
        changed = not self.pte_same(self.ptep_get(ptep), entry)
        if changed:
            self.set_pte_at(vma.vm_mm, addr, ptep, entry)
            self.flush_tlb_fix_spurious_fault(vma, addr, ptep)
        return int(changed)

    def pmdp_set_access_flags(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr,
                              entry: pmd_t, dirty: int) -> int:
        """mm/pgtable-generic.c (THP)."""
        changed = self.pmdp_get(pmdp) != entry
        if addr & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_set_access_flags: VM_BUG_ON(address & ~HPAGE_PMD_MASK)")
        if changed:
            self.set_pmd_at(vma.vm_mm, addr, pmdp, entry)
            self.flush_pmd_tlb_range(vma, addr, (addr + self.PMD_SIZE) & self.ULONG_MASK)
        return int(changed)

    def pmdp_test_and_clear_young(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr) -> int:
        pmd = self.pmdp_get(pmdp)
        if not self.pmd_young(pmd):
            return 0
        self.set_pmd_at(vma.vm_mm, addr, pmdp, self.pmd_mkold(pmd))
        return 1

    def pmdp_clear_flush_young(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr) -> int:
        young = self.pmdp_test_and_clear_young(vma, addr, pmdp)
        if young:
            self.flush_pmd_tlb_range(vma, addr, (addr + self.PMD_SIZE) & self.ULONG_MASK)
        return young

    def pmdp_collapse_flush(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        """mm/pgtable-generic.c: get-and-clear, then ``flush_tlb_range`` of the huge page
        (TLBIMVA also drops the walk-cache entries of each address)."""
        if addr & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_collapse_flush: VM_BUG_ON(address & ~HPAGE_PMD_MASK)")
        pmd = self.pmdp_huge_get_and_clear(vma.vm_mm, addr, pmdp)
        self.flush_tlb_range(vma, addr, (addr + self.PMD_SIZE) & self.ULONG_MASK)
        return pmd

    # -- swap entries (asm/pgtable.h): offset [31:8], E bit 7, type [6:2], bits 1:0 zero --

    def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        """``(swp_entry_t) { pte_val(pte) }``: truncated to ``unsigned long``."""
        return swp_entry_t(pte & self.ULONG_MASK)

    def _pmd_to_swp_entry(self, pmd: pmd_t) -> swp_entry_t:
        raise BadInput("arm has no pmd swap entries (no ARCH_ENABLE_THP_MIGRATION)")

    def _swp_entry_to_pmd(self, x: swp_entry_t) -> pmd_t:
        raise BadInput("arm has no pmd swap entries (no ARCH_ENABLE_THP_MIGRATION)")

    def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_SWP_EXCLUSIVE & U64)


__all__ = ["ArmLpaeKernel", "L_PGD_SWAPPER", "PTE_EXT_NG"]
