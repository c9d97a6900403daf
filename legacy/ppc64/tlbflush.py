"""Radix TLB flushing: ``arch/powerpc/include/asm/book3s/64/tlbflush.h``,
``tlbflush-radix.h`` and ``arch/powerpc/mm/book3s64/radix_tlb.c`` (Linux v6.18), over the
emulated TLB of :mod:`arches.tlb`.

The instruction is ``tlbie``/``tlbiel`` with a RIC (radix invalidation control): 0
(``RIC_FLUSH_TLB``) invalidates translations only, 1 (``RIC_FLUSH_PWC``) the page walk
cache of a whole PID only (no address form), 2 (``RIC_FLUSH_ALL``) both and the cached
process-table entry.  So a by-address flush never drops walk-cache entries, and the kernel
flushes the PWC by PID whenever tables may have been freed.

Kernel facts relied on (the surprising ones first):

- ``flush_tlb_mm`` is ``RIC_FLUSH_TLB`` for the PID: it keeps the page walk cache;
  ``radix__tlb_flush`` (the mmu_gather) uses ``RIC_FLUSH_ALL`` for a full-mm gather, and
  for freed tables ``radix__flush_tlb_pwc_range_psize`` (PWC by PID, then the range) -- or
  a flush of everything when the gather's ``page_size`` is not a known size;
- ``__radix__flush_tlb_range``: more than ``tlb_single_page_flush_ceiling`` (33) pages is
  ``RIC_FLUSH_ALL`` of the PID; otherwise a range of ``PMD_SIZE`` or more also flushes the
  PWC by PID ("mremap() depends on this behaviour"), then one ``tlbie`` per page, and with
  THP one per 2M page of the 2M-aligned part (``hflush``).  The flushes are the global
  (``tlbie``) ones, as for an mm that has run on several CPUs (``flush_type_needed``); an
  mm active on this CPU only would use ``tlbiel`` and ``tlb_local_single_page_flush_ceiling``
  (256) -- the same invalidations with a later switch to a whole-PID flush;
- ``flush_tlb_kernel_range`` is ``RIC_FLUSH_ALL`` of PID 0 (``_tlbie_pid(0,
  RIC_FLUSH_ALL)``);
- ``flush_tlb_fix_spurious_fault`` does nothing: "Book3S 64 does not require spurious fault
  flushes because the PTE must be re-fetched in case of an access permission problem".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.tlb import KERNEL_SPACE
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.types import PtePtr

if TYPE_CHECKING:
    from legacy.mm.mmu_gather import mmu_gather

RIC_FLUSH_TLB = 0
RIC_FLUSH_PWC = 1
RIC_FLUSH_ALL = 2
POWER9_TLB_SETS_RADIX = 128


class RadixTlbflush(GenericKernel):
    """The radix flush API (a base of ``RadixKernel``, overriding :mod:`legacy.tlbflush`)."""

    tlb_single_page_flush_ceiling = 33
    tlb_local_single_page_flush_ceiling = POWER9_TLB_SETS_RADIX * 2
    FLUSH_TLB_KERNEL_RANGE_ALL = True  # _tlbie_pid(0, RIC_FLUSH_ALL)
    FLUSH_TLB_MM_KEEPS_WALK_CACHES = True  # RIC_FLUSH_TLB
    SPURIOUS_FAULT_FLUSH_EMPTY = True
    HAVE_MMU_GATHER_PAGE_SIZE = True  # arch/powerpc/Kconfig

    # -- the tlbie forms -------------------------------------------------------------------

    def _tlbie_pid(self, space: int, ric: int) -> None:
        """``_tlbiel_pid``/``_tlbie_pid(pid, ric)``: everything of one PID."""
        tlb = self.hw_tlb
        if ric == RIC_FLUSH_ALL:
            tlb.flush_space(space)
        elif ric == RIC_FLUSH_TLB:
            tlb.flush(space, 0, 0, walk=False)
        else:  # RIC_FLUSH_PWC: the walk cache of the PID, translations kept
            tlb.flushes.append((space, 0, 0, True))
            tlb.marks = [m for m in tlb.marks if m.space != space or not m.walk]

    def _tlbie_va_range(self, space: int, start: int, end: int, page_size: int,
                        also_pwc: bool) -> None:
        """``__tlbiel_va_range`` (after ``_tlbiel_pid(pid, RIC_FLUSH_PWC)`` when
        ``also_pwc``): one ``RIC_FLUSH_TLB`` per page."""
        if also_pwc:
            self._tlbie_pid(space, RIC_FLUSH_PWC)
        self.hw_tlb.flush(space, start, end & self.ULONG_MASK, walk=False, stride=page_size)

    def _flush_range_psize(self, mm: mm_struct, start: int, end: int, page_size: int,
                           also_pwc: bool) -> None:
        """``__radix__flush_tlb_range_psize``."""
        space = self._space(mm)
        nr_pages = ((end - start) & self.ULONG_MASK) // page_size
        if nr_pages > self.tlb_single_page_flush_ceiling:
            self._tlbie_pid(space, RIC_FLUSH_ALL if also_pwc else RIC_FLUSH_TLB)
        else:
            self._tlbie_va_range(space, start, end, page_size, also_pwc)

    # -- radix_tlb.c -----------------------------------------------------------------------

    def flush_tlb_all(self) -> None:
        self.hw_tlb.flush_all()

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        """``radix__flush_tlb_mm``: ``RIC_FLUSH_TLB`` of the PID -- the PWC stays."""
        self._tlbie_pid(self._space(mm), RIC_FLUSH_TLB)

    def flush_all_mm(self, mm: mm_struct) -> None:
        """``radix__flush_all_mm``: ``RIC_FLUSH_ALL`` of the PID."""
        self._tlbie_pid(self._space(mm), RIC_FLUSH_ALL)

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        """``radix__flush_tlb_page_psize``: one ``tlbiel`` (RIC 0) at the page."""
        addr &= self.PAGE_MASK
        self._tlbie_va_range(self._space(vma.vm_mm), addr, addr + self.PAGE_SIZE,
                             self.PAGE_SIZE, False)

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """``__radix__flush_tlb_range``: the whole PID past the ceiling, else the PWC (for
        ``PMD_SIZE`` or more), the pages, and the 2M pages of the range (``hflush``)."""
        space = self._space(vma.vm_mm)
        nr_pages = ((end - start) & self.ULONG_MASK) >> self.PAGE_SHIFT
        if nr_pages > self.tlb_single_page_flush_ceiling:
            self._tlbie_pid(space, RIC_FLUSH_ALL)
            return
        flush_pwc = (end - start) & self.ULONG_MASK >= self.PMD_SIZE
        self._tlbie_va_range(space, start, end, self.PAGE_SIZE, flush_pwc)
        hstart = (start + self.PMD_SIZE - 1) & self.PMD_MASK
        hend = end & self.PMD_MASK
        if self.TRANSPARENT_HUGEPAGE and hstart < hend:
            self._tlbie_va_range(space, hstart, hend, self.PMD_SIZE, False)

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """``radix__flush_tlb_kernel_range``: ``_tlbie_pid(0, RIC_FLUSH_ALL)``."""
        self._tlbie_pid(KERNEL_SPACE, RIC_FLUSH_ALL)

    def flush_pmd_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """``radix__flush_pmd_tlb_range``: the range with a 2M stride."""
        self._flush_range_psize(vma.vm_mm, start, end, self.PMD_SIZE, False)

    def flush_pud_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """``radix__flush_pud_tlb_range``: the range with a 1G stride."""
        self._flush_range_psize(vma.vm_mm, start, end, self.PUD_SIZE, False)

    def flush_tlb_collapsed_pmd(self, mm: mm_struct, addr: int) -> None:
        """``radix__flush_tlb_collapsed_pmd``: "4k page size, just blow the world"
        (``radix__flush_all_mm``); else the PWC by PID and the 2M range page by page."""
        if self.PAGE_SIZE == 0x1000:
            self.flush_all_mm(mm)
            return
        self._tlbie_va_range(self._space(mm), addr, addr + self.PMD_SIZE, self.PAGE_SIZE, True)

    def flush_tlb_fix_spurious_fault(self, vma: vm_area_struct, address: int,
                                     ptep: PtePtr) -> None:
        """book3s/64/tlbflush.h: nothing."""

    # -- the mmu_gather ---------------------------------------------------------------------

    def tlb_flush(self, tlb: mmu_gather) -> None:
        """``radix__tlb_flush``: full mm or ``need_flush_all`` -> ``RIC_FLUSH_ALL``; an
        unknown ``page_size`` (0: no ``tlb_change_page_size``) -> the whole PID, with the
        PWC if tables were freed; else the range, the PWC flushed by PID first if tables
        were freed."""
        mm = tlb.mm
        if tlb.fullmm or tlb.need_flush_all:
            self.flush_all_mm(mm)
        elif tlb.page_size not in (self.PAGE_SIZE, self.PMD_SIZE, self.PUD_SIZE):
            if not tlb.freed_tables:
                self.flush_tlb_mm(mm)
            else:
                self.flush_all_mm(mm)
        else:
            self._flush_range_psize(mm, tlb.start, tlb.end, tlb.page_size, tlb.freed_tables)
