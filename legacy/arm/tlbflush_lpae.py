"""32-bit arm TLB flushing with LPAE: ``arch/arm/include/asm/tlbflush.h``,
``arch/arm/include/asm/tlb.h``, ``arch/arm/kernel/smp_tlb.c`` and ``arch/arm/mm/tlb-v7.S``
(``v7wbi_tlb_fns``), over the emulated TLB of :mod:`arches.tlb`.

An SMP ARMv7 (Cortex-A15) broadcasts its TLB operations in hardware (the ``...IS``
encodings), so every ``flush_tlb_*`` is the local operation:

- ``flush_tlb_all``: ``TLBIALLIS``; ``flush_tlb_mm``: ``TLBIASIDIS`` (every non-global
  entry of the mm's ASID);
- ``flush_tlb_page``: ``TLBIMVAIS`` of the page (with the ASID);
  ``flush_tlb_range``: ``v7wbi_flush_user_tlb_range``, one ``TLBIMVAIS`` per page of
  ``[start, end)`` -- no "too big, flush all" threshold;
- ``flush_tlb_kernel_range``: ``v7wbi_flush_kern_tlb_range``, one ``TLBIMVAAIS`` (any
  ASID) per page.  A page stride reaches every cached entry overlapping the range (no entry
  is smaller than a page), so the model flushes the range whole.

ARMv7 has no last-level-only TLBI (``TLBIMVAL`` is ARMv8's): an invalidation by MVA also
drops the intermediate walk-cache entries used to translate that address, so freeing a
table after a range flush over its span is safe (``addr_flush_reaches_walk_caches``).
``tlb_flush`` is asm-generic's (``flush_tlb_mm`` for a full mm, else ``flush_tlb_range``);
``__pte_free_tlb``/``__pmd_free_tlb`` (asm/tlb.h) only queue the table with LPAE (the range
widening is for the classic 2-level format).
"""

from __future__ import annotations

from arches.tlb import KERNEL_SPACE
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, vm_area_struct


class ArmLpaeTlbflush(GenericKernel):
    """The arm flush API (a base of ``ArmLpaeKernel``, overriding :mod:`legacy.tlbflush`)."""

    def flush_tlb_all(self) -> None:
        """``TLBIALLIS``."""
        self.hw_tlb.flush_all()

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        """``__flush_tlb_mm``: ``TLBIASIDIS`` of ``ASID(mm)``."""
        self.hw_tlb.flush_space(self._space(mm))

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        """``__flush_tlb_page``: ``TLBIMVAIS`` of ``(uaddr & PAGE_MASK) | ASID(mm)``."""
        addr &= self.PAGE_MASK
        self.hw_tlb.flush(self._space(vma.vm_mm), addr, (addr + self.PAGE_SIZE)
                          & self.ULONG_MASK, walk=True)

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """``v7wbi_flush_user_tlb_range``: ``TLBIMVAIS`` page by page, ``start`` rounded
        down and ``end`` up to pages."""
        start &= self.PAGE_MASK
        end = (end + self.PAGE_SIZE - 1) & self.PAGE_MASK
        self.hw_tlb.flush(self._space(vma.vm_mm), start, end, walk=True)

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """``v7wbi_flush_kern_tlb_range``: ``TLBIMVAAIS`` page by page."""
        start &= self.PAGE_MASK
        end = (end + self.PAGE_SIZE - 1) & self.PAGE_MASK
        self.hw_tlb.flush(KERNEL_SPACE, start, end, walk=True)
