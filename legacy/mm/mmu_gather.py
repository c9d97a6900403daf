"""``struct mmu_gather``: unhook, invalidate the TLB, then free.

Follows ``include/asm-generic/tlb.h`` and ``mm/mmu_gather.c`` with ``MMU_GATHER_TABLE_FREE``
and ``MMU_GATHER_RCU_TABLE_FREE`` (selected by x86, arm64, riscv, powerpc, s390...).  A page
table unhooked by ``free_pgd_range`` goes to ``tlb_remove_table()``; it is freed only by
``tlb_flush_mmu()`` -- from ``tlb_finish_mmu()`` or when a batch of ``MAX_TABLE_BATCH``
fills -- after the TLB flush, so no hardware walker can still reach it.  Until then the
frame stays allocated (and charged to the mm), exactly as in the kernel.

Emulation notes:

- ``tlb_flush()`` is the architecture's (``k.tlb_flush``: asm-generic, x86 or arm64
  ``asm/tlb.h``), invalidating the emulated TLB; it is also recorded in ``tlb.flushes``.
- The RCU grace period of ``tlb_remove_table_free`` elapses at once.
- The batch page the kernel takes with ``GFP_NOWAIT`` is not taken from emulated memory
  (it is not a page table); the batch sizes are the kernel's.
- ``struct page *`` is a pfn: ``__tlb_remove_page_size`` queues it in ``tlb.pages`` (with
  its delay-rmap flag in ``tlb.delayed_rmap_pages``) and ``tlb_batch_pages_flush`` drops
  the references (:func:`legacy.mm.page.free_pages_and_swap_cache`), after the flush.
"""

from __future__ import annotations

from dataclasses import dataclass

from legacy.generic import GenericKernel
from legacy.mm.vm_flags import VM_EXEC, VM_MIXEDMAP, VM_PFNMAP, is_vm_hugetlb_page
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.types import EntryPtr, P4dPtr, PmdPtr, PtePtr, PudPtr, pgtable_t

MMU_GATHER_BUNDLE = 8
"""Pages the on-stack batch of a ``struct mmu_gather`` holds."""


@dataclass(frozen=True)
class TlbFlush:
    """What one ``tlb_flush()`` would invalidate (an emulator record, not a kernel type)."""

    start: int
    end: int
    fullmm: bool
    need_flush_all: bool
    freed_tables: bool


@dataclass(frozen=True)
class TableFree:
    """One ``mmu_table_batch.tables[]`` slot: a table and the level whose free routine
    (``pte_free``, ``pmd_free``...) ``__tlb_remove_table`` runs on it."""

    level: str
    table: EntryPtr


class mmu_gather:
    """``struct mmu_gather``; build it with :func:`tlb_gather_mmu`."""

    def __init__(self, mm: mm_struct, fullmm: bool) -> None:
        self.mm = mm
        self.fullmm = fullmm
        self.batch: list[TableFree] | None = None
        self.start = 0
        self.end = 0
        self.need_flush_all = False
        self.freed_tables = False
        self.delayed_rmap = False
        self.cleared_ptes = False
        self.cleared_pmds = False
        self.cleared_puds = False
        self.cleared_p4ds = False
        self.vma_exec = False
        self.vma_huge = False
        self.vma_pfn = False
        self.page_size = 0
        self.pages: list[int] = []
        self.delayed_rmap_pages: list[int] = []
        """The queued pages whose rmap removal waits for the flush (``ENCODED_PAGE_BIT_
        DELAY_RMAP``): ``tlb_flush_rmaps`` removes it."""
        self.flushes: list[TlbFlush] = []
        self.finished = False
        self.split_enomem = False
        """A huge leaf the zap had to split could not be (no memory for the lower table)
        and was zapped whole instead (see ``zap_pud_range``); ``do_munmap`` then reports
        -ENOMEM.  Not a kernel field: the kernel's zap never allocates."""

    def __repr__(self) -> str:
        queued = len(self.batch) if self.batch else 0
        return f"<mmu_gather {self.mm.name} fullmm={self.fullmm} tables_queued={queued}>"


# -- sizes (include/asm-generic/tlb.h) ---------------------------------------------------


def MAX_TABLE_BATCH(k: GenericKernel) -> int:
    """``(PAGE_SIZE - sizeof(struct mmu_table_batch)) / sizeof(void *)``; the batch holds an
    ``rcu_head`` (two pointers) and ``unsigned int nr`` before ``tables[]``."""
    word = k.config.word_bits // 8
    header = -(-(2 * word + 4) // word) * word
    return (k.PAGE_SIZE - header) // word


def MAX_GATHER_BATCH(k: GenericKernel) -> int:
    """``(PAGE_SIZE - sizeof(struct mmu_gather_batch)) / sizeof(void *)``."""
    word = k.config.word_bits // 8
    return (k.PAGE_SIZE - (word + 8)) // word


def MAX_GATHER_BATCH_COUNT(k: GenericKernel) -> int:
    return 10000 // MAX_GATHER_BATCH(k)


# -- range tracking ----------------------------------------------------------------------


def _tlb_adjust_range(k: GenericKernel, tlb: mmu_gather, address: int, range_size: int) -> None:
    """``__tlb_adjust_range``."""
    if address < tlb.start:  # min()/max(), once per entry a gather clears
        tlb.start = address
    end = (address + range_size) & k.ULONG_MASK
    if end > tlb.end:
        tlb.end = end


def _tlb_reset_range(k: GenericKernel, tlb: mmu_gather) -> None:
    """``__tlb_reset_range``."""
    if tlb.fullmm:
        tlb.start = tlb.end = k.ULONG_MASK
    else:
        tlb.start = k.TASK_SIZE
        tlb.end = 0
    tlb.freed_tables = False
    tlb.cleared_ptes = False
    tlb.cleared_pmds = False
    tlb.cleared_puds = False
    tlb.cleared_p4ds = False


def tlb_flush_pte_range(k: GenericKernel, tlb: mmu_gather, address: int, size: int) -> None:
    _tlb_adjust_range(k, tlb, address, size)
    tlb.cleared_ptes = True


def tlb_flush_pmd_range(k: GenericKernel, tlb: mmu_gather, address: int, size: int) -> None:
    _tlb_adjust_range(k, tlb, address, size)
    tlb.cleared_pmds = True


def tlb_flush_pud_range(k: GenericKernel, tlb: mmu_gather, address: int, size: int) -> None:
    _tlb_adjust_range(k, tlb, address, size)
    tlb.cleared_puds = True


def tlb_flush_p4d_range(k: GenericKernel, tlb: mmu_gather, address: int, size: int) -> None:
    _tlb_adjust_range(k, tlb, address, size)
    tlb.cleared_p4ds = True


def tlb_get_unmap_shift(k: GenericKernel, tlb: mmu_gather) -> int:
    """include/asm-generic/tlb.h: the smallest level the gather cleared (``PAGE_SHIFT`` if
    none) -- the stride of the architecture's range flush."""
    if tlb.cleared_ptes:
        return k.PAGE_SHIFT
    if tlb.cleared_pmds:
        return k.PMD_SHIFT
    if tlb.cleared_puds:
        return k.PUD_SHIFT
    if tlb.cleared_p4ds:
        return k.P4D_SHIFT
    return k.PAGE_SHIFT


def tlb_get_unmap_size(k: GenericKernel, tlb: mmu_gather) -> int:
    """include/asm-generic/tlb.h ``1UL << tlb_get_unmap_shift(tlb)``."""
    return 1 << tlb_get_unmap_shift(k, tlb)


def tlb_remove_tlb_entry(k: GenericKernel, tlb: mmu_gather, ptep: PtePtr, address: int) -> None:
    """Remember a pte unmapping for the later invalidation (``__tlb_remove_tlb_entry`` is
    empty on every emulated architecture)."""
    tlb_flush_pte_range(k, tlb, address, k.PAGE_SIZE)


def tlb_remove_tlb_entries(
    k: GenericKernel, tlb: mmu_gather, ptep: PtePtr, nr: int, address: int
) -> None:
    tlb_flush_pte_range(k, tlb, address, k.PAGE_SIZE * nr)


def tlb_remove_pmd_tlb_entry(k: GenericKernel, tlb: mmu_gather, pmdp: PmdPtr, address: int) -> None:
    tlb_flush_pmd_range(k, tlb, address, k.PMD_SIZE)  # HPAGE_PMD_SIZE


def tlb_remove_pud_tlb_entry(k: GenericKernel, tlb: mmu_gather, pudp: PudPtr, address: int) -> None:
    tlb_flush_pud_range(k, tlb, address, k.PUD_SIZE)  # HPAGE_PUD_SIZE


def tlb_change_page_size(k: GenericKernel, tlb: mmu_gather, page_size: int) -> None:
    """Only ``CONFIG_HAVE_MMU_GATHER_PAGE_SIZE`` architectures (powerpc) flush what was
    gathered at another page size first (unless ``fullmm`` or ``need_flush_all``); the
    others merely note the size."""
    if k.HAVE_MMU_GATHER_PAGE_SIZE and tlb.page_size and tlb.page_size != page_size:
        if not tlb.fullmm and not tlb.need_flush_all:
            tlb_flush_mmu(k, tlb)
    tlb.page_size = page_size


# -- flushing ----------------------------------------------------------------------------


def tlb_flush(k: GenericKernel, tlb: mmu_gather) -> None:
    """The architecture's ``tlb_flush()`` (``k.tlb_flush``), recorded in ``tlb.flushes``."""
    if tlb.fullmm or tlb.need_flush_all or tlb.end:
        tlb.flushes.append(
            TlbFlush(tlb.start, tlb.end, tlb.fullmm, tlb.need_flush_all, tlb.freed_tables)
        )
    k.tlb_flush(tlb)


def tlb_flush_mmu_tlbonly(k: GenericKernel, tlb: mmu_gather) -> None:
    if not (
        tlb.freed_tables or tlb.cleared_ptes or tlb.cleared_pmds or tlb.cleared_puds
        or tlb.cleared_p4ds
    ):
        return
    tlb_flush(k, tlb)
    _tlb_reset_range(k, tlb)


def _tlb_remove_table(k: GenericKernel, mm: mm_struct, table: TableFree) -> None:
    """``__tlb_remove_table``: ``pagetable_dtor_free`` through the level's free routine,
    which knows the architecture's folding and fragment rules."""
    t = table.table
    if table.level == "pte":
        k.pte_free(mm, PtePtr(t.pa, t.size))
    elif table.level == "pmd":
        k.pmd_free(mm, PmdPtr(t.pa, t.size))
    elif table.level == "pud":
        k.pud_free(mm, PudPtr(t.pa, t.size))
    elif table.level == "p4d":
        k.p4d_free(mm, P4dPtr(t.pa, t.size))
    else:
        raise ValueError(f"no free routine for a {table.level} table")


def _tlb_remove_table_free(k: GenericKernel, tlb: mmu_gather, batch: list[TableFree]) -> None:
    """``tlb_remove_table_free``: ``call_rcu`` of ``__tlb_remove_table_free``."""
    for table in batch:
        _tlb_remove_table(k, tlb.mm, table)


def tlb_table_flush(k: GenericKernel, tlb: mmu_gather) -> None:
    batch = tlb.batch
    if batch is not None:
        tlb_flush_mmu_tlbonly(k, tlb)  # tlb_table_invalidate: tlb_needs_table_invalidate()
        _tlb_remove_table_free(k, tlb, batch)
        tlb.batch = None


def tlb_remove_table(k: GenericKernel, tlb: mmu_gather, table: TableFree) -> None:
    if tlb.batch is None:
        tlb.batch = []
    tlb.batch.append(table)
    if len(tlb.batch) == MAX_TABLE_BATCH(k):
        tlb_table_flush(k, tlb)


def tlb_batch_pages_flush(k: GenericKernel, tlb: mmu_gather) -> None:
    """``free_pages_and_swap_cache`` of the gathered pages: each drops the reference its
    page-table entry held; the last one frees the page."""
    from legacy.mm.page import free_pages_and_swap_cache

    pages, tlb.pages = tlb.pages, []
    free_pages_and_swap_cache(k, pages)


def tlb_flush_rmaps(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct) -> None:
    """mm/mmu_gather.c: after the TLB flush, under the PTE lock, remove the rmap of the
    pages whose removal was delayed (dirty file pages)."""
    if not tlb.delayed_rmap:
        return
    from legacy.mm.page import folio_remove_rmap_ptes, pfn_to_page

    for pfn in tlb.delayed_rmap_pages:
        if pfn_to_page(k, pfn) is not None:
            folio_remove_rmap_ptes(k, pfn, 1, vma)
    tlb.delayed_rmap_pages.clear()
    tlb.delayed_rmap = False


def tlb_flush_mmu_free(k: GenericKernel, tlb: mmu_gather) -> None:
    tlb_table_flush(k, tlb)
    tlb_batch_pages_flush(k, tlb)


def tlb_flush_mmu(k: GenericKernel, tlb: mmu_gather) -> None:
    tlb_flush_mmu_tlbonly(k, tlb)
    tlb_flush_mmu_free(k, tlb)


def _tlb_remove_page_size(
    k: GenericKernel, tlb: mmu_gather, pfn: int, delay_rmap: bool, page_size: int
) -> bool:
    """``__tlb_remove_page_size``: queue a page; true when every batch is full."""
    tlb.pages.append(pfn)
    if delay_rmap:
        tlb.delayed_rmap_pages.append(pfn)
    capacity = MMU_GATHER_BUNDLE + MAX_GATHER_BATCH_COUNT(k) * MAX_GATHER_BATCH(k)
    return len(tlb.pages) >= capacity


def tlb_remove_page(k: GenericKernel, tlb: mmu_gather, pfn: int) -> None:
    if _tlb_remove_page_size(k, tlb, pfn, False, k.PAGE_SIZE):
        tlb_flush_mmu(k, tlb)


# -- gather lifetime and vmas ------------------------------------------------------------


def _tlb_gather_mmu(k: GenericKernel, mm: mm_struct, fullmm: bool) -> mmu_gather:
    tlb = mmu_gather(mm, fullmm)
    _tlb_reset_range(k, tlb)
    return tlb


def tlb_gather_mmu(k: GenericKernel, mm: mm_struct) -> mmu_gather:
    """``tlb_gather_mmu(&tlb, mm)``: the initialised gather is returned."""
    return _tlb_gather_mmu(k, mm, False)


def tlb_gather_mmu_fullmm(k: GenericKernel, mm: mm_struct) -> mmu_gather:
    """For tearing down the whole address space (exit, execve)."""
    return _tlb_gather_mmu(k, mm, True)


def tlb_finish_mmu(k: GenericKernel, tlb: mmu_gather) -> None:
    """Final TLB invalidation, then free every queued table and page."""
    tlb_flush_mmu(k, tlb)
    tlb.finished = True


def tlb_update_vma_flags(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct) -> None:
    tlb.vma_huge = is_vm_hugetlb_page(vma)
    tlb.vma_exec = bool(vma.vm_flags & VM_EXEC)
    tlb.vma_pfn = bool(vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP))


def tlb_start_vma(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct) -> None:
    if tlb.fullmm:
        return
    tlb_update_vma_flags(k, tlb, vma)


def tlb_end_vma(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct) -> None:
    """Flush at each vma boundary (no emulated architecture selects MMU_GATHER_MERGE_VMAS)."""
    if tlb.fullmm:
        return
    tlb_flush_mmu_tlbonly(k, tlb)


# -- freeing page tables: the p?d_free_tlb macros ---------------------------------------


def _pte_free_tlb(k: GenericKernel, tlb: mmu_gather, pte: pgtable_t, address: int) -> None:
    """``__pte_free_tlb`` (x86 ``___pte_free_tlb``, generic ``tlb_remove_ptdesc``); classic
    arm first widens the range (arch/arm/include/asm/tlb.h, ``k.pte_free_tlb_range``)."""
    widen = k.pte_free_tlb_range(address)
    if widen is not None:
        _tlb_adjust_range(k, tlb, *widen)
    tlb_remove_table(k, tlb, TableFree("pte", pte))


def _pmd_free_tlb(k: GenericKernel, tlb: mmu_gather, pmd: PmdPtr, address: int) -> None:
    """``__pmd_free_tlb``: nothing when the pmd is folded (pgtable-nopmd.h, s390)."""
    if k.mm_pmd_folded(tlb.mm):
        return
    tlb_remove_table(k, tlb, TableFree("pmd", pmd))


def _pud_free_tlb(k: GenericKernel, tlb: mmu_gather, pud: PudPtr, address: int) -> None:
    """``__pud_free_tlb``: nothing when the pud is folded (pgtable-nopud.h, s390)."""
    if k.mm_pud_folded(tlb.mm):
        return
    tlb_remove_table(k, tlb, TableFree("pud", pud))


def _p4d_free_tlb(k: GenericKernel, tlb: mmu_gather, p4d: P4dPtr, address: int) -> None:
    """``__p4d_free_tlb``: nothing when the p4d is folded (pgtable-nop4d.h; x86
    ``if (pgtable_l5_enabled())``)."""
    if k.mm_p4d_folded(tlb.mm):
        return
    tlb_remove_table(k, tlb, TableFree("p4d", p4d))


def pte_free_tlb(k: GenericKernel, tlb: mmu_gather, ptep: pgtable_t, address: int) -> None:
    tlb_flush_pmd_range(k, tlb, address, k.PAGE_SIZE)
    tlb.freed_tables = True
    _pte_free_tlb(k, tlb, ptep, address)


def pmd_free_tlb(k: GenericKernel, tlb: mmu_gather, pmdp: PmdPtr, address: int) -> None:
    """include/asm-generic/tlb.h; with a compile-time folded pmd, pgtable-nopmd.h makes the
    whole macro ``do { } while (0)`` (commit "asm-generic/tlb: stub out pmd_free_tlb() if
    __PAGETABLE_PMD_FOLDED", 2019): no range, no ``freed_tables``."""
    if k.PAGETABLE_PMD_FOLDED:
        return
    tlb_flush_pud_range(k, tlb, address, k.PAGE_SIZE)
    tlb.freed_tables = True
    _pmd_free_tlb(k, tlb, pmdp, address)


def pud_free_tlb(k: GenericKernel, tlb: mmu_gather, pudp: PudPtr, address: int) -> None:
    """pgtable-nopud.h stubs the macro out when the pud is folded at compile time."""
    if k.PAGETABLE_PUD_FOLDED:
        return
    tlb_flush_p4d_range(k, tlb, address, k.PAGE_SIZE)
    tlb.freed_tables = True
    _pud_free_tlb(k, tlb, pudp, address)


def p4d_free_tlb(k: GenericKernel, tlb: mmu_gather, p4dp: P4dPtr, address: int) -> None:
    """pgtable-nop4d.h stubs the macro out when the p4d is folded at compile time; x86-64
    folds it at run time and keeps the macro (``__p4d_free_tlb`` checks
    ``pgtable_l5_enabled()``)."""
    if k.PAGETABLE_P4D_FOLDED:
        return
    _tlb_adjust_range(k, tlb, address, k.PAGE_SIZE)
    tlb.freed_tables = True
    _p4d_free_tlb(k, tlb, p4dp, address)
