"""The x86 top-level table: ``pgd_alloc``/``pgd_free``, ``pgd_ctor``/``pgd_dtor``, ``pgd_list``
and the PAE PMD preallocation, shared by every x86 paging mode.

Follows ``arch/x86/mm/pgtable.c`` (one file for x86-64, i386 and PAE, as here) and
``arch/x86/include/asm/pgtable.h`` (``KERNEL_PGD_BOUNDARY``, ``clone_pgd_range``), in the
kernel that dropped ``SHARED_KERNEL_PMD`` (Dave Hansen, 2025: "x86/mm: ... zap
SHARED_KERNEL_PMD"):

- every pgd goes on ``pgd_list`` (``pgd_set_mm`` records its mm) so that kernel mappings can be
  synchronised into it (``arch_sync_kernel_mappings``);
- ``pgd_ctor`` clones the kernel entries from ``swapper_pg_dir`` -- "PAE preallocates all its
  PMDs.  No cloning needed." (``if (!IS_ENABLED(CONFIG_X86_PAE))``);
- with PAE, ``PREALLOCATED_PMDS`` is ``PTRS_PER_PGD``: ``pgd_alloc`` preallocates all four
  PMDs (each accounted with ``mm_inc_nr_pmds``), copies the contents of ``swapper_pg_dir``'s
  kernel PMD into those ``>= KERNEL_PGD_BOUNDARY`` and installs them with ``pud_populate``;
  ``pgd_free`` mops up whatever PMDs are still attached (``pgd_mop_up_pmds``).

No PTI is emulated: ``pgd_allocation_order()`` is 0 and ``PREALLOCATED_USER_PMDS`` is 0.
"""

from __future__ import annotations

from arches import ArchConfig
from legacy.mm_types import mm_struct, spin_lock, spin_unlock, spinlock_t
from legacy.types import PgdPtr, PmdPtr
from legacy.x86.pgtable import X86Kernel

# include/linux/pgtable.h: page-table modification bits (pgtbl_mod_mask) that tell the vmalloc
# and ioremap code when to call arch_sync_kernel_mappings() (ARCH_PAGE_TABLE_SYNC_MASK).


class X86PgdKernel(X86Kernel):
    """arch/x86/mm/pgtable.c: the pgd allocator and ``pgd_list`` of every x86 kernel."""

    X86_PAE = False
    """``CONFIG_X86_PAE``: preallocate the PMDs instead of cloning the kernel pgd entries."""

    def __init__(self, config: ArchConfig) -> None:
        self.pgd_lock = spinlock_t("pgd_lock")
        self.pgd_list: list[PgdPtr] = []
        """``pgd_list``: the pgd of every mm but ``init_mm``, most recent first (list_add)."""
        self.pgd_owner: dict[int, mm_struct] = {}
        """``ptdesc->pt_mm`` of each pgd on the list (``pgd_set_mm``/``pgd_page_get_mm``)."""
        super().__init__(config)

    def kernel_split_lock(self) -> spinlock_t | None:
        """cpa's ``__split_large_page`` installs the new table under ``pgd_lock``
        (arch/x86/mm/pat/set_memory.c)."""
        return self.pgd_lock

    def derive_sizes(self) -> None:
        super().derive_sizes()
        self.PAGE_OFFSET = self.config.kernel_range[0]
        self.KERNEL_PGD_BOUNDARY = self.pgd_index(self.PAGE_OFFSET)
        self.KERNEL_PGD_PTRS = self.PTRS_PER_PGD - self.KERNEL_PGD_BOUNDARY
        self.PREALLOCATED_PMDS = self.PTRS_PER_PGD if self.X86_PAE else 0

    # -- pgd_list -------------------------------------------------------------------------

    def clone_pgd_range(self, dst: PgdPtr, src: PgdPtr, count: int) -> None:
        """``memcpy(dst, src, count * sizeof(pgd_t))`` (no PTI user copy)."""
        self.mem.copy(dst.pa, src.pa, count * self.SIZEOF_PGD)

    def pgd_set_mm(self, pgd: PgdPtr, mm: mm_struct) -> None:
        self.pgd_owner[pgd.pa] = mm

    def pgd_page_get_mm(self, pgd: PgdPtr) -> mm_struct:
        return self.pgd_owner[pgd.pa]

    def pgd_list_add(self, pgd: PgdPtr) -> None:
        self.pgd_list.insert(0, pgd)

    def pgd_list_del(self, pgd: PgdPtr) -> None:
        self.pgd_list.remove(pgd)

    def _pgd_list_entries(self, addr: int) -> list[tuple[PgdPtr, mm_struct]]:
        """``list_for_each_entry(ptdesc, &pgd_list, pt_list)``: each pgd's entry for ``addr``
        and the pgd's mm (whose ``page_table_lock`` the sync takes)."""
        return [(p + self.pgd_index(addr), self.pgd_page_get_mm(p)) for p in self.pgd_list]

    def pgd_ctor(self, mm: mm_struct, pgd: PgdPtr) -> None:
        """Clone the kernel entries from ``swapper_pg_dir`` (not on PAE); list the pgd."""
        if not self.X86_PAE:
            swapper_pg_dir = self.init_mm.pgd
            self.clone_pgd_range(
                pgd + self.KERNEL_PGD_BOUNDARY,
                swapper_pg_dir + self.KERNEL_PGD_BOUNDARY,
                self.KERNEL_PGD_PTRS,
            )
        # List used to sync kernel mapping updates
        self.pgd_set_mm(pgd, mm)
        self.pgd_list_add(pgd)

    def pgd_dtor(self, pgd: PgdPtr) -> None:
        spin_lock(self.pgd_lock)
        self.pgd_list_del(pgd)
        del self.pgd_owner[pgd.pa]
        spin_unlock(self.pgd_lock)

    # -- PAE PMD preallocation ------------------------------------------------------------

    def free_pmds(self, mm: mm_struct, pmds: list[PmdPtr | None], count: int) -> None:
        for i in range(count):
            pmd = pmds[i]
            if pmd is not None:
                if self.ptdescs[pmd.pa].ptl is not None:  # pagetable_dtor
                    self.ptlock_free(pmd.pa)
                self.pagetable_free(pmd.pa)
                self.mm_dec_nr_pmds(mm)

    def preallocate_pmds(self, mm: mm_struct, pmds: list[PmdPtr | None], count: int) -> int:
        """Fill ``pmds[0:count]`` with fresh PMD tables (``pagetable_pmd_ctor``), each
        accounted with ``mm_inc_nr_pmds``; on any failure free them all: -ENOMEM."""
        failed = False
        for i in range(count):
            pmd: PmdPtr | None = None
            pa = self._pagetable_alloc("pmd", mm)
            if pa is None:
                failed = True
            else:
                if self.USE_SPLIT_PMD_PTLOCKS:  # pagetable_pmd_ctor
                    self.ptlock_init(pa)
                self.mm_inc_nr_pmds(mm)
                pmd = PmdPtr(pa, self.SIZEOF_PMD)
            pmds[i] = pmd
        if failed:
            self.free_pmds(mm, pmds, count)
            return -12  # -ENOMEM
        return 0

    def mop_up_one_pmd(self, mm: mm_struct, pgdp: PgdPtr) -> None:
        pgd = self.pgdp_get(pgdp)
        if pgd != 0:
            pmd = PmdPtr(self.pgd_page_vaddr(pgd).pa, self.SIZEOF_PMD)
            self.pgd_clear(pgdp)  # a no-op when the p4d is folded (pgtable-nop4d.h)
            self.pmd_free(mm, pmd)
            self.mm_dec_nr_pmds(mm)

    def pgd_mop_up_pmds(self, mm: mm_struct, pgdp: PgdPtr) -> None:
        """Free the PMDs "which may still be attached to the pgd": munmap/exit_mmap free the
        others, but a preallocated PMD that never got a VMA is freed here."""
        for i in range(self.PREALLOCATED_PMDS):
            self.mop_up_one_pmd(mm, pgdp + i)

    def pgd_prepopulate_pmd(self, mm: mm_struct, pgd: PgdPtr, pmds: list[PmdPtr | None]) -> None:
        """Install the preallocated PMDs; those of the kernel range get a copy of
        ``swapper_pg_dir``'s kernel PMD (so they share its PTE tables)."""
        swapper_pg_dir = self.init_mm.pgd
        p4d = self.p4d_offset(pgd, 0)
        pud = self.pud_offset(p4d, 0)
        for i in range(self.PREALLOCATED_PMDS):
            pmd = pmds[i]
            assert pmd is not None
            if i >= self.KERNEL_PGD_BOUNDARY:
                src = self.pgd_page_vaddr(self.pgdp_get(swapper_pg_dir + i))
                self.mem.copy(pmd.pa, src.pa, self.SIZEOF_PMD * self.PTRS_PER_PMD)
            self.pud_populate(mm, pud, pmd)
            pud = pud + 1

    # -- pgd_alloc / pgd_free -------------------------------------------------------------

    def _pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """``__pgd_alloc(mm, pgd_allocation_order())``: a whole page, even for the 32-byte PAE
        PDPT ("PTI and Xen need a whole page"); not counted in ``pgtables_bytes``."""
        pa = self._pagetable_alloc("pgd", mm)
        return None if pa is None else PgdPtr(pa, self.SIZEOF_PGD)

    def _pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        self.pagetable_free(pgd.pa)

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        pgd = self._pgd_alloc(mm)
        if pgd is None:
            return None
        mm.pgd = pgd
        pmds: list[PmdPtr | None] = [None] * self.PREALLOCATED_PMDS
        if self.PREALLOCATED_PMDS and self.preallocate_pmds(mm, pmds, self.PREALLOCATED_PMDS):
            self._pgd_free(mm, pgd)
            return None
        # Make sure that pre-populating the pmds is atomic with respect to anything walking
        # the pgd_list, so that they never see a partially populated pgd.
        spin_lock(self.pgd_lock)
        self.pgd_ctor(mm, pgd)
        if self.PREALLOCATED_PMDS:
            self.pgd_prepopulate_pmd(mm, pgd, pmds)
        spin_unlock(self.pgd_lock)
        return pgd

    def pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        self.pgd_mop_up_pmds(mm, pgd)
        self.pgd_dtor(pgd)
        self._pgd_free(mm, pgd)
