"""LoongArch64 page-table helpers, 16K pages and 3 levels (``CONFIG_16KB_3LEVEL``).

Follows ``arch/loongarch/include/asm/pgtable.h``, ``pgtable-bits.h``, ``pgalloc.h``,
``page.h``, ``sparsemem.h``, ``arch/loongarch/mm/pgtable.c`` (``pgd_alloc``, ``pgd_init``,
``pmd_init``, ``kernel_pte_init``, ``mk_pmd``, ``set_pmd_at``, ``pagetable_init``),
``arch/loongarch/mm/init.c`` (``invalid_pmd_table``, ``invalid_pte_table``),
``arch/loongarch/mm/cache.c`` (``protection_map``) and ``include/asm-generic/pgtable-nopud.h``,
at Linux v6.18 (read from the stored tree closest to it; the v6.13 change "Set initial pte
entry with PAGE_GLOBAL for kernel space" and the v6.19 32-bit rework's context lines fix the
v6.18 forms of ``set_pte``, ``pte_clear``, ``kernel_pte_init`` and the bit list).  Bit names
come from :mod:`arches.loongarch.bits`.

What is unusual, and kept:

- **Empty directory entries are not 0.**  ``pgd_init`` fills a pgd with the address of
  ``invalid_pmd_table``, ``pmd_init`` a PMD table with ``invalid_pte_table``;
  ``pud_none``/``pmd_none`` compare with those addresses, ``pud_clear``/``pmd_clear`` store
  them.  The refill handler walks straight through them to a PTE with V = 0.
- **Directory entries are kernel virtual addresses** (``pmd_populate`` stores ``(unsigned
  long)pte``: ``CACHE_BASE | pa``); ``pmd_page_vaddr(pmd)`` is ``pmd_val(pmd)`` and
  ``pmd_bad`` is ``pmd_val & ~PAGE_MASK`` -- so a huge PMD is "bad" to ``pmd_bad``.
- **Kernel PTE tables start full of ``_PAGE_GLOBAL``** (``pte_alloc_one_kernel`` ->
  ``kernel_pte_init``) and ``pte_clear`` keeps the old G bit: the two PTEs of a TLB pair
  must agree on G.  ``pte_none`` ignores G.
- ``set_pmd_at`` stores and then ``flush_tlb_all()``; ``pmdp_huge_get_and_clear`` is
  ``pmd_clear``, so a cleared huge PMD points at ``invalid_pte_table`` again.
- Young and dirty are software-managed: V is ``_PAGE_ACCESSED`` (``pte_mkold`` makes the
  entry invalid to the hardware) and D, the hardware write enable, is set only together with
  ``_PAGE_WRITE`` and ``_PAGE_MODIFIED`` (``pte_mkdirty``, ``pte_mkwrite``): a clean writable
  page is read-only to the TLB until the store handler (tlbex.S) marks it.

One departure: the kernel's ``PAGE_KERNEL`` has no ``_PAGE_NO_EXEC`` (vmalloc memory is
executable) and LoongArch defines no ``PAGE_KERNEL_RO``/``PAGE_KERNEL_EXEC``/
``PAGE_KERNEL_ROX`` (include/linux/pgtable.h falls back to ``PAGE_KERNEL``: writable and
executable).  ptshim's kernel ops ask for r, rw, rx or rwx and check the hardware grants
exactly that, so the emulated kernel's ``PAGE_KERNEL``, ``_RO``, ``_ROX`` are what
``set_memory_nx``/``set_memory_ro``/``set_memory_x`` (arch/loongarch/mm/pageattr.c: set or
clear ``_PAGE_NO_EXEC``, clear ``_PAGE_WRITE | _PAGE_DIRTY``) make of the kernel's
``PAGE_KERNEL``, and ``PAGE_KERNEL_EXEC`` is the kernel's ``PAGE_KERNEL`` itself
(``PAGE_KERNEL_LINUX``).

The emulated kernel image holds ``invalid_pg_dir``, ``invalid_pmd_table`` and
``invalid_pte_table`` at fixed physical addresses (:mod:`arches.loongarch.bits`), installed at
boot like the image's BSS, outside the frame allocator; the emulation lists them as tables
of ``init_mm`` (``k.tables_of(init_mm)``), which they are, though the kernel never runs a
ptdesc constructor on them.
"""

from __future__ import annotations

from arches import ArchConfig
from arches.errors import BadInput
from arches.loongarch.bits import (
    _CACHE_CC,
    _CACHE_MASK,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_GLOBAL_SHIFT,
    _PAGE_HGLOBAL,
    _PAGE_HGLOBAL_SHIFT,
    _PAGE_HUGE,
    _PAGE_KERN,
    _PAGE_MODIFIED,
    _PAGE_NO_EXEC,
    _PAGE_NO_READ,
    _PAGE_PLV,
    _PAGE_PRESENT,
    _PAGE_PRESENT_INVALID,
    _PAGE_PROTNONE,
    _PAGE_SPECIAL,
    _PAGE_SWP_EXCLUSIVE,
    _PAGE_USER,
    _PAGE_VALID,
    _PAGE_WRITE,
    CACHE_BASE,
    INVALID_PG_DIR_PA,
    INVALID_PMD_TABLE_PA,
    INVALID_PTE_TABLE_PA,
    TO_PHYS_MASK,
    pfn_mask,
    pfn_pte_shift,
)
from legacy.folding import Nopud
from legacy.loongarch.ptdump import LoongarchPtdump
from legacy.loongarch.tlbflush import LoongarchTlbflush
from legacy.mm_types import mm_struct, ptdesc, vm_area_struct
from legacy.swapops import ShiftedSwapEntry, swp_entry_t
from legacy.types import PgdPtr, PmdPtr, PtePtr, PudPtr, pgprot_t, pmd_t, pte_t, pud_t

# asm/pgtable.h swap entry layout: __SWP_TYPE_SHIFT, __SWP_TYPE_BITS, __SWP_OFFSET_SHIFT
SWP_TYPE_BITS = 7
SWP_TYPE_MASK = (1 << SWP_TYPE_BITS) - 1
SWP_TYPE_SHIFT = 16
SWP_OFFSET_SHIFT = SWP_TYPE_BITS + SWP_TYPE_SHIFT + 1


class LoongarchKernel(ShiftedSwapEntry, Nopud, LoongarchTlbflush, LoongarchPtdump):
    """arch/loongarch/include/asm/pgtable.h with ``CONFIG_PGTABLE_LEVELS = 3`` (pgtable-nopud.h:
    the pgd entry is the folded pud/p4d entry) and ``CONFIG_PAGE_SIZE_16KB``."""

    ARCH_SWP_TYPE_SHIFT = SWP_TYPE_SHIFT  # the swap layout (legacy.swapops.ShiftedSwapEntry)
    ARCH_SWP_TYPE_MASK = SWP_TYPE_MASK
    ARCH_SWP_OFFSET_SHIFT = SWP_OFFSET_SHIFT

    HAVE_ARCH_TRANSPARENT_HUGEPAGE = True
    TRANSPARENT_HUGEPAGE = True
    ARCH_ENABLE_THP_MIGRATION = False
    NUMA_BALANCING = True
    HUGETLB_PAGE = True
    SWP_ENTRY_EMULATED = True
    SOFTWARE_YOUNG_DIRTY = True
    """V is ``_PAGE_ACCESSED`` and D is set by the store handler: an old PTE is invalid and a
    clean writable one read-only to the TLB."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__(config)

    # -- geometry (asm/pgtable.h) ------------------------------------------------------------

    def arch_geometry(self) -> None:
        """``PMD_SHIFT = PAGE_SHIFT + PAGE_SHIFT - 3``, ``PGDIR_SHIFT = PMD_SHIFT + PAGE_SHIFT
        - 3``, ``PTRS_PER_* = PAGE_SIZE >> 3``."""
        self.PAGE_SHIFT = 14
        self.PMD_SHIFT = 2 * self.PAGE_SHIFT - 3
        self.PGDIR_SHIFT = self.PMD_SHIFT + self.PAGE_SHIFT - 3
        self.P4D_SHIFT = self.PUD_SHIFT = self.PGDIR_SHIFT
        n = (1 << self.PAGE_SHIFT) >> 3
        self.PTRS_PER_PGD = self.PTRS_PER_PMD = self.PTRS_PER_PTE = n
        self.PTRS_PER_P4D = self.PTRS_PER_PUD = 1
        self.SIZEOF_PGD = self.SIZEOF_P4D = self.SIZEOF_PUD = 8
        self.SIZEOF_PMD = self.SIZEOF_PTE = 8

    def derive_sizes(self) -> None:
        """Masks and protections (pgtable-bits.h, arch/loongarch/mm/cache.c)."""
        super().derive_sizes()
        self._PFN_SHIFT = pfn_pte_shift(self.PAGE_SHIFT)
        self._PFN_MASK = pfn_mask(self.PAGE_SHIFT)
        self._PAGE_CHG_MASK = (_PAGE_MODIFIED | _PAGE_SPECIAL | self._PFN_MASK | _CACHE_MASK
                               | _PAGE_PLV)
        self._HPAGE_CHG_MASK = self._PAGE_CHG_MASK | _PAGE_HUGE
        self.VA_BITS = self.PGDIR_SHIFT + self.PAGE_SHIFT - 3
        self.TASK_SIZE64 = 1 << self.VA_BITS
        self.USER_PTRS_PER_PGD = max(self.TASK_SIZE64 // self.PGDIR_SIZE, 1)
        self.VMALLOC_START, self.VMALLOC_END = self.config.kernel_range
        self.PAGE_OFFSET = CACHE_BASE
        p = pgprot_t
        readable, writeable = _PAGE_VALID, _PAGE_DIRTY | _PAGE_WRITE
        self.PAGE_NONE = p(_PAGE_PROTNONE | _PAGE_NO_READ | _PAGE_USER | _CACHE_CC)
        self.PAGE_SHARED = p(_PAGE_PRESENT | _PAGE_WRITE | _PAGE_USER | _CACHE_CC)
        self.PAGE_READONLY = p(_PAGE_PRESENT | _PAGE_USER | _CACHE_CC)
        kern = _PAGE_PRESENT | readable | _PAGE_GLOBAL | _PAGE_KERN | _CACHE_CC
        self.PAGE_KERNEL_LINUX = p(kern | writeable)
        """pgtable-bits.h ``PAGE_KERNEL``: no ``_PAGE_NO_EXEC``, so read-write-*execute*;
        include/linux/pgtable.h makes ``PAGE_KERNEL_RO`` and ``PAGE_KERNEL_EXEC`` the same
        value (LoongArch defines neither)."""
        # Departure (module docstring): the four kernel protections ptshim's kernel ops name
        # are what set_memory_nx/_ro/_x (arch/loongarch/mm/pageattr.c) make of PAGE_KERNEL.
        self.PAGE_KERNEL = p(kern | writeable | _PAGE_NO_EXEC)
        self.PAGE_KERNEL_EXEC = self.PAGE_KERNEL_LINUX
        self.PAGE_KERNEL_RO = p(kern | _PAGE_NO_EXEC)
        self.PAGE_KERNEL_ROX = p(kern)
        # arch/loongarch/mm/cache.c protection_map (DECLARE_VM_GET_PAGE_PROT)
        none = p(_CACHE_CC | _PAGE_USER | _PAGE_PROTNONE | _PAGE_NO_EXEC | _PAGE_NO_READ)
        ro = p(_CACHE_CC | _PAGE_VALID | _PAGE_USER | _PAGE_PRESENT | _PAGE_NO_EXEC)
        x = p(_CACHE_CC | _PAGE_VALID | _PAGE_USER | _PAGE_PRESENT)
        rw = p(ro | _PAGE_WRITE)
        rwx = p(x | _PAGE_WRITE)
        self.protection_map = (none, ro, ro, ro, x, x, x, x,
                               none, ro, rw, rw, x, x, rwx, rwx)

    def TASK_SIZE_of(self) -> int:
        return self.TASK_SIZE64

    # -- the kernel image's invalid tables (arch/loongarch/mm/init.c, pgtable.c) -------------

    def _va(self, pa: int) -> int:
        """``(unsigned long)table``: the table's address in the cached DMW window."""
        return CACHE_BASE | pa

    @staticmethod
    def PHYSADDR(v: int) -> int:
        """asm/addrspace.h ``PHYSADDR(a) = a & TO_PHYS_MASK``."""
        return v & TO_PHYS_MASK

    @property
    def invalid_pmd_table(self) -> int:
        """``(unsigned long)invalid_pmd_table``."""
        return self._va(INVALID_PMD_TABLE_PA)

    @property
    def invalid_pte_table(self) -> int:
        """``(unsigned long)invalid_pte_table``."""
        return self._va(INVALID_PTE_TABLE_PA)

    @property
    def invalid_pg_dir(self) -> int:
        return self._va(INVALID_PG_DIR_PA)

    def _fill(self, pa: int, value: int) -> bytes:
        return value.to_bytes(8, "little") * ((1 << self.PAGE_SHIFT) >> 3)

    def paging_init(self) -> PgdPtr:
        """The image's BSS tables, then ``pagetable_init``: ``pgd_init(swapper_pg_dir)``,
        ``pgd_init(invalid_pg_dir)``, ``pmd_init(invalid_pmd_table)``."""
        self.mem.load_frame(INVALID_PTE_TABLE_PA, bytes(1 << self.PAGE_SHIFT))
        self.mem.load_frame(INVALID_PMD_TABLE_PA,
                            self._fill(INVALID_PMD_TABLE_PA, self.invalid_pte_table))
        self.mem.load_frame(INVALID_PG_DIR_PA,
                            self._fill(INVALID_PG_DIR_PA, self.invalid_pmd_table))
        # Bookkeeping, not a kernel step: the image's tables are init_mm's (never freed).
        for pa, level in ((INVALID_PG_DIR_PA, "pgd"), (INVALID_PMD_TABLE_PA, "pmd"),
                          (INVALID_PTE_TABLE_PA, "pte")):
            self.ptdescs[pa] = ptdesc(pa=pa, level=level, mm=self.init_mm)
        pgd = super().paging_init()
        self.pgd_init(pgd.pa)
        return pgd

    def pgd_init(self, pa: int) -> None:
        """arch/loongarch/mm/pgtable.c: every entry = ``invalid_pmd_table`` (3 levels).  The
        stores go to a table no root reaches yet; the emulation copies
        ``invalid_pg_dir``, which holds exactly those entries."""
        self.mem.copy(pa, INVALID_PG_DIR_PA, 1 << self.PAGE_SHIFT)

    def pmd_init(self, pa: int) -> None:
        """arch/loongarch/mm/pgtable.c: every entry = ``invalid_pte_table`` (a copy of
        ``invalid_pmd_table``, which holds exactly that)."""
        self.mem.copy(pa, INVALID_PMD_TABLE_PA, 1 << self.PAGE_SHIFT)

    def kernel_pte_init(self, pa: int) -> None:
        """arch/loongarch/mm/pgtable.c: every entry = ``_PAGE_GLOBAL`` (an unrolled loop of
        stores: a ``memset64``, :meth:`~arches.memory.PhysMem.fill`)."""
        self.mem.fill(pa, 8, _PAGE_GLOBAL, self.PTRS_PER_PTE)

    # -- allocation (asm/pgalloc.h, arch/loongarch/mm/pgtable.c) -----------------------------

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """A page, ``pgd_init``, then ``memcpy`` of the ``PTRS_PER_PGD -
        USER_PTRS_PER_PGD`` kernel entries of ``init_mm`` -- none with 16K/3 levels."""
        pa = self._pagetable_alloc("pgd", mm)
        if pa is None:
            return None
        self.pgd_init(pa)
        n = self.USER_PTRS_PER_PGD
        if n < self.PTRS_PER_PGD:
            self.mem.copy(pa + 8 * n, self.init_mm.pgd.pa + 8 * n,
                          (self.PTRS_PER_PGD - n) * 8)
        return PgdPtr(pa, self.SIZEOF_PGD)

    def pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        self.pagetable_free(pgd.pa)

    def pmd_alloc_one(self, mm: mm_struct, addr: int) -> PmdPtr | None:
        """``__HAVE_ARCH_PMD_ALLOC_ONE``: a page with ``pagetable_pmd_ctor``, then
        ``pmd_init``."""
        pmd = super().pmd_alloc_one(mm, addr)
        if pmd is not None:
            self.pmd_init(pmd.pa)
        return pmd

    def pte_alloc_one_kernel(self, mm: mm_struct) -> PtePtr | None:
        """``__HAVE_ARCH_PTE_ALLOC_ONE_KERNEL``: ``__pte_alloc_one_kernel`` then
        ``kernel_pte_init``."""
        pte = super().pte_alloc_one_kernel(mm)
        if pte is not None:
            self.kernel_pte_init(pte.pa)
        return pte

    # -- pud = the pgd entry (pgtable-nopud.h folds pud into p4d into pgd) --------------------

    def pud_none(self, pud: pud_t) -> bool:
        """"Empty pud entries point to the invalid_pmd_table"."""
        return pud == self.invalid_pmd_table

    def pud_bad(self, pud: pud_t) -> bool:
        return bool(pud & ~self.PAGE_MASK & self.ULONG_MASK)

    def pud_present(self, pud: pud_t) -> bool:
        return pud != self.invalid_pmd_table

    def pud_clear(self, pudp: PudPtr) -> None:
        self.set_pud(pudp, pud_t(self.invalid_pmd_table))

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        """``(pmd_t *)pud_val(pud)``: a kernel address, ``__pa`` of it here."""
        return PmdPtr(self.PHYSADDR(pud), self.SIZEOF_PMD)

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        self.set_pud(pud, pud_t(self._va(pmd.pa)))

    def pmd_index(self, a: int) -> int:
        return (a >> self.PMD_SHIFT) & (self.PTRS_PER_PMD - 1)

    def pmd_offset(self, pud: PudPtr, a: int) -> PmdPtr:
        return self.pud_pgtable(self.pudp_get(pud)) + self.pmd_index(a)

    # -- pmd -----------------------------------------------------------------------------------

    def pmd_none(self, pmd: pmd_t) -> bool:
        """"Empty pmd entries point to the invalid_pte_table"."""
        return pmd == self.invalid_pte_table

    def pmd_bad(self, pmd: pmd_t) -> bool:
        return bool(pmd & ~self.PAGE_MASK & self.ULONG_MASK)

    def pmd_present(self, pmd: pmd_t) -> bool:
        if pmd & _PAGE_HUGE:
            return bool(pmd & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PRESENT_INVALID))
        return pmd != self.invalid_pte_table

    def pmd_clear(self, pmdp: PmdPtr) -> None:
        self.set_pmd(pmdp, pmd_t(self.invalid_pte_table))

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        """``pmd_val(pmd)``, the PTE table's kernel address (``__pa`` of it here)."""
        return PtePtr(self.PHYSADDR(pmd), self.SIZEOF_PTE)

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        """``(pmd_val(pmd) & _PAGE_HUGE) != 0``."""
        return bool(pmd & _PAGE_HUGE)

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_HUGE) and self.pmd_present(pmd)

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t(self._va(pte.pa)))

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        """``set_pmd(pmd, __pmd((unsigned long)page_address(pte)))``."""
        self.set_pmd(pmd, pmd_t(self._va(pte.pa)))

    def set_pmd_at(self, mm: mm_struct, addr: int, pmdp: PmdPtr, pmd: pmd_t) -> None:
        """arch/loongarch/mm/pgtable.c: ``*pmdp = pmd; flush_tlb_all();``."""
        self._write(pmdp, pmd)
        self.flush_tlb_all()

    def pmd_pfn(self, pmd: pmd_t) -> int:
        return (pmd & self._PFN_MASK) >> self._PFN_SHIFT

    def pfn_pmd(self, page_nr: int, pgprot: pgprot_t) -> pmd_t:
        self._check_pfn(page_nr, "pfn_pmd")
        return pmd_t((page_nr << self._PFN_SHIFT) | pgprot)

    def mk_pmd(self, pfn: int, pgprot: pgprot_t) -> pmd_t:
        """arch/loongarch/mm/pgtable.c ``mk_pmd(page, prot)``: pages named by pfn."""
        return self.pfn_pmd(pfn, pgprot)

    def pmd_pgprot(self, pmd: pmd_t) -> pgprot_t:
        return pgprot_t(pmd & ~self._PFN_MASK & self.ULONG_MASK)

    def pmd_mkhuge(self, pmd: pmd_t) -> pmd_t:
        """G moves to HG (bit 12), then ``_PAGE_HUGE``."""
        g = pmd & _PAGE_GLOBAL
        v = (pmd & ~_PAGE_GLOBAL) | (g << (_PAGE_HGLOBAL_SHIFT - _PAGE_GLOBAL_SHIFT))
        return pmd_t((v | _PAGE_HUGE) & self.ULONG_MASK)

    def pmd_write(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_WRITE)

    def pmd_mkwrite_novma(self, pmd: pmd_t) -> pmd_t:
        v = pmd | _PAGE_WRITE
        if v & _PAGE_MODIFIED:
            v |= _PAGE_DIRTY
        return pmd_t(v)

    def pmd_mkwrite(self, pmd: pmd_t, vma: vm_area_struct | None = None) -> pmd_t:
        return self.pmd_mkwrite_novma(pmd)

    def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~(_PAGE_WRITE | _PAGE_DIRTY) & self.ULONG_MASK)

    def pmd_dirty(self, pmd: pmd_t) -> bool:
        return bool(pmd & (_PAGE_DIRTY | _PAGE_MODIFIED))

    def pmd_mkclean(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~(_PAGE_DIRTY | _PAGE_MODIFIED) & self.ULONG_MASK)

    def pmd_mkdirty(self, pmd: pmd_t) -> pmd_t:
        v = pmd | _PAGE_MODIFIED
        if v & _PAGE_WRITE:
            v |= _PAGE_DIRTY
        return pmd_t(v)

    def pmd_young(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_ACCESSED)

    def pmd_mkold(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~_PAGE_ACCESSED & self.ULONG_MASK)

    def pmd_mkyoung(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | _PAGE_ACCESSED)

    def pmd_modify(self, pmd: pmd_t, newprot: pgprot_t) -> pmd_t:
        return pmd_t((pmd & self._HPAGE_CHG_MASK) | (newprot & ~self._HPAGE_CHG_MASK))

    def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t:
        """Sets ``_PAGE_PRESENT_INVALID`` (so ``pmd_present`` stays true), clears
        ``_PAGE_PRESENT | _PAGE_VALID | _PAGE_DIRTY | _PAGE_PROTNONE``."""
        v = (pmd | _PAGE_PRESENT_INVALID) & ~(_PAGE_PRESENT | _PAGE_VALID | _PAGE_DIRTY
                                              | _PAGE_PROTNONE)
        return pmd_t(v & self.ULONG_MASK)

    def pmd_protnone(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_PROTNONE)

    def pmd_special(self, pmd: pmd_t) -> bool:
        return False

    def pmdp_huge_get_and_clear(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        """``old = *pmdp; pmd_clear(pmdp)``: the entry points at ``invalid_pte_table``."""
        old = self.pmdp_get(pmdp)
        self.pmd_clear(pmdp)
        return old

    # -- pud leaves: none (no PUD THP, no huge vmap) -------------------------------------------

    def pud_pfn(self, pud: pud_t) -> int:
        return (pud & self._PFN_MASK) >> self._PFN_SHIFT

    def pfn_pud(self, page_nr: int, pgprot: pgprot_t) -> pud_t:
        return pud_t((page_nr << self._PFN_SHIFT) | pgprot)

    def pud_pgprot(self, pud: pud_t) -> pgprot_t:
        return pgprot_t(pud & ~self._PFN_MASK & self.ULONG_MASK)

    def pud_modify(self, pud: pud_t, newprot: pgprot_t) -> pud_t:
        return pud_t((pud & self._HPAGE_CHG_MASK) | (newprot & ~self._HPAGE_CHG_MASK))

    def pud_mkhuge(self, pud: pud_t) -> pud_t:
        return pud_t(pud | _PAGE_HUGE)

    def pud_write(self, pud: pud_t) -> bool:
        return bool(pud & _PAGE_WRITE)

    def pud_wrprotect(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~(_PAGE_WRITE | _PAGE_DIRTY) & self.ULONG_MASK)

    def pud_mkold(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~_PAGE_ACCESSED & self.ULONG_MASK)

    # -- pfn and conversions ------------------------------------------------------------------

    def _check_pfn(self, pfn: int, what: str) -> None:
        """Not in the kernel (``pfn_pte`` trusts its caller): a pfn wider than ``_PFN_MASK``
        would spill into the software/NR/NX bits, so the emulation refuses it."""
        if pfn < 0 or (pfn << self._PFN_SHIFT) & ~self._PFN_MASK:
            raise BadInput(f"{what}: pfn {pfn:#x} does not fit the entry's PFN field")

    def pte_pfn(self, pte: pte_t) -> int:
        return (pte & self._PFN_MASK) >> self._PFN_SHIFT

    def pfn_pte(self, page_nr: int, pgprot: pgprot_t) -> pte_t:
        self._check_pfn(page_nr, "pfn_pte")
        return pte_t((page_nr << self._PFN_SHIFT) | pgprot)

    def mk_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t:
        return self.pfn_pte(pfn, pgprot)

    def pte_pgprot(self, pte: pte_t) -> pgprot_t:
        return pgprot_t(pte & ~self._PFN_MASK & self.ULONG_MASK)

    def pte_advance_pfn(self, pte: pte_t, nr: int) -> pte_t:
        return pte_t(pte + (nr << self._PFN_SHIFT))

    def pgprot_large_2_4k(self, pgprot: pgprot_t) -> pgprot_t:
        """Not a LoongArch function (x86's name for the split hook of
        :mod:`legacy.mm.huge_memory`): a huge PMD's protection as a PTE's -- the inverse of
        ``pmd_mkhuge``, as tlbex.S's huge path does for the TLB: drop ``_PAGE_HUGE`` (bit 6,
        which in a PTE is ``_PAGE_GLOBAL``) and move ``_PAGE_HGLOBAL`` back to
        ``_PAGE_GLOBAL``."""
        v = pgprot & ~(_PAGE_HUGE | _PAGE_HGLOBAL)
        if pgprot & _PAGE_HGLOBAL:
            v |= _PAGE_GLOBAL
        return pgprot_t(v & self.ULONG_MASK)

    def pgprot_nx(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t(prot | _PAGE_NO_EXEC)

    # -- pte predicates and modifiers -----------------------------------------------------------

    def pte_none(self, pte: pte_t) -> bool:
        """``!(pte_val(pte) & ~_PAGE_GLOBAL)``."""
        return not pte & ~_PAGE_GLOBAL

    def pte_present(self, pte: pte_t) -> bool:
        return bool(pte & (_PAGE_PRESENT | _PAGE_PROTNONE))

    def pte_accessible(self, mm: mm_struct, pte: pte_t) -> bool:
        if pte & _PAGE_PRESENT:
            return True
        return bool(pte & _PAGE_PROTNONE) and bool(getattr(mm, "tlb_flush_pending", 0))

    def pte_write(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_WRITE)

    def pte_young(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_ACCESSED)

    def pte_dirty(self, pte: pte_t) -> bool:
        return bool(pte & (_PAGE_DIRTY | _PAGE_MODIFIED))

    def pte_special(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SPECIAL)

    def pte_huge(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_HUGE)

    def pte_protnone(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_PROTNONE)

    def pte_no_exec(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_NO_EXEC)

    def pte_mkold(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_ACCESSED & self.ULONG_MASK)

    def pte_mkyoung(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_ACCESSED)

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~(_PAGE_DIRTY | _PAGE_MODIFIED) & self.ULONG_MASK)

    def pte_mkdirty(self, pte: pte_t) -> pte_t:
        v = pte | _PAGE_MODIFIED
        if v & _PAGE_WRITE:
            v |= _PAGE_DIRTY
        return pte_t(v)

    def pte_mkwrite_novma(self, pte: pte_t) -> pte_t:
        v = pte | _PAGE_WRITE
        if v & _PAGE_MODIFIED:
            v |= _PAGE_DIRTY
        return pte_t(v)

    def pte_mkwrite(self, pte: pte_t, vma: vm_area_struct | None = None) -> pte_t:
        """include/linux/pgtable.h: ``pte_mkwrite_novma`` (no shadow stacks here)."""
        return self.pte_mkwrite_novma(pte)

    def pte_wrprotect(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~(_PAGE_WRITE | _PAGE_DIRTY) & self.ULONG_MASK)

    def pte_mkhuge(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_HUGE)

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SPECIAL)

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        return pte_t((pte & self._PAGE_CHG_MASK) | (newprot & ~self._PAGE_CHG_MASK))

    # -- setters ------------------------------------------------------------------------------

    def set_pte(self, ptep: PtePtr, pte: pte_t) -> None:
        """``WRITE_ONCE(*ptep, pteval)`` (the buddy-G update went with kernel_pte_init)."""
        self._write(ptep, pte)

    def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t, nr: int) -> None:
        """include/linux/pgtable.h generic ``set_ptes``: ``set_pte`` then ``pte_next_pfn``."""
        while True:
            self.set_pte(ptep, pte)
            nr -= 1
            if nr == 0:
                break
            ptep = ptep + 1
            pte = self.pte_advance_pfn(pte, 1)

    def set_pte_at(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t) -> None:
        self.set_pte(ptep, pte)

    def pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        """Keep the old ``_PAGE_GLOBAL``: ``pte_val(pte) &= _PAGE_GLOBAL``."""
        self.set_pte(ptep, pte_t(self.ptep_get(ptep) & _PAGE_GLOBAL))

    # -- access/young helpers: LoongArch has no __HAVE_ARCH_ version of any of these, so
    # -- include/linux/pgtable.h and mm/pgtable-generic.c provide them ------------------------

    def ptep_set_access_flags(self, vma: vm_area_struct, address: int, ptep: PtePtr,
                              entry: pte_t, dirty: int) -> int:
        """mm/pgtable-generic.c: store ``entry`` if it differs, then
        ``flush_tlb_fix_spurious_fault``."""
        changed = not self.pte_same(self.ptep_get(ptep), entry)
        if changed:
            self.set_pte_at(vma.vm_mm, address, ptep, entry)
            self.flush_tlb_fix_spurious_fault(vma, address, ptep)
        return int(changed)

    def ptep_test_and_clear_young(self, vma: vm_area_struct, address: int,
                                  ptep: PtePtr) -> int:
        """include/linux/pgtable.h: ``set_pte_at(pte_mkold(pte))`` if young."""
        pte = self.ptep_get(ptep)
        if not self.pte_young(pte):
            return 0
        self.set_pte_at(vma.vm_mm, address, ptep, self.pte_mkold(pte))
        return 1

    def ptep_clear_flush_young(self, vma: vm_area_struct, address: int, ptep: PtePtr) -> int:
        """mm/pgtable-generic.c: ``flush_tlb_page`` when the pte was young (on LoongArch
        the old pte is invalid to the TLB: V is the accessed bit)."""
        young = self.ptep_test_and_clear_young(vma, address, ptep)
        if young:
            self.flush_tlb_page(vma, address)
        return young

    def pmdp_set_access_flags(self, vma: vm_area_struct, address: int, pmdp: PmdPtr,
                              entry: pmd_t, dirty: int) -> int:
        """mm/pgtable-generic.c (THP): ``set_pmd_at`` (which flushes everything here) and
        ``flush_pmd_tlb_range``."""
        if address & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_set_access_flags: VM_BUG_ON(address & ~HPAGE_PMD_MASK)")
        changed = not self.pmd_same(self.pmdp_get(pmdp), entry)
        if changed:
            self.set_pmd_at(vma.vm_mm, address, pmdp, entry)
            self.flush_pmd_tlb_range(vma, address, (address + self.PMD_SIZE) & self.ULONG_MASK)
        return int(changed)

    def pmdp_test_and_clear_young(self, vma: vm_area_struct, address: int,
                                  pmdp: PmdPtr) -> int:
        """include/linux/pgtable.h (THP): ``set_pmd_at(pmd_mkold(pmd))`` if young."""
        pmd = self.pmdp_get(pmdp)
        if not self.pmd_young(pmd):
            return 0
        self.set_pmd_at(vma.vm_mm, address, pmdp, self.pmd_mkold(pmd))
        return 1

    def pmdp_clear_flush_young(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> int:
        """mm/pgtable-generic.c: ``flush_pmd_tlb_range`` when it was young."""
        young = self.pmdp_test_and_clear_young(vma, address, pmdp)
        if young:
            self.flush_pmd_tlb_range(vma, address, (address + self.PMD_SIZE) & self.ULONG_MASK)
        return young

    def pmdp_collapse_flush(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """mm/pgtable-generic.c: ``pmdp_huge_get_and_clear`` then ``flush_tlb_range`` of
        the huge page."""
        if address & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_collapse_flush: VM_BUG_ON(address & ~HPAGE_PMD_MASK)")
        pmd = self.pmdp_huge_get_and_clear(vma.vm_mm, address, pmdp)
        self.flush_tlb_range(vma, address, (address + self.PMD_SIZE) & self.ULONG_MASK)
        return pmd

    # -- swap entries (asm/pgtable.h "Format of 64bit swap PTEs") -----------------------------

    def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        return swp_entry_t(pte)

    def _swp_entry_to_pte(self, x: swp_entry_t) -> pte_t:
        return pte_t(x)

    def _pmd_to_swp_entry(self, pmd: pmd_t) -> swp_entry_t:
        return swp_entry_t(pmd)

    def _swp_entry_to_pmd(self, x: swp_entry_t) -> pmd_t:
        """``(x).val | _PAGE_HUGE``."""
        return pmd_t(x | _PAGE_HUGE)

    def pte_swp_exclusive(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SWP_EXCLUSIVE)

    def pte_swp_mkexclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SWP_EXCLUSIVE)

    def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_SWP_EXCLUSIVE & self.ULONG_MASK)


__all__ = ["LoongarchKernel"]
