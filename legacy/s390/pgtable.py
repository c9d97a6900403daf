"""s390x page-table helpers: dynamic 3 -> 4 -> 5 levels, 16 KiB region/segment tables.

Follows ``arch/s390/include/asm/pgtable.h`` (bits, predicates, ``pgd_offset_raw`` and the
``p?d_offset`` folding, pte modifiers, swap format), ``pgalloc.h`` (``*_alloc_one``,
``*_populate``, ``check_asce_limit``), ``arch/s390/mm/pgalloc.c`` (``crst_table_alloc``,
``crst_table_upgrade``, ``page_table_alloc``), ``pgtable.c`` (``ptep_xchg_*``, in
:mod:`legacy.s390.tlbflush`), ``asm/mmu_context.h`` (``init_new_context``) and
``arch/s390/mm/mmap.c`` (``setup_protection_map``), Linux v6.18 as read from stored copies
(``pgtable.h`` at torvalds/linux 00c010e1, ``pgalloc.h`` with the ``_noprof`` allocators and
``pagetable_*_ctor``, ``pgtable.c`` after the gmap removal (``cpu_has_tlb_lc()``); the stored
``pgalloc.c`` is older than v6.18 -- it still writes ``S390_lowcore`` -- but already has the
full-page ``page_table_alloc``).  Bit names come from :mod:`arches.s390.bits`.

What is surprising, and emulated:

- Five levels are compiled in (``CONFIG_PGTABLE_LEVELS`` = 5, no pgtable-nop?d.h), and the
  folding is decided per mm, at run time: a new mm has three levels (``asce_limit`` =
  ``_REGION2_SIZE``, 4 TiB; the pgd *is* a region-third table);
  ``mm_p4d_folded`` / ``mm_pud_folded`` / ``mm_pmd_folded`` compare ``asce_limit``; the
  ``p?d_offset`` functions fold by looking at the *table-type bits of the entry*: a pgd
  entry whose type is below region-first is the p4d entry itself.
- ``pgd_offset`` (``pgd_offset_raw``) reads entry 0 of the top table to learn its type, and
  indexes with that level's shift: ``pgd_index`` alone would be wrong for a 3-level mm.
- Empty entries are not zero: ``_REGION1_ENTRY_EMPTY`` ... ``_SEGMENT_ENTRY_EMPTY``,
  ``_PAGE_INVALID``; tables are initialised with them (``crst_table_init``) -- which is
  also what makes ``pgd_offset_raw`` work on an empty table.
- Region and segment tables are 2048 entries, 16 KiB, an order-2 allocation
  (``CRST_ALLOC_ORDER``); a page table is 256 entries (2 KiB) but takes a whole 4 KiB page:
  ``page_table_alloc`` (pgalloc.c) allocates one order-0 page, fills the lower 2 KiB with
  ``_PAGE_INVALID`` and zeroes the upper 2 KiB (where PGSTEs live for KVM guests).  The
  2 KiB fragment allocator is gone (commit d08d4e7cd6bf, "s390/mm: use full 4KB page for
  2KB PTE", November 2023, v6.7): the issue's "two per 4 KiB frame" no longer holds at
  v6.18.
- ``crst_table_upgrade(mm, end)`` adds levels under a live mm when a mapping needs an
  address above ``asce_limit`` (``check_asce_limit``, from ``arch_get_unmapped_area``):
  new top tables, entry 0 pointing at the old top, a new ``mm->pgd`` and
  ``mm->context.asce``, CR7 reloaded and the local TLB flushed on every CPU.  Departure:
  an *empty* chain the upgrade left at entry 0 is freed with the table holding it (see
  :meth:`S390Kernel.pgd_free`: the kernel leaks it when no vma lies below 4 TiB).
- Clearing a valid pte invalidates it in the TLB at once (IPTE): see
  :mod:`legacy.s390.tlbflush`.

Emulation conventions: ``mm->context`` holds ``asce_limit``, ``asce`` and ``flush_mm``.
The kernel's own address space (``init_mm``, CR13) is a 5-level space (the emulation puts
kernel VAs at 2^63 and above, :data:`arches.s390.KERNEL_START`).  A region/segment table's
``struct ptdesc`` is that of its first page; :meth:`S390Kernel.frame_of` maps every page of
the block to it.  THP leaves are segment-table entries (EDAT-1, 1 MiB:
:mod:`legacy.s390.thp`); not emulated yet: huge vmap and hugetlb (2 GiB region-third
leaves), KVM (PGSTE, gmap), storage keys, RDP.
"""

from __future__ import annotations

from arches import ArchConfig
from arches.errors import OutOfMemory, PhysMemError
from arches.s390.bits import (
    _ASCE_TABLE_LENGTH,
    _ASCE_TYPE_REGION1,
    _ASCE_TYPE_REGION2,
    _ASCE_TYPE_REGION3,
    _ASCE_USER_BITS,
    _PAGE_DIRTY,
    _PAGE_INVALID,
    _PAGE_NOEXEC,
    _PAGE_PRESENT,
    _PAGE_PROTECT,
    _PAGE_READ,
    _PAGE_SOFT_DIRTY,
    _PAGE_SPECIAL,
    _PAGE_SWP_EXCLUSIVE,
    _PAGE_UNUSED,
    _PAGE_WRITE,
    _PAGE_YOUNG,
    _REGION1_ENTRY,
    _REGION1_ENTRY_EMPTY,
    _REGION1_SIZE,
    _REGION2_ENTRY,
    _REGION2_ENTRY_EMPTY,
    _REGION2_SIZE,
    _REGION3_ENTRY,
    _REGION3_ENTRY_DIRTY,
    _REGION3_ENTRY_EMPTY,
    _REGION3_ENTRY_LARGE,
    _REGION3_ENTRY_ORIGIN_LARGE,
    _REGION3_ENTRY_PRESENT,
    _REGION3_ENTRY_READ,
    _REGION3_ENTRY_SOFT_DIRTY,
    _REGION3_ENTRY_WRITE,
    _REGION3_ENTRY_YOUNG,
    _REGION3_SIZE,
    _REGION_ENTRY_BITS,
    _REGION_ENTRY_INVALID,
    _REGION_ENTRY_NOEXEC,
    _REGION_ENTRY_ORIGIN,
    _REGION_ENTRY_PROTECT,
    _REGION_ENTRY_TYPE_MASK,
    _REGION_ENTRY_TYPE_R1,
    _REGION_ENTRY_TYPE_R2,
    _REGION_ENTRY_TYPE_R3,
    _SEGMENT_ENTRY,
    _SEGMENT_ENTRY_BITS,
    _SEGMENT_ENTRY_EMPTY,
    _SEGMENT_ENTRY_LARGE,
    _SEGMENT_ENTRY_ORIGIN,
    _SEGMENT_ENTRY_ORIGIN_LARGE,
    _SEGMENT_ENTRY_PRESENT,
    _SEGMENT_ENTRY_TYPE_MASK,
    CRST_ALLOC_ORDER,
)
from legacy.mm_types import mm_struct, ptdesc, spin_lock, spin_unlock, vm_area_struct
from legacy.s390.thp import S390Thp
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

ENOMEM = -12
MASK64 = (1 << 64) - 1
TASK_SIZE_MAX = -4096 & MASK64
"""arch/s390/include/asm/processor.h: ``-PAGE_SIZE``; the 5-level ``asce_limit``."""

# pgtable.h ``__PAGE_*`` protections (page_noexec_mask is all ones: the machine has NX).
P_NONE = _PAGE_PRESENT | _PAGE_INVALID | _PAGE_PROTECT
P_RO = _PAGE_PRESENT | _PAGE_READ | _PAGE_NOEXEC | _PAGE_INVALID | _PAGE_PROTECT
P_RX = _PAGE_PRESENT | _PAGE_READ | _PAGE_INVALID | _PAGE_PROTECT
P_RW = (_PAGE_PRESENT | _PAGE_READ | _PAGE_WRITE | _PAGE_NOEXEC | _PAGE_INVALID
             | _PAGE_PROTECT)
P_RWX = _PAGE_PRESENT | _PAGE_READ | _PAGE_WRITE | _PAGE_INVALID | _PAGE_PROTECT
P_SHARED = (_PAGE_PRESENT | _PAGE_READ | _PAGE_WRITE | _PAGE_YOUNG | _PAGE_DIRTY
                 | _PAGE_NOEXEC)
P_KERNEL = P_SHARED
P_KERNEL_RO = _PAGE_PRESENT | _PAGE_READ | _PAGE_YOUNG | _PAGE_PROTECT | _PAGE_NOEXEC


# pgtable.h ``__REGION3_KERNEL*`` / ``__SEGMENT_KERNEL*``: large kernel mappings (vmem.c).
REGION3_KERNEL = (_REGION_ENTRY_TYPE_R3 | _REGION3_ENTRY_PRESENT | _REGION3_ENTRY_LARGE
                  | _REGION3_ENTRY_READ | _REGION3_ENTRY_WRITE | _REGION3_ENTRY_YOUNG
                  | _REGION3_ENTRY_DIRTY | _REGION_ENTRY_NOEXEC)
REGION3_KERNEL_RO = (_REGION_ENTRY_TYPE_R3 | _REGION3_ENTRY_PRESENT | _REGION3_ENTRY_LARGE
                     | _REGION3_ENTRY_READ | _REGION3_ENTRY_YOUNG | _REGION_ENTRY_PROTECT
                     | _REGION_ENTRY_NOEXEC)

# pgtable.h ``__SWP_*``: 64 bit swap entry format (offset bits 0-51 MSB-0, type 57-61).
SWP_OFFSET_MASK = (1 << 52) - 1
SWP_OFFSET_SHIFT = 12
SWP_TYPE_MASK = (1 << 5) - 1
SWP_TYPE_SHIFT = 2

LEVEL_OF_TYPE = {_REGION_ENTRY_TYPE_R1: "pgd", _REGION_ENTRY_TYPE_R2: "p4d",
                 _REGION_ENTRY_TYPE_R3: "pud", 0: "pmd"}


class S390Kernel(S390Thp):
    """Linux on s390x (64-bit, 4K pages, EDAT-1/2 machine with NX), no KVM."""

    SEPARATE_KERNEL_ROOT = True
    _HAVE_ARCH_PMDP_INVALIDATE = True
    """The kernel runs in its own address space (home space, CR13 = ``kernel_asce``)."""
    SWP_ENTRY_EMULATED = True
    SOFTWARE_YOUNG_DIRTY = True
    """``pte_mkold``/``pte_mkyoung`` toggle ``_PAGE_INVALID``, ``pte_mkclean``/``pte_mkdirty``
    ``_PAGE_PROTECT`` (pgtable.h): young and dirty are learnt from faults."""
    # arch/s390/Kconfig selects HAVE_ARCH_TRANSPARENT_HUGEPAGE (THP needs EDAT-1: the
    # machine has it); not HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD, not HAVE_ARCH_HUGE_VMAP.
    HAVE_ARCH_TRANSPARENT_HUGEPAGE = True
    TRANSPARENT_HUGEPAGE = True
    MEM_SOFT_DIRTY = True
    NUMA_BALANCING = True

    def __init__(self, config: ArchConfig) -> None:
        self._crst_head: dict[int, int] = {}
        self._upgrade_tables: set[int] = set()
        super().__init__(config)

    # -- geometry (pgtable.h) -------------------------------------------------------------

    def arch_geometry(self) -> None:
        self.PAGE_SHIFT = 12
        self.PGDIR_SHIFT = 53  # _REGION1_SHIFT
        self.P4D_SHIFT = 42  # _REGION2_SHIFT
        self.PUD_SHIFT = 31  # _REGION3_SHIFT
        self.PMD_SHIFT = 20  # _SEGMENT_SHIFT
        self.PTRS_PER_PGD = self.PTRS_PER_P4D = self.PTRS_PER_PUD = 2048  # _CRST_ENTRIES
        self.PTRS_PER_PMD = 2048
        self.PTRS_PER_PTE = 256  # _PAGE_ENTRIES
        self.SIZEOF_PGD = self.SIZEOF_P4D = self.SIZEOF_PUD = 8
        self.SIZEOF_PMD = self.SIZEOF_PTE = 8

    def derive_sizes(self) -> None:
        super().derive_sizes()
        self.PAGE_NONE = pgprot_t(P_NONE)
        self.PAGE_RO = pgprot_t(P_RO)
        self.PAGE_RX = pgprot_t(P_RX)
        self.PAGE_RW = pgprot_t(P_RW)
        self.PAGE_RWX = pgprot_t(P_RWX)
        self.PAGE_SHARED = pgprot_t(P_SHARED)
        self.PAGE_KERNEL = pgprot_t(P_KERNEL)
        self.PAGE_KERNEL_RO = pgprot_t(P_KERNEL_RO)
        # include/linux/pgtable.h: ``#ifndef PAGE_KERNEL_EXEC # define PAGE_KERNEL_EXEC
        # PAGE_KERNEL`` -- not executable on s390 (set_memory_x makes text executable).
        # s390 has no PAGE_KERNEL_ROX and the generic header gives none: left undefined.
        self.PAGE_KERNEL_EXEC = self.PAGE_KERNEL
        self._PAGE_CHG_MASK = (self.PAGE_MASK | _PAGE_SPECIAL | _PAGE_DIRTY | _PAGE_YOUNG
                               | _PAGE_SOFT_DIRTY)
        # arch/s390/mm/mmap.c setup_protection_map()
        n, ro, rx, rw, rwx = self.PAGE_NONE, self.PAGE_RO, self.PAGE_RX, self.PAGE_RW, \
            self.PAGE_RWX
        self.protection_map = (n, ro, ro, ro, rx, rx, rx, rx,
                               n, ro, rw, rw, rx, rx, rwx, rwx)

    # -- mm->context: asce_limit and folding (pgtable.h, mmu_context.h) ------------------------

    def mm_p4d_folded(self, mm: mm_struct) -> bool:
        return mm.context["asce_limit"] <= _REGION1_SIZE

    def mm_pud_folded(self, mm: mm_struct) -> bool:
        return mm.context["asce_limit"] <= _REGION2_SIZE

    def mm_pmd_folded(self, mm: mm_struct) -> bool:
        return mm.context["asce_limit"] <= _REGION3_SIZE

    def init_new_context(self, mm: mm_struct) -> None:
        """asm/mmu_context.h: a context created by exec continues as a 3-level task
        (``asce_limit`` 0 -> ``_REGION2_SIZE``); a forked one keeps its parent's limit;
        ``asce`` from the pgd and the type; the pgd initialised with its empty entry."""
        limit = mm.context.setdefault("asce_limit", _REGION2_SIZE)
        init_entry, asce_type = {
            _REGION2_SIZE: (_REGION3_ENTRY_EMPTY, _ASCE_TYPE_REGION3),
            TASK_SIZE_MAX: (_REGION1_ENTRY_EMPTY, _ASCE_TYPE_REGION1),
            _REGION1_SIZE: (_REGION2_ENTRY_EMPTY, _ASCE_TYPE_REGION2),
        }[limit]
        mm.context["asce"] = mm.pgd.pa | _ASCE_TABLE_LENGTH | _ASCE_USER_BITS | asce_type
        mm.context["flush_mm"] = 0
        self.crst_table_init(mm.pgd.pa, init_entry)

    # -- 16 KiB tables (pgalloc.c, pgalloc.h) ------------------------------------------------

    def frame_of(self, pa: int) -> int:
        """The page whose ``struct ptdesc`` describes the table at ``pa``: for a region or
        segment table (an order-2 block) its first page."""
        frame = pa & ~(self.config.page_size - 1)
        return self._crst_head.get(frame, frame)

    def crst_table_alloc(self, mm: mm_struct, level: str) -> int | None:
        """``pagetable_alloc(GFP_KERNEL, CRST_ALLOC_ORDER)``: four contiguous pages, 16 KiB
        aligned; NULL (None) on failure.  ``level`` is the emulation's record of what the
        table is used as (it changes when ``crst_table_upgrade`` adds a level above it)."""
        try:
            pa = self.mem.alloc_frames(CRST_ALLOC_ORDER)
        except OutOfMemory:
            return None
        self.ptdescs[pa] = ptdesc(pa=pa, level=level, mm=mm)
        for i in range(1 << CRST_ALLOC_ORDER):
            self._crst_head[pa + i * self.config.page_size] = pa
        return pa

    def crst_table_free(self, mm: mm_struct, pa: int) -> None:
        """``pagetable_free`` of the order-2 block; with it, the empty chain
        ``crst_table_upgrade`` left at its entry 0 (:meth:`free_upgrade_chain`)."""
        if self._crst_head.get(pa) != pa:
            raise PhysMemError(f"crst_table_free of {pa:#x}, which is not a region/segment "
                               "table")
        desc = self.ptdescs[pa]
        if desc.ptl is not None:
            raise PhysMemError(f"crst_table_free of {pa:#x} with its split lock still set up")
        self.free_upgrade_chain(mm, pa)
        for i in range(1 << CRST_ALLOC_ORDER):
            frame = pa + i * self.config.page_size
            self.mem.free_frame(frame)
            del self._crst_head[frame]
        del self.ptdescs[pa]
        self._upgrade_tables.discard(pa)

    def crst_table_init(self, pa: int, entry: int) -> None:
        """pgalloc.h: ``memset64(crst, entry, _CRST_ENTRIES)``."""
        self.mem.fill(pa, 8, entry, self.PTRS_PER_PGD)

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """``crst_table_alloc`` (+ ``pagetable_pgd_ctor``); then ``init_new_context``, which
        kernel/fork.c ``mm_init`` runs right after ``mm_alloc_pgd`` (here: at once, as
        ``GenericKernel.mm_alloc`` has no separate hook)."""
        pa = self.crst_table_alloc(mm, "pgd")
        if pa is None:
            return None
        mm.pgd = PgdPtr(pa, self.SIZEOF_PGD)
        self.init_new_context(mm)
        return mm.pgd

    def pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        """pgalloc.h: ``pagetable_dtor`` + ``crst_table_free`` of the top table only.

        Documented departure (in :meth:`crst_table_free`, so here and when
        ``free_p4d_range`` frees the region-second table of a 3 -> 5 upgrade): the tables
        ``crst_table_upgrade`` put at entry 0 of the new top (the old top; for 3 -> 5 also
        the new region-second table above it) go with the table holding them when they are
        *empty*, and the region-third one takes back the upgrade's ``mm_inc_nr_puds``.
        mm/memory.c ``free_pgd_range`` starts at the first vma, so entry 0 is visited only
        when a vma lies below the old ``asce_limit``; with none there the kernel leaks the
        chain (or orphans it: ``free_p4d_range`` frees the table above), and kernel/fork.c
        ``__mmdrop`` -> ``check_mm`` reports "BUG: non-zero pgtables_bytes" (16 KiB).  A
        real process cannot get there: exec puts the stack below ``STACK_TOP`` <
        ``_REGION2_SIZE``, and unmapping it runs ``free_pgtables`` over entry 0, which frees
        the chain; the emulation's scenarios have no stack.  A chain table holding any
        entry is left alone: that is a real leak, and check_mm says so."""
        self.crst_table_free(mm, pgd.pa)

    def mm_upgrade_tables(self, mm: mm_struct) -> list[int]:
        """The tables ``crst_table_upgrade`` put below ``mm``'s new top table that are still
        there: each maps the lowest region of its level (entry 0 of the table above)."""
        return sorted(pa for pa in self._upgrade_tables if self.ptdescs[pa].mm is mm)

    def _empty_upgrade_table_below(self, mm: mm_struct, pa: int) -> int | None:
        """The upgrade table entry 0 of the region table at ``pa`` points at, if it is
        empty but for an empty upgrade table at its own entry 0."""
        if self.ptdescs[pa].level not in ("pgd", "p4d"):
            return None
        entry0 = self.mem.read(pa, 8)
        below = entry0 & _REGION_ENTRY_ORIGIN
        if entry0 & _REGION_ENTRY_INVALID or below not in self._upgrade_tables:
            return None
        if self.ptdescs[below].mm is not mm:
            return None
        empty = {"pud": _REGION3_ENTRY_EMPTY, "p4d": _REGION2_ENTRY_EMPTY}
        level = self.ptdescs[below].level
        first = self.mem.read(below, 8)
        if first != empty[level] and self._empty_upgrade_table_below(mm, below) is None:
            return None
        rest = self.mem.read_bytes(below + 8, 8 * (self.PTRS_PER_PUD - 1))
        if rest != empty[level].to_bytes(8, "big") * (self.PTRS_PER_PUD - 1):
            return None
        return below

    def free_upgrade_chain(self, mm: mm_struct, pa: int) -> None:
        """:meth:`pgd_free`'s departure: free the empty upgrade chain at entry 0 of the
        region table at ``pa`` (about to be freed), uncharging the region-third table."""
        below = self._empty_upgrade_table_below(mm, pa)
        if below is None:
            return
        level = self.ptdescs[below].level
        self.crst_table_free(mm, below)
        if level == "pud":
            self.mm_dec_nr_puds(mm)

    def paging_init(self) -> PgdPtr:
        """``swapper_pg_dir``: a region-first table here (the emulation's kernel window is
        above 2^63), empty; ``init_mm.context.asce`` = ``kernel_asce``."""
        mm = self.init_mm
        pa = self.crst_table_alloc(mm, "pgd")
        if pa is None:
            raise OutOfMemory("no memory for swapper_pg_dir")
        mm.context["asce_limit"] = TASK_SIZE_MAX
        mm.context["asce"] = pa | _ASCE_TABLE_LENGTH | _ASCE_TYPE_REGION1
        mm.context["flush_mm"] = 0
        self.crst_table_init(pa, _REGION1_ENTRY_EMPTY)
        return PgdPtr(pa, self.SIZEOF_PGD)

    def p4d_alloc_one(self, mm: mm_struct, addr: int) -> P4dPtr | None:
        pa = self.crst_table_alloc(mm, "p4d")
        if pa is None:
            return None
        self.crst_table_init(pa, _REGION2_ENTRY_EMPTY)
        return P4dPtr(pa, self.SIZEOF_P4D)

    def p4d_free(self, mm: mm_struct, p4d: P4dPtr) -> None:
        if self.mm_p4d_folded(mm):
            return
        self.crst_table_free(mm, p4d.pa)

    def pud_alloc_one(self, mm: mm_struct, addr: int) -> PudPtr | None:
        pa = self.crst_table_alloc(mm, "pud")
        if pa is None:
            return None
        self.crst_table_init(pa, _REGION3_ENTRY_EMPTY)
        return PudPtr(pa, self.SIZEOF_PUD)

    def pud_free(self, mm: mm_struct, pud: PudPtr) -> None:
        if self.mm_pud_folded(mm):
            return
        self.crst_table_free(mm, pud.pa)

    def pmd_alloc_one(self, mm: mm_struct, addr: int) -> PmdPtr | None:
        """``crst_table_init(_SEGMENT_ENTRY_EMPTY)``; ``pagetable_pmd_ctor(mm, ...)``: a split
        PMD lock unless ``init_mm``."""
        pa = self.crst_table_alloc(mm, "pmd")
        if pa is None:
            return None
        self.crst_table_init(pa, _SEGMENT_ENTRY_EMPTY)
        if self.USE_SPLIT_PMD_PTLOCKS and not mm.is_init_mm:
            self.ptlock_init(pa)
        return PmdPtr(pa, self.SIZEOF_PMD)

    def pmd_free(self, mm: mm_struct, pmd: PmdPtr) -> None:
        if self.mm_pmd_folded(mm):
            return
        if self.ptdescs[pmd.pa].ptl is not None:
            self.ptlock_free(pmd.pa)
        self.crst_table_free(mm, pmd.pa)

    def page_table_alloc(self, mm: mm_struct) -> PtePtr | None:
        """pgalloc.c: one page, ``pagetable_pte_ctor``; the 256 ptes ``_PAGE_INVALID``
        (``memset64``), the upper 2 KiB zero."""
        pa = self._pagetable_alloc("pte", mm)
        if pa is None:
            return None
        if self.USE_SPLIT_PTE_PTLOCKS:
            self.ptlock_init(pa)
        self.mem.fill(pa, 8, _PAGE_INVALID, self.PTRS_PER_PTE)
        return PtePtr(pa, self.SIZEOF_PTE)

    def pte_alloc_one(self, mm: mm_struct) -> PtePtr | None:
        return self.page_table_alloc(mm)

    def pte_alloc_one_kernel(self, mm: mm_struct) -> PtePtr | None:
        return self.page_table_alloc(mm)

    def pte_free_kernel(self, mm: mm_struct, pte: PtePtr) -> None:
        """``page_table_free``: ``pagetable_dtor_free`` as for a user table."""
        self.pte_free(mm, pte)

    # -- crst_table_upgrade (pgalloc.c) --------------------------------------------------

    def crst_table_upgrade(self, mm: mm_struct, end: int) -> int:
        """Add one or two levels above the top table so that ``end`` fits: 3 -> 4, 3 -> 5
        or 4 -> 5; -ENOMEM (nothing changed) when a table cannot be had."""
        asce_limit = mm.context["asce_limit"]
        if asce_limit < _REGION2_SIZE:
            raise AssertionError("VM_BUG_ON(asce_limit < _REGION2_SIZE)")
        if end <= asce_limit:
            return 0
        p4d = pgd = None
        if asce_limit == _REGION2_SIZE:
            p4d = self.crst_table_alloc(mm, "p4d")
            if p4d is None:
                return ENOMEM
            self.crst_table_init(p4d, _REGION2_ENTRY_EMPTY)
        if end > _REGION1_SIZE:
            pgd = self.crst_table_alloc(mm, "pgd")
            if pgd is None:
                if p4d is not None:
                    self.crst_table_free(mm, p4d)
                return ENOMEM
            self.crst_table_init(pgd, _REGION1_ENTRY_EMPTY)
        spin_lock(mm.page_table_lock)
        if p4d is not None:
            old = mm.pgd.pa
            self.ptdescs[old].level = "pud"
            self.p4d_populate(mm, P4dPtr(p4d, 8), PudPtr(old, 8))
            mm.pgd = PgdPtr(p4d, self.SIZEOF_PGD)
            mm.context["asce_limit"] = _REGION1_SIZE
            mm.context["asce"] = (p4d | _ASCE_TABLE_LENGTH | _ASCE_USER_BITS
                                  | _ASCE_TYPE_REGION2)
            self.ptdescs[p4d].level = "pgd"
            self.mm_inc_nr_puds(mm)
            self._upgrade_tables.add(old)
        if pgd is not None:
            old = mm.pgd.pa
            self.ptdescs[old].level = "p4d"
            self.pgd_populate(mm, PgdPtr(pgd, 8), P4dPtr(old, 8))
            self._upgrade_tables.add(old)
            mm.pgd = PgdPtr(pgd, self.SIZEOF_PGD)
            mm.context["asce_limit"] = TASK_SIZE_MAX
            mm.context["asce"] = (pgd | _ASCE_TABLE_LENGTH | _ASCE_USER_BITS
                                  | _ASCE_TYPE_REGION1)
        spin_unlock(mm.page_table_lock)
        # on_each_cpu(__crst_table_upgrade): CR7 = the new ASCE, then __tlb_flush_local()
        # (PTLB: the CPU's whole TLB)
        self.switch_mm(mm)
        self.hw_tlb.flush_all()
        return 0

    def arch_get_unmapped_area(self, mm: mm_struct, addr: int, len: int, pgoff: int,
                               flags: int) -> int:
        """arch/s390/mm/mmap.c ``arch_get_unmapped_area`` (and ``_topdown``) for
        ``MAP_FIXED``: ``-ENOMEM`` if ``len > TASK_SIZE - mmap_min_addr``, then
        ``check_asce_limit`` -- the page-table levels grow here, before the vma exists."""
        if len > self.TASK_SIZE:
            return ENOMEM
        return self.check_asce_limit(mm, addr, len)

    def check_asce_limit(self, mm: mm_struct, addr: int, len: int) -> int:
        """pgalloc.h: upgrade when ``[addr, addr + len)`` reaches above ``asce_limit`` and
        fits ``TASK_SIZE``; ``addr`` or the error."""
        if addr + len > mm.context["asce_limit"] and addr + len <= self.TASK_SIZE:
            rc = self.crst_table_upgrade(mm, addr + len)
            if rc:
                return rc
        return addr

    # -- populate (pgalloc.h) ----------------------------------------------------------

    def pgd_populate(self, mm: mm_struct, pgd: PgdPtr, p4d: P4dPtr) -> None:
        self.set_pgd(pgd, pgd_t(_REGION1_ENTRY | p4d.pa))

    def p4d_populate(self, mm: mm_struct, p4d: P4dPtr, pud: PudPtr) -> None:
        self.set_p4d(p4d, p4d_t(_REGION2_ENTRY | pud.pa))

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        self.set_pud(pud, pud_t(_REGION3_ENTRY | pmd.pa))

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t(_SEGMENT_ENTRY | pte.pa))

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.pmd_populate(mm, pmd, pte)

    # -- query functions (pgtable.h) ------------------------------------------------------

    @staticmethod
    def pgd_folded(pgd: pgd_t) -> bool:
        return pgd & _REGION_ENTRY_TYPE_MASK < _REGION_ENTRY_TYPE_R1

    def pgd_present(self, pgd: pgd_t) -> bool:
        if self.pgd_folded(pgd):
            return True
        return pgd & _REGION_ENTRY_ORIGIN != 0

    def pgd_none(self, pgd: pgd_t) -> bool:
        if self.pgd_folded(pgd):
            return False
        return pgd & _REGION_ENTRY_INVALID != 0

    def pgd_bad(self, pgd: pgd_t) -> bool:
        if pgd & _REGION_ENTRY_TYPE_MASK < _REGION_ENTRY_TYPE_R1:
            return False
        return pgd & ~_REGION_ENTRY_BITS & MASK64 != 0

    @staticmethod
    def p4d_folded(p4d: p4d_t) -> bool:
        return p4d & _REGION_ENTRY_TYPE_MASK < _REGION_ENTRY_TYPE_R2

    def p4d_present(self, p4d: p4d_t) -> bool:
        if self.p4d_folded(p4d):
            return True
        return p4d & _REGION_ENTRY_ORIGIN != 0

    def p4d_none(self, p4d: p4d_t) -> bool:
        if self.p4d_folded(p4d):
            return False
        return p4d == _REGION2_ENTRY_EMPTY

    def p4d_bad(self, p4d: p4d_t) -> bool:
        type_ = p4d & _REGION_ENTRY_TYPE_MASK
        if type_ > _REGION_ENTRY_TYPE_R2:
            return True
        if type_ < _REGION_ENTRY_TYPE_R2:
            return False
        return p4d & ~_REGION_ENTRY_BITS & MASK64 != 0

    @staticmethod
    def pud_folded(pud: pud_t) -> bool:
        return pud & _REGION_ENTRY_TYPE_MASK < _REGION_ENTRY_TYPE_R3

    def pud_present(self, pud: pud_t) -> bool:
        if self.pud_folded(pud):
            return True
        return pud & _REGION3_ENTRY_PRESENT != 0

    def pud_none(self, pud: pud_t) -> bool:
        if self.pud_folded(pud):
            return False
        return pud == _REGION3_ENTRY_EMPTY

    def pud_leaf(self, pud: pud_t) -> bool:
        if pud & _REGION_ENTRY_TYPE_MASK != _REGION_ENTRY_TYPE_R3:
            return False
        return self.pud_present(pud) and pud & _REGION3_ENTRY_LARGE != 0

    def pud_bad(self, pud: pud_t) -> bool:
        type_ = pud & _REGION_ENTRY_TYPE_MASK
        if type_ > _REGION_ENTRY_TYPE_R3 or self.pud_leaf(pud):
            return True
        if type_ < _REGION_ENTRY_TYPE_R3:
            return False
        return pud & ~_REGION_ENTRY_BITS & MASK64 != 0

    def pud_pfn(self, pud: pud_t) -> int:
        """``__pa(pud_deref(pud)) >> PAGE_SHIFT`` (the large origin for a leaf)."""
        return self.pud_pgtable(pud).pa >> self.PAGE_SHIFT

    def pud_write(self, pud: pud_t) -> bool:
        return pud & _REGION3_ENTRY_WRITE != 0

    def pud_wrprotect(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~_REGION3_ENTRY_WRITE | _REGION_ENTRY_PROTECT)

    def pud_mkwrite(self, pud: pud_t) -> pud_t:
        v = pud | _REGION3_ENTRY_WRITE
        if v & _REGION3_ENTRY_DIRTY:
            v &= ~_REGION_ENTRY_PROTECT
        return pud_t(v)

    def pud_mkclean(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~_REGION3_ENTRY_DIRTY | _REGION_ENTRY_PROTECT)

    def pud_mkdirty(self, pud: pud_t) -> pud_t:
        v = pud | _REGION3_ENTRY_DIRTY | _REGION3_ENTRY_SOFT_DIRTY
        if v & _REGION3_ENTRY_WRITE:
            v &= ~_REGION_ENTRY_PROTECT
        return pud_t(v)

    def pmd_present(self, pmd: pmd_t) -> bool:
        return pmd & _SEGMENT_ENTRY_PRESENT != 0

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        return self.pmd_present(pmd) and pmd & _SEGMENT_ENTRY_LARGE != 0

    def pmd_bad(self, pmd: pmd_t) -> bool:
        if pmd & _SEGMENT_ENTRY_TYPE_MASK > 0 or self.pmd_leaf(pmd):
            return True
        return pmd & ~_SEGMENT_ENTRY_BITS & MASK64 != 0

    def pmd_none(self, pmd: pmd_t) -> bool:
        return pmd == _SEGMENT_ENTRY_EMPTY

    def pgd_leaf(self, pgd: pgd_t) -> bool:
        return False

    def p4d_leaf(self, p4d: p4d_t) -> bool:
        return False

    def pte_present(self, pte: pte_t) -> bool:
        return pte & _PAGE_PRESENT != 0

    def pte_none(self, pte: pte_t) -> bool:
        return pte == _PAGE_INVALID

    def pte_swap(self, pte: pte_t) -> bool:
        return pte & (_PAGE_PROTECT | _PAGE_PRESENT) == _PAGE_PROTECT

    def pte_special(self, pte: pte_t) -> bool:
        return pte & _PAGE_SPECIAL != 0

    def pte_write(self, pte: pte_t) -> bool:
        return pte & _PAGE_WRITE != 0

    def pte_dirty(self, pte: pte_t) -> bool:
        return pte & _PAGE_DIRTY != 0

    def pte_young(self, pte: pte_t) -> bool:
        return pte & _PAGE_YOUNG != 0

    def pte_protnone(self, pte: pte_t) -> bool:
        """CONFIG_NUMA_BALANCING."""
        return self.pte_present(pte) and not pte & _PAGE_READ

    def pte_soft_dirty(self, pte: pte_t) -> bool:
        return pte & _PAGE_SOFT_DIRTY != 0

    # -- clear (pgtable.h: empty, not zero) ------------------------------------------------

    def pgd_clear(self, pgdp: PgdPtr) -> None:
        if self.pgdp_get(pgdp) & _REGION_ENTRY_TYPE_MASK == _REGION_ENTRY_TYPE_R1:
            self.set_pgd(pgdp, pgd_t(_REGION1_ENTRY_EMPTY))

    def p4d_clear(self, p4dp: P4dPtr) -> None:
        if self.p4dp_get(p4dp) & _REGION_ENTRY_TYPE_MASK == _REGION_ENTRY_TYPE_R2:
            self.set_p4d(p4dp, p4d_t(_REGION2_ENTRY_EMPTY))

    def pud_clear(self, pudp: PudPtr) -> None:
        if self.pudp_get(pudp) & _REGION_ENTRY_TYPE_MASK == _REGION_ENTRY_TYPE_R3:
            self.set_pud(pudp, pud_t(_REGION3_ENTRY_EMPTY))

    def pmd_clear(self, pmdp: PmdPtr) -> None:
        self.set_pmd(pmdp, pmd_t(_SEGMENT_ENTRY_EMPTY))

    def pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        self.set_pte(ptep, pte_t(_PAGE_INVALID))

    # -- dereference and offsets (pgtable.h) -----------------------------------------------

    def pgd_page_vaddr(self, pgd: pgd_t) -> P4dPtr:
        """``pgd_deref``."""
        return P4dPtr(pgd & _REGION_ENTRY_ORIGIN, self.SIZEOF_P4D)

    def p4d_pgtable(self, p4d: p4d_t) -> PudPtr:
        """``p4d_deref``."""
        return PudPtr(p4d & _REGION_ENTRY_ORIGIN, self.SIZEOF_PUD)

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        """``pud_deref`` (the large-page origin for a leaf)."""
        mask = _REGION3_ENTRY_ORIGIN_LARGE if self.pud_leaf(pud) else _REGION_ENTRY_ORIGIN
        return PmdPtr(pud & mask, self.SIZEOF_PMD)

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        """``pmd_deref``."""
        mask = _SEGMENT_ENTRY_ORIGIN_LARGE if self.pmd_leaf(pmd) else _SEGMENT_ENTRY_ORIGIN
        return PtePtr(pmd & mask, self.SIZEOF_PTE)

    def pgd_offset_pgd(self, pgd: PgdPtr, a: int) -> PgdPtr:
        """``pgd_offset_raw``: the shift comes from the table type of the top table's first
        entry (``((rste & _REGION_ENTRY_TYPE_MASK) >> 2) * 11 + 20``): 53, 42, 31 or 20."""
        rste = self.pgdp_get(pgd)
        shift = ((rste & _REGION_ENTRY_TYPE_MASK) >> 2) * 11 + 20
        return pgd + ((a >> shift) & (self.PTRS_PER_PGD - 1))

    def pgd_offset(self, mm: mm_struct, a: int) -> PgdPtr:
        """``pgd_offset(mm, address)`` = ``pgd_offset_raw(READ_ONCE(mm->pgd), address)``.

        An address at or above ``mm->context.asce_limit`` wraps the index silently, as in
        the kernel (``check_asce_limit`` upgrades the tables before a mapping needs them;
        ``mm/debug_vm_pgtable.c`` picks its address below ``TASK_SIZE`` = ``TASK_SIZE_MAX``
        and works on the wrapped entry of a 3-level mm).  A mapping made there anyway is
        caught by the hardware walker: DAT refuses an address beyond the ASCE's reach."""
        return self.pgd_offset_pgd(mm.pgd, a)

    def p4d_offset(self, pgd: PgdPtr, a: int) -> P4dPtr:
        v = self.pgdp_get(pgd)
        if v & _REGION_ENTRY_TYPE_MASK >= _REGION_ENTRY_TYPE_R1:
            return self.pgd_page_vaddr(v) + self.p4d_index(a)
        return P4dPtr(pgd.pa, self.SIZEOF_P4D)

    def pud_offset(self, p4d: P4dPtr, a: int) -> PudPtr:
        v = self.p4dp_get(p4d)
        if v & _REGION_ENTRY_TYPE_MASK >= _REGION_ENTRY_TYPE_R2:
            return self.p4d_pgtable(v) + self.pud_index(a)
        return PudPtr(p4d.pa, self.SIZEOF_PUD)

    def pmd_offset(self, pud: PudPtr, a: int) -> PmdPtr:
        v = self.pudp_get(pud)
        if v & _REGION_ENTRY_TYPE_MASK >= _REGION_ENTRY_TYPE_R3:
            return self.pud_pgtable(v) + self.pmd_index(a)
        return PmdPtr(pud.pa, self.SIZEOF_PMD)

    # -- pte modification (pgtable.h) ----------------------------------------------------

    def pte_pfn(self, pte: pte_t) -> int:
        return pte >> self.PAGE_SHIFT

    def pfn_pte(self, pfn: int, prot: pgprot_t) -> pte_t:
        """``mk_pte_phys``: the pte is made young (readable ones lose the invalid bit)."""
        return self.pte_mkyoung(pte_t((pfn << self.PAGE_SHIFT | prot) & MASK64))

    def mk_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t:
        """``mk_pte(page, prot)`` (include/linux/mm.h): ``pfn_pte``; pages are named by pfn."""
        return self.pfn_pte(pfn, pgprot)

    def pte_pgprot(self, pte: pte_t) -> pgprot_t:
        """pgtable.h: the changeable bits plus ``PAGE_KERNEL`` or ``PAGE_KERNEL_RO`` (no
        ``_PAGE_PROTECT``/``_PAGE_INVALID`` games for kernel mappings); ``mio_wb_bit_mask``
        is 0 (no MIO write-back bit)."""
        flags = pte & self._PAGE_CHG_MASK
        flags |= self.PAGE_KERNEL if self.pte_write(pte) else self.PAGE_KERNEL_RO
        return pgprot_t(flags)

    def pte_mkwrite(self, pte: pte_t, vma: vm_area_struct | None = None) -> pte_t:
        """``pte_mkwrite(pte, vma)``: the generic one, ``pte_mkwrite_novma``."""
        return self.pte_mkwrite_novma(pte)

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        v = pte & self._PAGE_CHG_MASK
        v |= newprot
        if v & _PAGE_YOUNG and v & _PAGE_READ:
            v &= ~_PAGE_INVALID
        if v & _PAGE_DIRTY and v & _PAGE_WRITE:
            v &= ~_PAGE_PROTECT
        return pte_t(v)

    def pte_wrprotect(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_WRITE | _PAGE_PROTECT)

    def pte_mkwrite_novma(self, pte: pte_t) -> pte_t:
        v = pte | _PAGE_WRITE
        if v & _PAGE_DIRTY:
            v &= ~_PAGE_PROTECT
        return pte_t(v)

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_DIRTY | _PAGE_PROTECT)

    def pte_mkdirty(self, pte: pte_t) -> pte_t:
        v = pte | _PAGE_DIRTY | _PAGE_SOFT_DIRTY
        if v & _PAGE_WRITE:
            v &= ~_PAGE_PROTECT
        return pte_t(v)

    def pte_mkold(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_YOUNG | _PAGE_INVALID)

    def pte_mkyoung(self, pte: pte_t) -> pte_t:
        v = pte | _PAGE_YOUNG
        if v & _PAGE_READ:
            v &= ~_PAGE_INVALID
        return pte_t(v)

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SPECIAL)

    def pte_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SOFT_DIRTY)

    def pte_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_SOFT_DIRTY)

    # pgtable.h: ``#define pte_swp_soft_dirty pte_soft_dirty`` (and mk/clear): bit 62 (S) of
    # a swap pte is the same bit as in a present one.

    def pte_swp_soft_dirty(self, pte: pte_t) -> bool:
        return self.pte_soft_dirty(pte)

    def pte_swp_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return self.pte_mksoft_dirty(pte)

    def pte_swp_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return self.pte_clear_soft_dirty(pte)

    # -- set and exchange (pgtable.h; pgtable.c via legacy.s390.tlbflush) ------------------

    def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t, nr: int) -> None:
        """A present entry loses ``_PAGE_UNUSED``; no PGSTE: plain stores."""
        if self.pte_present(pte):
            pte = pte_t(pte & ~_PAGE_UNUSED)
        for _ in range(nr):
            self.set_pte(ptep, pte)
            ptep = ptep + 1
            pte = pte_t(pte + self.PAGE_SIZE)

    def set_pte_at(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t) -> None:
        self.set_ptes(mm, addr, ptep, pte, 1)

    def ptep_get_and_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        """``ptep_xchg_lazy(mm, addr, ptep, __pte(_PAGE_INVALID))``."""
        return self.ptep_xchg_lazy(mm, addr, ptep, pte_t(_PAGE_INVALID))

    def ptep_get_and_clear_full(self, mm: mm_struct, addr: int, ptep: PtePtr,
                                full: int) -> pte_t:
        """``full``: the whole mm is being torn down and will be flushed: a plain store."""
        if full:
            res = self.ptep_get(ptep)
            self.set_pte(ptep, pte_t(_PAGE_INVALID))
            return res
        return self.ptep_xchg_lazy(mm, addr, ptep, pte_t(_PAGE_INVALID))

    def ptep_clear_flush(self, vma: vm_area_struct, address: int, ptep: PtePtr) -> pte_t:
        """``ptep_xchg_direct(vma->vm_mm, addr, ptep, __pte(_PAGE_INVALID))``."""
        return self.ptep_xchg_direct(vma.vm_mm, address, ptep, pte_t(_PAGE_INVALID))

    def ptep_set_wrprotect(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        pte = self.ptep_get(ptep)
        if self.pte_write(pte):
            self.ptep_xchg_lazy(mm, addr, ptep, self.pte_wrprotect(pte))

    def ptep_test_and_clear_young(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> bool:
        pte = self.ptep_xchg_direct(vma.vm_mm, addr, ptep, self.pte_mkold(self.ptep_get(ptep)))
        return self.pte_young(pte)

    def ptep_set_access_flags(self, vma: vm_area_struct, addr: int, ptep: PtePtr,
                              entry: pte_t, dirty: int) -> int:
        """pgtable.h: nothing if the same; no RDP facility (``cpu_has_rdp()`` false):
        ``ptep_xchg_direct``."""
        if self.pte_same(self.ptep_get(ptep), entry):
            return 0
        self.ptep_xchg_direct(vma.vm_mm, addr, ptep, entry)
        return 1

    def ptep_modify_prot_start(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> pte_t:
        """pgtable.c: ``ptep_flush_lazy`` -- the entry keeps its bits plus the invalid bit."""
        return self.ptep_flush_lazy(vma.vm_mm, addr, ptep)

    def ptep_modify_prot_commit(self, vma: vm_area_struct, addr: int, ptep: PtePtr,
                                old_pte: pte_t, pte: pte_t) -> None:
        self.set_pte(ptep, pte)

    # -- swap entries (pgtable.h) -----------------------------------------------------------

    def _swp_type(self, x: swp_entry_t) -> int:
        return x >> SWP_TYPE_SHIFT & SWP_TYPE_MASK

    def _swp_offset(self, x: swp_entry_t) -> int:
        return x >> SWP_OFFSET_SHIFT & SWP_OFFSET_MASK

    def _swp_entry(self, type_: int, offset: int) -> swp_entry_t:
        """``mk_swap_pte``: invalid and protected (the swap pattern ``.11..ttttt.0``)."""
        v = _PAGE_INVALID | _PAGE_PROTECT
        v |= (offset & SWP_OFFSET_MASK) << SWP_OFFSET_SHIFT
        v |= (type_ & SWP_TYPE_MASK) << SWP_TYPE_SHIFT
        return swp_entry_t(v & MASK64)

    def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        return swp_entry_t(pte)

    def _swp_entry_to_pte(self, x: swp_entry_t) -> pte_t:
        return pte_t(x)

    def pte_swp_exclusive(self, pte: pte_t) -> bool:
        return pte & _PAGE_SWP_EXCLUSIVE != 0

    def pte_swp_mkexclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte | _PAGE_SWP_EXCLUSIVE)

    def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~_PAGE_SWP_EXCLUSIVE)

    # -- the emulation's view ----------------------------------------------------------------

    def table_level(self, pa: int) -> str:
        """What the table at ``pa`` is used as now: ``pgd`` (the top), ``p4d``, ``pud``,
        ``pmd`` or ``pte`` -- from its ptdesc, which ``crst_table_upgrade`` retags."""
        return self.ptdescs[self.frame_of(pa)].level

    def mm_levels(self, mm: mm_struct) -> int:
        """Levels of ``mm``'s DAT walk: 3, 4 or 5, from its ASCE's designation type."""
        return 2 + ((mm.context["asce"] & 0x0C) >> 2)


def top_level_name(entry0: int) -> str:
    """The kernel level a top table with first entry ``entry0`` plays (its type bits)."""
    return LEVEL_OF_TYPE[entry0 & _REGION_ENTRY_TYPE_MASK]
