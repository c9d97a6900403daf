"""x86 huge-page helpers common to every paging mode: a base of :class:`X86Kernel`.

Follows ``arch/x86/include/asm/pgtable.h`` (``pmd_trans_huge``, ``pud_trans_huge``,
``has_transparent_hugepage``, ``pud_mkinvalid``, ``pmdp_establish``, ``pudp_establish``, the
pud soft-dirty and special bits), ``arch/x86/mm/pgtable.c`` (``pudp_set_access_flags``,
``pudp_test_and_clear_young``, ``*_clear_flush_young``, ``pmdp_invalidate_ad``,
``pudp_invalidate``).  ``arch_vmap_*_supported`` (asm/vmalloc.h) are in ``X86Kernel``.

The pud helpers exist whatever the paging mode; whether they are compiled in is
``HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD`` (``select ... if X86_64``), which callers test.
No ``_PAGE_DEVMAP`` (removed in 6.15), so ``pmd_trans_huge`` is a test of ``_PAGE_PSE``.
``_PAGE_SAVED_DIRTY`` (used on every CPU since v6.6) is handled by the wrprotect, mkwrite,
mkdirty and modify helpers of ``X86Kernel``; no shadow-stack vmas are emulated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.x86.bits import _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_PSE, _PAGE_SPECIAL
from legacy.generic import GenericKernel
from legacy.mm_types import vm_area_struct
from legacy.types import PmdPtr, PtePtr, PudPtr, pgprot_t, pmd_t, pud_t


class X86Thp(GenericKernel):
    """arch/x86 THP, huge-vmap and young/access-flag helpers (a base of ``X86Kernel``)."""

    ARCH_HAS_NONLEAF_PMD_YOUNG = True
    """``select ARCH_HAS_NONLEAF_PMD_YOUNG if PGTABLE_LEVELS > 2``."""

    if TYPE_CHECKING:
        # Defined by X86Kernel (asm/pgtable.h).
        _PAGE_SOFT_DIRTY: int

        def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t: ...
        def pud_flags(self, pud: pud_t) -> int: ...
        def pud_pfn(self, pud: pud_t) -> int: ...
        def pfn_pud(self, page_nr: int, pgprot: pgprot_t) -> pud_t: ...
        def pud_young(self, pud: pud_t) -> bool: ...
        def ptep_test_and_clear_young(self, vma: object, addr: int, ptep: PtePtr) -> int: ...
        def pmdp_test_and_clear_young(self, vma: object, addr: int, pmdp: PmdPtr) -> int: ...

    # -- asm/pgtable.h: CONFIG_TRANSPARENT_HUGEPAGE ----------------------------------------

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        """``(pmd_val(pmd) & (_PAGE_PSE|_PAGE_DEVMAP)) == _PAGE_PSE``; no devmap here."""
        return (pmd & _PAGE_PSE) == _PAGE_PSE

    def pud_trans_huge(self, pud: pud_t) -> bool:
        """``CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD``; without it the generic stub's 0
        (on i386 the folded pud *is* the pmd: a PSE pmd is no pud leaf)."""
        return self.HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD and (pud & _PAGE_PSE) == _PAGE_PSE

    def has_transparent_hugepage(self) -> bool:
        """``boot_cpu_has(X86_FEATURE_PSE)``: every emulated x86 CPU has PSE."""
        return True

    def pud_special(self, pud: pud_t) -> bool:
        """``CONFIG_ARCH_SUPPORTS_PUD_PFNMAP``."""
        return bool(self.pud_flags(pud) & _PAGE_SPECIAL)

    def pud_mkspecial(self, pud: pud_t) -> pud_t:
        return pud_t(pud | _PAGE_SPECIAL)

    # -- asm/pgtable.h: CONFIG_HAVE_ARCH_SOFT_DIRTY (pud part; pte/pmd are in X86Kernel) ---

    def pud_soft_dirty(self, pud: pud_t) -> bool:
        return bool(self.pud_flags(pud) & self._PAGE_SOFT_DIRTY)

    def pud_mksoft_dirty(self, pud: pud_t) -> pud_t:
        return pud_t(pud | self._PAGE_SOFT_DIRTY)

    def pud_clear_soft_dirty(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~self._PAGE_SOFT_DIRTY)

    def pud_mkinvalid(self, pud: pud_t) -> pud_t:
        """Clear P and PROTNONE, keep the rest: the PFN is inverted by ``pfn_pud``."""
        return self.pfn_pud(
            self.pud_pfn(pud),
            pgprot_t(self.pud_flags(pud) & ~(_PAGE_PRESENT | _PAGE_PROTNONE)),
        )

    # -- asm/pgtable.h: establish (an xchg of the entry) -----------------------------------

    def pmdp_establish(
        self, vma: vm_area_struct, address: int, pmdp: PmdPtr, pmd: pmd_t
    ) -> pmd_t:
        old = self.pmdp_get(pmdp)
        self.set_pmd(pmdp, pmd)
        return old

    def pudp_establish(
        self, vma: vm_area_struct, address: int, pudp: PudPtr, pud: pud_t
    ) -> pud_t:
        """``CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD``."""
        old = self.pudp_get(pudp)
        self.set_pud(pudp, pud)
        return old

    # -- arch/x86/mm/pgtable.c -------------------------------------------------------------

    def pudp_set_access_flags(
        self, vma: vm_area_struct, address: int, pudp: PudPtr, entry: pud_t, dirty: int
    ) -> int:
        """``VM_BUG_ON(address & ~HPAGE_PUD_MASK)``; write the more permissive entry."""
        changed = not self.pud_same(self.pudp_get(pudp), entry)
        if address & ~self.PUD_MASK & self.ULONG_MASK:
            raise AssertionError("pudp_set_access_flags: VM_BUG_ON(address & ~HPAGE_PUD_MASK)")
        if changed and dirty:
            self.set_pud(pudp, entry)
        return int(changed)

    def pudp_test_and_clear_young(self, vma: vm_area_struct, addr: int, pudp: PudPtr) -> int:
        """``test_and_clear_bit(_PAGE_BIT_ACCESSED, pudp)`` if young."""
        pud = self.pudp_get(pudp)
        if not self.pud_young(pud):
            return 0
        self.set_pud(pudp, pud_t(pud & ~_PAGE_ACCESSED))
        return 1

    def ptep_clear_flush_young(self, vma: vm_area_struct, address: int, ptep: PtePtr) -> int:
        """No TLB flush: "clearing the accessed bit without a TLB flush doesn't cause data
        corruption"."""
        return self.ptep_test_and_clear_young(vma, address, ptep)

    def pmdp_clear_flush_young(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> int:
        if address & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_clear_flush_young: VM_BUG_ON(address & ~HPAGE_PMD_MASK)")
        young = self.pmdp_test_and_clear_young(vma, address, pmdp)
        if young:
            self.flush_tlb_range(vma, address, (address + self.PMD_SIZE) & self.ULONG_MASK)
        return young

    def pmdp_invalidate_ad(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """``__HAVE_ARCH_PMDP_INVALIDATE_AD``: no flush is necessary, "once an invalid PTE is
        established, the PTE's access and dirty bits cannot be updated"."""
        if not self.pmd_present(self.pmdp_get(pmdp)):
            raise AssertionError("pmdp_invalidate_ad: VM_WARN_ON_ONCE(!pmd_present(*pmdp))")
        return self.pmdp_establish(vma, address, pmdp, self.pmd_mkinvalid(self.pmdp_get(pmdp)))

    def pudp_invalidate(self, vma: vm_area_struct, address: int, pudp: PudPtr) -> pud_t:
        """``CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD``: invalidate, then
        ``flush_pud_tlb_range`` of the huge page."""
        if not self.pud_present(self.pudp_get(pudp)):
            raise AssertionError("pudp_invalidate: VM_WARN_ON_ONCE(!pud_present(*pudp))")
        old = self.pudp_establish(vma, address, pudp, self.pud_mkinvalid(self.pudp_get(pudp)))
        self.flush_pud_tlb_range(vma, address, (address + self.PUD_SIZE) & self.ULONG_MASK)
        return old
