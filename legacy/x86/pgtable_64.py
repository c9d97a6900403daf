"""x86-64 4-level and 5-level paging, with the p4d folded at run time.

Follows ``arch/x86/include/asm/pgtable_64.h``, ``pgtable_64_types.h``, ``pgtable.h``,
``pgalloc.h`` and ``arch/x86/mm/init_64.c`` (``sync_global_pgds``); ``pgd_alloc``, ``pgd_ctor``
and ``pgd_list`` (``arch/x86/mm/pgtable.c``) are shared with 32-bit x86 in
:mod:`legacy.x86.pgd`.  Five levels are compiled in; when
``pgtable_l5_enabled()`` is false the p4d level is folded *at run time*: ``PTRS_PER_P4D`` is
``ptrs_per_p4d`` = 1, ``PGDIR_SHIFT`` is ``pgdir_shift`` = 39, ``p4d_offset`` returns the pgd
pointer and the pgd predicates are constants -- the same effect as pgtable-nop4d.h, decided
when the CPU boots rather than when the kernel is compiled.
"""

from __future__ import annotations

from arches import ArchConfig
from arches.x86.bits import _PAGE_PRESENT, _PAGE_USER
from legacy.mm_types import mm_struct, spin_lock, spin_unlock
from legacy.pgtable import PGTBL_P4D_MODIFIED, PGTBL_PGD_MODIFIED
from legacy.types import (
    P4dPtr,
    PgdPtr,
    PmdPtr,
    PtePtr,
    PudPtr,
    p4d_t,
    pgd_t,
    pmd_t,
    pte_t,
    pud_t,
)
from legacy.x86.pgd import X86PgdKernel
from legacy.x86.pgtable import _KERNPG_TABLE, _PAGE_TABLE
from legacy.x86.swap import X86_64Swap


class X86_64Kernel(X86_64Swap, X86PgdKernel):
    """x86-64 with 5-level support compiled in; ``la57`` is the CPU's CR4.LA57.  The swap
    entry format is in :mod:`legacy.x86.swap`."""

    PHYSICAL_MASK_SHIFT = 52
    # arch/x86/Kconfig: the "if X86_64" selects.
    HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD = True
    ARCH_ENABLE_THP_MIGRATION = True
    HAVE_ARCH_HUGE_VMAP = True
    NUMA_BALANCING = True

    def __init__(self, config: ArchConfig, la57: bool) -> None:
        self._l5 = la57
        super().__init__(config)
        self.ARCH_PAGE_TABLE_SYNC_MASK = (
            PGTBL_PGD_MODIFIED if self._l5 else PGTBL_P4D_MODIFIED
        )

    def pgtable_l5_enabled(self) -> bool:
        return self._l5

    def arch_geometry(self) -> None:
        """pgtable_64_types.h: ``pgdir_shift`` and ``ptrs_per_p4d`` are set at boot."""
        self.PAGE_SHIFT = 12
        self.PGDIR_SHIFT = 48 if self._l5 else 39
        self.P4D_SHIFT = 39
        self.PUD_SHIFT = 30
        self.PMD_SHIFT = 21
        self.PTRS_PER_PGD = 512
        self.PTRS_PER_P4D = 512 if self._l5 else 1
        self.PTRS_PER_PUD = 512
        self.PTRS_PER_PMD = 512
        self.PTRS_PER_PTE = 512
        self.SIZEOF_PGD = self.SIZEOF_P4D = self.SIZEOF_PUD = 8
        self.SIZEOF_PMD = self.SIZEOF_PTE = 8

    def mm_p4d_folded(self, mm: mm_struct) -> bool:
        """arch/x86/include/asm/pgtable.h overrides the generic marker test."""
        return not self._l5

    # -- pgd (meaningful only with 5 levels) ----------------------------------------------

    def pgd_none(self, pgd: pgd_t) -> bool:
        if not self._l5:
            return False
        return pgd == 0

    def pgd_present(self, pgd: pgd_t) -> bool:
        if not self._l5:
            return True
        return bool(pgd & _PAGE_PRESENT)

    def pgd_bad(self, pgd: pgd_t) -> bool:
        if not self._l5:
            return False
        ignore_flags = _PAGE_USER
        return (pgd & self.PTE_FLAGS_MASK & ~ignore_flags) != _KERNPG_TABLE

    def set_pgd(self, pgdp: PgdPtr, pgd: pgd_t) -> None:
        if self._l5:
            self._write(pgdp, pgd)
        else:
            self.set_p4d(P4dPtr(pgdp.pa, pgdp.size), p4d_t(pgd))

    def pgd_clear(self, pgdp: PgdPtr) -> None:
        if self._l5:
            self._write(pgdp, 0)

    def pgd_page_vaddr(self, pgd: pgd_t) -> P4dPtr:
        return P4dPtr(pgd & self.PTE_PFN_MASK, self.SIZEOF_P4D)

    def pgd_populate(self, mm: mm_struct, pgd: PgdPtr, p4d: P4dPtr) -> None:
        if not self._l5:
            return
        self.set_pgd(pgd, pgd_t(_PAGE_TABLE | p4d.pa))

    # -- p4d ------------------------------------------------------------------------------

    def p4d_offset(self, pgd: PgdPtr, a: int) -> P4dPtr:
        if not self._l5:
            return P4dPtr(pgd.pa, pgd.size)
        return self.pgd_page_vaddr(self.pgdp_get(pgd)) + self.p4d_index(a)

    def p4d_none(self, p4d: p4d_t) -> bool:
        return (p4d & ~self.KNL_ERRATUM_MASK) == 0

    def p4d_present(self, p4d: p4d_t) -> bool:
        return bool(p4d & _PAGE_PRESENT)

    def p4d_bad(self, p4d: p4d_t) -> bool:
        ignore_flags = _KERNPG_TABLE | _PAGE_USER
        return (p4d & self.PTE_FLAGS_MASK & ~ignore_flags) != 0

    def p4d_pgtable(self, p4d: p4d_t) -> PudPtr:
        return PudPtr(p4d & self.PTE_PFN_MASK, self.SIZEOF_PUD)

    def p4d_populate(self, mm: mm_struct, p4d: P4dPtr, pud: PudPtr) -> None:
        self.set_p4d(p4d, p4d_t(_PAGE_TABLE | pud.pa))

    def p4d_free(self, mm: mm_struct, p4d: P4dPtr) -> None:
        """arch/x86/include/asm/pgalloc.h: nothing to free unless 5-level paging is on."""
        if not self._l5:
            return
        self.pagetable_free(p4d.pa)

    # -- pud ------------------------------------------------------------------------------

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        self.set_pud(pud, pud_t(_PAGE_TABLE | pmd.pa))

    # -- get and clear (asm/pgtable.h __HAVE_ARCH_*, pgtable_64.h native_*) --------------

    def ptep_get_and_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        """``native_ptep_get_and_clear``: ``xchg(&xp->pte, 0)`` (CONFIG_SMP)."""
        return pte_t(self._write(ptep, 0))

    def ptep_get_and_clear_full(self, mm: mm_struct, addr: int, ptep: PtePtr,
                                full: int) -> pte_t:
        """With ``full``, ``native_local_ptep_get_and_clear``: read, then
        ``native_pte_clear`` -- the same effect as the ``xchg`` without it."""
        return pte_t(self._write(ptep, 0))

    def pmdp_huge_get_and_clear(self, mm: mm_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """``native_pmdp_get_and_clear``: ``xchg(&xp->pmd, 0)``."""
        return pmd_t(self._write(pmdp, 0))

    def pudp_huge_get_and_clear(self, mm: mm_struct, address: int, pudp: PudPtr) -> pud_t:
        """``native_pudp_get_and_clear``: ``xchg(&xp->pud, 0)``."""
        return pud_t(self._write(pudp, 0))

    # -- keeping the kernel half in sync (arch/x86/mm/init_64.c) --------------------------

    def sync_global_pgds_l5(self, start: int, end: int) -> None:
        addr = start
        while addr <= end:
            pgd_ref = self.pgd_offset_k(addr)
            if not self.pgd_none(self.pgdp_get(pgd_ref)):
                spin_lock(self.pgd_lock)
                for pgd, owner in self._pgd_list_entries(addr):
                    spin_lock(owner.page_table_lock)
                    ref, cur = self.pgdp_get(pgd_ref), self.pgdp_get(pgd)
                    if not self.pgd_none(ref) and not self.pgd_none(cur):
                        assert self.pgd_page_vaddr(cur) == self.pgd_page_vaddr(ref), "BUG_ON"
                    if self.pgd_none(cur):
                        self.set_pgd(pgd, ref)
                    spin_unlock(owner.page_table_lock)
                spin_unlock(self.pgd_lock)
            nxt = (addr + self.PGDIR_SIZE) & self.PGDIR_MASK
            if nxt <= addr:  # Check for overflow
                break
            addr = nxt

    def sync_global_pgds_l4(self, start: int, end: int) -> None:
        addr = start
        while addr <= end:
            pgd_ref = self.pgd_offset_k(addr)
            # With folded p4d, pgd_none() is always false: synchronise at the p4d level.
            p4d_ref = self.p4d_offset(pgd_ref, addr)
            if not self.p4d_none(self.p4dp_get(p4d_ref)):
                spin_lock(self.pgd_lock)
                for pgd, owner in self._pgd_list_entries(addr):
                    p4d = self.p4d_offset(pgd, addr)
                    spin_lock(owner.page_table_lock)
                    ref, cur = self.p4dp_get(p4d_ref), self.p4dp_get(p4d)
                    if not self.p4d_none(ref) and not self.p4d_none(cur):
                        assert self.p4d_pgtable(cur) == self.p4d_pgtable(ref), "BUG_ON"
                    if self.p4d_none(cur):
                        self.set_p4d(p4d, ref)
                    spin_unlock(owner.page_table_lock)
                spin_unlock(self.pgd_lock)
            nxt = (addr + self.PGDIR_SIZE) & self.PGDIR_MASK
            if nxt <= addr:
                break
            addr = nxt

    def sync_global_pgds(self, start: int, end: int) -> None:
        if self._l5:
            self.sync_global_pgds_l5(start, end)
        else:
            self.sync_global_pgds_l4(start, end)

    def arch_sync_kernel_mappings(self, start: int, end: int) -> None:
        """Called by vmap-style code when ``ARCH_PAGE_TABLE_SYNC_MASK`` levels changed
        (x86-64 again defines it since 2025: "x86/mm/64: define ARCH_PAGE_TABLE_SYNC_MASK
        and arch_sync_kernel_mappings()")."""
        self.sync_global_pgds(start, end)


