"""Generic page-table helpers: ``include/linux/pgtable.h`` (and ``include/linux/mm.h`` for
the PTE mapping family).

Everything here is written in terms of per-architecture primitives (``pXd_none``,
``pXd_pgtable``...) that an architecture class provides, exactly as the generic header is
written in terms of ``asm/pgtable.h``.  The folding headers (:mod:`legacy.folding`) override
the parent-level predicates and ``X_offset``/``X_addr_end`` of a folded level.

Addresses are ``unsigned long``: every sum is masked to the configuration's word width, so
``*_addr_end`` wraps to 0 at the top of the address space exactly as in C.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from legacy.machine import Machine
from legacy.mm_types import mm_struct, ptdesc, spin_lock, spin_unlock, spinlock_t
from legacy.slab import KmemCache
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

# pgtbl_mod_mask bits: which levels a kernel-mapping change modified, for
# arch_sync_kernel_mappings() (ARCH_PAGE_TABLE_SYNC_MASK).
PGTBL_PGD_MODIFIED = 1 << 0
PGTBL_P4D_MODIFIED = 1 << 1
PGTBL_PUD_MODIFIED = 1 << 2
PGTBL_PMD_MODIFIED = 1 << 3
PGTBL_PTE_MODIFIED = 1 << 4


class PgtableGeneric(Machine):
    """include/linux/pgtable.h on top of an architecture's primitives."""

    # Geometry: set by the architecture class (asm/pgtable*_types.h), derived here.
    PAGE_SHIFT: int
    PGDIR_SHIFT: int
    P4D_SHIFT: int
    PUD_SHIFT: int
    PMD_SHIFT: int
    PTRS_PER_PGD: int
    PTRS_PER_P4D: int
    PTRS_PER_PUD: int
    PTRS_PER_PMD: int
    PTRS_PER_PTE: int
    # sizeof(pXd_t) in bytes.
    SIZEOF_PGD: int
    SIZEOF_P4D: int
    SIZEOF_PUD: int
    SIZEOF_PMD: int
    SIZEOF_PTE: int
    # Folding markers (asm-generic/pgtable-nop*.h); the folding mixins set them.
    PAGETABLE_P4D_FOLDED = False
    PAGETABLE_PUD_FOLDED = False
    PAGETABLE_PMD_FOLDED = False
    FIRST_USER_ADDRESS = 0
    USER_PGTABLES_CEILING = 0
    init_mm: mm_struct
    # Configuration (the values live on GenericKernel; see there).
    ARCH_ENABLE_THP_MIGRATION: bool
    SWP_ENTRY_EMULATED: bool

    if TYPE_CHECKING:
        # include/linux/swapops.h (legacy.swapops.SwapopsGeneric).
        def is_pmd_migration_entry(self, pmd: pmd_t) -> bool: ...

    kmem_caches: tuple[KmemCache, ...] = ()
    """Slab caches whose objects are page tables smaller than a page (arm64 ``pgd_cache``,
    :mod:`legacy.slab`).  Such a table has no ``struct ptdesc``; ``ptdescs`` holds a
    stand-in keyed by the object's address (its level, the mm it is charged to, no lock),
    so ``ptdescs`` and ``tables_of`` list every page table, whole frame or not."""

    def table_desc(self, pa: int) -> ptdesc | None:
        """The descriptor of the page table holding the byte at ``pa`` (None: no table):
        the object's stand-in inside a slab page, else the frame's ``ptdesc``.  Use this,
        not ``ptdescs[frame_of(pa)]``, which in a slab page names the object at offset 0."""
        if self.kmem_caches:
            for cache in self.kmem_caches:
                if cache.holds_frame(pa):
                    obj = cache.object_containing(pa)
                    return None if obj is None else self.ptdescs.get(obj)
        return self.ptdescs.get(self.frame_of(pa))

    def derive_sizes(self) -> None:
        """``X_SIZE``/``X_MASK`` from the shifts (as the headers' ``#define``s do)."""
        m = self.ULONG_MASK
        self.PAGE_SIZE = 1 << self.PAGE_SHIFT
        self.PAGE_MASK = ~(self.PAGE_SIZE - 1) & m
        self.PGDIR_SIZE = 1 << self.PGDIR_SHIFT
        self.PGDIR_MASK = ~(self.PGDIR_SIZE - 1) & m
        self.P4D_SIZE = 1 << self.P4D_SHIFT
        self.P4D_MASK = ~(self.P4D_SIZE - 1) & m
        self.PUD_SIZE = 1 << self.PUD_SHIFT
        self.PUD_MASK = ~(self.PUD_SIZE - 1) & m
        self.PMD_SIZE = 1 << self.PMD_SHIFT
        self.PMD_MASK = ~(self.PMD_SIZE - 1) & m

    # -- indices ---------------------------------------------------------------------

    def pgd_index(self, a: int) -> int:
        return (a >> self.PGDIR_SHIFT) & (self.PTRS_PER_PGD - 1)

    def p4d_index(self, a: int) -> int:
        return (a >> self.P4D_SHIFT) & (self.PTRS_PER_P4D - 1)

    def pud_index(self, a: int) -> int:
        return (a >> self.PUD_SHIFT) & (self.PTRS_PER_PUD - 1)

    def pmd_index(self, a: int) -> int:
        return (a >> self.PMD_SHIFT) & (self.PTRS_PER_PMD - 1)

    def pte_index(self, a: int) -> int:
        return (a >> self.PAGE_SHIFT) & (self.PTRS_PER_PTE - 1)

    # -- offsets ---------------------------------------------------------------------

    def pgd_offset_pgd(self, pgd: PgdPtr, a: int) -> PgdPtr:
        return pgd + self.pgd_index(a)

    def pgd_offset(self, mm: mm_struct, a: int) -> PgdPtr:
        return self.pgd_offset_pgd(mm.pgd, a)

    def pgd_offset_k(self, a: int) -> PgdPtr:
        return self.pgd_offset(self.init_mm, a)

    def p4d_offset(self, pgd: PgdPtr, a: int) -> P4dPtr:
        """No generic version: provided by the architecture or pgtable-nop4d.h.

        Naming: a kernel function `__x` is `_x` here (Python mangles `__x` in classes)."""
        raise NotImplementedError

    def pud_offset(self, p4d: P4dPtr, a: int) -> PudPtr:
        return self.p4d_pgtable(self.p4dp_get(p4d)) + self.pud_index(a)

    def pmd_offset(self, pud: PudPtr, a: int) -> PmdPtr:
        return self.pud_pgtable(self.pudp_get(pud)) + self.pmd_index(a)

    def pte_offset_kernel(self, pmd: PmdPtr, a: int) -> PtePtr:
        return self.pmd_page_vaddr(self.pmdp_get(pmd)) + self.pte_index(a)

    def pmd_off(self, mm: mm_struct, va: int) -> PmdPtr:
        p4d = self.p4d_offset(self.pgd_offset(mm, va), va)
        return self.pmd_offset(self.pud_offset(p4d, va), va)

    def pmd_off_k(self, va: int) -> PmdPtr:
        return self.pmd_off(self.init_mm, va)

    # -- *_addr_end: next boundary or end, with unsigned wrap-around --------------------

    def _addr_end(self, addr: int, end: int, size: int, mask: int) -> int:
        m = self.ULONG_MASK
        boundary = (addr + size) & mask & m
        return boundary if ((boundary - 1) & m) < ((end - 1) & m) else end

    def pgd_addr_end(self, addr: int, end: int) -> int:
        return self._addr_end(addr, end, self.PGDIR_SIZE, self.PGDIR_MASK)

    def p4d_addr_end(self, addr: int, end: int) -> int:
        return self._addr_end(addr, end, self.P4D_SIZE, self.P4D_MASK)

    def pud_addr_end(self, addr: int, end: int) -> int:
        return self._addr_end(addr, end, self.PUD_SIZE, self.PUD_MASK)

    def pmd_addr_end(self, addr: int, end: int) -> int:
        return self._addr_end(addr, end, self.PMD_SIZE, self.PMD_MASK)

    # -- READ_ONCE / WRITE_ONCE of entries ----------------------------------------------

    def _read(self, p: EntryPtr) -> int:
        return self.mem.read(p.pa, p.size)

    def _write(self, p: EntryPtr, v: int) -> int:
        """``WRITE_ONCE(*p, v)``; returns the value replaced, as ``xchg(p, v)`` would (a
        plain store ignores it)."""
        return self.mem.exchange(p.pa, p.size, v)

    def _write_run(self, p: EntryPtr, values: Sequence[int]) -> None:
        """Store ``values`` into consecutive entries of one table from ``p`` on."""
        for v in values:
            self._write(p, v)
            p = p + 1

    def ptep_get(self, ptep: PtePtr) -> pte_t:
        return pte_t(self.mem.read(ptep.pa, ptep.size))

    def pmdp_get(self, pmdp: PmdPtr) -> pmd_t:
        return pmd_t(self.mem.read(pmdp.pa, pmdp.size))

    def pudp_get(self, pudp: PudPtr) -> pud_t:
        return pud_t(self.mem.read(pudp.pa, pudp.size))

    def p4dp_get(self, p4dp: P4dPtr) -> p4d_t:
        return p4d_t(self.mem.read(p4dp.pa, p4dp.size))

    def pgdp_get(self, pgdp: PgdPtr) -> pgd_t:
        return pgd_t(self.mem.read(pgdp.pa, pgdp.size))

    def ptep_get_lockless(self, ptep: PtePtr) -> pte_t:
        return self.ptep_get(ptep)

    def pmdp_get_lockless(self, pmdp: PmdPtr) -> pmd_t:
        return self.pmdp_get(pmdp)

    def pte_same(self, a: pte_t, b: pte_t) -> bool:
        return a == b

    def pmd_same(self, a: pmd_t, b: pmd_t) -> bool:
        return a == b

    def pud_same(self, a: pud_t, b: pud_t) -> bool:
        return a == b

    def p4d_same(self, a: p4d_t, b: p4d_t) -> bool:
        return a == b

    def pgd_same(self, a: pgd_t, b: pgd_t) -> bool:
        return a == b

    # -- setters (native_set_*: a plain store of the entry) -------------------------------

    def set_pte(self, ptep: PtePtr, pte: pte_t) -> None:
        self._write(ptep, pte)

    def set_pte_at(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t) -> None:
        """``set_ptes(mm, addr, ptep, pte, 1)``: one :meth:`set_pte` (called directly)."""
        self.set_pte(ptep, pte)

    def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t, nr: int) -> None:
        """include/linux/pgtable.h (``#ifndef set_ptes``): ``nr`` consecutive entries of one
        PTE table mapping consecutive pfns, :meth:`set_pte` each, :meth:`pte_next_pfn`
        between (``page_table_check_ptes_set`` and the lazy MMU mode do nothing here).
        Where ``set_pte`` is the plain store, the run is one :meth:`_write_run`."""
        ptes = [pte]
        for _ in range(nr - 1):
            pte = self.pte_next_pfn(pte)
            ptes.append(pte)
        if type(self).set_pte is PgtableGeneric.set_pte:
            self._write_run(ptep, ptes)
            return
        for pte in ptes:
            self.set_pte(ptep, pte)
            ptep = ptep + 1

    def pte_advance_pfn(self, pte: pte_t, nr: int) -> pte_t:
        """include/linux/pgtable.h (``#ifndef pte_advance_pfn``): the pfn field, at
        ``PFN_PTE_SHIFT`` (``PAGE_SHIFT`` unless the architecture says), plus ``nr``."""
        return pte_t(pte + (nr << self.PAGE_SHIFT))

    def pte_next_pfn(self, pte: pte_t) -> pte_t:
        """include/linux/pgtable.h: ``pte_advance_pfn(pte, 1)``."""
        return self.pte_advance_pfn(pte, 1)

    def set_pmd(self, pmdp: PmdPtr, pmd: pmd_t) -> None:
        self._write(pmdp, pmd)

    def set_pmd_at(self, mm: mm_struct, addr: int, pmdp: PmdPtr, pmd: pmd_t) -> None:
        self.set_pmd(pmdp, pmd)

    def set_pud(self, pudp: PudPtr, pud: pud_t) -> None:
        self._write(pudp, pud)

    def set_pud_at(self, mm: mm_struct, addr: int, pudp: PudPtr, pud: pud_t) -> None:
        self.set_pud(pudp, pud)

    def set_p4d(self, p4dp: P4dPtr, p4d: p4d_t) -> None:
        self._write(p4dp, p4d)

    def set_pgd(self, pgdp: PgdPtr, pgd: pgd_t) -> None:
        self._write(pgdp, pgd)

    def pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        self.set_pte(ptep, pte_t(0))

    def ptep_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        self.pte_clear(mm, addr, ptep)

    def pmd_clear(self, pmdp: PmdPtr) -> None:
        self.set_pmd(pmdp, pmd_t(0))

    def pud_clear(self, pudp: PudPtr) -> None:
        self.set_pud(pudp, pud_t(0))

    def p4d_clear(self, p4dp: P4dPtr) -> None:
        self.set_p4d(p4dp, p4d_t(0))

    def pgd_clear(self, pgdp: PgdPtr) -> None:
        self.set_pgd(pgdp, pgd_t(0))

    # -- architecture primitives (asm/pgtable.h) ------------------------------------------

    def pgd_none(self, pgd: pgd_t) -> bool:
        raise NotImplementedError

    def pgd_bad(self, pgd: pgd_t) -> bool:
        raise NotImplementedError

    def pgd_present(self, pgd: pgd_t) -> bool:
        raise NotImplementedError

    def p4d_none(self, p4d: p4d_t) -> bool:
        raise NotImplementedError

    def p4d_bad(self, p4d: p4d_t) -> bool:
        raise NotImplementedError

    def p4d_present(self, p4d: p4d_t) -> bool:
        raise NotImplementedError

    def pud_none(self, pud: pud_t) -> bool:
        raise NotImplementedError

    def pud_bad(self, pud: pud_t) -> bool:
        raise NotImplementedError

    def pud_present(self, pud: pud_t) -> bool:
        raise NotImplementedError

    def pmd_none(self, pmd: pmd_t) -> bool:
        raise NotImplementedError

    def pmd_bad(self, pmd: pmd_t) -> bool:
        raise NotImplementedError

    def pmd_present(self, pmd: pmd_t) -> bool:
        raise NotImplementedError

    def pte_none(self, pte: pte_t) -> bool:
        raise NotImplementedError

    def pte_present(self, pte: pte_t) -> bool:
        raise NotImplementedError

    def pgd_page_vaddr(self, pgd: pgd_t) -> P4dPtr:
        raise NotImplementedError

    def p4d_pgtable(self, p4d: p4d_t) -> PudPtr:
        raise NotImplementedError

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        raise NotImplementedError

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        raise NotImplementedError

    def pmd_pgtable(self, pmd: pmd_t) -> PtePtr:
        """``pmd_pgtable``: the PTE table (``pgtable_t``) a pmd entry points to."""
        return self.pmd_page_vaddr(pmd)

    # Leaf predicates default to false (include/linux/pgtable.h).
    def pgd_leaf(self, pgd: pgd_t) -> bool:
        return False

    def p4d_leaf(self, p4d: p4d_t) -> bool:
        return False

    def pud_leaf(self, pud: pud_t) -> bool:
        return False

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        return False

    def pgd_populate(self, mm: mm_struct, pgd: PgdPtr, p4d: P4dPtr) -> None:
        raise NotImplementedError

    def p4d_populate(self, mm: mm_struct, p4d: P4dPtr, pud: PudPtr) -> None:
        raise NotImplementedError

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        raise NotImplementedError

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        raise NotImplementedError

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        raise NotImplementedError

    # PTE value primitives the mm/ call sites use (asm/pgtable.h; no generic version).
    def pte_pfn(self, pte: pte_t) -> int:
        raise NotImplementedError

    def pfn_pte(self, page_nr: int, pgprot: pgprot_t) -> pte_t:
        raise NotImplementedError

    def pte_write(self, pte: pte_t) -> bool:
        raise NotImplementedError

    def pte_special(self, pte: pte_t) -> bool:
        raise NotImplementedError

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        raise NotImplementedError

    def pte_wrprotect(self, pte: pte_t) -> pte_t:
        raise NotImplementedError

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        raise NotImplementedError

    def pte_mkold(self, pte: pte_t) -> pte_t:
        raise NotImplementedError

    def pte_dirty(self, pte: pte_t) -> bool:
        raise NotImplementedError

    # Generic read-modify-write defaults (include/linux/pgtable.h, !__HAVE_ARCH_PTEP_*).
    def ptep_get_and_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        pte = self.ptep_get(ptep)
        self.pte_clear(mm, addr, ptep)
        return pte

    def ptep_get_and_clear_full(self, mm: mm_struct, addr: int, ptep: PtePtr, full: int) -> pte_t:
        return self.ptep_get_and_clear(mm, addr, ptep)

    def ptep_set_wrprotect(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        old_pte = self.ptep_get(ptep)
        self.set_pte_at(mm, addr, ptep, self.pte_wrprotect(old_pte))

    # Kconfig: CONFIG_HAVE_MOVE_PMD / CONFIG_HAVE_MOVE_PUD (mremap moves whole tables).
    HAVE_MOVE_PMD = False
    HAVE_MOVE_PUD = False
    ARCH_HAS_PTE_SPECIAL = True
    """Kconfig: a software pte bit marks pfn mappings without a struct page."""

    # -- none_or_clear_bad (include/linux/pgtable.h, mm/pgtable-generic.c) ---------------

    def pgd_ERROR(self, what: str, val: int) -> None:
        """``pXd_ERROR``: the kernel prints "bad pXd"; we keep a log tests can read."""
        self.bad_entries.append((what, val))

    bad_entries: list[tuple[str, int]]

    def pgd_clear_bad(self, pgd: PgdPtr) -> None:
        self.pgd_ERROR("pgd", self.pgdp_get(pgd))
        self.pgd_clear(pgd)

    def p4d_clear_bad(self, p4d: P4dPtr) -> None:
        self.pgd_ERROR("p4d", self.p4dp_get(p4d))
        self.p4d_clear(p4d)

    def pud_clear_bad(self, pud: PudPtr) -> None:
        self.pgd_ERROR("pud", self.pudp_get(pud))
        self.pud_clear(pud)

    def pmd_clear_bad(self, pmd: PmdPtr) -> None:
        """Never stubbed out by the folding headers: "pmd folding is special"."""
        self.pgd_ERROR("pmd", self.pmdp_get(pmd))
        self.pmd_clear(pmd)

    def pgd_none_or_clear_bad(self, pgd: PgdPtr) -> bool:
        v = self.pgdp_get(pgd)
        if self.pgd_none(v):
            return True
        if self.pgd_bad(v):
            self.pgd_clear_bad(pgd)
            return True
        return False

    def p4d_none_or_clear_bad(self, p4d: P4dPtr) -> bool:
        v = self.p4dp_get(p4d)
        if self.p4d_none(v):
            return True
        if self.p4d_bad(v):
            self.p4d_clear_bad(p4d)
            return True
        return False

    def pud_none_or_clear_bad(self, pud: PudPtr) -> bool:
        v = self.pudp_get(pud)
        if self.pud_none(v):
            return True
        if self.pud_bad(v):
            self.pud_clear_bad(pud)
            return True
        return False

    def pmd_none_or_clear_bad(self, pmd: PmdPtr) -> bool:
        v = self.pmdp_get(pmd)
        if self.pmd_none(v):
            return True
        if self.pmd_bad(v):
            self.pmd_clear_bad(pmd)
            return True
        return False

    # -- split page-table locks (include/linux/mm.h) -------------------------------------

    USE_SPLIT_PTE_PTLOCKS = True
    USE_SPLIT_PMD_PTLOCKS = True

    def ptlock_ptr(self, table_pa: int) -> spinlock_t:
        ptl = self.ptdescs[self.frame_of(table_pa)].ptl
        if ptl is None:
            raise AssertionError(f"page table {table_pa:#x} has no split lock (ctor not run?)")
        return ptl

    def pte_lockptr(self, mm: mm_struct, pmd: PmdPtr) -> spinlock_t:
        """Lock of the PTE table the pmd entry points to."""
        if not self.USE_SPLIT_PTE_PTLOCKS:
            return mm.page_table_lock
        return self.ptlock_ptr(self.pmd_page_vaddr(self.pmdp_get(pmd)).pa)

    def ptep_lockptr(self, mm: mm_struct, pte: PtePtr) -> spinlock_t:
        if not self.USE_SPLIT_PTE_PTLOCKS:
            return mm.page_table_lock
        return self.ptlock_ptr(pte.pa)

    def pmd_lockptr(self, mm: mm_struct, pmd: PmdPtr) -> spinlock_t:
        """Lock of the PMD table *containing* the entry (split PMD locks), else
        ``mm->page_table_lock``.  With a folded pmd the "PMD table" is not one."""
        if not self.USE_SPLIT_PMD_PTLOCKS or self.PAGETABLE_PMD_FOLDED:
            return mm.page_table_lock
        return self.ptlock_ptr(pmd.pa)

    def pmd_lock(self, mm: mm_struct, pmd: PmdPtr) -> spinlock_t:
        ptl = self.pmd_lockptr(mm, pmd)
        spin_lock(ptl)
        return ptl

    def pud_lockptr(self, mm: mm_struct, pud: PudPtr) -> spinlock_t:
        """"No scalability reason to split PUD locks yet": always page_table_lock."""
        return mm.page_table_lock

    def pud_lock(self, mm: mm_struct, pud: PudPtr) -> spinlock_t:
        ptl = self.pud_lockptr(mm, pud)
        spin_lock(ptl)
        return ptl

    # -- huge pmd/pud values (asm/pgtable.h; used by legacy.mm.huge_memory, mprotect) -------

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        raise NotImplementedError

    def pmd_pfn(self, pmd: pmd_t) -> int:
        raise NotImplementedError

    def pud_pfn(self, pud: pud_t) -> int:
        raise NotImplementedError

    def pfn_pmd(self, page_nr: int, pgprot: pgprot_t) -> pmd_t:
        raise NotImplementedError

    def pfn_pud(self, page_nr: int, pgprot: pgprot_t) -> pud_t:
        raise NotImplementedError

    def pmd_pgprot(self, pmd: pmd_t) -> pgprot_t:
        raise NotImplementedError

    def pud_pgprot(self, pud: pud_t) -> pgprot_t:
        raise NotImplementedError

    def pgprot_large_2_4k(self, pgprot: pgprot_t) -> pgprot_t:
        """The protection of a huge leaf rewritten for 4K leaves (x86's name, pgtable_types.h;
        arm64 sets ``PTE_TYPE_PAGE`` in ``split_pmd``).  Huge-page splits need it."""
        raise NotImplementedError

    def pmd_modify(self, pmd: pmd_t, newprot: pgprot_t) -> pmd_t:
        raise NotImplementedError

    def pud_modify(self, pud: pud_t, newprot: pgprot_t) -> pud_t:
        raise NotImplementedError

    def pmd_mkhuge(self, pmd: pmd_t) -> pmd_t:
        raise NotImplementedError

    def pud_mkhuge(self, pud: pud_t) -> pud_t:
        raise NotImplementedError

    def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t:
        raise NotImplementedError

    def pmd_write(self, pmd: pmd_t) -> bool:
        raise NotImplementedError

    def pud_write(self, pud: pud_t) -> bool:
        raise NotImplementedError

    def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t:
        raise NotImplementedError

    def pud_wrprotect(self, pud: pud_t) -> pud_t:
        raise NotImplementedError

    def pmd_mkold(self, pmd: pmd_t) -> pmd_t:
        raise NotImplementedError

    def pud_mkold(self, pud: pud_t) -> pud_t:
        raise NotImplementedError

    # Defaults of include/linux/pgtable.h for an architecture without the feature.
    def pmd_special(self, pmd: pmd_t) -> bool:
        """!CONFIG_ARCH_SUPPORTS_PMD_PFNMAP."""
        return False

    def pmd_mkspecial(self, pmd: pmd_t) -> pmd_t:
        return pmd

    def pud_special(self, pud: pud_t) -> bool:
        """!CONFIG_ARCH_SUPPORTS_PUD_PFNMAP."""
        return False

    def pud_mkspecial(self, pud: pud_t) -> pud_t:
        return pud

    # !CONFIG_HAVE_ARCH_SOFT_DIRTY stubs (include/linux/pgtable.h).
    def pte_soft_dirty(self, pte: pte_t) -> bool:
        return False

    def pte_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return pte

    def pte_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return pte

    def pmd_soft_dirty(self, pmd: pmd_t) -> bool:
        return False

    def pmd_mksoft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd

    def pmd_clear_soft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd

    # !CONFIG_HAVE_ARCH_HUGE_VMAP stubs not in legacy.huge_mm (mm/vmalloc.c callers).
    def p4d_free_pud_page(self, p4d: P4dPtr, addr: int) -> int:
        return 0

    def pud_free_pmd_page(self, pud: PudPtr, addr: int) -> int:
        return 0

    def pmd_free_pte_page(self, pmd: PmdPtr, addr: int) -> int:
        return 0

    # -- PTE mapping family (include/linux/mm.h, mm/pgtable-generic.c, 6.5+) -------------

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        return self.pmd_leaf(pmd)

    def pud_trans_huge(self, pud: pud_t) -> bool:
        return self.pud_leaf(pud)

    def _pte_offset_map(self, pmd: PmdPtr, addr: int) -> tuple[PtePtr, pmd_t] | None:
        pmdval = self.pmdp_get_lockless(pmd)
        # ___pte_offset_map: ``pmd_none(pmdval) || is_pmd_migration_entry(pmdval)`` goes to
        # nomap before the pmd_trans_huge and pmd_bad checks, so a migration entry is never
        # cleared as bad.  is_pmd_migration_entry is 0 without ARCH_ENABLE_THP_MIGRATION.
        if self.pmd_none(pmdval) or self._is_pmd_migration_entry_cfg(pmdval):
            return None
        if self.pmd_trans_huge(pmdval):
            return None
        if self.pmd_bad(pmdval):
            self.pmd_clear_bad(pmd)
            return None
        return self.pmd_page_vaddr(pmdval) + self.pte_index(addr), pmdval

    def _is_pmd_migration_entry_cfg(self, pmdval: pmd_t) -> bool:
        """``is_pmd_migration_entry`` as include/linux/swapops.h compiles it: the real test
        with ``CONFIG_ARCH_ENABLE_THP_MIGRATION``, the stub returning 0 without.  (An
        architecture whose swap format is not emulated cannot hold a migration entry.)"""
        if not (self.ARCH_ENABLE_THP_MIGRATION and self.SWP_ENTRY_EMULATED):
            return False
        return self.is_pmd_migration_entry(pmdval)

    def pte_offset_map(self, pmd: PmdPtr, addr: int) -> PtePtr | None:
        """May return None (no PTE table there, or a huge pmd): kernel 6.5 and later."""
        r = self._pte_offset_map(pmd, addr)
        return None if r is None else r[0]

    def pte_unmap(self, pte: PtePtr) -> None:
        """``rcu_read_unlock()`` (and ``kunmap_local`` with HIGHPTE): nothing to undo here."""

    def pte_offset_map_lock(
        self, mm: mm_struct, pmd: PmdPtr, addr: int
    ) -> tuple[PtePtr, spinlock_t] | None:
        """``pte_offset_map_lock(mm, pmd, addr, &ptl)``: returns ``(pte, ptl)`` with ``ptl``
        held, or None.  Rechecks the pmd under the lock as ``__pte_offset_map_lock`` does."""
        while True:
            r = self._pte_offset_map(pmd, addr)
            if r is None:
                return None
            pte, pmdval = r
            ptl = self.pte_lockptr(mm, pmd)
            spin_lock(ptl)
            if self.pmd_same(pmdval, self.pmdp_get_lockless(pmd)):
                return pte, ptl
            self.pte_unmap_unlock(pte, ptl)

    def pte_unmap_unlock(self, pte: PtePtr, ptl: spinlock_t) -> None:
        spin_unlock(ptl)
        self.pte_unmap(pte)
