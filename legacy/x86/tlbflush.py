"""x86 TLB flushing: ``arch/x86/include/asm/tlbflush.h``, ``arch/x86/include/asm/tlb.h`` and
``arch/x86/mm/tlb.c`` (Linux v6.18), over the emulated TLB of :mod:`arches.tlb`.

Kernel facts relied on:

- everything funnels into ``flush_tlb_mm_range(mm, start, end, stride_shift, freed_tables)``:
  ``flush_tlb_mm`` is ``(0, TLB_FLUSH_ALL, 0, true)``, ``flush_tlb_range`` and
  ``flush_tlb_page`` use ``PAGE_SHIFT`` (``huge_page_shift`` only for hugetlb vmas, which are
  not emulated); x86 has no ``flush_pmd_tlb_range`` of its own (include/linux/pgtable.h:
  ``flush_tlb_range``);
- ``get_flush_tlb_info``: more than ``tlb_single_page_flush_ceiling`` (33) strides becomes a
  full flush of the mm (CR3 reload / INVPCID single-context: global kernel entries stay);
- otherwise one ``INVLPG`` per stride, and an ``INVLPG`` drops every paging-structure-cache
  entry of the PCID (SDM Vol. 3A 4.10.4.1; ``range_flush_clears_walk_caches`` in the model),
  so x86 has no "last level only" flush: every flush here also clears walk caches;
- ``flush_tlb_kernel_range``: more than 33 pages is ``flush_tlb_all``, else ``INVLPG`` page by
  page (``do_kernel_range_flush``);
- ``tlb_flush`` (asm/tlb.h): ``flush_tlb_mm_range(tlb->mm, start, end,
  tlb_get_unmap_shift(tlb), tlb->freed_tables)`` with ``start = 0, end = TLB_FLUSH_ALL`` for
  a ``fullmm`` or ``need_flush_all`` gather.

``freed_tables`` only decides whether CPUs in lazy-TLB mode get the IPI; one CPU is
emulated, so it changes nothing here.  Each ``INVLPG`` invalidates the whole entry that maps
its address; the model invalidates ``[start, end)`` (the kernel's stride is the smallest page
size it cleared, so the loop reaches every entry of the range).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.tlb import KERNEL_SPACE
from arches.x86.bits import (
    _PAGE_ACCESSED,
    _PAGE_BIT_SOFTW2,
    _PAGE_BIT_SOFTW3,
    _PAGE_BIT_SOFTW4,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PAT,
    _PAGE_PAT_LARGE,
    _PAGE_PCD,
    _PAGE_PKEY_MASK,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_PWT,
    _PAGE_RW,
    _PAGE_SAVED_DIRTY,
    _PAGE_SOFTW1,
    _PAGE_USER,
)
from legacy.generic import GenericKernel
from legacy.mm.mmu_gather import tlb_get_unmap_shift
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.types import pmd_t, pte_t

if TYPE_CHECKING:
    from legacy.mm.mmu_gather import mmu_gather


_PAGE_SOFTW2 = 1 << _PAGE_BIT_SOFTW2
_PAGE_SOFTW3 = 1 << _PAGE_BIT_SOFTW3
_PAGE_SOFTW4 = 1 << _PAGE_BIT_SOFTW4


class X86Tlbflush(GenericKernel):
    """The x86 flush API (a base of ``X86Kernel``, overriding :mod:`legacy.tlbflush`)."""

    if TYPE_CHECKING:
        # Defined by X86Kernel (asm/pgtable.h).
        def pte_flags(self, pte: pte_t) -> int: ...
        def pmd_flags(self, pmd: pmd_t) -> int: ...

    tlb_single_page_flush_ceiling = 33
    """arch/x86/mm/tlb.c: "a full flush is cheaper beyond this many INVLPGs"."""

    @property
    def TLB_FLUSH_ALL(self) -> int:
        """``-1UL``."""
        return self.ULONG_MASK

    def flush_tlb_mm_range(self, mm: mm_struct, start: int, end: int, stride_shift: int,
                           freed_tables: bool) -> None:
        """arch/x86/mm/tlb.c: a full flush of the mm past the ceiling, else INVLPG each
        stride of ``[start, end)``."""
        space = self._space(mm)
        if end == self.TLB_FLUSH_ALL or (
            ((end - start) & self.ULONG_MASK) >> stride_shift
            > self.tlb_single_page_flush_ceiling
        ):
            self.hw_tlb.flush_space(space)
            return
        self.hw_tlb.flush(space, start, end, walk=True)

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        self.flush_tlb_mm_range(mm, 0, self.TLB_FLUSH_ALL, 0, True)

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        self.flush_tlb_mm_range(vma.vm_mm, start, end, self.PAGE_SHIFT, False)

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        """``flush_tlb_mm_range(vma->vm_mm, a, a + PAGE_SIZE, PAGE_SHIFT, false)``."""
        self.flush_tlb_mm_range(vma.vm_mm, addr, (addr + self.PAGE_SIZE) & self.ULONG_MASK,
                                self.PAGE_SHIFT, False)

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """arch/x86/mm/tlb.c: ``flush_tlb_all`` past the ceiling, else one INVLPG per page
        (``for (addr = start; addr < end; addr += PAGE_SIZE)``: an unaligned ``end``, as
        ``pmd_free_pte_page``'s ``addr + PAGE_SIZE-1``, still reaches its page)."""
        m = self.ULONG_MASK
        if end == self.TLB_FLUSH_ALL or (
            (end - start) & m
        ) > self.tlb_single_page_flush_ceiling << self.PAGE_SHIFT:
            self.flush_tlb_all()
            return
        first = start & self.PAGE_MASK
        last = (end + self.PAGE_SIZE - 1) & self.PAGE_MASK & m
        if first != last:
            self.hw_tlb.flush(KERNEL_SPACE, first, last, walk=True)

    def tlb_flush(self, tlb: mmu_gather) -> None:
        """arch/x86/include/asm/tlb.h ``tlb_flush``."""
        start, end = 0, self.TLB_FLUSH_ALL
        stride_shift = tlb_get_unmap_shift(self, tlb)
        if not tlb.fullmm and not tlb.need_flush_all:
            start, end = tlb.start, tlb.end
        self.flush_tlb_mm_range(tlb.mm, start, end, stride_shift, tlb.freed_tables)

    # -- "does this change need a flush?" (asm/tlbflush.h) ----------------------------------

    def pte_flags_need_flush(self, oldflags: int, newflags: int, ignore_access: bool) -> bool:
        """Flags that need a flush when cleared (present, dirty, accessed) or when changed at
        all (RW, USER, caching, PSE, GLOBAL, PAT, PKEY, NX); software bits never do."""
        flush_on_clear = _PAGE_DIRTY | _PAGE_PRESENT | _PAGE_ACCESSED
        software_flags = (_PAGE_SOFTW1 | _PAGE_SOFTW2 | _PAGE_SOFTW3 | _PAGE_SOFTW4
                          | _PAGE_SAVED_DIRTY)
        flush_on_change = (_PAGE_RW | _PAGE_USER | _PAGE_PWT | _PAGE_PCD | _PAGE_PSE
                           | _PAGE_GLOBAL | _PAGE_PAT | _PAGE_PAT_LARGE | _PAGE_PKEY_MASK
                           | _PAGE_NX)
        diff = (oldflags ^ newflags) & ~software_flags
        if ignore_access:
            diff &= ~_PAGE_ACCESSED
        if diff & oldflags & flush_on_clear:
            return True
        if diff & flush_on_change:
            return True
        # CONFIG_DEBUG_VM: VM_WARN_ON_ONCE on flags "left behind", and flush.
        return bool(diff & ~(flush_on_clear | software_flags | flush_on_change))

    def pte_needs_flush(self, oldpte: pte_t, newpte: pte_t) -> bool:
        """"Checks whether permissions were demoted and require a flush" (user ptes):
        never from a non-present pte; always on a pfn change; else by the flags, ignoring
        the accessed bit."""
        if not self.pte_flags(oldpte) & _PAGE_PRESENT:
            return False
        if self.pte_pfn(oldpte) != self.pte_pfn(newpte):
            return True
        return self.pte_flags_need_flush(self.pte_flags(oldpte), self.pte_flags(newpte), True)

    def huge_pmd_needs_flush(self, oldpmd: pmd_t, newpmd: pmd_t) -> bool:
        """The same for a user huge pmd, *not* ignoring the accessed bit."""
        if not self.pmd_flags(oldpmd) & _PAGE_PRESENT:
            return False
        if self.pmd_pfn(oldpmd) != self.pmd_pfn(newpmd):
            return True
        return self.pte_flags_need_flush(self.pmd_flags(oldpmd), self.pmd_flags(newpmd), False)
