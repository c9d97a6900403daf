"""s390x transparent huge pages: 1 MiB segment-table leaves (EDAT-1), a base of
:class:`~legacy.s390.pgtable.S390Kernel`.

Follows ``arch/s390/include/asm/pgtable.h`` (``__SEGMENT_*`` protections,
``massage_pgprot_pmd``, ``mk_pmd_phys``, the ``pmd_mk*`` modifiers, ``pmd_modify``, the
``pmdp_*`` helpers, ``has_transparent_hugepage``) and ``arch/s390/mm/pgtable.c``
(``pmdp_flush_direct`` = IDTE, ``pmdp_flush_lazy``, ``pmdp_xchg_*``,
``pgtable_trans_huge_deposit``/``withdraw``), Linux v6.18 as read from stored copies.

What is surprising: a segment leaf is not a pte -- other bit positions (``_SEGMENT_ENTRY_
READ`` 0x4000 ... against ``_PAGE_READ`` 0x10), ``pfn_pmd`` translates a *pte* pgprot into
segment format (``massage_pgprot_pmd``) and sets no large bit (``pmd_mkhuge`` does, with
young and protect); a clean huge page is DAT-protected, an old one invalid.  Clearing
purges the TLB at once (IDTE), except the lazy variants.  The deposit list of PTE tables is
a ``list_head`` written over ptes 0 and 1 of the deposited tables themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.s390.bits import (
    _PAGE_DIRTY,
    _PAGE_INVALID,
    _PAGE_NOEXEC,
    _PAGE_PRESENT,
    _PAGE_PROTECT,
    _PAGE_READ,
    _PAGE_SOFT_DIRTY,
    _PAGE_WRITE,
    _PAGE_YOUNG,
    _REGION_ENTRY_INVALID,
    _SEGMENT_ENTRY_DIRTY,
    _SEGMENT_ENTRY_EMPTY,
    _SEGMENT_ENTRY_INVALID,
    _SEGMENT_ENTRY_LARGE,
    _SEGMENT_ENTRY_NOEXEC,
    _SEGMENT_ENTRY_ORIGIN_LARGE,
    _SEGMENT_ENTRY_PRESENT,
    _SEGMENT_ENTRY_PROTECT,
    _SEGMENT_ENTRY_READ,
    _SEGMENT_ENTRY_SOFT_DIRTY,
    _SEGMENT_ENTRY_WRITE,
    _SEGMENT_ENTRY_YOUNG,
)
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.s390.tlbflush import S390Tlbflush
from legacy.types import PmdPtr, PtePtr, PudPtr, pgprot_t, pgtable_t, pmd_t, pud_t

MASK64 = (1 << 64) - 1

# pgtable.h ``__SEGMENT_*``: segment entry (large page) protections.
SEG_NONE = _SEGMENT_ENTRY_PRESENT | _SEGMENT_ENTRY_INVALID | _SEGMENT_ENTRY_PROTECT
SEG_RO = (_SEGMENT_ENTRY_PRESENT | _SEGMENT_ENTRY_PROTECT | _SEGMENT_ENTRY_READ
          | _SEGMENT_ENTRY_NOEXEC)
SEG_RX = _SEGMENT_ENTRY_PRESENT | _SEGMENT_ENTRY_PROTECT | _SEGMENT_ENTRY_READ
SEG_RW = (_SEGMENT_ENTRY_PRESENT | _SEGMENT_ENTRY_READ | _SEGMENT_ENTRY_WRITE
          | _SEGMENT_ENTRY_NOEXEC)
SEG_RWX = _SEGMENT_ENTRY_PRESENT | _SEGMENT_ENTRY_READ | _SEGMENT_ENTRY_WRITE


SEG_TO_PAGE = (
    (_SEGMENT_ENTRY_PRESENT, _PAGE_PRESENT), (_SEGMENT_ENTRY_READ, _PAGE_READ),
    (_SEGMENT_ENTRY_WRITE, _PAGE_WRITE), (_SEGMENT_ENTRY_NOEXEC, _PAGE_NOEXEC),
    (_SEGMENT_ENTRY_PROTECT, _PAGE_PROTECT), (_SEGMENT_ENTRY_INVALID, _PAGE_INVALID),
    (_SEGMENT_ENTRY_YOUNG, _PAGE_YOUNG), (_SEGMENT_ENTRY_DIRTY, _PAGE_DIRTY),
    (_SEGMENT_ENTRY_SOFT_DIRTY, _PAGE_SOFT_DIRTY),
)
"""Segment-leaf bit -> pte bit of the same meaning (pgtable.h ``_SEGMENT_ENTRY_*``,
``_PAGE_*``), for the :meth:`S390Thp.pmd_pgprot` extension."""


class S390Thp(S390Tlbflush):
    """pgtable.h / pgtable.c segment-leaf helpers."""

    if TYPE_CHECKING:
        # Defined by S390Kernel (asm/pgtable.h).
        PAGE_RO: pgprot_t
        PAGE_RX: pgprot_t
        PAGE_RW: pgprot_t

        def pmd_leaf(self, pmd: pmd_t) -> bool: ...
        def pmd_present(self, pmd: pmd_t) -> bool: ...
        def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr: ...

    # -- segment-table leaves: THP with EDAT-1 (pgtable.h, pgtable.c) -------------------------

    def has_transparent_hugepage(self) -> bool:
        """pgtable.h: ``cpu_has_edat1()`` (the emulated machine has EDAT-1)."""
        return True

    def pmd_write(self, pmd: pmd_t) -> bool:
        return pmd & _SEGMENT_ENTRY_WRITE != 0

    def pmd_dirty(self, pmd: pmd_t) -> bool:
        return pmd & _SEGMENT_ENTRY_DIRTY != 0

    def pmd_young(self, pmd: pmd_t) -> bool:
        return pmd & _SEGMENT_ENTRY_YOUNG != 0

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        return self.pmd_leaf(pmd)

    def pmd_pfn(self, pmd: pmd_t) -> int:
        """``__pa(pmd_deref(pmd)) >> PAGE_SHIFT``."""
        return self.pmd_page_vaddr(pmd).pa >> self.PAGE_SHIFT

    def massage_pgprot_pmd(self, pgprot: pgprot_t) -> int:
        """PAGE_NONE/RO/RX/RW/RWX in segment-entry format (anything else: RWX)."""
        return {self.PAGE_NONE: SEG_NONE, self.PAGE_RO: SEG_RO, self.PAGE_RX: SEG_RX,
                self.PAGE_RW: SEG_RW}.get(pgprot, SEG_RWX)

    def pmd_pgprot(self, pmd: pmd_t) -> pgprot_t:
        """ptshim extension (s390 has no ``pmd_pgprot``): the leaf's protection in pte
        format, each segment bit moved to the pte bit of the same meaning
        (:data:`SEG_TO_PAGE`), so that ``pfn_pte(pfn, pmd_pgprot(pmd))`` gives the ptes a
        split keeps (the emulation's split, and the unified API's, build them so).  The
        kernel's ``__split_huge_pmd_locked`` builds them from ``vma->vm_page_prot`` plus the
        pmd's write/young/dirty/soft-dirty bits: the same bits while the vma's protection
        and the leaf's agree; but ``pfn_pte`` (``mk_pte_phys``) makes every pte young, where
        the kernel keeps an old pmd's ptes old (``pte_mkold``)."""
        return pgprot_t(sum(page for seg, page in SEG_TO_PAGE if pmd & seg))

    def pgprot_large_2_4k(self, pgprot: pgprot_t) -> pgprot_t:
        """ptshim extension (x86's name): :meth:`pmd_pgprot` is already in pte format."""
        return pgprot

    def pfn_pmd(self, pfn: int, pgprot: pgprot_t) -> pmd_t:
        """``mk_pmd_phys(pfn << PAGE_SHIFT, pgprot)``: no ``_SEGMENT_ENTRY_LARGE`` yet --
        ``pmd_mkhuge`` adds it."""
        return pmd_t(((pfn << self.PAGE_SHIFT) + self.massage_pgprot_pmd(pgprot)) & MASK64)

    def pmd_mkhuge(self, pmd: pmd_t) -> pmd_t:
        """LARGE, YOUNG and PROTECT (clean until ``pmd_mkdirty``)."""
        return pmd_t(pmd | _SEGMENT_ENTRY_LARGE | _SEGMENT_ENTRY_YOUNG | _SEGMENT_ENTRY_PROTECT)

    def pmd_modify(self, pmd: pmd_t, newprot: pgprot_t) -> pmd_t:
        mask = (_SEGMENT_ENTRY_ORIGIN_LARGE | _SEGMENT_ENTRY_DIRTY | _SEGMENT_ENTRY_YOUNG
                | _SEGMENT_ENTRY_LARGE | _SEGMENT_ENTRY_SOFT_DIRTY)
        v = pmd & mask | self.massage_pgprot_pmd(newprot)
        if not v & _SEGMENT_ENTRY_DIRTY:
            v |= _SEGMENT_ENTRY_PROTECT
        if not v & _SEGMENT_ENTRY_YOUNG:
            v |= _SEGMENT_ENTRY_INVALID
        return pmd_t(v)

    def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~_SEGMENT_ENTRY_WRITE | _SEGMENT_ENTRY_PROTECT)

    def pmd_mkwrite_novma(self, pmd: pmd_t) -> pmd_t:
        v = pmd | _SEGMENT_ENTRY_WRITE
        if v & _SEGMENT_ENTRY_DIRTY:
            v &= ~_SEGMENT_ENTRY_PROTECT
        return pmd_t(v)

    def pmd_mkwrite(self, pmd: pmd_t, vma: vm_area_struct | None = None) -> pmd_t:
        return self.pmd_mkwrite_novma(pmd)

    def pmd_mkclean(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~_SEGMENT_ENTRY_DIRTY | _SEGMENT_ENTRY_PROTECT)

    def pmd_mkdirty(self, pmd: pmd_t) -> pmd_t:
        v = pmd | _SEGMENT_ENTRY_DIRTY | _SEGMENT_ENTRY_SOFT_DIRTY
        if v & _SEGMENT_ENTRY_WRITE:
            v &= ~_SEGMENT_ENTRY_PROTECT
        return pmd_t(v)

    def pmd_mkyoung(self, pmd: pmd_t) -> pmd_t:
        v = pmd | _SEGMENT_ENTRY_YOUNG
        if v & _SEGMENT_ENTRY_READ:
            v &= ~_SEGMENT_ENTRY_INVALID
        return pmd_t(v)

    def pmd_mkold(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~_SEGMENT_ENTRY_YOUNG | _SEGMENT_ENTRY_INVALID)

    def pmd_soft_dirty(self, pmd: pmd_t) -> bool:
        return pmd & _SEGMENT_ENTRY_SOFT_DIRTY != 0

    def pmd_mksoft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | _SEGMENT_ENTRY_SOFT_DIRTY)

    def pmd_clear_soft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~_SEGMENT_ENTRY_SOFT_DIRTY)

    def pmd_protnone(self, pmd: pmd_t) -> bool:
        """CONFIG_NUMA_BALANCING: a leaf without READ."""
        return self.pmd_leaf(pmd) and not pmd & _SEGMENT_ENTRY_READ

    def set_pmd_at(self, mm: mm_struct, addr: int, pmdp: PmdPtr, pmd: pmd_t) -> None:
        self.set_pmd(pmdp, pmd)

    # pgtable.c: IDTE (direct) or a plain invalid-bit store and flush_mm (lazy)

    def pmdp_flush_direct(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        """IDTE of the segment-table entry: invalid bit set and every TLB entry formed
        through it purged (the segment's pages and the cached segment entry itself)."""
        old = self.pmdp_get(pmdp)
        if old & _SEGMENT_ENTRY_INVALID:
            return old
        self._write(pmdp, old | _SEGMENT_ENTRY_INVALID)
        start = addr & self.PMD_MASK
        self.hw_tlb.flush(self._space(mm), start, (start + self.PMD_SIZE) & self.ULONG_MASK,
                          walk=True)
        return old

    def pmdp_flush_lazy(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> pmd_t:
        old = self.pmdp_get(pmdp)
        if old & _SEGMENT_ENTRY_INVALID:
            return old
        self.set_pmd(pmdp, pmd_t(old | _SEGMENT_ENTRY_INVALID))
        mm.context["flush_mm"] = 1
        return old

    def pmdp_xchg_direct(self, mm: mm_struct, addr: int, pmdp: PmdPtr, new: pmd_t) -> pmd_t:
        old = self.pmdp_flush_direct(mm, addr, pmdp)
        self.set_pmd(pmdp, new)
        return old

    def pmdp_xchg_lazy(self, mm: mm_struct, addr: int, pmdp: PmdPtr, new: pmd_t) -> pmd_t:
        old = self.pmdp_flush_lazy(mm, addr, pmdp)
        self.set_pmd(pmdp, new)
        return old

    def pmdp_huge_get_and_clear(self, mm: mm_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        return self.pmdp_xchg_direct(mm, address, pmdp, pmd_t(_SEGMENT_ENTRY_EMPTY))

    def pmdp_huge_get_and_clear_full(self, vma: vm_area_struct, address: int, pmdp: PmdPtr,
                                     full: int) -> pmd_t:
        if full:
            pmd = self.pmdp_get(pmdp)
            self.set_pmd(pmdp, pmd_t(_SEGMENT_ENTRY_EMPTY))
            return pmd
        return self.pmdp_xchg_lazy(vma.vm_mm, address, pmdp, pmd_t(_SEGMENT_ENTRY_EMPTY))

    def pmdp_huge_clear_flush(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """``pmdp_huge_get_and_clear``: IDTE already purged the TLB."""
        return self.pmdp_huge_get_and_clear(vma.vm_mm, address, pmdp)

    def pmdp_collapse_flush(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        return self.pmdp_huge_get_and_clear(vma.vm_mm, address, pmdp)

    def pmdp_invalidate(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """``__HAVE_ARCH_PMDP_INVALIDATE``: the entry plus the invalid bit, by IDTE."""
        if not self.pmd_present(self.pmdp_get(pmdp)):
            raise AssertionError("pmdp_invalidate: VM_WARN_ON_ONCE(!pmd_present(*pmdp))")
        pmd = pmd_t(self.pmdp_get(pmdp) | _SEGMENT_ENTRY_INVALID)
        return self.pmdp_xchg_direct(vma.vm_mm, address, pmdp, pmd)

    def pmdp_set_wrprotect(self, mm: mm_struct, address: int, pmdp: PmdPtr) -> None:
        pmd = self.pmdp_get(pmdp)
        if self.pmd_write(pmd):
            self.pmdp_xchg_lazy(mm, address, pmdp, self.pmd_wrprotect(pmd))

    def pmdp_set_access_flags(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr,
                              entry: pmd_t, dirty: int) -> int:
        if addr & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_set_access_flags: VM_BUG_ON(addr & ~HPAGE_MASK)")
        entry = self.pmd_mkyoung(entry)
        if dirty:
            entry = self.pmd_mkdirty(entry)
        if self.pmdp_get(pmdp) == entry:
            return 0
        self.pmdp_xchg_direct(vma.vm_mm, addr, pmdp, entry)
        return 1

    def pmdp_test_and_clear_young(self, vma: vm_area_struct, addr: int, pmdp: PmdPtr) -> bool:
        pmd = self.pmdp_xchg_direct(vma.vm_mm, addr, pmdp, self.pmd_mkold(self.pmdp_get(pmdp)))
        return self.pmd_young(pmd)

    # pgtable.c: region-third entries (EDAT-2 leaves of the kernel mapping)

    def pudp_flush_direct(self, mm: mm_struct, addr: int, pudp: PudPtr) -> pud_t:
        """IDTE of the region-third entry (``__pudp_idte``): invalid bit set, every TLB
        entry formed through it purged."""
        old = self.pudp_get(pudp)
        if old & _REGION_ENTRY_INVALID:
            return old
        self._write(pudp, old | _REGION_ENTRY_INVALID)
        start = addr & self.PUD_MASK
        self.hw_tlb.flush(self._space(mm), start, (start + self.PUD_SIZE) & self.ULONG_MASK,
                          walk=True)
        return old

    def pudp_xchg_direct(self, mm: mm_struct, addr: int, pudp: PudPtr, new: pud_t) -> pud_t:
        old = self.pudp_flush_direct(mm, addr, pudp)
        self.set_pud(pudp, new)
        return old

    # pgtable.c: the deposit list lives in the deposited tables' first two entries

    def _list_set(self, node: int, next_: int, prev: int) -> None:
        """``struct list_head`` {next, prev} over ptes 0 and 1 of a deposited table (a
        table no root reaches: plain stores)."""
        self.mem.write(node, 8, next_)
        self.mem.write(node + 8, 8, prev)

    def pgtable_trans_huge_deposit(self, mm: mm_struct, pmdp: PmdPtr, pgtable: pgtable_t) -> None:
        """FIFO: ``INIT_LIST_HEAD`` for the first, else ``list_add`` after the current head;
        the new table becomes ``pmd_huge_pte``.  The list pointers are written into the
        table, as the kernel does."""
        head = self.pmd_huge_pte(mm, pmdp)
        super().pgtable_trans_huge_deposit(mm, pmdp, pgtable)
        lh = pgtable.pa
        if head is None:
            self._list_set(lh, lh, lh)
        else:
            h = head.pa
            nxt = self.mem.read(h, 8)
            self._list_set(lh, nxt, h)  # new->next = head->next, new->prev = head
            self.mem.write(nxt + 8, 8, lh)  # head->next->prev = new
            self.mem.write(h, 8, lh)  # head->next = new

    def pgtable_trans_huge_withdraw(self, mm: mm_struct, pmdp: PmdPtr) -> pgtable_t:
        """The head; ``list_del`` unless it was alone; ptes 0 and 1 back to
        ``_PAGE_INVALID``."""
        pgtable = super().pgtable_trans_huge_withdraw(mm, pmdp)
        lh = pgtable.pa
        nxt, prev = self.mem.read(lh, 8), self.mem.read(lh + 8, 8)
        if nxt != lh:  # list_del(lh)
            self.mem.write(prev, 8, nxt)
            self.mem.write(nxt + 8, 8, prev)
            after = self.pmd_huge_pte(mm, pmdp)
            assert after is not None and after.pa == nxt, "deposit list and ring disagree"
        self.mem.write(lh, 8, _PAGE_INVALID)
        self.mem.write(lh + 8, 8, _PAGE_INVALID)
        return pgtable
