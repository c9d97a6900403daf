"""RISC-V page-table helpers.

Follows ``arch/riscv/include/asm/pgtable.h``, ``pgtable-bits.h``, ``pgtable-64.h``,
``pgtable-32.h``, ``pgalloc.h``, ``vmalloc.h``, ``arch/riscv/mm/pgtable.c`` (``p4d_offset``,
``pud_offset``, ``ptep_set_access_flags``, huge vmap), ``arch/riscv/mm/init.c``
(``protection_map``, ``pgtable_cache_init``) and ``arch/riscv/mm/fault.c``
(``vmalloc_fault``), at Linux v6.18.  Bit names come from :mod:`arches.riscv.bits`.

The kernel emulated: RV64 is built with ``CONFIG_PGTABLE_LEVELS = 5`` and folds the p4d
and pud *at run time* (``pgtable_l5_enabled``, ``pgtable_l4_enabled``: the satp mode
``set_satp_mode`` settled on), with the mechanism x86-64 uses for its p4d
(:mod:`legacy.x86.pgtable_64`): the folded level's predicates are constants, its
``X_offset`` returns the parent pointer and ``mm_X_folded`` says so -- but, unlike x86-64's
``ptrs_per_p4d``, ``PTRS_PER_P4D`` and ``PTRS_PER_PUD`` stay ``PAGE_SIZE / sizeof`` = 512
(only the shifts move: ``P4D_SHIFT`` = ``PGDIR_SHIFT`` when folded).  RV32 (Sv32) includes
``pgtable-nopmd.h``.  The hart has Svpbmt and Svnapot (``_PAGE_MTMASK`` is the Svpbmt field,
``has_svnapot()`` is true), Svadu (``arch_has_hw_pte_young()``), no Svvptc, no Zicfiss.
``CONFIG_DEBUG_VM``.  No soft-dirty and no uffd-wp: riscv got them (on the Svrsw60t59b bits
60:59) after the pinned release.

One root: ``satp`` = ``mm->pgd``.  ``pgd_alloc`` copies the kernel pgd entries from
``swapper_pg_dir`` (``sync_kernel_mappings``).  RV64 preallocates, at boot, the second-level
table of every pgd entry of the vmalloc area (``pgtable_cache_init``), so nothing needs
syncing later (``ARCH_PAGE_TABLE_SYNC_MASK`` = 0).  RV32 has no preallocation: a process
reaches a later kernel mapping through ``vmalloc_fault``, which copies the missing pgd entry
from ``init_mm``; the emulation takes no faults and does that copy eagerly, for every mm,
from ``arch_sync_kernel_mappings`` (a documented departure, RV32 only).
"""

from __future__ import annotations

from arches import ArchConfig
from arches.errors import BadInput
from arches.riscv.bits import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_EXEC,
    _PAGE_GLOBAL,
    _PAGE_IO_SVPBMT,
    _PAGE_LEAF,
    _PAGE_MTMASK_SVPBMT,
    _PAGE_NAPOT,
    _PAGE_NOCACHE_SVPBMT,
    _PAGE_PFN_MASK_32,
    _PAGE_PFN_MASK_64,
    _PAGE_PFN_SHIFT,
    _PAGE_PRESENT,
    _PAGE_PROT_NONE,
    _PAGE_READ,
    _PAGE_SPECIAL,
    _PAGE_SWP_EXCLUSIVE,
    _PAGE_TABLE,
    _PAGE_USER,
    _PAGE_WRITE,
)
from legacy.folding import Nopmd
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, spin_lock, spin_unlock, vm_area_struct
from legacy.pgtable import PGTBL_PMD_MODIFIED
from legacy.riscv.ptdump import RiscvPtdump
from legacy.riscv.tlbflush import RiscvTlbflush
from legacy.swapops import ShiftedSwapEntry, swp_entry_t
from legacy.types import (
    EntryPtr,
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

# asm/pgtable.h swap entry layout ("Format of swap PTE"): __SWP_TYPE_SHIFT,
# __SWP_TYPE_MASK, __SWP_OFFSET_SHIFT (spelled without the leading underscores: Python
# mangles __names inside a class)
SWP_TYPE_SHIFT = 7
SWP_TYPE_BITS = 5
SWP_TYPE_MASK = (1 << SWP_TYPE_BITS) - 1
SWP_OFFSET_SHIFT = SWP_TYPE_BITS + SWP_TYPE_SHIFT


class RiscvKernel(ShiftedSwapEntry, RiscvTlbflush, RiscvPtdump, GenericKernel):
    """arch/riscv/include/asm/pgtable.h for one satp mode; subclasses set ``RV64``,
    ``L4`` (``pgtable_l4_enabled``) and ``L5`` (``pgtable_l5_enabled``)."""

    ARCH_SWP_TYPE_SHIFT = SWP_TYPE_SHIFT  # the swap layout (legacy.swapops.ShiftedSwapEntry)
    ARCH_SWP_TYPE_MASK = SWP_TYPE_MASK
    ARCH_SWP_OFFSET_SHIFT = SWP_OFFSET_SHIFT

    RV64 = True
    L4 = False
    L5 = False
    HAS_SVNAPOT = True
    """``has_svnapot()``: CONFIG_RISCV_ISA_SVNAPOT and the hart has Svnapot (RV64 only)."""
    SWP_ENTRY_EMULATED = True
    HUGETLB_PAGE = True  # select ARCH_SUPPORTS_HUGETLBFS if MMU (values only)
    ARCH_PAGE_TABLE_SYNC_MASK = 0
    """Not defined by riscv (include/linux/pgtable.h default): RV64 preallocates the vmalloc
    area's second-level tables; RV32 relies on ``vmalloc_fault``."""

    def __init__(self, config: ArchConfig) -> None:
        self.vm_warnings: list[str] = []
        super().__init__(config)
        self.pgtable_cache_init()

    # -- run-time folding switches (pgtable-64.h) --------------------------------------------

    def pgtable_l4_enabled(self) -> bool:
        """``pgtable_l4_enabled``: Sv48 or Sv57."""
        return self.L4

    def pgtable_l5_enabled(self) -> bool:
        """``pgtable_l5_enabled``: Sv57."""
        return self.L5

    def mm_p4d_folded(self, mm: mm_struct) -> bool:
        """pgtable-64.h: ``!pgtable_l5_enabled``."""
        if not self.RV64:
            return super().mm_p4d_folded(mm)
        return not self.L5

    def mm_pud_folded(self, mm: mm_struct) -> bool:
        """pgtable-64.h: ``!pgtable_l4_enabled``."""
        if not self.RV64:
            return super().mm_pud_folded(mm)
        return not self.L4

    # -- geometry (pgtable-64.h, pgtable-32.h, pgtable.h) -----------------------------------

    def arch_geometry(self) -> None:
        """RV64: ``PGDIR_SHIFT`` and ``P4D_SHIFT`` depend on the run-time level count;
        ``PTRS_PER_*`` are ``PAGE_SIZE / sizeof(entry)`` whatever is folded.  RV32:
        ``PGDIR_SHIFT`` 22, 1024 4-byte entries (the pmd is folded by pgtable-nopmd.h)."""
        self.PAGE_SHIFT = 12
        if self.RV64:
            self.PGDIR_SHIFT = 48 if self.L5 else (39 if self.L4 else 30)
            self.P4D_SHIFT = 39 if self.L4 else 30
            self.PUD_SHIFT = 30
            self.PMD_SHIFT = 21
            self.PTRS_PER_PGD = self.PTRS_PER_P4D = self.PTRS_PER_PUD = 512
            self.PTRS_PER_PMD = self.PTRS_PER_PTE = 512
            self.SIZEOF_PGD = self.SIZEOF_P4D = self.SIZEOF_PUD = 8
            self.SIZEOF_PMD = self.SIZEOF_PTE = 8
        else:
            self.PGDIR_SHIFT = 22
            self.PTRS_PER_PGD = self.PTRS_PER_PTE = 1024
            self.SIZEOF_PGD = self.SIZEOF_PTE = 4

    def derive_sizes(self) -> None:
        """Masks and protections (asm/pgtable.h, pgtable-bits.h, pgtable-64.h)."""
        super().derive_sizes()
        m = self.ULONG_MASK
        self._PAGE_PFN_MASK = _PAGE_PFN_MASK_64 if self.RV64 else _PAGE_PFN_MASK_32
        # ALT_SVPBMT: the Svpbmt encodings on a hart that has Svpbmt; 0 on RV32.
        self._PAGE_MTMASK = _PAGE_MTMASK_SVPBMT if self.RV64 else 0
        self._PAGE_NOCACHE = _PAGE_NOCACHE_SVPBMT if self.RV64 else 0
        self._PAGE_IO = _PAGE_IO_SVPBMT if self.RV64 else 0
        self._PAGE_CHG_MASK = ~(_PAGE_PRESENT | _PAGE_READ | _PAGE_WRITE | _PAGE_EXEC
                                | _PAGE_USER | _PAGE_GLOBAL | self._PAGE_MTMASK) & m
        self.USER_PTRS_PER_PGD = self.TASK_SIZE_of() // self.PGDIR_SIZE
        self.VMALLOC_START, self.VMALLOC_END = self.config.kernel_range
        self.PAGE_OFFSET = self.VMALLOC_END
        p = pgprot_t
        _PAGE_BASE = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_USER
        self.PAGE_NONE = p(_PAGE_PROT_NONE | _PAGE_READ)
        self.PAGE_READ = p(_PAGE_BASE | _PAGE_READ)
        self.PAGE_WRITE = p(_PAGE_BASE | _PAGE_READ | _PAGE_WRITE)
        self.PAGE_EXEC = p(_PAGE_BASE | _PAGE_EXEC)
        self.PAGE_READ_EXEC = p(_PAGE_BASE | _PAGE_READ | _PAGE_EXEC)
        self.PAGE_WRITE_EXEC = p(_PAGE_BASE | _PAGE_READ | _PAGE_EXEC | _PAGE_WRITE)
        self.PAGE_COPY = self.PAGE_READ
        self.PAGE_COPY_EXEC = self.PAGE_READ_EXEC
        self.PAGE_SHARED = self.PAGE_WRITE
        self.PAGE_SHARED_EXEC = self.PAGE_WRITE_EXEC
        _PAGE_KERNEL = (_PAGE_READ | _PAGE_WRITE | _PAGE_PRESENT | _PAGE_ACCESSED
                        | _PAGE_DIRTY | _PAGE_GLOBAL)
        self.PAGE_KERNEL = p(_PAGE_KERNEL)
        self.PAGE_KERNEL_READ = p(_PAGE_KERNEL & ~_PAGE_WRITE)
        self.PAGE_KERNEL_EXEC = p(_PAGE_KERNEL | _PAGE_EXEC)
        self.PAGE_KERNEL_READ_EXEC = p((_PAGE_KERNEL & ~_PAGE_WRITE) | _PAGE_EXEC)
        self.PAGE_KERNEL_RO = self.PAGE_KERNEL_READ
        self.PAGE_KERNEL_ROX = self.PAGE_KERNEL_READ_EXEC
        self.PAGE_TABLE = p(_PAGE_TABLE)
        self.PAGE_KERNEL_IO = p((_PAGE_KERNEL & ~self._PAGE_MTMASK) | self._PAGE_IO)
        # arch/riscv/mm/init.c protection_map (DECLARE_VM_GET_PAGE_PROT)
        self.protection_map = (
            self.PAGE_NONE, self.PAGE_READ, self.PAGE_COPY, self.PAGE_COPY,
            self.PAGE_EXEC, self.PAGE_READ_EXEC, self.PAGE_COPY_EXEC, self.PAGE_COPY_EXEC,
            self.PAGE_NONE, self.PAGE_READ, self.PAGE_SHARED, self.PAGE_SHARED,
            self.PAGE_EXEC, self.PAGE_READ_EXEC, self.PAGE_SHARED_EXEC, self.PAGE_SHARED_EXEC,
        )

    def TASK_SIZE_of(self) -> int:
        """``TASK_SIZE``: ``TASK_SIZE_64 = PGDIR_SIZE * PTRS_PER_PGD / 2`` on RV64 (no
        compat task), ``FIXADDR_START`` on RV32 (the configuration's user range end)."""
        if self.RV64:
            return self.PGDIR_SIZE * self.PTRS_PER_PGD // 2
        return self.config.user_range[1]

    # -- pfn and conversions -----------------------------------------------------------------

    def _page_val_to_pfn(self, val: int) -> int:
        """``__page_val_to_pfn``."""
        return (val & self._PAGE_PFN_MASK) >> _PAGE_PFN_SHIFT

    def _check_pfn(self, pfn: int, what: str) -> None:
        """Not in the kernel (``pfn_pte`` trusts its caller): a pfn wider than the PPN field
        would spill into the reserved/N bits, so the emulation refuses it."""
        if pfn < 0 or (pfn << _PAGE_PFN_SHIFT) & ~self._PAGE_PFN_MASK:
            raise BadInput(f"{what}: pfn {pfn:#x} does not fit the PTE's PPN field")

    def pte_pmd(self, pte: pte_t) -> pmd_t:
        return pmd_t(pte)

    def pmd_pte(self, pmd: pmd_t) -> pte_t:
        return pte_t(pmd)

    def pud_pte(self, pud: pud_t) -> pte_t:
        return pte_t(pud)

    def pte_pud(self, pte: pte_t) -> pud_t:
        return pud_t(pte)

    def has_svnapot(self) -> bool:
        return self.RV64 and self.HAS_SVNAPOT

    def pte_napot(self, pte: pte_t) -> int:
        return pte & _PAGE_NAPOT if self.has_svnapot() else 0

    def pte_mknapot(self, pte: pte_t, order: int) -> pte_t:
        """Clear PPN bits ``order - 1 + 10 .. 10``, set the top one of them and N: a 64K
        (order 4) NAPOT PTE has ``ppn[3:0] = 1000``."""
        pos = order - 1 + _PAGE_PFN_SHIFT
        napot_bit = 1 << pos
        napot_mask = ~(((1 << (pos + 1)) - 1) & ~((1 << _PAGE_PFN_SHIFT) - 1))
        return pte_t(((pte & napot_mask) | napot_bit | _PAGE_NAPOT) & self.ULONG_MASK)

    def pte_pfn(self, pte: pte_t) -> int:
        """The PFN; a NAPOT PTE's marker bit (``res & (res - 1)``) is dropped."""
        res = self._page_val_to_pfn(pte)
        if self.has_svnapot() and self.pte_napot(pte):
            res = res & (res - 1)
        return res

    def pfn_pte(self, page_nr: int, pgprot: pgprot_t) -> pte_t:
        self._check_pfn(page_nr, "pfn_pte")
        return pte_t((page_nr << _PAGE_PFN_SHIFT) | pgprot)

    def mk_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t:
        """``mk_pte(page, prot)``: pages are named by pfn here."""
        return self.pfn_pte(pfn, pgprot)

    def pte_pgprot(self, pte: pte_t) -> pgprot_t:
        pfn = self.pte_pfn(pte)
        return pgprot_t(self.pfn_pte(pfn, pgprot_t(0)) ^ pte)

    def pte_advance_pfn(self, pte: pte_t, nr: int) -> pte_t:
        return pte_t(pte + (nr << _PAGE_PFN_SHIFT))

    def pmd_pfn(self, pmd: pmd_t) -> int:
        return ((self._page_val_to_pfn(pmd) << self.PAGE_SHIFT) & self.PMD_MASK) >> \
            self.PAGE_SHIFT

    def pfn_pmd(self, page_nr: int, pgprot: pgprot_t) -> pmd_t:
        self._check_pfn(page_nr, "pfn_pmd")
        return pmd_t((page_nr << _PAGE_PFN_SHIFT) | pgprot)

    def mk_pmd(self, pfn: int, pgprot: pgprot_t) -> pmd_t:
        return self.pfn_pmd(pfn, pgprot)

    def pmd_pgprot(self, pmd: pmd_t) -> pgprot_t:
        return self.pte_pgprot(self.pmd_pte(pmd))

    def pud_pfn(self, pud: pud_t) -> int:
        return ((self._page_val_to_pfn(pud) << self.PAGE_SHIFT) & self.PUD_MASK) >> \
            self.PAGE_SHIFT

    def pfn_pud(self, page_nr: int, pgprot: pgprot_t) -> pud_t:
        self._check_pfn(page_nr, "pfn_pud")
        return pud_t((page_nr << _PAGE_PFN_SHIFT) | pgprot)

    def pud_pgprot(self, pud: pud_t) -> pgprot_t:
        return self.pte_pgprot(self.pud_pte(pud))

    def pgprot_large_2_4k(self, pgprot: pgprot_t) -> pgprot_t:
        """x86's name; RISC-V leaves have one format at every level, so a huge leaf's
        protection is already a page's (``pmd_mkhuge``/``pte_mkhuge`` are identities)."""
        return pgprot

    def pgprot_nx(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t(prot & ~_PAGE_EXEC)

    def pgprot_noncached(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~self._PAGE_MTMASK) | self._PAGE_IO)

    def pgprot_writecombine(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~self._PAGE_MTMASK) | self._PAGE_NOCACHE)

    # -- pte predicates ----------------------------------------------------------------------

    def pte_present(self, pte: pte_t) -> bool:
        """V or ``_PAGE_PROT_NONE`` (G): a PROT_NONE page is present to software."""
        return bool(pte & (_PAGE_PRESENT | _PAGE_PROT_NONE))

    def pte_accessible(self, mm: mm_struct, pte: pte_t) -> bool:
        """V, or PROT_NONE while a TLB flush is pending (NUMA balancing may have just made
        it PROT_NONE; the emulation never has a flush pending across calls)."""
        if pte & _PAGE_PRESENT:
            return True
        return bool(pte & _PAGE_PROT_NONE) and bool(getattr(mm, "tlb_flush_pending", 0))

    def pte_none(self, pte: pte_t) -> bool:
        return pte == 0

    def pte_write(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_WRITE)

    def pte_exec(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_EXEC)

    def pte_user(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_USER)

    def pte_huge(self, pte: pte_t) -> bool:
        return self.pte_present(pte) and bool(pte & _PAGE_LEAF)

    def pte_dirty(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_DIRTY)

    def pte_young(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_ACCESSED)

    def pte_special(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SPECIAL)

    def pte_protnone(self, pte: pte_t) -> bool:
        """CONFIG_NUMA_BALANCING: G without V."""
        return (pte & (_PAGE_PRESENT | _PAGE_PROT_NONE)) == _PAGE_PROT_NONE

    def pte_leaf_size(self, pte: pte_t) -> int:
        """CONFIG_RISCV_ISA_SVNAPOT: a NAPOT PTE maps ``napot_cont_size(order)``."""
        if self.pte_napot(pte):
            order = ((pte >> _PAGE_PFN_SHIFT) << 1 & self.ULONG_MASK)
            order = (order & -order).bit_length() - 1  # __builtin_ctzl
            return 1 << (order + self.PAGE_SHIFT)
        return self.PAGE_SIZE

    # -- pte modifiers -----------------------------------------------------------------------

    def pte_wrprotect(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_WRITE & self.ULONG_MASK)

    def pte_mkwrite_novma(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_WRITE)

    def pte_mkwrite(self, pte: pte_t, vma: vm_area_struct | None = None) -> pte_t:
        """arch/riscv/mm/pgtable.c: ``pte_mkwrite_shstk`` for a shadow-stack vma (none here),
        else ``pte_mkwrite_novma``."""
        return self.pte_mkwrite_novma(pte)

    def pte_mkdirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_DIRTY)

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_DIRTY & self.ULONG_MASK)

    def pte_mkyoung(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_ACCESSED)

    def pte_mkold(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_ACCESSED & self.ULONG_MASK)

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SPECIAL)

    def pte_mkhuge(self, pte: pte_t) -> pte_t:
        return pte

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        """Keep ``_PAGE_CHG_MASK`` (PFN, A, D, RSW, N), take V/R/W/X/U/G/MT from
        ``newprot``."""
        return pte_t((pte & self._PAGE_CHG_MASK) | newprot)

    # -- setters ---------------------------------------------------------------------------

    def set_pte(self, ptep: PtePtr, pte: pte_t) -> None:
        """``WRITE_ONCE``."""
        self._write(ptep, pte)

    def _set_pte_at(self, mm: mm_struct, p: EntryPtr, pteval: int) -> None:
        """``__set_pte_at``: ``flush_icache_pte`` for a present executable page (no
        I-cache emulated), then the store."""
        self._write(p, pteval)

    def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t, nr: int) -> None:
        """``nr`` entries, the PFN field advanced by one each (``pte_val += 1 <<
        _PAGE_PFN_SHIFT``)."""
        while True:
            self._set_pte_at(mm, ptep, pte)
            nr -= 1
            if nr == 0:
                break
            ptep = ptep + 1
            pte = pte_t(pte + (1 << _PAGE_PFN_SHIFT))

    def set_pte_at(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t) -> None:
        self.set_ptes(mm, addr, ptep, pte, 1)

    def pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        self._set_pte_at(mm, ptep, 0)

    def set_pmd(self, pmdp: PmdPtr, pmd: pmd_t) -> None:
        self._write(pmdp, pmd)

    def set_pmd_at(self, mm: mm_struct, addr: int, pmdp: PmdPtr, pmd: pmd_t) -> None:
        """``__set_pte_at(mm, (pte_t *)pmdp, pmd_pte(pmd))``."""
        self._set_pte_at(mm, pmdp, pmd)

    def set_pud_at(self, mm: mm_struct, addr: int, pudp: PudPtr, pud: pud_t) -> None:
        self._set_pte_at(mm, pudp, pud)

    # -- pmd -------------------------------------------------------------------------------

    def pmd_present(self, pmd: pmd_t) -> bool:
        """With CONFIG_TRANSPARENT_HUGEPAGE also ``_PAGE_LEAF``: "When splitting a THP,
        split_huge_page() will temporarily clear the present bit"."""
        mask = _PAGE_PRESENT | _PAGE_PROT_NONE
        if self.TRANSPARENT_HUGEPAGE:
            mask |= _PAGE_LEAF
        return bool(pmd & mask)

    def pmd_none(self, pmd: pmd_t) -> bool:
        return pmd == 0

    def pmd_bad(self, pmd: pmd_t) -> bool:
        return not self.pmd_present(pmd) or bool(pmd & _PAGE_LEAF)

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        return self.pmd_present(pmd) and bool(pmd & _PAGE_LEAF)

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        return self.pmd_leaf(pmd)

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        return PtePtr(self._page_val_to_pfn(pmd) << self.PAGE_SHIFT, self.SIZEOF_PTE)

    def pmd_protnone(self, pmd: pmd_t) -> bool:
        return self.pte_protnone(self.pmd_pte(pmd))

    def pmd_mkhuge(self, pmd: pmd_t) -> pmd_t:
        return pmd

    def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t:
        """Clear V and G: R/W/X stay, so ``pmd_present`` (THP) still holds."""
        return pmd_t(pmd & ~(_PAGE_PRESENT | _PAGE_PROT_NONE) & self.ULONG_MASK)

    def pmd_modify(self, pmd: pmd_t, newprot: pgprot_t) -> pmd_t:
        return self.pte_pmd(self.pte_modify(self.pmd_pte(pmd), newprot))

    def pmd_write(self, pmd: pmd_t) -> bool:
        return self.pte_write(self.pmd_pte(pmd))

    def pmd_dirty(self, pmd: pmd_t) -> bool:
        return self.pte_dirty(self.pmd_pte(pmd))

    def pmd_young(self, pmd: pmd_t) -> bool:
        return self.pte_young(self.pmd_pte(pmd))

    def pmd_user(self, pmd: pmd_t) -> bool:
        return self.pte_user(self.pmd_pte(pmd))

    def pmd_mkold(self, pmd: pmd_t) -> pmd_t:
        return self.pte_pmd(self.pte_mkold(self.pmd_pte(pmd)))

    def pmd_mkyoung(self, pmd: pmd_t) -> pmd_t:
        return self.pte_pmd(self.pte_mkyoung(self.pmd_pte(pmd)))

    def pmd_mkwrite_novma(self, pmd: pmd_t) -> pmd_t:
        return self.pte_pmd(self.pte_mkwrite_novma(self.pmd_pte(pmd)))

    def pmd_mkwrite(self, pmd: pmd_t, vma: vm_area_struct | None = None) -> pmd_t:
        return self.pmd_mkwrite_novma(pmd)

    def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t:
        return self.pte_pmd(self.pte_wrprotect(self.pmd_pte(pmd)))

    def pmd_mkclean(self, pmd: pmd_t) -> pmd_t:
        return self.pte_pmd(self.pte_mkclean(self.pmd_pte(pmd)))

    def pmd_mkdirty(self, pmd: pmd_t) -> pmd_t:
        return self.pte_pmd(self.pte_mkdirty(self.pmd_pte(pmd)))

    def pmd_special(self, pmd: pmd_t) -> bool:
        """CONFIG_ARCH_SUPPORTS_PMD_PFNMAP."""
        return self.pte_special(self.pmd_pte(pmd))

    def pmd_mkspecial(self, pmd: pmd_t) -> pmd_t:
        return self.pte_pmd(self.pte_mkspecial(self.pmd_pte(pmd)))

    # -- pud (pgtable-64.h; RV32 folds it) ------------------------------------------------

    def pud_present(self, pud: pud_t) -> bool:
        """V only: unlike ``pmd_present``, not ``_PAGE_PROT_NONE`` nor ``_PAGE_LEAF``."""
        return bool(pud & _PAGE_PRESENT)

    def pud_none(self, pud: pud_t) -> bool:
        return pud == 0

    def pud_bad(self, pud: pud_t) -> bool:
        """Not present, or a leaf (with PUD THP: "riscv: mm: ... pud")."""
        return not self.pud_present(pud) or bool(pud & _PAGE_LEAF)

    def pud_leaf(self, pud: pud_t) -> bool:
        return self.pud_present(pud) and bool(pud & _PAGE_LEAF)

    def pud_trans_huge(self, pud: pud_t) -> bool:
        return self.pud_leaf(pud)

    def pud_user(self, pud: pud_t) -> bool:
        return bool(pud & _PAGE_USER)

    def set_pud(self, pudp: PudPtr, pud: pud_t) -> None:
        self._write(pudp, pud)

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        return PmdPtr(self._page_val_to_pfn(pud) << self.PAGE_SHIFT, self.SIZEOF_PMD)

    def pud_write(self, pud: pud_t) -> bool:
        return self.pte_write(self.pud_pte(pud))

    def pud_dirty(self, pud: pud_t) -> bool:
        return self.pte_dirty(self.pud_pte(pud))

    def pud_young(self, pud: pud_t) -> bool:
        return self.pte_young(self.pud_pte(pud))

    def pud_wrprotect(self, pud: pud_t) -> pud_t:
        return self.pte_pud(self.pte_wrprotect(self.pud_pte(pud)))

    def pud_mkyoung(self, pud: pud_t) -> pud_t:
        return self.pte_pud(self.pte_mkyoung(self.pud_pte(pud)))

    def pud_mkold(self, pud: pud_t) -> pud_t:
        return self.pte_pud(self.pte_mkold(self.pud_pte(pud)))

    def pud_mkdirty(self, pud: pud_t) -> pud_t:
        return self.pte_pud(self.pte_mkdirty(self.pud_pte(pud)))

    def pud_mkclean(self, pud: pud_t) -> pud_t:
        return self.pte_pud(self.pte_mkclean(self.pud_pte(pud)))

    def pud_mkwrite(self, pud: pud_t) -> pud_t:
        return self.pte_pud(self.pte_mkwrite_novma(self.pud_pte(pud)))

    def pud_mkhuge(self, pud: pud_t) -> pud_t:
        return pud

    def pud_mkinvalid(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~(_PAGE_PRESENT | _PAGE_PROT_NONE) & self.ULONG_MASK)

    def pud_modify(self, pud: pud_t, newprot: pgprot_t) -> pud_t:
        return self.pte_pud(self.pte_modify(self.pud_pte(pud), newprot))

    def pud_special(self, pud: pud_t) -> bool:
        """CONFIG_ARCH_SUPPORTS_PUD_PFNMAP."""
        return self.pte_special(self.pud_pte(pud))

    def pud_mkspecial(self, pud: pud_t) -> pud_t:
        return self.pte_pud(self.pte_mkspecial(self.pud_pte(pud)))

    # -- p4d: meaningful only with pgtable_l4_enabled (pgtable-64.h) ----------------------

    def set_p4d(self, p4dp: P4dPtr, p4d: p4d_t) -> None:
        if self.L4:
            self._write(p4dp, p4d)
        else:
            self.set_pud(PudPtr(p4dp.pa, p4dp.size), pud_t(p4d))

    def p4d_none(self, p4d: p4d_t) -> bool:
        return self.L4 and p4d == 0

    def p4d_present(self, p4d: p4d_t) -> bool:
        return bool(p4d & _PAGE_PRESENT) if self.L4 else True

    def p4d_bad(self, p4d: p4d_t) -> bool:
        return self.L4 and not self.p4d_present(p4d)

    def p4d_clear(self, p4dp: P4dPtr) -> None:
        if self.L4:
            self.set_p4d(p4dp, p4d_t(0))

    def p4d_pgtable(self, p4d: p4d_t) -> PudPtr:
        if self.L4:
            return PudPtr(self._page_val_to_pfn(p4d) << self.PAGE_SHIFT, self.SIZEOF_PUD)
        pmd = self.pud_pgtable(pud_t(p4d))
        return PudPtr(pmd.pa, self.SIZEOF_PUD)

    def pud_offset(self, p4d: P4dPtr, a: int) -> PudPtr:
        """arch/riscv/mm/pgtable.c: the p4d pointer itself unless ``pgtable_l4_enabled``."""
        if self.L4:
            return self.p4d_pgtable(self.p4dp_get(p4d)) + self.pud_index(a)
        return PudPtr(p4d.pa, p4d.size)

    # -- pgd: meaningful only with pgtable_l5_enabled ----------------------------------------

    def set_pgd(self, pgdp: PgdPtr, pgd: pgd_t) -> None:
        if self.L5:
            self._write(pgdp, pgd)
        else:
            self.set_p4d(P4dPtr(pgdp.pa, pgdp.size), p4d_t(pgd))

    def pgd_none(self, pgd: pgd_t) -> bool:
        return self.L5 and pgd == 0

    def pgd_present(self, pgd: pgd_t) -> bool:
        return bool(pgd & _PAGE_PRESENT) if self.L5 else True

    def pgd_bad(self, pgd: pgd_t) -> bool:
        return self.L5 and not self.pgd_present(pgd)

    def pgd_clear(self, pgdp: PgdPtr) -> None:
        if self.L5:
            self.set_pgd(pgdp, pgd_t(0))

    def pgd_pgtable(self, pgd: pgd_t) -> P4dPtr:
        if self.L5:
            return P4dPtr(self._page_val_to_pfn(pgd) << self.PAGE_SHIFT, self.SIZEOF_P4D)
        pud = self.p4d_pgtable(p4d_t(pgd))
        return P4dPtr(pud.pa, self.SIZEOF_P4D)

    def pgd_page_vaddr(self, pgd: pgd_t) -> P4dPtr:
        return self.pgd_pgtable(pgd)

    def p4d_offset(self, pgd: PgdPtr, a: int) -> P4dPtr:
        """arch/riscv/mm/pgtable.c: the pgd pointer itself unless ``pgtable_l5_enabled``."""
        if self.L5:
            return self.pgd_pgtable(self.pgdp_get(pgd)) + self.p4d_index(a)
        return P4dPtr(pgd.pa, pgd.size)

    # -- populate and free (asm/pgalloc.h) ---------------------------------------------------

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t((pte.pa >> self.PAGE_SHIFT << _PAGE_PFN_SHIFT) | _PAGE_TABLE))

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t((pte.pa >> self.PAGE_SHIFT << _PAGE_PFN_SHIFT) | _PAGE_TABLE))

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        self.set_pud(pud, pud_t((pmd.pa >> self.PAGE_SHIFT << _PAGE_PFN_SHIFT) | _PAGE_TABLE))

    def p4d_populate(self, mm: mm_struct, p4d: P4dPtr, pud: PudPtr) -> None:
        if self.L4:
            self.set_p4d(p4d, p4d_t((pud.pa >> self.PAGE_SHIFT << _PAGE_PFN_SHIFT)
                                    | _PAGE_TABLE))

    def pgd_populate(self, mm: mm_struct, pgd: PgdPtr, p4d: P4dPtr) -> None:
        if self.L5:
            self.set_pgd(pgd, pgd_t((p4d.pa >> self.PAGE_SHIFT << _PAGE_PFN_SHIFT)
                                    | _PAGE_TABLE))

    def pud_alloc_one(self, mm: mm_struct, addr: int) -> PudPtr | None:
        """``if (pgtable_l4_enabled) return __pud_alloc_one(mm, addr); return NULL;``."""
        if self.L4:
            return super().pud_alloc_one(mm, addr)
        return None

    def pud_free(self, mm: mm_struct, pud: PudPtr) -> None:
        if self.L4:
            super().pud_free(mm, pud)

    def p4d_alloc_one(self, mm: mm_struct, addr: int) -> P4dPtr | None:
        if self.L5:
            return super().p4d_alloc_one(mm, addr)
        return None

    def p4d_free(self, mm: mm_struct, p4d: P4dPtr) -> None:
        if self.L5:
            super().p4d_free(mm, p4d)

    # -- pgd_alloc (asm/pgalloc.h), pgtable_cache_init (arch/riscv/mm/init.c) ----------------

    def sync_kernel_mappings(self, pgd: PgdPtr) -> None:
        """``memcpy(pgd + USER_PTRS_PER_PGD, init_mm.pgd + USER_PTRS_PER_PGD, ...)``."""
        n = self.USER_PTRS_PER_PGD
        self.mem.copy((pgd + n).pa, (self.init_mm.pgd + n).pa,
                      (self.PTRS_PER_PGD - n) * self.SIZEOF_PGD)

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """``__pgd_alloc(mm, 0)`` (a zeroed page), then copy the kernel mappings."""
        pa = self._pagetable_alloc("pgd", mm)
        if pa is None:
            return None
        pgd = PgdPtr(pa, self.SIZEOF_PGD)
        self.sync_kernel_mappings(pgd)
        return pgd

    def pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        self.pagetable_free(pgd.pa)

    def preallocate_pgd_pages_range(self, start: int, end: int, area: str) -> None:
        """The second-level table of each pgd entry of ``[start, end)``: a p4d (Sv57), a
        pud (Sv48) or a pmd (Sv39); "Failed to pre-allocate" is a panic."""
        m = self.ULONG_MASK
        addr = start
        while addr < end and addr >= start:
            pgd = self.pgd_offset_k(addr)
            p4d = self.p4d_alloc(self.init_mm, pgd, addr)
            if p4d is None:
                raise AssertionError(f"Failed to pre-allocate p4d pages for {area} area")
            if not self.L5:
                pud = self.pud_alloc(self.init_mm, p4d, addr)
                if pud is None:
                    raise AssertionError(f"Failed to pre-allocate pud pages for {area} area")
                if not self.L4 and self.pmd_alloc(self.init_mm, pud, addr) is None:
                    raise AssertionError(f"Failed to pre-allocate pmd pages for {area} area")
            addr = ((addr + 1 + self.PGDIR_SIZE - 1) & ~(self.PGDIR_SIZE - 1)) & m
            if addr == 0:
                break

    def pgtable_cache_init(self) -> None:
        """RV64: preallocate the vmalloc area (the modules/BPF area at the top 2G is not
        emulated).  RV32: nothing."""
        if self.RV64:
            self.preallocate_pgd_pages_range(self.VMALLOC_START, self.VMALLOC_END, "vmalloc")

    def arch_sync_kernel_mappings(self, start: int, end: int) -> None:
        """RV32 stand-in for ``vmalloc_fault`` (arch/riscv/mm/fault.c: copy the faulting
        address's pgd entry from ``init_mm`` with ``set_pgd``): done at once, for every mm,
        under each mm's ``page_table_lock`` (a ptshim departure; see the module docstring)."""
        if self.RV64:
            return
        addr = start & self.PGDIR_MASK
        while addr < end or (addr == start & self.PGDIR_MASK):
            src = self.pgd_offset_k(addr)
            ref = self.pgdp_get(src)
            for mm in self.mms:
                if mm.is_init_mm or not mm.pgd.pa:
                    continue
                dst = self.pgd_offset(mm, addr)
                if self._read(dst) != ref and ref & _PAGE_PRESENT:
                    spin_lock(mm.page_table_lock)
                    self._write(dst, ref)
                    spin_unlock(mm.page_table_lock)
            nxt = (addr + self.PGDIR_SIZE) & self.ULONG_MASK
            if nxt == 0 or nxt >= end:
                break
            addr = nxt

    # -- read-modify-write helpers (asm/pgtable.h, arch/riscv/mm/pgtable.c) --------------------

    def ptep_get_and_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        """``atomic_long_xchg(ptep, 0)``."""
        pte = self.ptep_get(ptep)
        self._write(ptep, 0)
        return pte

    def ptep_set_access_flags(self, vma: object, addr: int, ptep: PtePtr, entry: pte_t,
                              dirty: int) -> int:
        """Without Svvptc: store ``entry`` if it differs, and return true whatever
        ("update_mmu_cache will unconditionally execute")."""
        if self.ptep_get(ptep) != entry:
            self._set_pte_at(getattr(vma, "vm_mm", self.init_mm), ptep, entry)
        return 1

    def ptep_test_and_clear_young(self, vma: object, addr: int, ptep: PtePtr) -> int:
        pte = self.ptep_get(ptep)
        if not self.pte_young(pte):
            return 0
        self._write(ptep, self.pte_mkold(pte))
        return 1

    def ptep_clear_flush_young(self, vma: object, addr: int, ptep: PtePtr) -> int:
        """No flush: "Clearing the accessed bit without a TLB flush doesn't cause data
        corruption"."""
        return self.ptep_test_and_clear_young(vma, addr, ptep)

    def ptep_set_wrprotect(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        """``atomic_long_and(~_PAGE_WRITE, ptep)``."""
        self._write(ptep, self.pte_wrprotect(self.ptep_get(ptep)))

    def pmdp_set_access_flags(self, vma: object, addr: int, pmdp: PmdPtr, entry: pmd_t,
                              dirty: int) -> int:
        return self.ptep_set_access_flags(vma, addr, PtePtr(pmdp.pa, pmdp.size),
                                          self.pmd_pte(entry), dirty)

    def pmdp_test_and_clear_young(self, vma: object, addr: int, pmdp: PmdPtr) -> int:
        return self.ptep_test_and_clear_young(vma, addr, PtePtr(pmdp.pa, pmdp.size))

    def pmdp_huge_get_and_clear(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        pmd = self.pmdp_get(pmdp)
        self._write(pmdp, 0)
        return pmd

    def pmdp_set_wrprotect(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> None:
        self.ptep_set_wrprotect(mm, addr, PtePtr(pmdp.pa, pmdp.size))

    def pmdp_establish(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr, pmd: pmd_t) -> pmd_t:
        old = self.pmdp_get(pmdp)
        self._write(pmdp, pmd)
        return old

    def pmdp_collapse_flush(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        """arch/riscv/mm/pgtable.c: a valid non-leaf PMD becomes a leaf, and "the sfence.vma
        forms that specify an address only apply to leaf PTEs": ``flush_tlb_mm``."""
        pmd = self.pmdp_huge_get_and_clear(vma.vm_mm, addr, pmdp)
        if addr & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_collapse_flush: VM_BUG_ON(address & ~HPAGE_PMD_MASK)")
        self.flush_tlb_mm(vma.vm_mm)
        return pmd

    def pudp_set_access_flags(self, vma: object, addr: int, pudp: PudPtr, entry: pud_t,
                              dirty: int) -> int:
        return self.ptep_set_access_flags(vma, addr, PtePtr(pudp.pa, pudp.size),
                                          self.pud_pte(entry), dirty)

    def pudp_test_and_clear_young(self, vma: object, addr: int, pudp: PudPtr) -> int:
        return self.ptep_test_and_clear_young(vma, addr, PtePtr(pudp.pa, pudp.size))

    def pudp_huge_get_and_clear(self, mm: mm_struct, addr: int, pudp: PudPtr) -> pud_t:
        """CONFIG_SMP: ``atomic_long_xchg(pudp, 0)``."""
        pud = self.pudp_get(pudp)
        self._write(pudp, 0)
        return pud

    def pudp_set_wrprotect(self, mm: mm_struct, addr: int, pudp: PudPtr) -> None:
        """include/linux/pgtable.h generic version (no riscv
        ``__HAVE_ARCH_PUDP_SET_WRPROTECT``)."""
        self.set_pud_at(mm, addr, pudp, self.pud_wrprotect(self.pudp_get(pudp)))

    def pudp_establish(self, vma: vm_area_struct, addr: int, pudp: PudPtr, pud: pud_t) -> pud_t:
        old = self.pudp_get(pudp)
        self._write(pudp, pud)
        return old

    def pudp_invalidate(self, vma: vm_area_struct, addr: int, pudp: PudPtr) -> pud_t:
        """arch/riscv/mm/pgtable.c: establish ``pud_mkinvalid``, then
        ``flush_pud_tlb_range`` of the huge page."""
        if not self.pud_present(self.pudp_get(pudp)):
            raise AssertionError("pudp_invalidate: VM_WARN_ON_ONCE(!pud_present(*pudp))")
        old = self.pudp_establish(vma, addr, pudp, self.pud_mkinvalid(self.pudp_get(pudp)))
        self.flush_pud_tlb_range(vma, addr, (addr + self.PUD_SIZE) & self.ULONG_MASK)
        return old

    # -- swap entries (asm/pgtable.h) ------------------------------------------------------
    #   bit 0: _PAGE_PRESENT (zero); bits 1-3: _PAGE_LEAF (zero); bit 5: _PAGE_PROT_NONE
    #   (zero); bit 6: exclusive marker; bits 7-11: swap type; bits 12-XLEN-1: offset

    def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        return swp_entry_t(pte)

    def _swp_entry_to_pte(self, x: swp_entry_t) -> pte_t:
        return pte_t(x)

    def _pmd_to_swp_entry(self, pmd: pmd_t) -> swp_entry_t:
        """CONFIG_ARCH_ENABLE_THP_MIGRATION."""
        return swp_entry_t(pmd)

    def _swp_entry_to_pmd(self, x: swp_entry_t) -> pmd_t:
        return pmd_t(x)

    def pte_swp_exclusive(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SWP_EXCLUSIVE)

    def pte_swp_mkexclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SWP_EXCLUSIVE)

    def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_SWP_EXCLUSIVE & self.ULONG_MASK)

    def VM_WARN_ON(self, cond: bool, what: str) -> bool:
        """CONFIG_DEBUG_VM warning: logged in ``vm_warnings``."""
        if cond:
            self.vm_warnings.append(what)
        return cond


class Riscv64Kernel(RiscvKernel):
    """CONFIG_64BIT: ``select HAVE_ARCH_TRANSPARENT_HUGEPAGE if 64BIT && MMU``,
    ``HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD if 64BIT && MMU``, ``HAVE_ARCH_HUGE_VMAP if MMU &&
    64BIT``, ``ARCH_ENABLE_THP_MIGRATION if TRANSPARENT_HUGEPAGE``, NUMA balancing."""

    HAVE_ARCH_TRANSPARENT_HUGEPAGE = True
    TRANSPARENT_HUGEPAGE = True
    HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD = True
    ARCH_ENABLE_THP_MIGRATION = True
    HAVE_ARCH_HUGE_VMAP = True
    NUMA_BALANCING = True

    # -- huge vmap (arch/riscv/mm/pgtable.c, asm/vmalloc.h) ------------------------------

    def arch_vmap_p4d_supported(self, prot: pgprot_t) -> bool:
        """include/linux/vmalloc.h default."""
        return False

    def arch_vmap_pud_supported(self, prot: pgprot_t) -> bool:
        """asm/vmalloc.h: ``pgtable_l4_enabled || pgtable_l5_enabled`` -- no 1G vmap leaf
        on Sv39."""
        return self.L4 or self.L5

    def arch_vmap_pmd_supported(self, prot: pgprot_t) -> bool:
        return True

    def p4d_set_huge(self, p4d: P4dPtr, addr: int, prot: pgprot_t) -> int:
        return 0

    def p4d_clear_huge(self, p4d: P4dPtr) -> None:
        """Empty."""

    def pud_set_huge(self, pud: PudPtr, addr: int, prot: pgprot_t) -> int:
        """``set_pud(pud, pfn_pud(__phys_to_pfn(phys), prot))``: no check of what was there."""
        self.set_pud(pud, self.pfn_pud(addr >> self.PAGE_SHIFT, prot))
        return 1

    def pud_clear_huge(self, pud: PudPtr) -> int:
        if not self.pud_leaf(self.pudp_get(pud)):
            return 0
        self.pud_clear(pud)
        return 1

    def pud_free_pmd_page(self, pud: PudPtr, addr: int) -> int:
        """Clear the pud, ``flush_tlb_kernel_range(addr, addr + PUD_SIZE)`` (a full flush:
        more than 64 pages), free every PTE table below, then the PMD table."""
        table = self.pud_pgtable(self.pudp_get(pud))
        self.pud_clear(pud)
        self.flush_tlb_kernel_range(addr, (addr + self.PUD_SIZE) & self.ULONG_MASK)
        for i in range(self.PTRS_PER_PMD):
            pmdv = self.pmdp_get(table + i)
            if not self.pmd_none(pmdv):
                self.pte_free_kernel(self.init_mm, self.pmd_page_vaddr(pmdv))
        self.pmd_free(self.init_mm, table)
        return 1

    def pmd_set_huge(self, pmd: PmdPtr, addr: int, prot: pgprot_t) -> int:
        self.set_pmd(pmd, self.pfn_pmd(addr >> self.PAGE_SHIFT, prot))
        return 1

    def pmd_clear_huge(self, pmd: PmdPtr) -> int:
        if not self.pmd_leaf(self.pmdp_get(pmd)):
            return 0
        self.pmd_clear(pmd)
        return 1

    def pmd_free_pte_page(self, pmd: PmdPtr, addr: int) -> int:
        """Clear the pmd, ``flush_tlb_kernel_range(addr, addr + PMD_SIZE)`` (512 pages: a
        full flush), free the PTE table."""
        pte = self.pmd_page_vaddr(self.pmdp_get(pmd))
        self.pmd_clear(pmd)
        self.flush_tlb_kernel_range(addr, (addr + self.PMD_SIZE) & self.ULONG_MASK)
        self.pte_free_kernel(self.init_mm, pte)
        return 1


class RiscvSv39Kernel(Riscv64Kernel):
    """Sv39: p4d and pud folded at run time (the pgd is the L2 table)."""


class RiscvSv48Kernel(Riscv64Kernel):
    """Sv48: p4d folded at run time (the pgd is the L3 table, the pud the L2)."""

    L4 = True


class RiscvSv57Kernel(Riscv64Kernel):
    """Sv57: five levels, nothing folded."""

    L4 = True
    L5 = True


class RiscvSv32Kernel(Nopmd, RiscvKernel):
    """RV32 (Sv32): pgtable-32.h includes pgtable-nopmd.h; the pgd is the L1 table.  No THP,
    no huge vmap (both 64BIT-only), ``ARCH_ENABLE_SPLIT_PMD_PTLOCK`` needs more than two
    levels.  ``ARCH_PAGE_TABLE_SYNC_MASK`` stands in for ``vmalloc_fault``."""

    RV64 = False
    HAS_SVNAPOT = False
    USE_SPLIT_PMD_PTLOCKS = False
    ARCH_PAGE_TABLE_SYNC_MASK = PGTBL_PMD_MODIFIED
    """Not a riscv definition: the hook for the eager ``vmalloc_fault`` stand-in (the pgd
    entry of Sv32 is the folded pmd, which ``vmap`` reports as ``PGTBL_PMD_MODIFIED``)."""

    def pud_leaf(self, pud: pud_t) -> bool:
        """include/linux/pgtable.h default (false): riscv's ``pud_leaf`` is in pgtable-64.h."""
        return False

    def pud_trans_huge(self, pud: pud_t) -> bool:
        return False


__all__ = ["RiscvKernel", "RiscvSv32Kernel", "RiscvSv39Kernel", "RiscvSv48Kernel",
           "RiscvSv57Kernel"]
