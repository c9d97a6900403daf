"""book3s64 radix page-table helpers (Linux v6.18), ``ppc64-radix-4k`` and ``ppc64-radix-64k``.

Follows ``arch/powerpc/include/asm/book3s/64/pgtable.h`` (bits, predicates, modifiers, swap
format, ``pte_update`` users), ``radix.h`` (``radix__pte_none``, ``radix__p?d_bad``,
``radix__pte_update``, ``radix__ptep_get_and_clear_full``), ``radix-4k.h``/``radix-64k.h``
(index and fragment sizes), ``pgalloc.h`` (``radix__pgd_alloc``, ``pud_alloc_one`` from
``PGT_CACHE(PUD_CACHE_INDEX)``, ``pmd_fragment_alloc``, ``*_populate``),
``arch/powerpc/mm/pgtable-frag.c`` and ``book3s64/pgtable.c`` (fragments:
:mod:`legacy.ppc64.frag`; ``ptep_modify_prot_start``), ``book3s64/radix_pgtable.c``
(``radix__early_init_mmu``'s table sizes, ``radix__ptep_set_access_flags``,
``radix__ptep_modify_prot_commit``, execute-only ``protection_map``),
``arch/powerpc/mm/pgtable.c`` (``set_ptes``, ``ptep_set_access_flags``) and
``mm/book3s64/mmu_context.c`` (``init_new_context``/``destroy_context``: the fragment
caches).  Read from stored copies of torvalds/linux (pgtable-frag.c at 00c010e1, the v6.18
era; pgtable.h, pgalloc.h and radix.h from older stored copies, adjusted for what v6.18
removed: ``pte_savedwrite`` (v6.2) and ``_PAGE_DEVMAP`` (v6.17)).

What is surprising, and emulated:

- Table sizes are the *kernel's*, not a page: the pgd is 8192 entries (64 KiB) with both page
  sizes -- an order-4 block with 4K pages (``radix__pgd_alloc``), one page with 64K; PUD
  tables are 4 KiB objects of the ``pgtable-2^9`` slab cache (16 to a 64K page); PMD
  tables are 4 KiB *fragments* and 64K PTE tables 256-byte fragments (32 entries), 16 and
  256 to a page, handed out per mm from ``mm->context``.
- Entries are big-endian whatever the CPU; a directory entry carries its next table's
  size (``PMD_VAL_BITS = _PAGE_PRESENT | RADIX_PTE_INDEX_SIZE``...).
- ``pte_none`` ignores R and C; PROT_NONE is a *valid* leaf (``_PAGE_PRIVILEGED``, no
  RWX); ``pte_mkwrite`` sets read too; ``pte_present`` is also true for ``_PAGE_INVALID |
  _PAGE_PTE`` (``ptep_modify_prot_start`` clears ``_PAGE_PRESENT`` for the duration).
- The kernel translates through its own tree (PID 0): no kernel half in a process pgd.

Huge leaves: THP at the pmd (2M) and pud (1G) level (book3s64/pgtable.c ``pfn_pmd``,
``pmd_modify``, ``set_pmd_at``, ``pmdp_invalidate``; radix_pgtable.c
``radix__pmdp_huge_get_and_clear``) and huge vmap (radix_pgtable.c ``pmd_set_huge``,
``pud_set_huge``, ``pmd_free_pte_page``, ``pud_free_pmd_page``).  The deposited PTE table
(``radix__pgtable_trans_huge_deposit``) is the generic list of :mod:`legacy.huge_mm`.  Not
emulated: hugetlb, storage keys, hash, the POWER9 nest-MMU (``copros``) flushes.
"""

from __future__ import annotations

from arches import ArchConfig
from arches.errors import BadInput, OutOfMemory
from arches.ppc64.bits import (
    _PAGE_ACCESSED,
    _PAGE_BASE,
    _PAGE_CACHE_CTL,
    _PAGE_DIRTY,
    _PAGE_EXEC,
    _PAGE_INVALID,
    _PAGE_KERNEL_RO,
    _PAGE_KERNEL_ROX,
    _PAGE_KERNEL_RW,
    _PAGE_KERNEL_RWX,
    _PAGE_NON_IDEMPOTENT,
    _PAGE_PA_MAX,
    _PAGE_PRESENT,
    _PAGE_PRIVILEGED,
    _PAGE_PTE,
    _PAGE_READ,
    _PAGE_RW,
    _PAGE_RWX,
    _PAGE_SOFT_DIRTY,
    _PAGE_SPECIAL,
    _PAGE_SWP_EXCLUSIVE,
    _PAGE_SWP_SOFT_DIRTY,
    _PAGE_TOLERANT,
    _PAGE_WRITE,
    MASKED_BITS,
    RADIX_BAD_BITS,
    RADIX_PGD_INDEX_SIZE,
    RADIX_PMD_INDEX_SIZE,
    RADIX_PTE_INDEX_SIZE_4K,
    RADIX_PTE_INDEX_SIZE_64K,
    RADIX_PTE_NONE_MASK,
    RADIX_PUD_INDEX_SIZE,
)
from arches.ppc64.registers import USER_PID
from legacy.folding import Nop4d
from legacy.mm_types import mm_struct, ptdesc, spinlock_t, vm_area_struct
from legacy.ppc64.frag import FragAllocator
from legacy.ppc64.ptdump import Ppc64Ptdump
from legacy.ppc64.tlbflush import RadixTlbflush
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

MASK64 = (1 << 64) - 1
SWP_TYPE_BITS = 5
PGD_ORDER_4K = 4
"""``radix__pgd_alloc`` with 4K pages: ``alloc_pages(..., 4)`` (64 KiB)."""


class RadixKernel(RadixTlbflush, Ppc64Ptdump, Nop4d):
    """Linux on book3s64 with the radix MMU (``radix_enabled()``), one base page size."""

    SEPARATE_KERNEL_ROOT = True
    """Quadrant 3 walks PID 0's process-table entry: ``swapper_pg_dir``."""
    SWP_ENTRY_EMULATED = True
    MEM_SOFT_DIRTY = True
    NUMA_BALANCING = True
    # arch/powerpc/Kconfig and platforms/Kconfig.cputype (PPC_BOOK3S_64, PPC_RADIX_MMU)
    HAVE_ARCH_TRANSPARENT_HUGEPAGE = True
    TRANSPARENT_HUGEPAGE = True
    HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD = True
    ARCH_ENABLE_THP_MIGRATION = True
    HAVE_ARCH_HUGE_VMAP = True
    _HAVE_ARCH_PMDP_INVALIDATE = True
    PTE_INDEX_SIZE = RADIX_PTE_INDEX_SIZE_4K

    def __init__(self, config: ArchConfig) -> None:
        want = {12: RADIX_PTE_INDEX_SIZE_4K, 16: RADIX_PTE_INDEX_SIZE_64K}.get(config.page_shift)
        if want != self.PTE_INDEX_SIZE:
            raise ValueError(f"{type(self).__name__} cannot boot on {config.name}")
        self._pgd_head: dict[int, int] = {}
        super().__init__(config)

    # -- geometry (radix_pgtable.c radix__early_init_mmu, pgtable.h) ---------------------

    def arch_geometry(self) -> None:
        self.PAGE_SHIFT = self.config.page_shift
        self.PMD_SHIFT = self.PAGE_SHIFT + self.PTE_INDEX_SIZE
        self.PUD_SHIFT = self.PMD_SHIFT + RADIX_PMD_INDEX_SIZE
        self.PGDIR_SHIFT = self.PUD_SHIFT + RADIX_PUD_INDEX_SIZE
        self.PTRS_PER_PTE = 1 << self.PTE_INDEX_SIZE
        self.PTRS_PER_PMD = 1 << RADIX_PMD_INDEX_SIZE
        self.PTRS_PER_PUD = 1 << RADIX_PUD_INDEX_SIZE
        self.PTRS_PER_PGD = 1 << RADIX_PGD_INDEX_SIZE
        self.SIZEOF_PGD = self.SIZEOF_PUD = self.SIZEOF_PMD = self.SIZEOF_PTE = 8
        self.PTE_FRAG_SIZE_SHIFT = self.PTE_INDEX_SIZE + 3
        self.PMD_FRAG_SIZE_SHIFT = RADIX_PMD_INDEX_SIZE + 3
        self.PTE_FRAG_NR = self.config.page_size >> self.PTE_FRAG_SIZE_SHIFT
        self.PMD_FRAG_NR = self.config.page_size >> self.PMD_FRAG_SIZE_SHIFT
        self.PMD_VAL_BITS = _PAGE_PRESENT | self.PTE_INDEX_SIZE
        self.PUD_VAL_BITS = _PAGE_PRESENT | RADIX_PMD_INDEX_SIZE
        self.PGD_VAL_BITS = _PAGE_PRESENT | RADIX_PUD_INDEX_SIZE
        self.pte_frags = FragAllocator(self, "pte", self.PTE_FRAG_SIZE_SHIFT)
        self.pmd_frags = FragAllocator(self, "pmd", self.PMD_FRAG_SIZE_SHIFT)
        # pgtable_cache_init(): PGT_CACHE(PUD_CACHE_INDEX), "pgtable-2^9", objects of
        # sizeof(void *) << 9, aligned to their size (arch/powerpc/mm/init-common.c)
        self.pud_cache = self.kmem_cache_create(
            f"pgtable-2^{RADIX_PUD_INDEX_SIZE}", 8 << RADIX_PUD_INDEX_SIZE,
            8 << RADIX_PUD_INDEX_SIZE, "pud")

    def derive_sizes(self) -> None:
        super().derive_sizes()
        self.PTE_RPN_MASK = ((1 << _PAGE_PA_MAX) - 1) & self.PAGE_MASK
        self._PAGE_CHG_MASK = (self.PTE_RPN_MASK | _PAGE_DIRTY | _PAGE_ACCESSED
                               | _PAGE_SPECIAL | _PAGE_PTE | _PAGE_SOFT_DIRTY)
        p = pgprot_t
        self.PAGE_NONE = p(_PAGE_BASE | _PAGE_PRIVILEGED)
        self.PAGE_SHARED = p(_PAGE_BASE | _PAGE_RW)
        self.PAGE_SHARED_X = p(_PAGE_BASE | _PAGE_RW | _PAGE_EXEC)
        self.PAGE_COPY = p(_PAGE_BASE | _PAGE_READ)
        self.PAGE_COPY_X = p(_PAGE_BASE | _PAGE_READ | _PAGE_EXEC)
        self.PAGE_READONLY = p(_PAGE_BASE | _PAGE_READ)
        self.PAGE_READONLY_X = p(_PAGE_BASE | _PAGE_READ | _PAGE_EXEC)
        self.PAGE_EXECONLY = p(_PAGE_BASE | _PAGE_EXEC)
        self.PAGE_KERNEL = p(_PAGE_BASE | _PAGE_KERNEL_RW)
        self.PAGE_KERNEL_X = p(_PAGE_BASE | _PAGE_KERNEL_RWX)
        self.PAGE_KERNEL_RO = p(_PAGE_BASE | _PAGE_KERNEL_RO)
        self.PAGE_KERNEL_ROX = p(_PAGE_BASE | _PAGE_KERNEL_ROX)
        self.PAGE_KERNEL_EXEC = self.PAGE_KERNEL_X
        # arch/powerpc/mm/book3s64/pgtable.c protection_map, with radix__early_init_mmu's
        # execute-only entries ("Radix directly supports execute-only page protections")
        n, r, c, s = self.PAGE_NONE, self.PAGE_READONLY, self.PAGE_COPY, self.PAGE_SHARED
        rx, cx, sx, xo = self.PAGE_READONLY_X, self.PAGE_COPY_X, self.PAGE_SHARED_X, \
            self.PAGE_EXECONLY
        self.protection_map = (n, r, c, c, xo, rx, cx, cx, n, r, s, s, xo, rx, sx, sx)
        self.VMALLOC_START, self.VMALLOC_END = self.config.kernel_range

    # -- mm->context (mmu_context.c) -------------------------------------------------------

    def init_new_context(self, mm: mm_struct) -> None:
        """``init_new_context``: a new context id (the PID, here the emulation's one user
        PID) and empty fragment caches -- ``dup_mm``'s copy of the parent's must not be
        used (``pte_frag_set(&mm->context, NULL)``)."""
        mm.context.pop("pte_frag", None)
        mm.context.pop("pmd_frag", None)
        mm.context["id"] = USER_PID

    def destroy_pagetable_cache(self, mm: mm_struct) -> None:
        """``destroy_pagetable_cache`` (from ``destroy_context``): ``pte_frag_destroy``,
        ``pmd_frag_destroy``."""
        self.pte_frags.destroy(mm)
        self.pmd_frags.destroy(mm)

    def mmdrop(self, mm: mm_struct) -> None:
        """``__mmdrop``: ``destroy_context`` (the fragment caches) before ``mm_free_pgd``."""
        self.destroy_pagetable_cache(mm)
        super().mmdrop(mm)

    # -- the pgd (pgalloc.h radix__pgd_alloc) ---------------------------------------------------

    def frame_of(self, pa: int) -> int:
        """The page holding the ``struct ptdesc`` of the table at ``pa``: a 4K kernel's pgd
        is an order-4 block described by its first page."""
        frame = pa & ~(self.config.page_size - 1)
        return self._pgd_head.get(frame, frame)

    def table_desc(self, pa: int) -> ptdesc | None:
        """A fragment's own stand-in (its page's lock), else the generic answer."""
        for frags in (self.pte_frags, self.pmd_frags):
            if frags.page_of(pa) is not None:
                return self.ptdescs.get(frags.fragment_base(pa))
        return super().table_desc(pa)

    def _radix_pgd_alloc(self, mm: mm_struct) -> int | None:
        if self.PAGE_SHIFT == 16:
            return self._pagetable_alloc("pgd", mm)
        try:
            pa = self.mem.alloc_frames(PGD_ORDER_4K)
        except OutOfMemory:
            return None
        self.ptdescs[pa] = ptdesc(pa=pa, level="pgd", mm=mm)
        for i in range(1 << PGD_ORDER_4K):
            self._pgd_head[pa + i * self.config.page_size] = pa
        return pa

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """``radix__pgd_alloc``: one zeroed page (64K) or an order-4 block (4K); then
        ``init_new_context`` (kernel/fork.c ``mm_init`` runs it right after)."""
        pa = self._radix_pgd_alloc(mm)
        if pa is None:
            return None
        self.init_new_context(mm)
        return PgdPtr(pa, self.SIZEOF_PGD)

    def pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        """``radix__pgd_free``: ``free_page`` / ``free_pages(pgd, 4)``."""
        if self.PAGE_SHIFT == 16:
            self.pagetable_free(pgd.pa)
            return
        del self.ptdescs[pgd.pa]
        for i in range(1 << PGD_ORDER_4K):
            frame = pgd.pa + i * self.config.page_size
            del self._pgd_head[frame]
            self.mem.free_frame(frame)

    def paging_init(self) -> PgdPtr:
        """``swapper_pg_dir`` (PID 0's tree), as big as a process pgd."""
        pa = self._radix_pgd_alloc(self.init_mm)
        if pa is None:
            raise OutOfMemory("no memory for swapper_pg_dir")
        self.init_mm.context["id"] = 0
        return PgdPtr(pa, self.SIZEOF_PGD)

    # -- pud, pmd and pte tables (pgalloc.h, pgtable-frag.c) ----------------------------

    def pud_alloc_one(self, mm: mm_struct, addr: int) -> PudPtr | None:
        """``kmem_cache_alloc(PGT_CACHE(PUD_CACHE_INDEX), pgtable_gfp_flags(mm, ...))``."""
        pa = self.kmem_cache_alloc(self.pud_cache, mm)
        return None if pa is None else PudPtr(pa, self.SIZEOF_PUD)

    def pud_free(self, mm: mm_struct, pud: PudPtr) -> None:
        """``__pud_free``: ``kmem_cache_free`` (no memblock-reserved pages here)."""
        self.kmem_cache_free(self.pud_cache, pud.pa)

    def table_cache_frames(self, mm: mm_struct) -> list[int]:
        """The fragment pages of ``mm`` (pgtable-frag.c): they live until their last
        fragment is freed and ``destroy_context`` drops the ones never handed out."""
        return sorted(p.frame for a in (self.pte_frags, self.pmd_frags)
                      for p in a.pages.values() if p.mm is mm)

    def pmd_alloc_one(self, mm: mm_struct, addr: int) -> PmdPtr | None:
        """``pmd_fragment_alloc(mm, addr)``."""
        pa = self.pmd_frags.alloc(mm, mm.is_init_mm)
        return None if pa is None else PmdPtr(pa, self.SIZEOF_PMD)

    def pmd_free(self, mm: mm_struct, pmd: PmdPtr) -> None:
        """``pmd_fragment_free``."""
        self.pmd_frags.free(pmd.pa)

    def pte_alloc_one(self, mm: mm_struct) -> PtePtr | None:
        """``pte_fragment_alloc(mm, 0)``."""
        pa = self.pte_frags.alloc(mm, False)
        return None if pa is None else PtePtr(pa, self.SIZEOF_PTE)

    def pte_alloc_one_kernel(self, mm: mm_struct) -> PtePtr | None:
        """``pte_fragment_alloc(mm, 1)``."""
        pa = self.pte_frags.alloc(mm, True)
        return None if pa is None else PtePtr(pa, self.SIZEOF_PTE)

    def pte_free(self, mm: mm_struct, pte_page: PtePtr) -> None:
        """``pte_fragment_free(table, 0)``."""
        self.pte_frags.free(pte_page.pa)

    def pte_free_kernel(self, mm: mm_struct, pte: PtePtr) -> None:
        """``pte_fragment_free(table, 1)``."""
        self.pte_frags.free(pte.pa)

    def ptlock_ptr(self, table_pa: int) -> spinlock_t:
        """``ptlock_ptr(virt_to_ptdesc(table))``: the lock of the *page*, shared by its
        fragments."""
        desc = self.table_desc(table_pa)
        if desc is None or desc.ptl is None:
            raise AssertionError(f"page table {table_pa:#x} has no split lock (ctor not run?)")
        return desc.ptl

    # -- populate (pgalloc.h) ----------------------------------------------------------------

    def p4d_populate(self, mm: mm_struct, p4d: P4dPtr, pud: PudPtr) -> None:
        self.set_p4d(p4d, p4d_t(pud.pa | self.PGD_VAL_BITS))

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        self.set_pud(pud, pud_t(pmd.pa | self.PUD_VAL_BITS))

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t(pte.pa | self.PMD_VAL_BITS))

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t(pte.pa | self.PMD_VAL_BITS))

    # -- directory predicates (pgtable.h, radix.h) ------------------------------------------

    def p4d_none(self, p4d: p4d_t) -> bool:
        return p4d == 0

    def p4d_present(self, p4d: p4d_t) -> bool:
        return bool(p4d & _PAGE_PRESENT)

    def p4d_bad(self, p4d: p4d_t) -> bool:
        """``radix__p4d_bad``: reserved or leaf bits."""
        return bool(p4d & RADIX_BAD_BITS)

    def p4d_leaf(self, p4d: p4d_t) -> bool:
        return bool(p4d & _PAGE_PTE)

    def p4d_clear(self, p4dp: P4dPtr) -> None:
        self.set_p4d(p4dp, p4d_t(0))

    def set_p4d(self, p4dp: P4dPtr, p4d: p4d_t) -> None:
        self._write(p4dp, p4d)

    def p4d_pgtable(self, p4d: p4d_t) -> PudPtr:
        return PudPtr(p4d & ~MASKED_BITS & MASK64, self.SIZEOF_PUD)

    def pgd_page_vaddr(self, pgd: pgd_t) -> P4dPtr:
        return P4dPtr(pgd & ~MASKED_BITS & MASK64, self.SIZEOF_P4D)

    def pud_none(self, pud: pud_t) -> bool:
        return pud == 0

    def pud_present(self, pud: pud_t) -> bool:
        return bool(pud & _PAGE_PRESENT)

    def pud_bad(self, pud: pud_t) -> bool:
        return bool(pud & RADIX_BAD_BITS)

    def pud_leaf(self, pud: pud_t) -> bool:
        return bool(pud & _PAGE_PTE)

    def pud_clear(self, pudp: PudPtr) -> None:
        self.set_pud(pudp, pud_t(0))

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        return PmdPtr(pud & ~MASKED_BITS & MASK64, self.SIZEOF_PMD)

    def pmd_none(self, pmd: pmd_t) -> bool:
        return pmd == 0

    def pmd_present(self, pmd: pmd_t) -> bool:
        """Also while ``_PAGE_INVALID`` marks a pmd being split."""
        return bool(pmd & (_PAGE_PRESENT | _PAGE_INVALID))

    def pmd_bad(self, pmd: pmd_t) -> bool:
        return bool(pmd & RADIX_BAD_BITS)

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_PTE)

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        """``pmd_present`` and ``radix__pmd_trans_huge`` (``_PAGE_PTE``)."""
        return self.pmd_present(pmd) and bool(pmd & _PAGE_PTE)

    def pud_trans_huge(self, pud: pud_t) -> bool:
        return self.pud_present(pud) and bool(pud & _PAGE_PTE)

    def pmd_clear(self, pmdp: PmdPtr) -> None:
        self.set_pmd(pmdp, pmd_t(0))

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        return PtePtr(pmd & ~MASKED_BITS & MASK64, self.SIZEOF_PTE)

    def pmd_pgtable(self, pmd: pmd_t) -> PtePtr:
        return self.pmd_page_vaddr(pmd)

    # -- PTE predicates (pgtable.h) -------------------------------------------------------

    def pte_none(self, pte: pte_t) -> bool:
        """``radix__pte_none``: R and C may be written back into an empty PTE."""
        return pte & ~RADIX_PTE_NONE_MASK & MASK64 == 0

    def pte_hw_valid(self, pte: pte_t) -> bool:
        return pte & (_PAGE_PRESENT | _PAGE_PTE) == _PAGE_PRESENT | _PAGE_PTE

    def pte_present(self, pte: pte_t) -> bool:
        if self.pte_hw_valid(pte):
            return True
        return pte & (_PAGE_INVALID | _PAGE_PTE) == _PAGE_INVALID | _PAGE_PTE

    def pte_write(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_WRITE)

    def pte_read(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_READ)

    def pte_exec(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_EXEC)

    def pte_user(self, pte: pte_t) -> bool:
        return not pte & _PAGE_PRIVILEGED

    def pte_dirty(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_DIRTY)

    def pte_young(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_ACCESSED)

    def pte_special(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SPECIAL)

    def pte_soft_dirty(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SOFT_DIRTY)

    def pte_protnone(self, pte: pte_t) -> bool:
        """CONFIG_NUMA_BALANCING: present and a PTE, without R, W or X."""
        return pte & (_PAGE_PRESENT | _PAGE_PTE | _PAGE_RWX) == _PAGE_PRESENT | _PAGE_PTE

    def pte_same(self, a: pte_t, b: pte_t) -> bool:
        return a == b

    # -- PTE modifiers (pgtable.h) ---------------------------------------------------------

    def pte_pfn(self, pte: pte_t) -> int:
        return (pte & self.PTE_RPN_MASK) >> self.PAGE_SHIFT

    def pfn_pte(self, page_nr: int, pgprot: pgprot_t) -> pte_t:
        """``VM_BUG_ON((pfn << PAGE_SHIFT) & ~PTE_RPN_MASK)``: refused here; ``_PAGE_PTE``
        is added."""
        if page_nr < 0 or (page_nr << self.PAGE_SHIFT) & ~self.PTE_RPN_MASK:
            raise BadInput(f"pfn_pte: pfn {page_nr:#x} does not fit PTE_RPN_MASK")
        return pte_t((page_nr << self.PAGE_SHIFT) | pgprot | _PAGE_PTE)

    def mk_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t:
        """``mk_pte(page, prot)``: pages are named by pfn here."""
        return self.pfn_pte(pfn, pgprot)

    def pte_pgprot(self, pte: pte_t) -> pgprot_t:
        """include/linux/pgtable.h default: ``pte_flags`` -- what is not the RPN."""
        return pgprot_t(pte & ~self.PTE_RPN_MASK & MASK64)

    def pte_wrprotect(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_WRITE & MASK64)

    def pte_exprotect(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_EXEC & MASK64)

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_DIRTY & MASK64)

    def pte_mkold(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_ACCESSED & MASK64)

    def pte_mkexec(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_EXEC)

    def pte_mkwrite_novma(self, pte: pte_t) -> pte_t:
        """"write implies read, hence set both"."""
        return pte_t(pte | _PAGE_RW)

    def pte_mkwrite(self, pte: pte_t, vma: vm_area_struct | None = None) -> pte_t:
        return self.pte_mkwrite_novma(pte)

    def pte_mkdirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_DIRTY | _PAGE_SOFT_DIRTY)

    def pte_mkyoung(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_ACCESSED)

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SPECIAL)

    def pte_mkhuge(self, pte: pte_t) -> pte_t:
        return pte

    def pte_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SOFT_DIRTY)

    def pte_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_SOFT_DIRTY & MASK64)

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        return pte_t((pte & self._PAGE_CHG_MASK) | newprot)

    def pgprot_noncached(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~_PAGE_CACHE_CTL) | _PAGE_NON_IDEMPOTENT)

    def pgprot_writecombine(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~_PAGE_CACHE_CTL) | _PAGE_TOLERANT)

    # -- pte_update and its users (pgtable.h, radix.h, mm/pgtable.c, book3s64/pgtable.c) ---

    def pte_update(self, mm: mm_struct, addr: int, ptep: PtePtr, clr: int, set: int,
                   huge: int) -> int:
        """``radix__pte_update``: ``(old | set) & ~clr`` (a cmpxchg loop), then ``ptesync``;
        the old value."""
        old = self.ptep_get(ptep)
        self.set_pte(ptep, pte_t((old | set) & ~clr & MASK64))
        return old

    def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t, nr: int) -> None:
        """arch/powerpc/mm/pgtable.c: ``__set_pte_at`` (which adds ``_PAGE_PTE``) per page,
        ``pte_next_pfn`` between; ``set_pte_filter`` changes nothing on radix."""
        for _ in range(nr):
            self.set_pte(ptep, pte_t(pte | _PAGE_PTE))
            ptep = ptep + 1
            pte = pte_t(pte + (1 << self.PAGE_SHIFT))

    def set_pte_at(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t) -> None:
        self.set_ptes(mm, addr, ptep, pte, 1)

    def pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        self.pte_update(mm, addr, ptep, MASK64, 0, 0)

    def ptep_get_and_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        return pte_t(self.pte_update(mm, addr, ptep, MASK64, 0, 0))

    def ptep_get_and_clear_full(self, mm: mm_struct, addr: int, ptep: PtePtr,
                                full: int) -> pte_t:
        """``radix__ptep_get_and_clear_full``: a plain store when the whole mm goes."""
        if full:
            old = self.ptep_get(ptep)
            self.set_pte(ptep, pte_t(0))
            return old
        return self.ptep_get_and_clear(mm, addr, ptep)

    def ptep_set_wrprotect(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        if self.ptep_get(ptep) & _PAGE_WRITE:
            self.pte_update(mm, addr, ptep, _PAGE_WRITE, 0, 0)

    def ptep_test_and_clear_young(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> int:
        """``__ptep_test_and_clear_young``."""
        if not self.ptep_get(ptep) & _PAGE_ACCESSED:
            return 0
        old = self.pte_update(vma.vm_mm, addr, ptep, _PAGE_ACCESSED, 0, 0)
        return int(old & _PAGE_ACCESSED != 0)

    def ptep_clear_flush_young(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> int:
        """``#define ptep_clear_flush_young ptep_test_and_clear_young``: no flush."""
        return self.ptep_test_and_clear_young(vma, addr, ptep)

    def ptep_set_access_flags(self, vma: vm_area_struct, addr: int, ptep: PtePtr,
                              entry: pte_t, dirty: int) -> int:
        """arch/powerpc/mm/pgtable.c + ``radix__ptep_set_access_flags``: OR in D, SOFT_DIRTY,
        A, RW and X; no flush (no coprocessor uses the mm: ``context.copros`` = 0)."""
        if self.pte_same(self.ptep_get(ptep), entry):
            return 0
        bits = entry & (_PAGE_DIRTY | _PAGE_SOFT_DIRTY | _PAGE_ACCESSED | _PAGE_RW
                        | _PAGE_EXEC)
        self.pte_update(vma.vm_mm, addr, ptep, 0, bits, 0)
        return 1

    def ptep_modify_prot_start(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> pte_t:
        """book3s64/pgtable.c: clear ``_PAGE_PRESENT``, set ``_PAGE_INVALID`` (still
        ``pte_present``) so no hardware update races."""
        return pte_t(self.pte_update(vma.vm_mm, addr, ptep, _PAGE_PRESENT, _PAGE_INVALID, 0))

    def ptep_modify_prot_commit(self, vma: vm_area_struct, addr: int, ptep: PtePtr,
                                old_pte: pte_t, pte: pte_t) -> None:
        """``radix__ptep_modify_prot_commit``: ``set_pte_at`` (the POWER9 nest-MMU flush needs
        a coprocessor)."""
        self.set_pte_at(vma.vm_mm, addr, ptep, pte)

    # -- huge pmd/pud values (pgtable.h ``pmd_*`` = ``pte_*(pmd_pte())``, book3s64/pgtable.c) --

    def pmd_pte(self, pmd: pmd_t) -> pte_t:
        return pte_t(pmd)

    def pte_pmd(self, pte: pte_t) -> pmd_t:
        return pmd_t(pte)

    def pud_pte(self, pud: pud_t) -> pte_t:
        return pte_t(pud)

    def pte_pud(self, pte: pte_t) -> pud_t:
        return pud_t(pte)

    def pfn_pmd(self, page_nr: int, pgprot: pgprot_t) -> pmd_t:
        """``__pmd_mkhuge(pmd_set_protbits(__pmd((pfn << PAGE_SHIFT) & PTE_RPN_MASK),
        pgprot))``: radix adds ``_PAGE_PTE``."""
        return pmd_t(((page_nr << self.PAGE_SHIFT) & self.PTE_RPN_MASK) | pgprot | _PAGE_PTE)

    def pfn_pud(self, page_nr: int, pgprot: pgprot_t) -> pud_t:
        return pud_t(((page_nr << self.PAGE_SHIFT) & self.PTE_RPN_MASK) | pgprot | _PAGE_PTE)

    def pmd_pfn(self, pmd: pmd_t) -> int:
        return self.pte_pfn(pte_t(pmd))

    def pud_pfn(self, pud: pud_t) -> int:
        return self.pte_pfn(pte_t(pud))

    def pmd_pgprot(self, pmd: pmd_t) -> pgprot_t:
        return self.pte_pgprot(pte_t(pmd))

    def pud_pgprot(self, pud: pud_t) -> pgprot_t:
        return self.pte_pgprot(pte_t(pud))

    def pgprot_large_2_4k(self, pgprot: pgprot_t) -> pgprot_t:
        """Same bits at every level."""
        return pgprot

    def pmd_modify(self, pmd: pmd_t, newprot: pgprot_t) -> pmd_t:
        """``pmdv & _HPAGE_CHG_MASK | newprot`` (the hash-only bits of the mask are 0 on
        radix)."""
        keep = self.PTE_RPN_MASK | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_PTE | _PAGE_SOFT_DIRTY
        return pmd_t((pmd & keep) | newprot)

    def pud_modify(self, pud: pud_t, newprot: pgprot_t) -> pud_t:
        return pud_t(self.pmd_modify(pmd_t(pud), newprot))

    def pmd_mkhuge(self, pmd: pmd_t) -> pmd_t:
        """``WARN_ON(!_PAGE_PTE)``; returns the pmd."""
        return pmd

    def pud_mkhuge(self, pud: pud_t) -> pud_t:
        return pud

    def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t:
        """What ``pmdp_invalidate`` stores: ``_PAGE_PRESENT`` cleared, ``_PAGE_INVALID``
        set."""
        return pmd_t((pmd & ~_PAGE_PRESENT | _PAGE_INVALID) & MASK64)

    def pmd_protnone(self, pmd: pmd_t) -> bool:
        return self.pte_protnone(pte_t(pmd))

    def pmd_write(self, pmd: pmd_t) -> bool:
        return self.pte_write(pte_t(pmd))

    def pud_write(self, pud: pud_t) -> bool:
        return self.pte_write(pte_t(pud))

    def pmd_dirty(self, pmd: pmd_t) -> bool:
        return self.pte_dirty(pte_t(pmd))

    def pud_dirty(self, pud: pud_t) -> bool:
        return self.pte_dirty(pte_t(pud))

    def pmd_young(self, pmd: pmd_t) -> bool:
        return self.pte_young(pte_t(pmd))

    def pud_young(self, pud: pud_t) -> bool:
        return self.pte_young(pte_t(pud))

    def pmd_special(self, pmd: pmd_t) -> bool:
        return self.pte_special(pte_t(pmd))

    def pud_special(self, pud: pud_t) -> bool:
        return self.pte_special(pte_t(pud))

    def pmd_soft_dirty(self, pmd: pmd_t) -> bool:
        return self.pte_soft_dirty(pte_t(pmd))

    def pmd_mksoft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_mksoft_dirty(pte_t(pmd)))

    def pmd_clear_soft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_clear_soft_dirty(pte_t(pmd)))

    def pmd_mkold(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_mkold(pte_t(pmd)))

    def pud_mkold(self, pud: pud_t) -> pud_t:
        return pud_t(self.pte_mkold(pte_t(pud)))

    def pmd_mkyoung(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_mkyoung(pte_t(pmd)))

    def pud_mkyoung(self, pud: pud_t) -> pud_t:
        return pud_t(self.pte_mkyoung(pte_t(pud)))

    def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_wrprotect(pte_t(pmd)))

    def pud_wrprotect(self, pud: pud_t) -> pud_t:
        return pud_t(self.pte_wrprotect(pte_t(pud)))

    def pmd_mkwrite_novma(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_mkwrite_novma(pte_t(pmd)))

    def pmd_mkwrite(self, pmd: pmd_t, vma: vm_area_struct | None = None) -> pmd_t:
        return self.pmd_mkwrite_novma(pmd)

    def pud_mkwrite(self, pud: pud_t) -> pud_t:
        return pud_t(self.pte_mkwrite_novma(pte_t(pud)))

    def pmd_mkdirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_mkdirty(pte_t(pmd)))

    def pud_mkdirty(self, pud: pud_t) -> pud_t:
        return pud_t(self.pte_mkdirty(pte_t(pud)))

    def pmd_mkclean(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_mkclean(pte_t(pmd)))

    def pud_mkclean(self, pud: pud_t) -> pud_t:
        return pud_t(self.pte_mkclean(pte_t(pud)))

    def pmd_mkspecial(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_mkspecial(pte_t(pmd)))

    def pud_mkspecial(self, pud: pud_t) -> pud_t:
        return pud_t(self.pte_mkspecial(pte_t(pud)))

    # -- huge pmd/pud updates (book3s64/pgtable.c, radix_pgtable.c) ----------------------

    def _hugepage_update(self, p: PmdPtr | PudPtr, clr: int, set: int) -> int:
        """``radix__pmd_hugepage_update`` / ``radix__pud_hugepage_update``:
        ``radix__pte_update(..., huge = 1)``."""
        old = self._read(p)
        self._write(p, (old | set) & ~clr & MASK64)
        return old

    def set_pmd_at(self, mm: mm_struct, addr: int, pmdp: PmdPtr, pmd: pmd_t) -> None:
        """``set_pte_at_unchecked(mm, addr, pmdp_ptep(pmdp), pmd_pte(pmd))``."""
        self._write(pmdp, pmd | _PAGE_PTE)

    def set_pud_at(self, mm: mm_struct, addr: int, pudp: PudPtr, pud: pud_t) -> None:
        self._write(pudp, pud | _PAGE_PTE)

    def pmdp_huge_get_and_clear(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        return pmd_t(self._hugepage_update(pmdp, MASK64, 0))

    def pudp_huge_get_and_clear(self, mm: mm_struct, addr: int, pudp: PudPtr) -> pud_t:
        return pud_t(self._hugepage_update(pudp, MASK64, 0))

    def pmdp_huge_get_and_clear_full(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr,
                                     full: int) -> pmd_t:
        """book3s64/pgtable.c: get-and-clear, and unless ``full`` flush the 2M range ("we
        can possibly end up converting this PMD pte entry to a regular level 0 PTE")."""
        pmd = self.pmdp_huge_get_and_clear(vma.vm_mm, addr, pmdp)
        if not full:
            self.flush_pmd_tlb_range(vma, addr, addr + self.PMD_SIZE)
        return pmd

    def pudp_huge_get_and_clear_full(self, vma: vm_area_struct, addr: int, pudp: PudPtr,
                                     full: int) -> pud_t:
        pud = self.pudp_huge_get_and_clear(vma.vm_mm, addr, pudp)
        if not full:
            self.flush_pud_tlb_range(vma, addr, addr + self.PUD_SIZE)
        return pud

    def pmdp_set_wrprotect(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> None:
        if self.pmdp_get(pmdp) & _PAGE_WRITE:
            self._hugepage_update(pmdp, _PAGE_WRITE, 0)

    def pudp_set_wrprotect(self, mm: mm_struct, addr: int, pudp: PudPtr) -> None:
        if self.pudp_get(pudp) & _PAGE_WRITE:
            self._hugepage_update(pudp, _PAGE_WRITE, 0)

    def pmdp_test_and_clear_young(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr) -> int:
        if not self.pmdp_get(pmdp) & _PAGE_ACCESSED:
            return 0
        return int(self._hugepage_update(pmdp, _PAGE_ACCESSED, 0) & _PAGE_ACCESSED != 0)

    def pudp_test_and_clear_young(self, vma: vm_area_struct, addr: int, pudp: PudPtr) -> int:
        if not self.pudp_get(pudp) & _PAGE_ACCESSED:
            return 0
        return int(self._hugepage_update(pudp, _PAGE_ACCESSED, 0) & _PAGE_ACCESSED != 0)

    def pmdp_set_access_flags(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr,
                              entry: pmd_t, dirty: int) -> int:
        """``__ptep_set_access_flags(vma, pmdp_ptep(pmdp), pmd_pte(entry), ...)`` if not
        ``pmd_same``."""
        if self.pmdp_get(pmdp) == entry:
            return 0
        self._hugepage_update(pmdp, 0, entry & (_PAGE_DIRTY | _PAGE_SOFT_DIRTY
                                                 | _PAGE_ACCESSED | _PAGE_RW | _PAGE_EXEC))
        return 1

    def pudp_set_access_flags(self, vma: vm_area_struct, addr: int, pudp: PudPtr,
                              entry: pud_t, dirty: int) -> int:
        if self.pudp_get(pudp) == entry:
            return 0
        self._hugepage_update(pudp, 0, entry & (_PAGE_DIRTY | _PAGE_SOFT_DIRTY
                                                 | _PAGE_ACCESSED | _PAGE_RW | _PAGE_EXEC))
        return 1

    def pmdp_invalidate(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """book3s64/pgtable.c: clear ``_PAGE_PRESENT``, set ``_PAGE_INVALID`` (still
        ``pmd_present``), then ``flush_pmd_tlb_range``."""
        if not self.pmd_present(self.pmdp_get(pmdp)):
            raise AssertionError("pmdp_invalidate: VM_WARN_ON_ONCE(!pmd_present(*pmdp))")
        old = self._hugepage_update(pmdp, _PAGE_PRESENT, _PAGE_INVALID)
        self.flush_pmd_tlb_range(vma, address, address + self.PMD_SIZE)
        return pmd_t(old)

    def pudp_invalidate(self, vma: vm_area_struct, address: int, pudp: PudPtr) -> pud_t:
        if not self.pud_present(self.pudp_get(pudp)):
            raise AssertionError("pudp_invalidate: VM_WARN_ON_ONCE(!pud_present(*pudp))")
        old = self._hugepage_update(pudp, _PAGE_PRESENT, _PAGE_INVALID)
        self.flush_pud_tlb_range(vma, address, address + self.PUD_SIZE)
        return pud_t(old)

    def pmdp_collapse_flush(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        """``radix__pmdp_collapse_flush``: clear, then ``radix__flush_tlb_collapsed_pmd``."""
        pmd = self.pmdp_huge_get_and_clear(vma.vm_mm, addr, pmdp)
        self.flush_tlb_collapsed_pmd(vma.vm_mm, addr)
        return pmd

    # -- huge vmap (radix_pgtable.c) -----------------------------------------------------

    def arch_vmap_p4d_supported(self, prot: pgprot_t) -> bool:
        return False

    def arch_vmap_pud_supported(self, prot: pgprot_t) -> bool:
        """``radix_enabled()``."""
        return True

    def arch_vmap_pmd_supported(self, prot: pgprot_t) -> bool:
        return True

    def p4d_set_huge(self, p4d: P4dPtr, addr: int, prot: pgprot_t) -> int:
        return 0

    def p4d_clear_huge(self, p4d: P4dPtr) -> None:
        """Empty."""

    def pud_set_huge(self, pud: PudPtr, addr: int, prot: pgprot_t) -> int:
        """``set_pte_at(&init_mm, 0, ptep, pfn_pte(addr >> PAGE_SHIFT, prot))``."""
        self.set_pud(pud, pud_t(self.pfn_pte(addr >> self.PAGE_SHIFT, prot)))
        return 1

    def pud_clear_huge(self, pud: PudPtr) -> int:
        if not self.pud_leaf(self.pudp_get(pud)):
            return 0
        self.pud_clear(pud)
        return 1

    def pud_free_pmd_page(self, pud: PudPtr, addr: int) -> int:
        """Clear the pud, ``flush_tlb_kernel_range``, free each PTE table below, then the
        PMD table (``pmd_free``)."""
        table = self.pud_pgtable(self.pudp_get(pud))
        self.pud_clear(pud)
        self.flush_tlb_kernel_range(addr, addr + self.PUD_SIZE)
        for i in range(self.PTRS_PER_PMD):
            pmdv = self.pmdp_get(table + i)
            if not self.pmd_none(pmdv):
                self.pte_free_kernel(self.init_mm, self.pmd_page_vaddr(pmdv))
        self.pmd_free(self.init_mm, table)
        return 1

    def pmd_set_huge(self, pmd: PmdPtr, addr: int, prot: pgprot_t) -> int:
        self.set_pmd(pmd, pmd_t(self.pfn_pte(addr >> self.PAGE_SHIFT, prot)))
        return 1

    def pmd_clear_huge(self, pmd: PmdPtr) -> int:
        if not self.pmd_leaf(self.pmdp_get(pmd)):
            return 0
        self.pmd_clear(pmd)
        return 1

    def pmd_free_pte_page(self, pmd: PmdPtr, addr: int) -> int:
        """Clear the pmd, ``flush_tlb_kernel_range``, free the PTE table."""
        pte = self.pmd_page_vaddr(self.pmdp_get(pmd))
        self.pmd_clear(pmd)
        self.flush_tlb_kernel_range(addr, addr + self.PMD_SIZE)
        self.pte_free_kernel(self.init_mm, pte)
        return 1

    # -- swap entries (pgtable.h) -------------------------------------------------------

    def _swp_type(self, x: swp_entry_t) -> int:
        return x & ((1 << SWP_TYPE_BITS) - 1)

    def _swp_offset(self, x: swp_entry_t) -> int:
        return (x & self.PTE_RPN_MASK) >> self.PAGE_SHIFT

    def _swp_entry(self, type_: int, offset: int) -> swp_entry_t:
        return swp_entry_t(type_ | ((offset << self.PAGE_SHIFT) & self.PTE_RPN_MASK))

    def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        return swp_entry_t(pte & ~_PAGE_PTE & MASK64)

    def _swp_entry_to_pte(self, x: swp_entry_t) -> pte_t:
        return pte_t(x | _PAGE_PTE)

    def _pmd_to_swp_entry(self, pmd: pmd_t) -> swp_entry_t:
        return self._pte_to_swp_entry(pte_t(pmd))

    def _swp_entry_to_pmd(self, x: swp_entry_t) -> pmd_t:
        return pmd_t(self._swp_entry_to_pte(x))

    def pte_swp_exclusive(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SWP_EXCLUSIVE)

    def pte_swp_mkexclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SWP_EXCLUSIVE)

    def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_SWP_EXCLUSIVE & MASK64)

    def pte_swp_soft_dirty(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SWP_SOFT_DIRTY)

    def pte_swp_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SWP_SOFT_DIRTY)

    def pte_swp_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_SWP_SOFT_DIRTY & MASK64)

    def pmd_swp_mksoft_dirty(self, pmd: pmd_t) -> pmd_t:
        """``pte_pmd(pte_swp_mksoft_dirty(pmd_pte(pmd)))`` (CONFIG_ARCH_ENABLE_THP_MIGRATION)."""
        return pmd_t(self.pte_swp_mksoft_dirty(pte_t(pmd)))

    def pmd_swp_soft_dirty(self, pmd: pmd_t) -> bool:
        return self.pte_swp_soft_dirty(pte_t(pmd))

    def pmd_swp_clear_soft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self.pte_swp_clear_soft_dirty(pte_t(pmd)))


class Ppc64Radix4KKernel(RadixKernel):
    """CONFIG_PPC_4K_PAGES: index sizes 13/9/9/9 (radix-4k.h)."""

    PTE_INDEX_SIZE = RADIX_PTE_INDEX_SIZE_4K


class Ppc64Radix64KKernel(RadixKernel):
    """CONFIG_PPC_64K_PAGES: index sizes 13/9/9/5 (radix-64k.h): 256-byte PTE fragments."""

    PTE_INDEX_SIZE = RADIX_PTE_INDEX_SIZE_64K


__all__ = ["Ppc64Radix4KKernel", "Ppc64Radix64KKernel", "RadixKernel"]
