"""Generic huge-page helpers: the defaults an architecture gets unless it defines its own.

Follows ``include/linux/pgtable.h`` (THP defaults: ``pmdp_huge_get_and_clear{,_full}``,
``pudp_huge_get_and_clear{,_full}``, ``pmdp_set_wrprotect``, ``pudp_set_wrprotect``,
``has_transparent_{,pud_}hugepage``, the ``!CONFIG_HAVE_ARCH_HUGE_VMAP`` stubs),
``mm/pgtable-generic.c`` (``pgtable_trans_huge_deposit``/``withdraw``, ``pmdp_invalidate``),
``include/linux/vmalloc.h`` (``arch_vmap_*_supported``), ``include/linux/hugetlb.h``
(``arch_make_huge_pte``) and ``include/asm-generic/hugetlb.h`` (``huge_pte_*``,
``huge_ptep_*``).

Whether a helper is "compiled in" is the kernel's configuration, declared as capability
attributes on :class:`legacy.generic.GenericKernel` (``TRANSPARENT_HUGEPAGE``,
``HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD``, ``HAVE_ARCH_HUGE_VMAP``...): callers test those first,
as the kernel's ``#ifdef`` would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches import ArchConfig
from arches.errors import LockError
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.tlbflush import TlbflushGeneric
from legacy.types import P4dPtr, PmdPtr, PtePtr, PudPtr, pgprot_t, pgtable_t, pmd_t, pte_t, pud_t


class HugeMmGeneric(TlbflushGeneric):
    """THP, huge-vmap and hugetlb defaults of the generic headers."""

    # Configuration (values on GenericKernel, overridden by the architecture classes).
    TRANSPARENT_HUGEPAGE: bool
    HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD: bool
    HAVE_ARCH_HUGE_VMAP: bool

    if TYPE_CHECKING:
        # Architecture primitives (asm/pgtable.h) these defaults are written with.
        def pte_mkhuge(self, pte: pte_t) -> pte_t: ...
        def mk_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t: ...
        def pte_mkwrite_novma(self, pte: pte_t) -> pte_t: ...
        def pte_mkdirty(self, pte: pte_t) -> pte_t: ...
        def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t: ...
        def ptep_set_access_flags(
            self, vma: vm_area_struct, addr: int, ptep: PtePtr, entry: pte_t, dirty: int
        ) -> int: ...
        def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t: ...
        def pud_wrprotect(self, pud: pud_t) -> pud_t: ...
        def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t: ...

    def __init__(self, config: ArchConfig) -> None:
        self.pmd_huge_ptes: dict[object, list[pgtable_t]] = {}
        """``pmd_huge_pte(mm, pmd)`` lists: the PTE tables deposited for huge pmds, keyed by
        the PMD table's frame (split PMD locks) or by the mm.  First element = the head."""
        super().__init__(config)

    # -- include/linux/pgtable.h: has_transparent_hugepage ---------------------------------

    def has_transparent_hugepage(self) -> bool:
        """``IS_BUILTIN(CONFIG_TRANSPARENT_HUGEPAGE)`` unless the architecture says more."""
        return self.TRANSPARENT_HUGEPAGE

    def has_transparent_pud_hugepage(self) -> bool:
        """``IS_BUILTIN(CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD)``."""
        return self.HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD

    # -- include/linux/pgtable.h: huge get-and-clear / wrprotect defaults -------------------

    def pmdp_huge_get_and_clear(self, mm: mm_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """``!__HAVE_ARCH_PMDP_HUGE_GET_AND_CLEAR``."""
        pmd = self.pmdp_get(pmdp)
        self.pmd_clear(pmdp)
        return pmd

    def pudp_huge_get_and_clear(self, mm: mm_struct, address: int, pudp: PudPtr) -> pud_t:
        """``!__HAVE_ARCH_PUDP_HUGE_GET_AND_CLEAR``."""
        pud = self.pudp_get(pudp)
        self.pud_clear(pudp)
        return pud

    def pmdp_huge_get_and_clear_full(
        self, vma: vm_area_struct, address: int, pmdp: PmdPtr, full: int
    ) -> pmd_t:
        """``!__HAVE_ARCH_PMDP_HUGE_GET_AND_CLEAR_FULL`` (takes the vma since 2023)."""
        return self.pmdp_huge_get_and_clear(vma.vm_mm, address, pmdp)

    def pudp_huge_get_and_clear_full(
        self, vma: vm_area_struct, address: int, pudp: PudPtr, full: int
    ) -> pud_t:
        """``!__HAVE_ARCH_PUDP_HUGE_GET_AND_CLEAR_FULL`` (takes the vma since 2024)."""
        return self.pudp_huge_get_and_clear(vma.vm_mm, address, pudp)

    def pmdp_set_wrprotect(self, mm: mm_struct, address: int, pmdp: PmdPtr) -> None:
        """``!__HAVE_ARCH_PMDP_SET_WRPROTECT``."""
        old_pmd = self.pmdp_get(pmdp)
        self.set_pmd_at(mm, address, pmdp, self.pmd_wrprotect(old_pmd))

    def pudp_set_wrprotect(self, mm: mm_struct, address: int, pudp: PudPtr) -> None:
        """``!__HAVE_ARCH_PUDP_SET_WRPROTECT`` (``CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD``)."""
        old_pud = self.pudp_get(pudp)
        self.set_pud_at(mm, address, pudp, self.pud_wrprotect(old_pud))

    # -- mm/pgtable-generic.c: deposit / withdraw ------------------------------------------

    def _pmd_huge_pte_key(self, mm: mm_struct, pmdp: PmdPtr) -> object:
        """``pmd_huge_pte(mm, pmd)`` lives in the PMD table's ptdesc with split PMD locks,
        else in ``mm->pmd_huge_pte`` (include/linux/mm.h)."""
        if self.USE_SPLIT_PMD_PTLOCKS and not self.PAGETABLE_PMD_FOLDED:
            return self.frame_of(pmdp.pa)
        return mm

    def pmd_huge_pte(self, mm: mm_struct, pmdp: PmdPtr) -> pgtable_t | None:
        ring = self.pmd_huge_ptes.get(self._pmd_huge_pte_key(mm, pmdp))
        return ring[0] if ring else None

    def _assert_pmd_locked(self, mm: mm_struct, pmdp: PmdPtr, what: str) -> None:
        ptl = self.pmd_lockptr(mm, pmdp)
        if not ptl.held:
            raise LockError(f"{what}: assert_spin_locked({ptl.name}) failed")

    def pgtable_trans_huge_deposit(self, mm: mm_struct, pmdp: PmdPtr, pgtable: pgtable_t) -> None:
        """Queue ``pgtable`` for a later split of the huge pmd (under the pmd lock): the new
        table becomes the head, linked right after the old head ("FIFO")."""
        self._assert_pmd_locked(mm, pmdp, "pgtable_trans_huge_deposit")
        key = self._pmd_huge_pte_key(mm, pmdp)
        ring = self.pmd_huge_ptes.get(key)
        if not ring:  # INIT_LIST_HEAD(&pgtable->lru)
            self.pmd_huge_ptes[key] = [pgtable]
        else:  # list_add(&pgtable->lru, &pmd_huge_pte(mm, pmdp)->lru)
            self.pmd_huge_ptes[key] = [pgtable, *ring[1:], ring[0]]

    def pgtable_trans_huge_withdraw(self, mm: mm_struct, pmdp: PmdPtr) -> pgtable_t:
        """Take back the head; the next table on its list becomes the head."""
        self._assert_pmd_locked(mm, pmdp, "pgtable_trans_huge_withdraw")
        key = self._pmd_huge_pte_key(mm, pmdp)
        ring = self.pmd_huge_ptes.get(key)
        if not ring:
            raise AssertionError("pgtable_trans_huge_withdraw: nothing deposited (NULL deref)")
        pgtable = ring[0]
        if len(ring) > 1:  # list_first_entry_or_null(...) then list_del(&pgtable->lru)
            self.pmd_huge_ptes[key] = ring[1:]
        else:
            del self.pmd_huge_ptes[key]
        return pgtable

    # -- mm/pgtable-generic.c: invalidate --------------------------------------------------

    def pmdp_establish(
        self, vma: vm_area_struct, address: int, pmdp: PmdPtr, pmd: pmd_t
    ) -> pmd_t:
        """``generic_pmdp_establish`` (include/asm-generic/pgtable.h era): swap in ``pmd``."""
        old_pmd = self.pmdp_get(pmdp)
        self.set_pmd_at(vma.vm_mm, address, pmdp, pmd)
        return old_pmd

    def pmdp_invalidate(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """mm/pgtable-generic.c: ``VM_WARN_ON_ONCE(!pmd_present(*pmdp))``; establish
        ``pmd_mkinvalid(*pmdp)``, then ``flush_pmd_tlb_range`` of the huge page."""
        if not self.pmd_present(self.pmdp_get(pmdp)):
            raise AssertionError("pmdp_invalidate: VM_WARN_ON_ONCE(!pmd_present(*pmdp))")
        old = self.pmdp_establish(vma, address, pmdp, self.pmd_mkinvalid(self.pmdp_get(pmdp)))
        self.flush_pmd_tlb_range(vma, address, (address + self.PMD_SIZE) & self.ULONG_MASK)
        return old

    def pmdp_invalidate_ad(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """``!__HAVE_ARCH_PMDP_INVALIDATE_AD``: the same as ``pmdp_invalidate``."""
        return self.pmdp_invalidate(vma, address, pmdp)

    # -- include/linux/vmalloc.h / pgtable.h: huge vmap ------------------------------------

    def arch_vmap_p4d_supported(self, prot: pgprot_t) -> bool:
        return False

    def arch_vmap_pud_supported(self, prot: pgprot_t) -> bool:
        return False

    def arch_vmap_pmd_supported(self, prot: pgprot_t) -> bool:
        return False

    def p4d_set_huge(self, p4d: P4dPtr, addr: int, prot: pgprot_t) -> int:
        """``!CONFIG_HAVE_ARCH_HUGE_VMAP`` stubs (and x86's "No 512GB pages yet")."""
        return 0

    def p4d_clear_huge(self, p4d: P4dPtr) -> None:
        pass

    def pud_set_huge(self, pud: PudPtr, addr: int, prot: pgprot_t) -> int:
        return 0

    def pud_clear_huge(self, pud: PudPtr) -> int:
        return 0

    def pmd_set_huge(self, pmd: PmdPtr, addr: int, prot: pgprot_t) -> int:
        return 0

    def pmd_clear_huge(self, pmd: PmdPtr) -> int:
        return 0

    # -- include/linux/hugetlb.h, include/asm-generic/hugetlb.h ----------------------------

    def arch_make_huge_pte(self, entry: pte_t, shift: int, flags: int) -> pte_t:
        """``#ifndef arch_make_huge_pte``: ``pte_mkhuge(entry)``."""
        return self.pte_mkhuge(entry)

    def mk_huge_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t:
        """``mk_huge_pte(page, pgprot)`` = ``mk_pte(page, pgprot)`` (removed in 6.14, when
        callers moved to ``arch_make_huge_pte``); pages are named by pfn here."""
        return self.mk_pte(pfn, pgprot)

    def huge_pte_write(self, pte: pte_t) -> bool:
        return self.pte_write(pte)

    def huge_pte_dirty(self, pte: pte_t) -> bool:
        return self.pte_dirty(pte)

    def huge_pte_mkwrite(self, pte: pte_t) -> pte_t:
        """``pte_mkwrite_novma`` since the shadow-stack rework (6.6)."""
        return self.pte_mkwrite_novma(pte)

    def huge_pte_mkdirty(self, pte: pte_t) -> pte_t:
        return self.pte_mkdirty(pte)

    def huge_pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        return self.pte_modify(pte, newprot)

    def huge_pte_wrprotect(self, pte: pte_t) -> pte_t:
        return self.pte_wrprotect(pte)

    def huge_pte_none(self, pte: pte_t) -> bool:
        return self.pte_none(pte)

    def huge_pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr, sz: int) -> None:
        self.pte_clear(mm, addr, ptep)

    def huge_ptep_get(self, mm: mm_struct, addr: int, ptep: PtePtr) -> pte_t:
        return self.ptep_get(ptep)

    def huge_ptep_get_and_clear(self, mm: mm_struct, addr: int, ptep: PtePtr, sz: int) -> pte_t:
        return self.ptep_get_and_clear(mm, addr, ptep)

    def huge_ptep_set_wrprotect(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        self.ptep_set_wrprotect(mm, addr, ptep)

    def huge_ptep_set_access_flags(
        self, vma: vm_area_struct, addr: int, ptep: PtePtr, pte: pte_t, dirty: int
    ) -> int:
        return self.ptep_set_access_flags(vma, addr, ptep, pte, dirty)
