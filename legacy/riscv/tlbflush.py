"""RISC-V TLB flushing: ``arch/riscv/include/asm/tlbflush.h``, ``arch/riscv/include/asm/tlb.h``
and ``arch/riscv/mm/tlbflush.c`` (Linux v6.18), over the emulated TLB of :mod:`arches.tlb`.

The instruction is ``sfence.vma rs1, rs2`` (privileged spec, "Supervisor Memory-Management
Fence Instruction"):

- ``rs1 = x0``: every address-translation cache entry (of the ASID in ``rs2``, global ones
  excepted; of every address space with ``rs2 = x0``), *non-leaf ones included*;
- ``rs1 != x0``: only the cache entries "that contain leaf page table entries corresponding
  to the virtual address in rs1" -- a superpage containing it included, the walk caches not.
  The spec's commentary: after changing a non-leaf PTE, software uses ``rs1 = x0``.

Kernel facts relied on (the surprising ones first):

- every by-address flush is leaf-only: ``local_flush_tlb_page_asid`` per ``stride``, so
  ``tlb_flush`` (asm/tlb.h) does ``flush_tlb_mm`` as soon as ``tlb->freed_tables`` (also
  for ``fullmm`` and ``need_flush_all``), and ``pmdp_collapse_flush`` does ``flush_tlb_mm``
  ("the sfence.vma forms that specify an address only apply to leaf PTEs");
- ``local_flush_tlb_range_asid``: ``size <= stride`` is one ``sfence.vma addr``; more than
  ``tlb_flush_all_threshold`` (64) strides, or ``FLUSH_TLB_MAX_SIZE``, is ``sfence.vma x0,
  asid`` (everything of the ASID); in between, one ``sfence.vma`` per stride;
- kernel ranges (``flush_tlb_kernel_range``, ``FLUSH_TLB_NO_ASID``) are flushed for every
  address space; more than 64 pages is ``local_flush_tlb_all`` -- which is what makes
  ``pmd_free_pte_page`` (``PMD_SIZE`` = 512 pages) drop the walk caches before the table is
  freed;
- ``flush_pmd_tlb_range``/``flush_pud_tlb_range`` use a ``PMD_SIZE``/``PUD_SIZE`` stride;
  ``ptep_clear_flush_young`` does not flush; ``flush_tlb_fix_spurious_fault`` is the
  include/linux/pgtable.h default (``flush_tlb_page``).

ASIDs are in use (``get_mm_asid``); the SBI/IPI broadcast is the same invalidation here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.tlb import KERNEL_SPACE
from legacy.generic import GenericKernel
from legacy.mm.mmu_gather import tlb_get_unmap_size
from legacy.mm_types import mm_struct, vm_area_struct

if TYPE_CHECKING:
    from legacy.mm.mmu_gather import mmu_gather

FLUSH_TLB_MAX_SIZE = -1
"""``(unsigned long)-1``: "the whole address space" (masked to the word width on use)."""


class RiscvTlbflush(GenericKernel):
    """The riscv flush API (a base of ``RiscvKernel``, overriding :mod:`legacy.tlbflush`)."""

    tlb_flush_all_threshold = 64
    """``tlb_flush_all_threshold``: above this many strides a range flush flushes all."""

    # -- the sfence.vma forms ----------------------------------------------------------------

    def _local_flush_tlb_all_asid(self, space: int) -> None:
        """``sfence.vma x0, asid`` (``FLUSH_TLB_NO_ASID``: ``sfence.vma x0, x0``)."""
        if space == KERNEL_SPACE:
            self.hw_tlb.flush_all()
        else:
            self.hw_tlb.flush_space(space)

    def _local_flush_tlb_range_asid(self, space: int, start: int, size: int,
                                    stride: int) -> None:
        """``local_flush_tlb_range_asid`` (+ ``local_flush_tlb_range_threshold_asid``)."""
        m = self.ULONG_MASK
        if size <= stride:  # one sfence.vma at start: the leaf entries translating it
            self.hw_tlb.flush(space, start, (start + self.PAGE_SIZE) & m, walk=False)
        elif size == FLUSH_TLB_MAX_SIZE & m:
            self._local_flush_tlb_all_asid(space)
        else:
            nr = -(-size // stride)
            if nr > self.tlb_flush_all_threshold:
                self._local_flush_tlb_all_asid(space)
                return
            self.hw_tlb.flush(space, start, (start + nr * stride) & m, walk=False,
                              stride=stride)

    def _flush_tlb_range(self, mm: mm_struct | None, start: int, size: int,
                         stride: int) -> None:
        """``__flush_tlb_range``: ``get_mm_asid(mm)`` (``FLUSH_TLB_NO_ASID`` without mm)."""
        space = KERNEL_SPACE if mm is None else self._space(mm)
        self._local_flush_tlb_range_asid(space, start & self.ULONG_MASK,
                                         size & self.ULONG_MASK, stride)

    # -- arch/riscv/mm/tlbflush.c ----------------------------------------------------------

    def flush_tlb_all(self) -> None:
        self.hw_tlb.flush_all()

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        self._flush_tlb_range(mm, 0, FLUSH_TLB_MAX_SIZE, self.PAGE_SIZE)

    def flush_tlb_mm_range(self, mm: mm_struct, start: int, end: int, page_size: int) -> None:
        self._flush_tlb_range(mm, start, end - start, page_size)

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        self._flush_tlb_range(vma.vm_mm, addr, self.PAGE_SIZE, self.PAGE_SIZE)

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """``PAGE_SIZE`` stride (no hugetlb vmas are emulated)."""
        self._flush_tlb_range(vma.vm_mm, start, end - start, self.PAGE_SIZE)

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        self._flush_tlb_range(None, start, end - start, self.PAGE_SIZE)

    def flush_pmd_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        self._flush_tlb_range(vma.vm_mm, start, end - start, self.PMD_SIZE)

    def flush_pud_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        self._flush_tlb_range(vma.vm_mm, start, end - start, self.PUD_SIZE)

    # -- asm/tlb.h -------------------------------------------------------------------------

    def tlb_flush(self, tlb: mmu_gather) -> None:
        """arch/riscv/include/asm/tlb.h: ``flush_tlb_mm`` if ``fullmm``, ``need_flush_all``
        or ``freed_tables``, else ``flush_tlb_mm_range(start, end,
        tlb_get_unmap_size(tlb))``."""
        if tlb.fullmm or tlb.need_flush_all or tlb.freed_tables:
            self.flush_tlb_mm(tlb.mm)
        else:
            self.flush_tlb_mm_range(tlb.mm, tlb.start, tlb.end, tlb_get_unmap_size(self, tlb))
