"""LoongArch TLB flushing: ``arch/loongarch/include/asm/tlbflush.h``, ``tlb.h`` and
``arch/loongarch/mm/tlb.c`` (Linux v6.18), over the emulated TLB of :mod:`arches.tlb`.

Kernel facts relied on:

- a TLB entry holds an even/odd pair of pages, so ``local_flush_tlb_range`` rounds the range
  to ``PAGE_SIZE << 1`` and issues one ``invtlb INVTLB_ADDR_GFALSE_AND_ASID`` per pair --
  unless there are more pairs than ``tlbsize / 8`` (STLB sets present), when it drops the
  mm's ASID (``drop_mmu_context``: the whole space).  The model clears only the pages
  asked for (stricter than a whole pair; see ``_pairs_fit``);
- ``local_flush_tlb_kernel_range`` likewise, with ``INVTLB_ADDR_GTRUE_OR_ASID`` per pair,
  else ``local_flush_tlb_kernel`` (``invtlb INVTLB_CURRENT_GTRUE``: every global entry);
- ``flush_tlb_page`` invalidates one pair, ``flush_tlb_mm`` drops the ASID;
- ``tlb_flush`` (asm/tlb.h): ``flush_tlb_mm`` for a full-mm gather, else
  ``flush_tlb_range`` of the gathered range;
- the CPU's roots: ``PGDH`` = ``swapper_pg_dir`` for every mm, ``PGDL`` = ``mm->pgd``
  (``invalid_pg_dir`` for ``init_mm``, asm/mmu_context.h ``switch_mm_irqs_off``).

The emulated CPU is a Loongson 3A5000: ``tlbsize`` = 64 MTLB + 256 sets x 8 ways of STLB =
2112 entries, so a per-pair flush covers up to 264 pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.loongarch.bits import CACHE_BASE
from arches.tlb import KERNEL_SPACE
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, vm_area_struct

if TYPE_CHECKING:
    from legacy.mm.mmu_gather import mmu_gather

TLBSIZE = 64 + 256 * 8
"""``current_cpu_data.tlbsize``: MTLB entries + STLB sets x ways (Loongson 3A5000)."""


class LoongarchTlbflush(GenericKernel):
    """The LoongArch flush API (a base of ``LoongarchKernel``, overriding
    :mod:`legacy.tlbflush`)."""

    SEPARATE_KERNEL_ROOT = True
    tlb_flush_all_threshold = TLBSIZE // 8 * 2
    """Not a LoongArch symbol (riscv's name, which the flush tests read): the most pages a
    pair-aligned ``flush_tlb_range`` invalidates one by one (``tlbsize / 8`` pairs)."""

    def mm_root(self, mm: mm_struct) -> int:
        """What ``switch_mm`` writes into PGDL (``mm->pgd``) -- and ``setup_ptwalker`` into
        PGDH (``swapper_pg_dir``): a kernel virtual address, ``CACHE_BASE | pa``."""
        return CACHE_BASE | mm.pgd.pa

    def switch_mm(self, mm: mm_struct) -> None:
        """PGDL = the mm's pgd, PGDH = ``swapper_pg_dir``.  For ``init_mm`` only the PGDH
        walk is loaded (its PGDL is ``invalid_pg_dir``, which translates nothing)."""
        if not mm.pgd.pa:
            return
        kernel = self.mm_root(self.init_mm)
        user = self.mm_root(mm)
        walks = self.config.walker.structure(self.config.make_registers(user, kernel))
        walks = tuple(w for w in walks if (w.register == "pgdh") == mm.is_init_mm)
        self.hw_tlb.activate(mm.asid, walks)

    def _pairs_fit(self, start: int, end: int) -> tuple[int, int, bool]:
        """``[start, end)`` in whole pages, and whether its page pairs (the kernel rounds to
        ``PAGE_SIZE << 1``) are few enough for a per-address flush (``size <= tlbsize /
        8``).  Each ``invtlb`` drops the TLB entry of a whole pair, but the model clears
        only the pages asked for: stricter than the hardware (a call site that relied on
        the other half of a pair would be flagged; generic mm code never does), and the
        same ranges as every other configuration for the side-by-side comparison."""
        pair = self.PAGE_SIZE << 1
        lo = start & ~(pair - 1) & self.ULONG_MASK
        hi = ((end + pair - 1) & ~(pair - 1)) & self.ULONG_MASK
        size = ((hi - lo) & self.ULONG_MASK) >> (self.PAGE_SHIFT + 1)
        start &= self.PAGE_MASK
        end = ((end + self.PAGE_SIZE - 1) & self.PAGE_MASK) & self.ULONG_MASK
        return start, end, size <= TLBSIZE // 8

    def flush_tlb_all(self) -> None:
        """``local_flush_tlb_all``: ``invtlb INVTLB_CURRENT_ALL``."""
        self.hw_tlb.flush_all()

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        """``local_flush_tlb_mm``: ``drop_mmu_context`` (a new ASID)."""
        self.hw_tlb.flush_space(self._space(mm))

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """``local_flush_tlb_range``: one ``invtlb`` per page pair, or a new ASID."""
        mm = vma.vm_mm
        start, end, fits = self._pairs_fit(start, end)
        if fits:
            self.hw_tlb.flush(self._space(mm), start, end, walk=True)
        else:
            self.hw_tlb.flush_space(self._space(mm))

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        """``local_flush_tlb_page``: the entry of the pair holding ``addr`` (the model
        clears the page itself, see :meth:`_pairs_fit`)."""
        addr &= self.PAGE_MASK
        self.hw_tlb.flush(self._space(vma.vm_mm), addr, (addr + self.PAGE_SIZE)
                          & self.ULONG_MASK, walk=True)

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """``local_flush_tlb_kernel_range``: per pair, or every global entry."""
        start, end, fits = self._pairs_fit(start, end)
        if fits:
            self.hw_tlb.flush(KERNEL_SPACE, start, end, walk=True)
        else:
            self.hw_tlb.flush_space(KERNEL_SPACE)

    def tlb_flush(self, tlb: mmu_gather) -> None:
        """asm/tlb.h: ``flush_tlb_mm`` for a full-mm gather, else ``flush_tlb_range`` of
        ``[tlb->start, tlb->end)`` through a stack vma (no ``need_flush_all`` case)."""
        if tlb.fullmm:
            self.flush_tlb_mm(tlb.mm)
            return
        vma = vm_area_struct(vm_mm=tlb.mm, vm_start=tlb.start, vm_end=tlb.end, vm_flags=0,
                             vm_page_prot=0)
        if tlb.end:
            self.flush_tlb_range(vma, tlb.start, tlb.end)
