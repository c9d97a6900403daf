"""arm64 TLB flushing: ``arch/arm64/include/asm/tlbflush.h`` and ``arch/arm64/include/asm/tlb.h``
(Linux v6.18), over the emulated TLB of :mod:`arches.tlb`.

Kernel facts relied on (the surprising ones first):

- ``flush_tlb_page`` is ``TLBI VALE1IS``: *last level only*; walk-cache entries stay;
- ``flush_tlb_kernel_range`` is ``TLBI VAALE1IS`` page by page: last level only too, so code
  that frees a kernel page table must use ``__flush_tlb_kernel_pgtable(addr)`` (one ``TLBI
  VAAE1IS``: every level of the walk for ``addr``), as ``pmd_free_pte_page`` and
  ``pud_free_pmd_page`` do;
- ``tlb_flush`` (asm/tlb.h): ``last_level = !tlb->freed_tables``; a ``fullmm`` gather
  flushes nothing unless tables were freed (then ``flush_tlb_mm``): "the ASID allocator
  won't reallocate our ASID without invalidating the entire TLB"; otherwise
  ``__flush_tlb_range(start, end, tlb_get_unmap_size(tlb), last_level, tlb_get_level(tlb))``.
  ``need_flush_all`` is not looked at;
- ``flush_tlb_range`` is ``__flush_tlb_range(PAGE_SIZE, last_level = false)`` ("we may be
  invalidating table entries"); ``flush_pmd_tlb_range`` / ``flush_pud_tlb_range``
  (asm/pgtable.h) use a ``PMD_SIZE`` / ``PUD_SIZE`` stride, not last level;
- ``__flush_tlb_range_limit_excess``: without FEAT_TLBIRANGE (not emulated) ``MAX_DVM_OPS``
  (``PTRS_PER_PTE``) strides or more become ``flush_tlb_mm`` (kernel: ``flush_tlb_all``);
- ``flush_tlb_fix_spurious_fault`` is empty (asm/pgtable.h: broadcast invalidation).

A ``TLBI`` by VA invalidates every cached entry that *translates* that VA (Arm ARM D8.16:
a block entry whatever its size, and with ``VAE1``/``VAAE1`` the walk-cache entries of every
level of that walk).  The model's range flush keeps the parts of an entry outside the range,
so a by-VA invalidation is emulated here entry by entry (:meth:`Arm64Tlbflush._tlbi_va`).
The ``TTL`` hint (``tlb_level``) only narrows the search in hardware and is ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.tlb import KERNEL_SPACE
from legacy.generic import GenericKernel
from legacy.mm.mmu_gather import tlb_get_unmap_size
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.types import PtePtr

if TYPE_CHECKING:
    from legacy.mm.mmu_gather import mmu_gather

TLBI_TTL_UNKNOWN = 0x7FFFFFFF
"""``INT_MAX``: no level hint."""


def tlb_get_level(tlb: mmu_gather) -> int:
    """arch/arm64/include/asm/tlb.h: the TTL hint (3 = pte ... 0 = p4d), only when a single
    level was cleared and no table freed."""
    if tlb.freed_tables:
        return TLBI_TTL_UNKNOWN
    cleared = [tlb.cleared_p4ds, tlb.cleared_puds, tlb.cleared_pmds, tlb.cleared_ptes]
    if cleared.count(True) == 1:
        return cleared.index(True)
    return TLBI_TTL_UNKNOWN


class Arm64Tlbflush(GenericKernel):
    """The arm64 flush API (a base of ``Arm64Kernel``, overriding :mod:`legacy.tlbflush`)."""

    FLUSH_TLB_PAGE_LAST_LEVEL = True  # TLBI VALE1IS
    FLUSH_TLB_KERNEL_RANGE_LAST_LEVEL = True  # TLBI VAALE1IS
    SPURIOUS_FAULT_FLUSH_EMPTY = True

    # -- the TLBI instructions --------------------------------------------------------------

    def _tlbi_va(self, space: int, start: int, end: int, stride: int, last_level: bool) -> None:
        """``TLBI VA(A)E1IS`` (or ``VA(A)LE1IS`` if ``last_level``) at ``start``, ``start +
        stride`` ... below ``end`` (``end`` 0 = the top): each invalidates the entries that
        translate its VA, whole; ``VALE1`` leaves walk-cache entries (the hardware model's
        :meth:`arches.tlb.Tlb.flush` with a stride)."""
        self.hw_tlb.flush(space, start, end, walk=not last_level, stride=stride)

    # -- asm/tlbflush.h -------------------------------------------------------------------

    @property
    def MAX_DVM_OPS(self) -> int:
        return self.PTRS_PER_PTE

    def _flush_tlb_range_limit_excess(self, start: int, end: int, pages: int,
                                      stride: int) -> bool:
        """``__flush_tlb_range_limit_excess`` with ``!system_supports_tlb_range()``."""
        return ((end - start) & self.ULONG_MASK) >= self.MAX_DVM_OPS * stride

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        """``TLBI ASIDE1IS``: every entry of the ASID, walk caches included."""
        self.hw_tlb.flush_space(self._space(mm))

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        """``__flush_tlb_page_nosync``: ``TLBI VALE1IS`` -- the last level only."""
        addr &= self.PAGE_MASK
        self._tlbi_va(self._space(vma.vm_mm), addr, (addr + self.PAGE_SIZE) & self.ULONG_MASK,
                      self.PAGE_SIZE, last_level=True)

    def _flush_tlb_range(self, vma: vm_area_struct, start: int, end: int, stride: int,
                         last_level: bool, tlb_level: int) -> None:
        """``__flush_tlb_range`` (``__flush_tlb_range_nosync`` + ``dsb(ish)``)."""
        m = self.ULONG_MASK
        start = start & ~(stride - 1) & m
        end = -(-end // stride) * stride & m
        pages = ((end - start) & m) >> self.PAGE_SHIFT
        if self._flush_tlb_range_limit_excess(start, end, pages, stride):
            self.flush_tlb_mm(vma.vm_mm)
            return
        self._tlbi_va(self._space(vma.vm_mm), start, end, stride, last_level)

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """"We cannot use leaf-only invalidation here, since we may be invalidating table
        entries as part of collapsing hugepages or moving page tables"."""
        self._flush_tlb_range(vma, start, end, self.PAGE_SIZE, False, TLBI_TTL_UNKNOWN)

    def flush_pmd_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """asm/pgtable.h: ``__flush_tlb_range(vma, addr, end, PMD_SIZE, false, 2)``."""
        self._flush_tlb_range(vma, start, end, self.PMD_SIZE, False, 2)

    def flush_pud_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """asm/pgtable.h: ``__flush_tlb_range(vma, addr, end, PUD_SIZE, false, 1)``."""
        self._flush_tlb_range(vma, start, end, self.PUD_SIZE, False, 1)

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """``TLBI VAALE1IS`` page by page -- last level only -- or ``flush_tlb_all``."""
        m = self.ULONG_MASK
        stride = self.PAGE_SIZE
        start = start & ~(stride - 1) & m
        end = -(-end // stride) * stride & m
        pages = ((end - start) & m) >> self.PAGE_SHIFT
        if self._flush_tlb_range_limit_excess(start, end, pages, stride):
            self.flush_tlb_all()
            return
        self._tlbi_va(KERNEL_SPACE, start, end, stride, last_level=True)

    def _flush_tlb_kernel_pgtable(self, kaddr: int) -> None:
        """``__flush_tlb_kernel_pgtable``: one ``TLBI VAAE1IS`` at ``kaddr`` -- "invalidate the
        TLB (walk caches) corresponding to intermediate page table levels"."""
        kaddr &= self.PAGE_MASK
        self._tlbi_va(KERNEL_SPACE, kaddr, (kaddr + self.PAGE_SIZE) & self.ULONG_MASK,
                      self.PAGE_SIZE, last_level=False)

    def flush_tlb_fix_spurious_fault(self, vma: vm_area_struct, address: int,
                                     ptep: PtePtr) -> None:
        """asm/pgtable.h: empty -- broadcast TLBIs leave nothing for the faulting CPU."""

    # -- asm/tlb.h --------------------------------------------------------------------------

    def tlb_flush(self, tlb: mmu_gather) -> None:
        """arch/arm64/include/asm/tlb.h ``tlb_flush``."""
        vma = vm_area_struct(vm_mm=tlb.mm, vm_start=0, vm_end=0, vm_flags=0,
                             vm_page_prot=0)  # TLB_FLUSH_VMA(tlb->mm, 0)
        last_level = not tlb.freed_tables
        stride = tlb_get_unmap_size(self, tlb)
        tlb_level = tlb_get_level(tlb)
        # "If we're tearing down the address space then we only care about invalidating
        # the walk-cache, since the ASID allocator won't reallocate our ASID without
        # invalidating the entire TLB."
        if tlb.fullmm:
            if not last_level:
                self.flush_tlb_mm(tlb.mm)
            return
        self._flush_tlb_range(vma, tlb.start, tlb.end, stride, last_level, tlb_level)
