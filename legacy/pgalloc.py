"""Allocating, installing, accounting and freeing page tables.

Follows ``include/asm-generic/pgalloc.h`` (``*_alloc_one``/``*_free`` and the ptdesc
constructors), ``include/linux/mm.h`` (``*_alloc`` wrappers, ``mm_inc_nr_*``) and
``mm/memory.c`` (``__p4d_alloc``/``__pud_alloc``/``__pmd_alloc``/``__pte_alloc``,
``pmd_install``).  Kernel ``__x`` names are ``_x`` here (Python mangles ``__x`` in classes).
"""

from __future__ import annotations

from arches.errors import OutOfMemory
from legacy.mm_types import mm_struct, ptdesc, spin_lock, spin_unlock, spinlock_t
from legacy.pgtable import PgtableGeneric
from legacy.slab import KmemCache
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr, pgtable_t

ENOMEM = -12


class PgallocGeneric(PgtableGeneric):
    """Generic allocation paths over the architecture's populate primitives."""

    # -- accounting: mm->pgtables_bytes (include/linux/mm.h) ------------------------------

    def mm_pgtables_bytes(self, mm: mm_struct) -> int:
        return mm.pgtables_bytes

    def table_cache_frames(self, mm: mm_struct) -> list[int]:
        """Frames the kernel keeps for ``mm``'s future tables, whether or not a live table
        is in them (ppc64: fragment pages, until ``destroy_context``); none here.  Not a
        kernel function: tests use it to tell a cached page from a leaked one."""
        return []

    def mm_p4d_folded(self, mm: mm_struct) -> bool:
        return self.PAGETABLE_P4D_FOLDED

    def mm_pud_folded(self, mm: mm_struct) -> bool:
        return self.PAGETABLE_PUD_FOLDED

    def mm_pmd_folded(self, mm: mm_struct) -> bool:
        return self.PAGETABLE_PMD_FOLDED

    def mm_inc_nr_ptes(self, mm: mm_struct) -> None:
        mm.pgtables_bytes += self.PTRS_PER_PTE * self.SIZEOF_PTE

    def mm_dec_nr_ptes(self, mm: mm_struct) -> None:
        mm.pgtables_bytes -= self.PTRS_PER_PTE * self.SIZEOF_PTE

    def mm_inc_nr_pmds(self, mm: mm_struct) -> None:
        if not self.mm_pmd_folded(mm):
            mm.pgtables_bytes += self.PTRS_PER_PMD * self.SIZEOF_PMD

    def mm_dec_nr_pmds(self, mm: mm_struct) -> None:
        if not self.mm_pmd_folded(mm):
            mm.pgtables_bytes -= self.PTRS_PER_PMD * self.SIZEOF_PMD

    def mm_inc_nr_puds(self, mm: mm_struct) -> None:
        if not self.mm_pud_folded(mm):
            mm.pgtables_bytes += self.PTRS_PER_PUD * self.SIZEOF_PUD

    def mm_dec_nr_puds(self, mm: mm_struct) -> None:
        if not self.mm_pud_folded(mm):
            mm.pgtables_bytes -= self.PTRS_PER_PUD * self.SIZEOF_PUD

    # -- slab caches of sub-page tables (include/linux/slab.h, mm/slub.c: legacy.slab) ------

    def kmem_cache_create(self, name: str, size: int, align: int, level: str) -> KmemCache:
        """``kmem_cache_create(name, size, align, flags, NULL)`` for page tables of ``level``
        smaller than a page; the cache's objects are page tables the leak checks see
        (``kmem_caches``)."""
        cache = KmemCache(self.mem, name, size, align, level)
        self.kmem_caches = (*self.kmem_caches, cache)
        return cache

    def kmem_cache_alloc(self, cache: KmemCache, mm: mm_struct | None) -> int | None:
        """``kmem_cache_alloc(cache, GFP_PGTABLE_USER)``: a zeroed object charged
        (``__GFP_ACCOUNT``) to ``mm``; NULL (None) when a new slab page cannot be had.
        No ptdesc constructor runs; ``ptdescs`` gets the object's lock-less stand-in
        (:attr:`kmem_caches`)."""
        obj = cache.alloc(mm)
        if obj is not None:
            self.ptdescs[obj] = ptdesc(pa=obj, level=cache.level, mm=mm)
        return obj

    def kmem_cache_free(self, cache: KmemCache, obj: int) -> None:
        """``kmem_cache_free(cache, obj)``: the slab page goes back with its last object."""
        cache.free(obj)
        del self.ptdescs[obj]

    # -- asm-generic/pgalloc.h --------------------------------------------------------

    def _pagetable_alloc(self, level: str, mm: mm_struct | None) -> int | None:
        """``pagetable_alloc``: NULL (None) on allocation failure, as the kernel returns."""
        try:
            return self.pagetable_alloc(level, mm)
        except OutOfMemory:
            return None

    def pte_alloc_one(self, mm: mm_struct) -> pgtable_t | None:
        """PTE table with ``pagetable_pte_ctor`` (its split lock)."""
        pa = self._pagetable_alloc("pte", mm)
        if pa is None:
            return None
        if self.USE_SPLIT_PTE_PTLOCKS:
            self.ptlock_init(pa)
        return PtePtr(pa, self.SIZEOF_PTE)

    def pte_alloc_one_kernel(self, mm: mm_struct) -> PtePtr | None:
        pa = self._pagetable_alloc("pte", mm)
        return None if pa is None else PtePtr(pa, self.SIZEOF_PTE)

    def pte_free(self, mm: mm_struct, pte_page: pgtable_t) -> None:
        """``pagetable_dtor_free``: drop the split lock, then the frame."""
        if self.ptdescs[pte_page.pa].ptl is not None:
            self.ptlock_free(pte_page.pa)
        self.pagetable_free(pte_page.pa)

    def pte_free_kernel(self, mm: mm_struct, pte: PtePtr) -> None:
        self.pagetable_free(pte.pa)

    def pmd_alloc_one(self, mm: mm_struct, addr: int) -> PmdPtr | None:
        """PMD table with ``pagetable_pmd_ctor(mm, ptdesc)`` (split PMD lock).

        include/linux/mm.h (v6.18) ``pagetable_pmd_ctor``: ``if (mm != &init_mm &&
        !pmd_ptlock_init(ptdesc)) return false;`` ("mm: skip ptlock_init() for kernel
        PMDs"): a kernel PMD table gets no split lock; ``__pmd_alloc_one`` passes ``mm``."""
        pa = self._pagetable_alloc("pmd", mm)
        if pa is None:
            return None
        if self.USE_SPLIT_PMD_PTLOCKS and not mm.is_init_mm:
            self.ptlock_init(pa)
        return PmdPtr(pa, self.SIZEOF_PMD)

    def pmd_free(self, mm: mm_struct, pmd: PmdPtr) -> None:
        if self.ptdescs[pmd.pa].ptl is not None:
            self.ptlock_free(pmd.pa)
        self.pagetable_free(pmd.pa)

    def pud_alloc_one(self, mm: mm_struct, addr: int) -> PudPtr | None:
        pa = self._pagetable_alloc("pud", mm)
        return None if pa is None else PudPtr(pa, self.SIZEOF_PUD)

    def pud_free(self, mm: mm_struct, pud: PudPtr) -> None:
        self.pagetable_free(pud.pa)

    def p4d_alloc_one(self, mm: mm_struct, addr: int) -> P4dPtr | None:
        pa = self._pagetable_alloc("p4d", mm)
        return None if pa is None else P4dPtr(pa, self.SIZEOF_P4D)

    def p4d_free(self, mm: mm_struct, p4d: P4dPtr) -> None:
        if self.mm_p4d_folded(mm):
            return
        self.pagetable_free(p4d.pa)

    # -- mm/memory.c slow paths: allocate, lock, recheck, populate -----------------------

    def _p4d_alloc(self, mm: mm_struct, pgd: PgdPtr, address: int) -> int:
        new = self.p4d_alloc_one(mm, address)
        if new is None:
            return ENOMEM
        spin_lock(mm.page_table_lock)
        if self.pgd_present(self.pgdp_get(pgd)):  # Another has populated it
            self.p4d_free(mm, new)
        else:
            self.pgd_populate(mm, pgd, new)
        spin_unlock(mm.page_table_lock)
        return 0

    def _pud_alloc(self, mm: mm_struct, p4d: P4dPtr, address: int) -> int:
        new = self.pud_alloc_one(mm, address)
        if new is None:
            return ENOMEM
        spin_lock(mm.page_table_lock)
        if not self.p4d_present(self.p4dp_get(p4d)):
            self.mm_inc_nr_puds(mm)
            self.p4d_populate(mm, p4d, new)
        else:  # Another has populated it
            self.pud_free(mm, new)
        spin_unlock(mm.page_table_lock)
        return 0

    def _pmd_alloc(self, mm: mm_struct, pud: PudPtr, address: int) -> int:
        new = self.pmd_alloc_one(mm, address)
        if new is None:
            return ENOMEM
        ptl = self.pud_lock(mm, pud)
        if not self.pud_present(self.pudp_get(pud)):
            self.mm_inc_nr_pmds(mm)
            self.pud_populate(mm, pud, new)
        else:  # Another has populated it
            self.pmd_free(mm, new)
        spin_unlock(ptl)
        return 0

    def pmd_install(self, mm: mm_struct, pmd: PmdPtr, pte: list[pgtable_t | None]) -> None:
        """``pmd_install(mm, pmd, &pte)``: install ``pte[0]`` and set it to None if consumed."""
        ptl = self.pmd_lock(mm, pmd)
        table = pte[0]
        if self.pmd_none(self.pmdp_get(pmd)) and table is not None:  # Has another populated it ?
            self.mm_inc_nr_ptes(mm)
            self.pmd_populate(mm, pmd, table)
            pte[0] = None
        spin_unlock(ptl)

    def _pte_alloc(self, mm: mm_struct, pmd: PmdPtr) -> int:
        new = self.pte_alloc_one(mm)
        if new is None:
            return ENOMEM
        slot: list[pgtable_t | None] = [new]
        self.pmd_install(mm, pmd, slot)
        if slot[0] is not None:
            self.pte_free(mm, slot[0])
        return 0

    def _pte_alloc_kernel(self, pmd: PmdPtr) -> int:
        new = self.pte_alloc_one_kernel(self.init_mm)
        if new is None:
            return ENOMEM
        spin_lock(self.init_mm.page_table_lock)
        if self.pmd_none(self.pmdp_get(pmd)):  # Has another populated it ?
            self.pmd_populate_kernel(self.init_mm, pmd, new)
            new = None
        spin_unlock(self.init_mm.page_table_lock)
        if new is not None:
            self.pte_free_kernel(self.init_mm, new)
        return 0

    # -- include/linux/mm.h wrappers ---------------------------------------------------

    def p4d_alloc(self, mm: mm_struct, pgd: PgdPtr, address: int) -> P4dPtr | None:
        if self.pgd_none(self.pgdp_get(pgd)) and self._p4d_alloc(mm, pgd, address):
            return None
        return self.p4d_offset(pgd, address)

    def pud_alloc(self, mm: mm_struct, p4d: P4dPtr, address: int) -> PudPtr | None:
        if self.p4d_none(self.p4dp_get(p4d)) and self._pud_alloc(mm, p4d, address):
            return None
        return self.pud_offset(p4d, address)

    def pmd_alloc(self, mm: mm_struct, pud: PudPtr, address: int) -> PmdPtr | None:
        if self.pud_none(self.pudp_get(pud)) and self._pmd_alloc(mm, pud, address):
            return None
        return self.pmd_offset(pud, address)

    def pte_alloc(self, mm: mm_struct, pmd: PmdPtr) -> int:
        """Non-zero on failure (unlike ``pmd_alloc``, which returns NULL)."""
        return int(self.pmd_none(self.pmdp_get(pmd)) and self._pte_alloc(mm, pmd) != 0)

    def pte_alloc_map(self, mm: mm_struct, pmd: PmdPtr, address: int) -> PtePtr | None:
        return None if self.pte_alloc(mm, pmd) else self.pte_offset_map(pmd, address)

    def pte_alloc_map_lock(
        self, mm: mm_struct, pmd: PmdPtr, address: int
    ) -> tuple[PtePtr, spinlock_t] | None:
        if self.pte_alloc(mm, pmd):
            return None
        return self.pte_offset_map_lock(mm, pmd, address)

    def pte_alloc_kernel(self, pmd: PmdPtr, address: int) -> PtePtr | None:
        if self.pmd_none(self.pmdp_get(pmd)) and self._pte_alloc_kernel(pmd):
            return None
        return self.pte_offset_kernel(pmd, address)
