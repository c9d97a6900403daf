"""s390x TLB flushing: ``arch/s390/include/asm/tlbflush.h`` and the IPTE/IDTE helpers of
``arch/s390/mm/pgtable.c`` (``ptep_flush_direct``, ``ptep_flush_lazy``), Linux v6.18 (read
from stored copies of those files), over the emulated TLB of :mod:`arches.tlb`.

Kernel facts relied on (the surprising ones first):

- "On s390 the tlb needs to get flushed with the modification of the pte if the pte is
  active" (pgtable.h): ``ptep_get_and_clear`` and friends invalidate as they clear, so
  ``flush_tlb_page`` is empty (``do { } while (0)``) and ``flush_tlb_range`` /
  ``flush_tlb_mm`` only finish what a *lazy* exchange left: ``__tlb_flush_mm_lazy`` purges
  the mm's ASCE (IDTE) when ``mm->context.flush_mm`` is set, else nothing;
- ``ptep_flush_direct``: IPTE -- the hardware sets the invalid bit and purges the TLB entries
  formed through the PTE in one operation (PoP "INVALIDATE PAGE TABLE ENTRY");
- ``ptep_flush_lazy``: when the mm is attached to this CPU only (always, on the emulated
  single CPU: ``cpu_attach_mask`` = this CPU), a plain store of the invalid bit and
  ``flush_mm = 1``; the purge waits for the next ``__tlb_flush_mm_lazy``;
- ``flush_tlb_kernel_range`` is ``__tlb_flush_kernel``: IDTE of ``init_mm.context.asce``
  (every kernel translation); ``flush_tlb_all`` is empty (``do { } while (0)``; emulated
  as a CSP purge of everything: a documented departure, see :meth:`flush_tlb_all`);
- ``flush_tlb_fix_spurious_fault`` is empty without the RDP facility (asm/pgtable.h);
- the CPU's roots are ASCEs, not table addresses (:mod:`arches.s390.registers`): CR1/CR7 =
  ``mm->context.asce``, CR13 = ``init_mm.context.asce`` (``S390_lowcore.kernel_asce``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.s390.bits import _PAGE_INVALID
from arches.tlb import KERNEL_SPACE
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.s390.ptdump import S390Ptdump
from legacy.types import PtePtr, pte_t

if TYPE_CHECKING:
    from legacy.mm.mmu_gather import mmu_gather


class S390Tlbflush(S390Ptdump):
    """The s390x flush API (a base of ``S390Kernel``, overriding :mod:`legacy.tlbflush`)."""

    FLUSH_PENDING_PER_MM = True
    """The flush owed for a lazily cleared entry is remembered per mm
    (``mm->context.flush_mm``), not per range: ``flush_tlb_range``, ``flush_tlb_mm`` and
    the gather's ``tlb_flush`` all purge the whole space when one is pending
    (``__tlb_flush_mm_lazy``), whatever range they are given (see
    :attr:`legacy.tlbflush.TlbflushGeneric.FLUSH_PENDING_PER_MM`)."""

    FLUSH_TLB_PAGE_EMPTY = True
    """asm/tlbflush.h: ``#define flush_tlb_page(vma, addr) do { } while (0)``."""
    FLUSH_TLB_KERNEL_RANGE_ALL = True
    """asm/tlbflush.h: ``flush_tlb_kernel_range`` is ``__tlb_flush_kernel()``, IDTE of
    ``init_mm.context.asce``, whatever the range."""
    SPURIOUS_FAULT_FLUSH_EMPTY = True
    """asm/pgtable.h ``flush_tlb_fix_spurious_fault``: a local RDP only with the RDP
    facility (``cpu_has_rdp()``), which the emulated machine lacks."""
    HUGE_CLEAR_INVALIDATES = True
    """asm/pgtable.h: ``pmdp_huge_get_and_clear`` is ``pmdp_xchg_direct`` (IDTE);
    ``pudp_huge_get_and_clear`` likewise ``pudp_xchg_direct``."""
    PTE_CHANGE_GOES_THROUGH_INVALID = True
    """``ptep_xchg_lazy``/``ptep_xchg_direct`` (arch/s390/mm/pgtable.c): the invalid bit or
    IPTE first, then the new pte."""

    def asce_of(self, mm: mm_struct) -> int:
        """``mm->context.asce`` (set by ``init_new_context`` / ``crst_table_upgrade``)."""
        return mm.context["asce"]

    def mm_root(self, mm: mm_struct) -> int:
        """The root register holds an ASCE, not ``__pa(mm->pgd)``: ``mm->context.asce``
        (CR1/CR7 for a user mm, CR13 = ``kernel_asce`` for ``init_mm``)."""
        return self.asce_of(mm)

    def switch_mm(self, mm: mm_struct) -> None:
        """``switch_mm`` + ``finish_arch_post_lock_switch`` (asm/mmu_context.h): CR1 = CR7 =
        the mm's ASCE, CR13 = the kernel ASCE; the TLB learns every table they reach.  For
        ``init_mm`` only the kernel space is loaded (its user ASCE is
        ``s390_invalid_asce``)."""
        if "asce" not in mm.context:
            return  # init_mm before paging_init, or an mm before init_new_context
        kernel = self.mm_root(self.init_mm) if "asce" in self.init_mm.context else 0
        user = kernel if mm.is_init_mm else self.mm_root(mm)
        walks = self.config.walker.structure(self.config.make_registers(user, kernel))
        walks = tuple(w for w in walks if (w.register == "cr13") == mm.is_init_mm)
        self.hw_tlb.activate(mm.asid, walks)

    # -- arch/s390/mm/pgtable.c: invalidate as you clear -----------------------------------

    def _ptep_ipte(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        """IPTE: set the invalid bit and purge the page's TLB entries, one operation."""
        old = self.ptep_get(ptep)
        self._write(ptep, old | _PAGE_INVALID)
        addr &= self.PAGE_MASK
        self.hw_tlb.flush(self._space(mm), addr, (addr + self.PAGE_SIZE) & self.ULONG_MASK,
                          walk=False)

    def ptep_flush_direct(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        """arch/s390/mm/pgtable.c: an invalid pte needs nothing; else IPTE."""
        old = self.ptep_get(ptep)
        if old & _PAGE_INVALID:
            return old
        self._ptep_ipte(mm, addr, ptep)
        return old

    def ptep_flush_lazy(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        """arch/s390/mm/pgtable.c: attached to this CPU only, so store the invalid bit and
        set ``flush_mm``; the purge is left to ``__tlb_flush_mm_lazy``."""
        old = self.ptep_get(ptep)
        if old & _PAGE_INVALID:
            return old
        self._write(ptep, old | _PAGE_INVALID)
        mm.context["flush_mm"] = 1
        return old

    def ptep_xchg_direct(self, mm: mm_struct, addr: int, ptep: PtePtr, new: pte_t) -> pte_t:
        """arch/s390/mm/pgtable.c (no PGSTE): ``ptep_flush_direct`` then store ``new``."""
        old = self.ptep_flush_direct(mm, addr, ptep)
        self._write(ptep, new)
        return old

    def ptep_xchg_lazy(self, mm: mm_struct, addr: int, ptep: PtePtr, new: pte_t) -> pte_t:
        """arch/s390/mm/pgtable.c (no PGSTE): ``ptep_flush_lazy`` then store ``new``."""
        old = self.ptep_flush_lazy(mm, addr, ptep)
        self._write(ptep, new)
        return old

    # -- asm/tlbflush.h ----------------------------------------------------------------------

    def _tlb_flush_mm(self, mm: mm_struct) -> None:
        """``__tlb_flush_mm``: IDTE of ``mm->context.asce`` (every translation of the
        space, region/segment entries included)."""
        self.hw_tlb.flush_space(self._space(mm))

    def _tlb_flush_mm_lazy(self, mm: mm_struct) -> None:
        """``__tlb_flush_mm_lazy``: only when a lazy exchange asked for it."""
        if mm.context.get("flush_mm"):
            mm.context["flush_mm"] = 0
            self._tlb_flush_mm(mm)

    def flush_tlb_all(self) -> None:
        """A documented departure: asm/tlbflush.h defines ``flush_tlb_all()`` as
        ``do { } while (0)`` (s390 kernel code purges with IPTE/IDTE/CSP where it changes
        an entry); the emulation purges everything, as ``__tlb_flush_global`` (CSP) would,
        because emulator-side callers (``ptshim.pairs``' clean start, the unified API's
        kernel table flush) use it as "flush everything"."""
        self.hw_tlb.flush_all()

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        self._tlb_flush_mm_lazy(mm)

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        self._tlb_flush_mm_lazy(vma.vm_mm)

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        """``do { } while (0)``: the pte was invalidated (IPTE) as it was cleared."""

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """``__tlb_flush_kernel``: IDTE of the kernel ASCE, whatever the range."""
        self.hw_tlb.flush_space(KERNEL_SPACE)

    def tlb_flush(self, tlb: mmu_gather) -> None:
        """asm/tlb.h: ``__tlb_flush_mm_lazy(tlb->mm)``.  s390's ``pte_free_tlb`` /
        ``pmd_free_tlb`` / ``pud_free_tlb`` / ``p4d_free_tlb`` set ``flush_mm = 1`` as they
        set ``freed_tables``; the generic gather of :mod:`legacy.mm.mmu_gather` has no
        per-architecture ``p?d_free_tlb``, so that store is made here, from
        ``tlb->freed_tables``, before the lazy flush (same effect: the flush happens
        whenever a table was freed)."""
        if tlb.freed_tables:
            tlb.mm.context["flush_mm"] = 1
        self._tlb_flush_mm_lazy(tlb.mm)

    def flush_tlb_fix_spurious_fault(self, vma: vm_area_struct, address: int,
                                     ptep: PtePtr) -> None:
        """asm/pgtable.h: a local RDP only with the RDP facility, not emulated: nothing."""
