"""The bridge: each legacy level's functions under one shape.

This is the only module of ``unified`` that names per-level legacy functions; everything
else asks it "read the entry at this level", "is this value a leaf" and so on.  It holds no
architecture knowledge: the five columns below are the kernel's generic names, and the
kernel object supplies their per-architecture meaning (folding included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, cast

from legacy import (
    EntryPtr,
    GenericKernel,
    P4dPtr,
    PgdPtr,
    PmdPtr,
    PtePtr,
    PudPtr,
    mm_struct,
    p4d_t,
    pgd_t,
    pmd_t,
    pte_t,
    pud_t,
    spinlock_t,
    vm_area_struct,
)
from legacy.mm.mmu_gather import mmu_gather
from legacy.mm.mprotect import change_swap_pte
from unified.levels import Level


@dataclass(frozen=True)
class LegacyLevel:
    """One legacy level (pgd/p4d/pud/pmd/pte) seen through a uniform interface.

    Values travel as plain ints here; the typed unified handles wrap them."""

    level: Level
    ptrs: int
    """``PTRS_PER_X``."""
    shift: int
    """``X_SHIFT`` (``PAGE_SHIFT`` for pte)."""
    entry_size: int
    """``sizeof(X_t)``."""
    make_ptr: Callable[[int], EntryPtr]
    get: Callable[[EntryPtr], int]
    set: Callable[[mm_struct, int, EntryPtr, int], None]
    none: Callable[[int], bool]
    present: Callable[[int], bool]
    bad: Callable[[int], bool]
    leaf: Callable[[int], bool]
    clear: Callable[[mm_struct, int, EntryPtr], None]
    index: Callable[[int], int]
    addr_end: Callable[[int, int], int]


def _ptr(cls: type[EntryPtr], size: int) -> Callable[[int], EntryPtr]:
    return lambda pa: cls(pa, size)


def legacy_levels(k: GenericKernel) -> dict[Level, LegacyLevel]:
    """The five legacy levels of kernel ``k``.

    Reads and predicates are the bound legacy methods themselves (``f.ptep_get``...): an
    entry's pointer already has its level's type and values are ints at run time, so a
    wrapper would only cost time on the hot paths (the walker calls them per entry)."""
    m = k.ULONG_MASK
    f = cast(Any, k)

    def pte_addr_end(addr: int, end: int) -> int:
        nxt = (addr + k.PAGE_SIZE) & k.PAGE_MASK & m
        return nxt if ((nxt - 1) & m) < ((end - 1) & m) else end

    return {
        Level.PTE: LegacyLevel(
            Level.PTE, k.PTRS_PER_PTE, k.PAGE_SHIFT, k.SIZEOF_PTE,
            _ptr(PtePtr, k.SIZEOF_PTE),
            f.ptep_get,
            lambda mm, a, p, v: k.set_pte_at(mm, a, PtePtr(p.pa, p.size), pte_t(v)),
            f.pte_none,
            f.pte_present,
            lambda v: False,
            f.pte_present,
            lambda mm, a, p: k.pte_clear(mm, a, PtePtr(p.pa, p.size)),
            k.pte_index,
            pte_addr_end,
        ),
        Level.PMD: LegacyLevel(
            Level.PMD, k.PTRS_PER_PMD, k.PMD_SHIFT, k.SIZEOF_PMD,
            _ptr(PmdPtr, k.SIZEOF_PMD),
            f.pmdp_get,
            lambda mm, a, p, v: k.set_pmd_at(mm, a, PmdPtr(p.pa, p.size), pmd_t(v)),
            f.pmd_none,
            f.pmd_present,
            f.pmd_bad,
            f.pmd_leaf,
            lambda mm, a, p: k.pmd_clear(PmdPtr(p.pa, p.size)),
            k.pmd_index,
            k.pmd_addr_end,
        ),
        Level.PUD: LegacyLevel(
            Level.PUD, k.PTRS_PER_PUD, k.PUD_SHIFT, k.SIZEOF_PUD,
            _ptr(PudPtr, k.SIZEOF_PUD),
            f.pudp_get,
            lambda mm, a, p, v: k.set_pud_at(mm, a, PudPtr(p.pa, p.size), pud_t(v)),
            f.pud_none,
            f.pud_present,
            f.pud_bad,
            f.pud_leaf,
            lambda mm, a, p: k.pud_clear(PudPtr(p.pa, p.size)),
            k.pud_index,
            k.pud_addr_end,
        ),
        Level.P4D: LegacyLevel(
            Level.P4D, k.PTRS_PER_P4D, k.P4D_SHIFT, k.SIZEOF_P4D,
            _ptr(P4dPtr, k.SIZEOF_P4D),
            f.p4dp_get,
            lambda mm, a, p, v: k.set_p4d(P4dPtr(p.pa, p.size), p4d_t(v)),
            f.p4d_none,
            f.p4d_present,
            f.p4d_bad,
            f.p4d_leaf,
            lambda mm, a, p: k.p4d_clear(P4dPtr(p.pa, p.size)),
            k.p4d_index,
            k.p4d_addr_end,
        ),
        Level.PGD: LegacyLevel(
            Level.PGD, k.PTRS_PER_PGD, k.PGDIR_SHIFT, k.SIZEOF_PGD,
            _ptr(PgdPtr, k.SIZEOF_PGD),
            f.pgdp_get,
            lambda mm, a, p, v: k.set_pgd(PgdPtr(p.pa, p.size), pgd_t(v)),
            f.pgd_none,
            f.pgd_present,
            f.pgd_bad,
            f.pgd_leaf,
            lambda mm, a, p: k.pgd_clear(PgdPtr(p.pa, p.size)),
            k.pgd_index,
            k.pgd_addr_end,
        ),
    }


def descend_offset(k: GenericKernel, child: Level, parent_ptr: EntryPtr, addr: int) -> EntryPtr:
    """``child_offset(parent, addr)``: the legacy step from a parent entry to the child
    level's entry for ``addr`` (a cast when ``child`` is folded)."""
    if child is Level.P4D:
        return k.p4d_offset(PgdPtr(parent_ptr.pa, parent_ptr.size), addr)
    if child is Level.PUD:
        return k.pud_offset(P4dPtr(parent_ptr.pa, parent_ptr.size), addr)
    if child is Level.PMD:
        return k.pmd_offset(PudPtr(parent_ptr.pa, parent_ptr.size), addr)
    if child is Level.PTE:
        return k.pte_offset_kernel(PmdPtr(parent_ptr.pa, parent_ptr.size), addr)
    raise ValueError("the pgd level has no parent entry")


def alloc_below(
    k: GenericKernel, mm: mm_struct, child: Level, parent_ptr: EntryPtr, addr: int
) -> bool:
    """Allocate-and-install the ``child`` table under ``parent_ptr`` with the legacy
    ``*_alloc`` wrapper (its allocate, lock, recheck, populate and accounting).  False on
    -ENOMEM."""
    if child is Level.P4D:
        return k.p4d_alloc(mm, PgdPtr(parent_ptr.pa, parent_ptr.size), addr) is not None
    if child is Level.PUD:
        return k.pud_alloc(mm, P4dPtr(parent_ptr.pa, parent_ptr.size), addr) is not None
    if child is Level.PMD:
        return k.pmd_alloc(mm, PudPtr(parent_ptr.pa, parent_ptr.size), addr) is not None
    if child is Level.PTE:
        if mm is k.init_mm:
            return k.pte_alloc_kernel(PmdPtr(parent_ptr.pa, parent_ptr.size), addr) is not None
        return k.pte_alloc(mm, PmdPtr(parent_ptr.pa, parent_ptr.size)) == 0
    raise ValueError("the pgd is allocated with the mm (pgd_alloc), not under an entry")


def free_level(k: GenericKernel, mm: mm_struct, level: Level, first: EntryPtr) -> None:
    """Free a table whose first entry is ``first`` and undo its charge, as the legacy
    ``free_p*_range`` functions do (``pXd_free`` + ``mm_dec_nr_*``)."""
    uncharge_level(k, mm, level)
    free_frame_of_level(k, mm, level, first)


def uncharge_level(k: GenericKernel, mm: mm_struct, level: Level) -> None:
    """``mm_dec_nr_ptes``/``_pmds``/``_puds`` for a table at ``level`` (kernel tables and
    p4ds are not charged)."""
    if mm is k.init_mm:
        return
    if level is Level.PTE:
        k.mm_dec_nr_ptes(mm)
    elif level is Level.PMD:
        k.mm_dec_nr_pmds(mm)
    elif level is Level.PUD:
        k.mm_dec_nr_puds(mm)
    elif level is Level.PGD:
        raise ValueError("the pgd is freed with its mm (pgd_free)")


def free_frame_of_level(k: GenericKernel, mm: mm_struct, level: Level, first: EntryPtr) -> None:
    """``pte_free``/``pte_free_kernel``/``pmd_free``/``pud_free``/``p4d_free`` of a table
    whose first entry is ``first`` (frame and split lock; the charge is not touched)."""
    if level is Level.PTE:
        if mm is k.init_mm:
            k.pte_free_kernel(mm, PtePtr(first.pa, first.size))
        else:
            k.pte_free(mm, PtePtr(first.pa, first.size))
    elif level is Level.PMD:
        k.pmd_free(mm, PmdPtr(first.pa, first.size))
    elif level is Level.PUD:
        k.pud_free(mm, PudPtr(first.pa, first.size))
    elif level is Level.P4D:
        k.p4d_free(mm, P4dPtr(first.pa, first.size))
    else:
        raise ValueError("the pgd is freed with its mm (pgd_free)")


# -- the flush API per level (legacy/tlbflush.py, include/asm-generic/tlb.h) ---------------


def flush_leaf_range(k: GenericKernel, vma: vm_area_struct, level: Level, start: int,
                     end: int) -> None:
    """Flush leaves of ``level`` in ``[start, end)`` of ``vma``: ``flush_tlb_page`` for one
    PTE, ``flush_tlb_range`` for more, ``flush_pmd_tlb_range``/``flush_pud_tlb_range`` for
    huge leaves (what ``ptep_clear_flush``/``pXdp_huge_clear_flush`` call).  Where
    ``flush_tlb_page`` is empty (``k.FLUSH_TLB_PAGE_EMPTY``, s390: its ``ptep_clear_flush``
    invalidates with IPTE itself) one page is ``flush_tlb_range`` too, which purges what
    the lazy ``ptep_get_and_clear`` left pending."""
    if level is Level.PTE:
        if (end - start) & k.ULONG_MASK == k.PAGE_SIZE and not k.FLUSH_TLB_PAGE_EMPTY:
            k.flush_tlb_page(vma, start)
        else:
            k.flush_tlb_range(vma, start, end)
    elif level is Level.PMD:
        k.flush_pmd_tlb_range(vma, start, end)
    elif level is Level.PUD:
        k.flush_pud_tlb_range(vma, start, end)
    else:
        k.flush_tlb_range(vma, start, end)


def gather_range(k: GenericKernel, tlb: mmu_gather, level: Level, address: int,
                 size: int) -> None:
    """``tlb_flush_pte_range``/``_pmd_``/``_pud_``/``_p4d_range(tlb, address, size)``: the
    gather remembers that entries of ``level`` in the range changed."""
    from legacy.mm.mmu_gather import (
        tlb_flush_p4d_range,
        tlb_flush_pmd_range,
        tlb_flush_pte_range,
        tlb_flush_pud_range,
    )

    if level is Level.PTE:
        tlb_flush_pte_range(k, tlb, address, size)
    elif level is Level.PMD:
        tlb_flush_pmd_range(k, tlb, address, size)
    elif level is Level.PUD:
        tlb_flush_pud_range(k, tlb, address, size)
    else:
        tlb_flush_p4d_range(k, tlb, address, size)


def gather_table_free(k: GenericKernel, tlb: mmu_gather, level: Level, first: EntryPtr,
                      address: int) -> None:
    """``pte_free_tlb``/``pmd_free_tlb``/``pud_free_tlb``/``p4d_free_tlb``: free the table
    whose entries are at ``level`` after the gather's flush."""
    from legacy.mm.mmu_gather import p4d_free_tlb, pmd_free_tlb, pte_free_tlb, pud_free_tlb

    if tlb.mm.is_init_mm:
        raise ValueError("kernel tables are freed after flush_tlb_kernel_range, not gathered")
    if level is Level.PTE:
        pte_free_tlb(k, tlb, PtePtr(first.pa, first.size), address)
    elif level is Level.PMD:
        pmd_free_tlb(k, tlb, PmdPtr(first.pa, first.size), address)
    elif level is Level.PUD:
        pud_free_tlb(k, tlb, PudPtr(first.pa, first.size), address)
    elif level is Level.P4D:
        p4d_free_tlb(k, tlb, P4dPtr(first.pa, first.size), address)
    else:
        raise ValueError("the pgd is freed with its mm (pgd_free)")


def lockptr(k: GenericKernel, mm: mm_struct, level: Level, table_first: EntryPtr,
            parent_ptr: EntryPtr | None) -> spinlock_t:
    """The lock the kernel takes for entries of a table at ``level``: the split PTE lock of
    the PTE table, the split PMD lock of the PMD table, else ``mm->page_table_lock``."""
    if level is Level.PTE:
        if mm.is_init_mm:
            # Kernel PTE tables have no split lock (pte_alloc_one_kernel runs no ctor):
            # the kernel serialises them with init_mm.page_table_lock (__pte_alloc_kernel).
            return mm.page_table_lock
        return k.ptep_lockptr(mm, PtePtr(table_first.pa, table_first.size))
    if level is Level.PMD:
        return k.pmd_lockptr(mm, PmdPtr(table_first.pa, table_first.size))
    del parent_ptr
    return k.pud_lockptr(mm, PudPtr(table_first.pa, table_first.size))


def none_or_clear_bad(k: GenericKernel, level: Level, ptr: EntryPtr) -> bool:
    """``pXd_none_or_clear_bad(ptr)`` at ``level``, the legacy check itself: it reports the
    bad entry (``pXd_ERROR``) before clearing it, and where the folding headers make
    ``pXd_clear_bad`` a no-op (``__PAGETABLE_P4D_FOLDED``...) it skips without clearing."""
    if level is Level.PGD:
        return k.pgd_none_or_clear_bad(PgdPtr(ptr.pa, ptr.size))
    if level is Level.P4D:
        return k.p4d_none_or_clear_bad(P4dPtr(ptr.pa, ptr.size))
    if level is Level.PUD:
        return k.pud_none_or_clear_bad(PudPtr(ptr.pa, ptr.size))
    if level is Level.PMD:
        return k.pmd_none_or_clear_bad(PmdPtr(ptr.pa, ptr.size))
    raise ValueError("the pte level has no pte_none_or_clear_bad")


# -- per-level adapters for the call-site ports (unified.mm) -------------------------------
#
# The ports in :mod:`unified.mm` are written once for every level; whatever the kernel names
# per level (``pfn_pte`` / ``pfn_pmd`` / ``pfn_pud``, ``pte_free_tlb`` / ``pmd_free_tlb``...)
# is looked up here, in one :class:`LevelOps` per legacy level.  The callables are bound
# legacy methods wherever the legacy signature already fits (no wrapper on hot paths); a
# field that has no meaning at a level raises :class:`LevelHasNo` when called.


class LevelHasNo(Exception):
    """A per-level operation called at a level where the kernel has no such function."""


@cache
def _none(what: str, level: Level | None) -> Callable[..., Any]:
    """A stand-in that raises :class:`LevelHasNo` (one per name and level: every
    ``PageTables`` needs dozens)."""

    def fail(*args: object) -> Any:
        where = "this kernel" if level is None else f"the {level.legacy_name} level"
        raise LevelHasNo(f"{where} has no {what}")

    return fail


@dataclass(frozen=True)
class LevelOps:
    """The legacy functions of one level, as the call-site ports use them.

    Entry values are ints; pointers are the legacy pointers of the level (``PtePtr``...).
    Three groups of fields:

    - *entries at this level*: read/write/clear, predicates, the leaf value makers
      (``pfn_entry`` = ``pfn_pte``/``pfn_pmd``/``pfn_pud``; ``mkhuge`` is the identity at
      the PTE level), get-and-clear, write-protect, invalidate, TLB tracking;
    - *a table whose entries are at this level*: allocate, free, account, free through the
      ``mmu_gather`` (``pte_free_tlb``...), and the table's lock;
    - *an entry at this level pointing to a lower table*: ``populate`` (``pmd_populate``...),
      ``pgtable`` (``pmd_pgtable``...), the huge-vmap helpers (``pmd_set_huge``,
      ``pmd_clear_huge``, ``pmd_free_pte_page``, ``arch_vmap_pmd_supported``) and the
      ``PGTBL_*_MODIFIED`` bit.
    """

    level: Level
    shift: int
    size: int
    mask: int
    pages: int
    """Base pages one entry maps (``1 << (shift - PAGE_SHIFT)``)."""
    # entries
    get: Callable[[Any], int]
    set_at: Callable[[mm_struct, int, Any, int], None]
    set_run: Callable[[mm_struct, int, Any, int, int], None]
    """``set_ptes(mm, addr, ptep, pte, nr)``: ``nr`` entries of one table mapping
    consecutive pfns (PTE level only)."""
    clear: Callable[[mm_struct, int, Any], None]
    """``pte_clear(mm, addr, ptep)``, ``pmd_clear(pmdp)``..."""
    none: Callable[[int], bool]
    present: Callable[[int], bool]
    bad: Callable[[int], bool]
    leaf: Callable[[int], bool]
    trans_huge: Callable[[int], bool]
    """``pmd_trans_huge``/``pud_trans_huge`` (False at other levels): the THP code's test."""
    swap: Callable[[int], bool]
    """``is_swap_pte``/``is_swap_pmd``: a non-present, non-none entry (swap or migration);
    False above the PMD level."""
    change_swap: Callable[[int], int]
    """What ``change_protection`` makes of a swap entry (``change_swap_pte``: a writable
    migration entry becomes readable); PTE level only."""
    none_or_clear_bad: Callable[[Any], bool]
    """``pXd_none_or_clear_bad`` (the legacy function, ``pgd_ERROR`` log included)."""
    pfn: Callable[[int], int]
    pgprot: Callable[[int], int]
    pfn_entry: Callable[[int, int], int]
    mkhuge: Callable[[int], int]
    mkspecial: Callable[[int], int]
    special: Callable[[int], bool]
    modify: Callable[[int, int], int]
    write: Callable[[int], bool]
    wrprotect: Callable[[int], int]
    mkold: Callable[[int], int]
    mkclean: Callable[[int], int]
    mksoft_dirty: Callable[[int], int]
    set_wrprotect: Callable[[mm_struct, int, Any], None]
    get_and_clear: Callable[[mm_struct, int, Any], int]
    get_and_clear_full: Callable[[vm_area_struct, int, Any, int], int]
    invalidate: Callable[[vm_area_struct, int, Any], int]
    """``pmdp_invalidate`` (the PUD level's ``pudp_invalidate`` only reads, as legacy's)."""
    invalidate_ad: Callable[[vm_area_struct, int, Any], int]
    split_prot: Callable[[int], int]
    """Protection of the next-level leaves a huge leaf splits into: ``pgprot_large_2_4k
    (pmd_pgprot())`` for a PMD, ``pud_pgprot()`` (PSE kept) for a PUD."""
    tlb_remove_entry: Callable[[GenericKernel, mmu_gather, Any, int], None]
    clear_flush: Callable[[vm_area_struct, int, Any], int]
    """``ptep_clear_flush``/``pmdp_huge_clear_flush``/``pudp_huge_clear_flush``."""
    flush_range: Callable[[vm_area_struct, int, int], None]
    """``flush_tlb_range``/``flush_pmd_tlb_range``/``flush_pud_tlb_range`` (leaves of this
    level changed in the range)."""
    tlb_flush_range: Callable[[GenericKernel, mmu_gather, int, int], None]
    """``tlb_flush_pte_range``/``_pmd_``/``_pud_``/``_p4d_range(tlb, address, size)``."""
    needs_flush: Callable[[int, int], bool]
    """``pte_needs_flush``/``huge_pmd_needs_flush`` where the architecture has them (x86),
    else asm-generic/tlb.h's ``true``."""
    dirty: Callable[[int], bool]
    young: Callable[[int], bool]
    moved: Callable[[int], int]
    """The value a leaf moved by mremap gets: under ``CONFIG_MEM_SOFT_DIRTY`` the soft-dirty
    bit (``move_soft_dirty_pte``, ``move_soft_dirty_pmd``); ``move_huge_pud`` keeps the
    value."""
    can_move_table: bool
    """mremap may move the whole lower table under an entry of this level:
    ``CONFIG_HAVE_MOVE_PMD`` (PMD), ``CONFIG_HAVE_MOVE_PUD`` with a real PMD level (PUD)."""
    deposit: Callable[[mm_struct, Any, Any], None]
    """``pgtable_trans_huge_deposit(mm, pmdp, pgtable)`` (PMD level only)."""
    withdraw: Callable[[mm_struct, Any], Any]
    """``pgtable_trans_huge_withdraw(mm, pmdp)`` (PMD level only)."""
    # tables whose entries are at this level
    alloc_one: Callable[[mm_struct, int], Any]
    """``pte_alloc_one`` (``pte_alloc_one_kernel`` for init_mm), ``pmd_alloc_one``..."""
    free: Callable[[mm_struct, Any], None]
    inc_nr: Callable[[mm_struct], None]
    dec_nr: Callable[[mm_struct], None]
    free_tlb: Callable[[GenericKernel, mmu_gather, Any, int], None]
    lockptr: Callable[[mm_struct, Any], spinlock_t]
    """The lock of the table holding the entry at ``ptr`` (split PTE/PMD lock, else
    ``mm->page_table_lock``)."""
    # entries pointing to a lower table
    populate: Callable[[mm_struct, Any, Any], None]
    pgtable: Callable[[int], Any]
    alloc_track: Callable[[mm_struct, Any, int], int]
    """The raw ``__pXd_alloc`` of the table *below* this entry (``__pte_alloc_kernel`` for
    the PMD level), as ``pXd_alloc_track`` calls it: 0 or -ENOMEM."""
    vmap_supported: Callable[[int], bool]
    set_huge: Callable[[Any, int, int], int]
    clear_huge: Callable[[Any], int]
    free_lower: Callable[[Any, int], int]
    """``pmd_free_pte_page``/``pud_free_pmd_page``/``p4d_free_pud_page``."""
    modified: int
    """``PGTBL_<level>_MODIFIED``."""


def _ident(v: int) -> int:
    return v


def _false(v: int) -> bool:
    return False


def _true2(old: int, new: int) -> bool:
    return True


def level_ops(k: GenericKernel, kernel: bool) -> dict[Level, LevelOps]:
    """The :class:`LevelOps` of every legacy level of ``k``; ``kernel`` selects the
    ``init_mm`` variants (``pte_alloc_one_kernel``, ``pte_free_kernel``,
    ``pmd_populate_kernel``)."""
    from legacy.mm.internal import is_swap_pmd
    from legacy.mm.mmu_gather import (
        p4d_free_tlb,
        pmd_free_tlb,
        pte_free_tlb,
        pud_free_tlb,
        tlb_flush_p4d_range,
        tlb_flush_pmd_range,
        tlb_flush_pte_range,
        tlb_flush_pud_range,
        tlb_remove_pmd_tlb_entry,
        tlb_remove_pud_tlb_entry,
        tlb_remove_tlb_entry,
    )
    from legacy.pgtable import (
        PGTBL_P4D_MODIFIED,
        PGTBL_PGD_MODIFIED,
        PGTBL_PMD_MODIFIED,
        PGTBL_PTE_MODIFIED,
        PGTBL_PUD_MODIFIED,
    )

    mask = k.ULONG_MASK
    f = cast(Any, k)  # the legacy methods take typed values/pointers; ints are their runtime form

    def m(name: str) -> Any:
        """The bound legacy method ``name``; one an architecture does not provide raises
        :class:`LevelHasNo` when called (not when the adapters are built)."""
        fn = getattr(k, name, None)
        return fn if fn is not None else _none(name, None)

    def geometry(level: Level, shift: int) -> dict[str, Any]:
        size = 1 << shift
        return {"level": level, "shift": shift, "size": size, "mask": ~(size - 1) & mask,
                "pages": size >> k.PAGE_SHIFT}

    def needs(name: str) -> Callable[[int, int], bool]:
        fn: Callable[[int, int], bool] = getattr(k, name)
        return fn

    def pmd_split_prot(v: int) -> int:
        return f.pgprot_large_2_4k(f.pmd_pgprot(v))  # type: ignore[no-any-return]

    def pte_none_or_clear_bad(p: Any) -> bool:
        return f.pte_none(f.ptep_get(p))  # type: ignore[no-any-return]

    def pte_free_tlb_(kk: GenericKernel, tlb: mmu_gather, first: Any, addr: int) -> None:
        pte_free_tlb(kk, tlb, first, addr)

    def pmd_populate_(mm: mm_struct, pmd: Any, pte: Any) -> None:
        if kernel:
            f.pmd_populate_kernel(mm, pmd, pte)
        else:
            f.pmd_populate(mm, pmd, pte)

    def pte_alloc_track(mm: mm_struct, pmd: Any, addr: int) -> int:
        return f._pte_alloc_kernel(pmd)  # type: ignore[no-any-return]

    def pudp_read(vma: vm_area_struct, addr: int, pud: Any) -> int:
        return f.pudp_get(pud)  # type: ignore[no-any-return]

    def no_dec(mm: mm_struct) -> None:
        pass

    def pte_moved(v: int) -> int:
        # mm/mremap.c move_soft_dirty_pte(): "Set soft dirty bit so we can notice in
        # userspace the ptes were moved."
        if k.MEM_SOFT_DIRTY:
            if f.pte_present(v):
                return f.pte_mksoft_dirty(v)  # type: ignore[no-any-return]
            if f.is_swap_pte(v):
                return f.pte_swp_mksoft_dirty(v)  # type: ignore[no-any-return]
        return v

    def pmd_moved(v: int) -> int:
        if k.MEM_SOFT_DIRTY and f.pmd_present(v):
            return f.pmd_mksoft_dirty(v)  # type: ignore[no-any-return]
        return v

    pte = {**_nothing(Level.PTE), **geometry(Level.PTE, k.PAGE_SHIFT)}
    pte.update(
        get=m("ptep_get"), set_at=m("set_pte_at"), set_run=m("set_ptes"),
        clear=m("pte_clear"), none=m("pte_none"),
        present=m("pte_present"), bad=_false, leaf=m("pte_present"), trans_huge=_false,
        swap=m("is_swap_pte"), change_swap=lambda v: change_swap_pte(k, v),
        none_or_clear_bad=pte_none_or_clear_bad, pfn=m("pte_pfn"), pgprot=m("pte_pgprot"),
        pfn_entry=m("pfn_pte"), mkhuge=_ident, mkspecial=m("pte_mkspecial"),
        special=m("pte_special"),
        modify=m("pte_modify"), write=m("pte_write"), wrprotect=m("pte_wrprotect"),
        mkold=m("pte_mkold"),
        mkclean=m("pte_mkclean"), set_wrprotect=m("ptep_set_wrprotect"),
        get_and_clear=m("ptep_get_and_clear"),
        get_and_clear_full=lambda vma, a, p, full: f.ptep_get_and_clear_full(
            vma.vm_mm, a, p, full),
        tlb_remove_entry=tlb_remove_tlb_entry, moved=pte_moved, can_move_table=False,
        clear_flush=m("ptep_clear_flush"), flush_range=m("flush_tlb_range"),
        tlb_flush_range=tlb_flush_pte_range, needs_flush=needs("pte_needs_flush"),
        dirty=m("pte_dirty"), young=m("pte_young"),
        alloc_one=(lambda mm, a: f.pte_alloc_one_kernel(mm)) if kernel
        else (lambda mm, a: f.pte_alloc_one(mm)),
        free=m("pte_free_kernel") if kernel else f.pte_free,
        inc_nr=m("mm_inc_nr_ptes"), dec_nr=m("mm_dec_nr_ptes"), free_tlb=pte_free_tlb_,
        lockptr=m("ptep_lockptr"), vmap_supported=_false, modified=PGTBL_PTE_MODIFIED,
    )
    pmd = {**_nothing(Level.PMD), **geometry(Level.PMD, k.PMD_SHIFT)}
    pmd.update(
        get=m("pmdp_get"), set_at=m("set_pmd_at"), clear=lambda mm, a, p: f.pmd_clear(p),
        none=m("pmd_none"), present=m("pmd_present"),
        bad=m("pmd_bad"), leaf=m("pmd_leaf"), trans_huge=m("pmd_trans_huge"),
        swap=lambda v: is_swap_pmd(k, v), none_or_clear_bad=m("pmd_none_or_clear_bad"),
        pfn=m("pmd_pfn"), pgprot=m("pmd_pgprot"), pfn_entry=m("pfn_pmd"), mkhuge=m("pmd_mkhuge"),
        mkspecial=m("pmd_mkspecial"), special=m("pmd_special"), modify=m("pmd_modify"),
        write=m("pmd_write"), wrprotect=m("pmd_wrprotect"), mkold=m("pmd_mkold"),
        mksoft_dirty=m("pmd_mksoft_dirty"), set_wrprotect=m("pmdp_set_wrprotect"),
        get_and_clear=m("pmdp_huge_get_and_clear"),
        get_and_clear_full=m("pmdp_huge_get_and_clear_full"), invalidate=m("pmdp_invalidate"),
        invalidate_ad=m("pmdp_invalidate_ad"), split_prot=pmd_split_prot,
        tlb_remove_entry=tlb_remove_pmd_tlb_entry, moved=pmd_moved,
        clear_flush=m("pmdp_huge_clear_flush"), flush_range=m("flush_pmd_tlb_range"),
        tlb_flush_range=tlb_flush_pmd_range, needs_flush=needs("huge_pmd_needs_flush"),
        mkclean=m("pmd_mkclean"), dirty=m("pmd_dirty"), young=m("pmd_young"),
        can_move_table=bool(k.HAVE_MOVE_PMD), deposit=m("pgtable_trans_huge_deposit"),
        withdraw=m("pgtable_trans_huge_withdraw"), alloc_one=m("pmd_alloc_one"),
        free=m("pmd_free"), inc_nr=m("mm_inc_nr_pmds"), dec_nr=m("mm_dec_nr_pmds"),
        free_tlb=pmd_free_tlb, lockptr=m("pmd_lockptr"), populate=pmd_populate_,
        pgtable=m("pmd_pgtable"), alloc_track=pte_alloc_track,
        vmap_supported=m("arch_vmap_pmd_supported"), set_huge=m("pmd_set_huge"),
        clear_huge=m("pmd_clear_huge"), free_lower=m("pmd_free_pte_page"),
        modified=PGTBL_PMD_MODIFIED,
    )
    pud = {**_nothing(Level.PUD), **geometry(Level.PUD, k.PUD_SHIFT)}
    pud.update(
        get=m("pudp_get"), set_at=m("set_pud_at"), clear=lambda mm, a, p: f.pud_clear(p),
        none=m("pud_none"), present=m("pud_present"),
        bad=m("pud_bad"), leaf=m("pud_leaf"), trans_huge=m("pud_trans_huge"), swap=_false,
        none_or_clear_bad=m("pud_none_or_clear_bad"), pfn=m("pud_pfn"), pgprot=m("pud_pgprot"),
        pfn_entry=m("pfn_pud"), mkhuge=m("pud_mkhuge"), mkspecial=m("pud_mkspecial"),
        special=m("pud_special"), modify=m("pud_modify"), write=m("pud_write"),
        wrprotect=m("pud_wrprotect"), mkold=m("pud_mkold"), set_wrprotect=m("pudp_set_wrprotect"),
        get_and_clear=m("pudp_huge_get_and_clear"),
        get_and_clear_full=m("pudp_huge_get_and_clear_full"), invalidate=pudp_read,
        invalidate_ad=pudp_read, split_prot=m("pud_pgprot"),
        tlb_remove_entry=tlb_remove_pud_tlb_entry, moved=_ident,
        clear_flush=m("pudp_huge_clear_flush"), flush_range=m("flush_pud_tlb_range"),
        tlb_flush_range=tlb_flush_pud_range,
        mkclean=m("pud_mkclean"), dirty=m("pud_dirty"), young=m("pud_young"),
        can_move_table=bool(k.HAVE_MOVE_PUD) and not k.PAGETABLE_PMD_FOLDED,
        alloc_one=m("pud_alloc_one"),
        free=m("pud_free"), inc_nr=m("mm_inc_nr_puds"), dec_nr=m("mm_dec_nr_puds"),
        free_tlb=pud_free_tlb, lockptr=m("pud_lockptr"), populate=m("pud_populate"),
        pgtable=m("pud_pgtable"), alloc_track=m("_pmd_alloc"),
        vmap_supported=m("arch_vmap_pud_supported"), set_huge=m("pud_set_huge"),
        clear_huge=m("pud_clear_huge"), free_lower=m("pud_free_pmd_page"),
        modified=PGTBL_PUD_MODIFIED,
    )

    def p4d_clear_huge(p: Any) -> int:
        f.p4d_clear_huge(p)  # void in the kernel ("No 512GB pages yet")
        return 0

    p4d = {**_nothing(Level.P4D), **geometry(Level.P4D, k.P4D_SHIFT)}
    p4d.update(
        get=m("p4dp_get"), set_at=lambda mm, a, p, v: f.set_p4d(p, v),
        clear=lambda mm, a, p: f.p4d_clear(p), none=m("p4d_none"),
        present=m("p4d_present"), bad=m("p4d_bad"), leaf=m("p4d_leaf"), trans_huge=_false,
        swap=_false, none_or_clear_bad=m("p4d_none_or_clear_bad"), mkhuge=_ident,
        moved=_ident, can_move_table=False,
        special=_false, alloc_one=m("p4d_alloc_one"), free=m("p4d_free"), inc_nr=no_dec,
        tlb_flush_range=tlb_flush_p4d_range,
        dec_nr=no_dec, free_tlb=p4d_free_tlb, lockptr=m("pud_lockptr"), populate=m("p4d_populate"),
        pgtable=m("p4d_pgtable"), alloc_track=m("_pud_alloc"),
        vmap_supported=m("arch_vmap_p4d_supported"), set_huge=m("p4d_set_huge"),
        clear_huge=p4d_clear_huge, free_lower=m("p4d_free_pud_page"),
        modified=PGTBL_P4D_MODIFIED,
    )
    pgd = {**_nothing(Level.PGD), **geometry(Level.PGD, k.PGDIR_SHIFT)}
    pgd.update(
        get=m("pgdp_get"), set_at=lambda mm, a, p, v: f.set_pgd(p, v),
        clear=lambda mm, a, p: f.pgd_clear(p), none=m("pgd_none"),
        present=m("pgd_present"), bad=m("pgd_bad"), leaf=m("pgd_leaf"), trans_huge=_false,
        swap=_false, none_or_clear_bad=m("pgd_none_or_clear_bad"), mkhuge=_ident,
        moved=_ident, can_move_table=False,
        special=_false, inc_nr=no_dec, dec_nr=no_dec, lockptr=m("pud_lockptr"),
        tlb_flush_range=tlb_flush_p4d_range,
        populate=m("pgd_populate"), pgtable=m("pgd_page_vaddr"), alloc_track=m("_p4d_alloc"),
        vmap_supported=_false, clear_huge=lambda p: 0, modified=PGTBL_PGD_MODIFIED,
    )
    return {ops["level"]: _level_ops_of(ops) for ops in (pte, pmd, pud, p4d, pgd)}


@cache
def _nothing(level: Level) -> dict[str, Any]:
    """The operations a level may lack, each a :func:`_none` stand-in (callers copy it)."""
    return {
        name: _none(name, level) for name in (
            "pfn", "pgprot", "pfn_entry", "mkspecial", "modify", "write", "wrprotect",
            "mkold", "mkclean", "mksoft_dirty", "set_wrprotect", "get_and_clear",
            "get_and_clear_full", "invalidate", "invalidate_ad", "split_prot",
            "tlb_remove_entry", "deposit", "withdraw", "alloc_one", "free", "free_tlb",
            "populate", "pgtable", "alloc_track", "set_huge", "clear_huge", "free_lower",
            "clear_flush", "flush_range", "dirty", "young", "change_swap", "set_run",
        )
    } | {"needs_flush": _true2}


_LEVEL_OPS_FIELDS = frozenset(f.name for f in fields(LevelOps))


def _level_ops_of(ops: dict[str, Any]) -> LevelOps:
    """``LevelOps(**ops)`` without the frozen dataclass's ``__init__`` (a store through
    ``object.__setattr__`` for each of some seventy fields, five levels per
    ``PageTables``): every field must be given, and nothing else."""
    if ops.keys() != _LEVEL_OPS_FIELDS:
        missing = sorted(_LEVEL_OPS_FIELDS - ops.keys())
        extra = sorted(ops.keys() - _LEVEL_OPS_FIELDS)
        raise TypeError(f"LevelOps of level {ops.get('level')}: missing {missing}, unknown {extra}")
    made = object.__new__(LevelOps)
    made.__dict__.update(ops)
    return made
