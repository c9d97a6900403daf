"""32-bit x86: 2-level paging (``i386``) and PAE (``i386-pae``).

Follows ``arch/x86/include/asm/pgtable_32.h``, ``pgtable_32_types.h``, ``page_32_types.h``,
``pgtable-2level.h`` / ``pgtable-2level_types.h`` (2-level), ``pgtable-3level.h`` /
``pgtable-3level_types.h`` (PAE), ``pgtable_types.h`` (``PGD_ALLOWED_BITS``), ``pgalloc.h``,
``arch/x86/mm/pgtable.c`` (PAE ``pud_populate``; ``pgd_alloc`` is in :mod:`legacy.x86.pgd`)
and ``arch/x86/mm/fault.c`` (``vmalloc_sync_one``, ``arch_sync_kernel_mappings``).

Both are 32-bit kernels: ``unsigned long`` is 32 bits wide, so every ``*_addr_end`` wraps at
2**32, ``TASK_SIZE`` = ``PAGE_OFFSET`` = 0xC0000000 (3G/1G split) and a pfn cannot exceed 32
bits.  ``CONFIG_MEM_SOFT_DIRTY`` and ``CONFIG_HAVE_ARCH_USERFAULTFD_WP`` are 64-bit only, so
``_PAGE_SOFT_DIRTY`` and ``_PAGE_UFFD_WP`` are 0.

``i386`` (``pgtable-nopmd.h``): the pgd is the hardware page directory, 1024 4-byte entries;
pud and pmd are folded into it, so ``pmd_offset(pud_offset(p4d_offset(pgd)))`` is the pgd
entry and a 4M PSE leaf is a pmd leaf.  No NX (``_PAGE_NX`` is 0), no PFN inversion ("No
inverted PFNs on 2 level page tables"), no KNL erratum mask.  ``pgd_ctor`` clones entries
``KERNEL_PGD_BOUNDARY`` (768) .. 1023 from ``swapper_pg_dir``.  ``HAVE_ARCH_HUGE_VMAP`` is
selected only ``if X86_64 || X86_PAE``: ``pmd_set_huge`` is the generic stub returning 0 and
4M leaves come from ``set_pmd``/``set_pmd_at`` (direct map, THP, hugetlb).

``i386-pae`` (``pgtable-nopud.h``): 8-byte entries; the pgd is the 4-entry PDPT (allocated as a
whole page), whose entries are the folded p4d and pud and hold only ``_PAGE_PRESENT`` and the
PMD address (``pud_populate``; ``native_pgd_val``/``native_make_pgd`` mask with
``PGD_ALLOWED_BITS``).  ``pgd_alloc`` preallocates the four PMDs and copies the kernel PMD
(slot 3) from ``swapper_pg_dir``; 2M leaves, NX, L1TF PFN inversion, 52-bit physical mask.

Kernel mappings: ``ARCH_PAGE_TABLE_SYNC_MASK`` is ``PGTBL_PMD_MODIFIED`` in both modes, and
``arch_sync_kernel_mappings`` copies ``init_mm``'s pmd entries into every pgd on ``pgd_list``.
"""

from __future__ import annotations

from arches.x86.bits import (
    _PAGE_BIT_SOFTW2,
    _PAGE_BIT_SOFTW3,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PWT,
    _PAGE_SOFTW1,
)
from legacy.folding import Nopmd, Nopud
from legacy.mm_types import mm_struct, spin_lock, spin_unlock
from legacy.pgtable import PGTBL_PMD_MODIFIED
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PudPtr, p4d_t, pgd_t, pgprot_t, pmd_t, pud_t
from legacy.x86.pgd import X86PgdKernel


class X86_32Kernel(X86PgdKernel):
    """What 2-level and PAE share: ``asm/pgtable_32*.h``, ``page_32_types.h`` and the
    32-bit half of ``arch/x86/mm/fault.c``."""

    MEM_SOFT_DIRTY = False
    HAVE_ARCH_USERFAULTFD_WP = False
    PAGE_BIT_SAVED_DIRTY = _PAGE_BIT_SOFTW2
    """pgtable_types.h, !CONFIG_X86_64: "Shared with _PAGE_BIT_UFFD_WP which is not supported
    on 32 bit"."""
    ARCH_PAGE_TABLE_SYNC_MASK = PGTBL_PMD_MODIFIED
    """pgtable-2level_types.h and pgtable-3level_types.h."""

    def derive_sizes(self) -> None:
        super().derive_sizes()
        # page_32_types.h: TASK_SIZE = TASK_SIZE_MAX = __PAGE_OFFSET.
        self.TASK_SIZE_MAX = self.PAGE_OFFSET
        # pgtable_32_areas.h puts VMALLOC_START 8M above high_memory and VMALLOC_END below the
        # pkmap/LDT/cpu_entry_area/fixmap areas, whose page tables the kernel preallocates at
        # boot.  The emulated machine has none of these (no direct map, no fixmap), so every
        # kernel address is treated as vmalloc space: VMALLOC_END is the top of the address
        # space (the sync loop then ends when ``addr += PMD_SIZE`` wraps to 0).
        self.VMALLOC_START = self.PAGE_OFFSET
        self.VMALLOC_END = self.ULONG_MASK + 1

    # -- the folding headers' pgd_page_vaddr / p4d_pgtable (nop4d.h, nopud.h) -------------

    def pgd_page_vaddr(self, pgd: pgd_t) -> P4dPtr:
        """pgtable-nop4d.h: ``(unsigned long)(p4d_pgtable((p4d_t){ pgd }))``."""
        return P4dPtr(self.p4d_pgtable(p4d_t(pgd)).pa, self.SIZEOF_P4D)

    def p4d_pgtable(self, p4d: p4d_t) -> PudPtr:
        """pgtable-nopud.h: ``((pud_t *)(pud_pgtable((pud_t){ p4d })))``."""
        return PudPtr(self.pud_pgtable(pud_t(p4d)).pa, self.SIZEOF_PUD)

    # -- keeping the kernel mappings in sync (arch/x86/mm/fault.c, CONFIG_X86_32) ----------

    def vmalloc_sync_one(self, pgd: PgdPtr, address: int) -> PmdPtr | None:
        """Copy ``init_mm``'s pmd entry for ``address`` into ``pgd`` if their presence
        differs; BUG if both are present and map different pfns."""
        index = self.pgd_index(address)
        pgd = pgd + index
        pgd_k = self.init_mm.pgd + index
        if not self.pgd_present(self.pgdp_get(pgd_k)):
            return None
        # set_pgd(pgd, *pgd_k); here would be useless on PAE and redundant with the set_pmd()
        # on non-PAE. As would set_p4d/set_pud.
        p4d = self.p4d_offset(pgd, address)
        p4d_k = self.p4d_offset(pgd_k, address)
        if not self.p4d_present(self.p4dp_get(p4d_k)):
            return None
        pud = self.pud_offset(p4d, address)
        pud_k = self.pud_offset(p4d_k, address)
        if not self.pud_present(self.pudp_get(pud_k)):
            return None
        pmd = self.pmd_offset(pud, address)
        pmd_k = self.pmd_offset(pud_k, address)
        if self.pmd_present(self.pmdp_get(pmd)) != self.pmd_present(self.pmdp_get(pmd_k)):
            self.set_pmd(pmd, self.pmdp_get(pmd_k))
        if not self.pmd_present(self.pmdp_get(pmd_k)):
            return None
        if self.pmd_pfn(self.pmdp_get(pmd)) != self.pmd_pfn(self.pmdp_get(pmd_k)):
            raise AssertionError(f"BUG_ON: pmd_pfn differs from init_mm's at {address:#x}")
        return pmd_k

    def arch_sync_kernel_mappings(self, start: int, end: int) -> None:
        """Sync every pmd from ``start & PMD_MASK`` up to ``VMALLOC_END`` into every pgd on
        ``pgd_list``.  As in the kernel, ``end`` is not used."""
        addr = start & self.PMD_MASK
        while addr >= self.TASK_SIZE_MAX and addr < self.VMALLOC_END:
            spin_lock(self.pgd_lock)
            for pgd in list(self.pgd_list):
                # the pgt_lock only for Xen
                pgt_lock = self.pgd_page_get_mm(pgd).page_table_lock
                spin_lock(pgt_lock)
                self.vmalloc_sync_one(pgd, addr)
                spin_unlock(pgt_lock)
            spin_unlock(self.pgd_lock)
            addr = (addr + self.PMD_SIZE) & self.ULONG_MASK


class I386Kernel(Nopmd, X86_32Kernel):
    """2-level i386: ``pgtable-2level.h``, ``pgtable-2level_types.h``, ``pgtable-nopmd.h``."""

    PHYSICAL_MASK_SHIFT = 32  # page_32_types.h, !CONFIG_X86_PAE
    HAS_NX = False  # _PAGE_NX is 0 without CONFIG_X86_64 || CONFIG_X86_PAE
    PFN_INVERT = False  # "No inverted PFNs on 2 level page tables"
    KNL_ERRATUM_MASK = 0  # pgtable_types.h: only CONFIG_X86_64 || CONFIG_X86_PAE
    USE_SPLIT_PMD_PTLOCKS = False  # ARCH_ENABLE_SPLIT_PMD_PTLOCK needs PGTABLE_LEVELS > 2

    def arch_geometry(self) -> None:
        """pgtable-2level_types.h: "traditional i386 two-level paging structure"."""
        self.PAGE_SHIFT = 12
        self.PGDIR_SHIFT = 22
        self.PTRS_PER_PGD = 1024
        self.PTRS_PER_PTE = 1024
        self.SIZEOF_PGD = self.SIZEOF_PTE = 4  # pteval_t, pgdval_t: unsigned long

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        """pgtable-nopmd.h: ``((pmd_t *)(pmd_page_vaddr((pmd_t){ pud })))``."""
        return PmdPtr(self.pmd_page_vaddr(pmd_t(pud)).pa, self.SIZEOF_PMD)

    def pud_leaf(self, pud: pud_t) -> bool:
        """No pud level (``CONFIG_PGTABLE_LEVELS == 2``): never a leaf."""
        return False

    # -- no HAVE_ARCH_HUGE_VMAP: the include/linux/pgtable.h stubs -------------------------

    def arch_vmap_pmd_supported(self, prot: pgprot_t) -> bool:
        return False

    def arch_vmap_pud_supported(self, prot: pgprot_t) -> bool:
        return False

    def pmd_set_huge(self, pmd: PmdPtr, addr: int, prot: pgprot_t) -> int:
        return 0

    def pmd_clear_huge(self, pmd: PmdPtr) -> int:
        return 0

    def pud_set_huge(self, pud: PudPtr, addr: int, prot: pgprot_t) -> int:
        return 0

    def pud_clear_huge(self, pud: PudPtr) -> int:
        return 0


class I386PaeKernel(Nopud, X86_32Kernel):
    """PAE: ``pgtable-3level.h``, ``pgtable-3level_types.h``, ``pgtable-nopud.h``."""

    X86_PAE = True
    HAVE_ARCH_HUGE_VMAP = True  # arch/x86/Kconfig: select ... if X86_64 || X86_PAE
    PHYSICAL_MASK_SHIFT = 52  # page_32_types.h: "beyond the 44 bit limit ... of 32bit long pfns"

    def arch_geometry(self) -> None:
        """pgtable-3level_types.h."""
        self.PAGE_SHIFT = 12
        self.PGDIR_SHIFT = 30
        self.PTRS_PER_PGD = 4
        self.PMD_SHIFT = 21
        self.PTRS_PER_PMD = 512
        self.PTRS_PER_PTE = 512
        self.SIZEOF_PGD = self.SIZEOF_PMD = self.SIZEOF_PTE = 8  # u64

    def derive_sizes(self) -> None:
        super().derive_sizes()
        # pgtable_types.h: "PAE allows Base Address, P, PWT, PCD and AVL bits to be set in PGD
        # entries.  All other bits are Reserved MBZ".
        pgd_pae_phys_mask = self.PHYSICAL_MASK & ~(self.PAGE_SIZE - 1)
        self.PGD_ALLOWED_BITS = (
            pgd_pae_phys_mask | _PAGE_PRESENT | _PAGE_PWT | _PAGE_PCD
            | _PAGE_SOFTW1 | 1 << _PAGE_BIT_SOFTW2 | 1 << _PAGE_BIT_SOFTW3
        )

    def paging_init(self) -> PgdPtr:
        """``swapper_pg_dir`` with its kernel PMD (slot ``KERNEL_PGD_BOUNDARY`` = 3), as
        ``one_md_table_init`` (arch/x86/mm/init_32.c) installs it: ``__pa(pmd) |
        _PAGE_PRESENT``.  The user slots stay empty.  Boot memory: no ctor, not accounted."""
        swapper_pg_dir = super().paging_init()
        for i in range(self.KERNEL_PGD_BOUNDARY, self.PTRS_PER_PGD):
            pmd_table = self.pagetable_alloc("pmd", self.init_mm)
            self.set_pgd(swapper_pg_dir + i, pgd_t(pmd_table | _PAGE_PRESENT))
        return swapper_pg_dir

    # -- native_pgd_val / native_make_pgd mask with PGD_ALLOWED_BITS -----------------------

    def pgdp_get(self, pgdp: PgdPtr) -> pgd_t:
        return pgd_t(self._read(pgdp) & self.PGD_ALLOWED_BITS)

    def p4dp_get(self, p4dp: P4dPtr) -> p4d_t:
        return p4d_t(self._read(p4dp) & self.PGD_ALLOWED_BITS)

    def pudp_get(self, pudp: PudPtr) -> pud_t:
        return pud_t(self._read(pudp) & self.PGD_ALLOWED_BITS)

    def set_pud(self, pudp: PudPtr, pud: pud_t) -> None:
        """``native_set_pud``; ``set_pgd``/``set_p4d`` of the folded levels end here."""
        self._write(pudp, pud & self.PGD_ALLOWED_BITS)

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        """arch/x86/mm/pgtable.c: "almost everything apart from _PAGE_PRESENT is reserved at
        the pmd (PDPT) level" (the CR3 reload of ``flush_tlb_mm`` has nothing to do here)."""
        self.set_pud(pud, pud_t(pmd.pa | _PAGE_PRESENT))
