"""x86 page-table helpers common to every paging mode.

Follows ``arch/x86/include/asm/pgtable.h``, ``pgtable_types.h``, ``pgtable-invert.h`` and
``pgalloc.h``.  Bit names come from :mod:`arches.x86.bits` (the hardware layout).  Paging
modes (``pgtable_64.h``, ``pgtable-3level.h``, ``pgtable-2level.h``) subclass this and set
the geometry, the physical mask and whether PROT_NONE entries have their PFN inverted.
"""

from __future__ import annotations

from arches.errors import BadInput, OutOfMemory
from arches.x86.bits import (
    _PAGE_ACCESSED,
    _PAGE_BIT_DIRTY,
    _PAGE_BIT_RW,
    _PAGE_BIT_SOFTW5,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PAT,
    _PAGE_PAT_LARGE,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_PWT,
    _PAGE_RW,
    _PAGE_SOFT_DIRTY,
    _PAGE_SPECIAL,
    _PAGE_UFFD_WP,
    _PAGE_USER,
)
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.types import P4dPtr, PmdPtr, PtePtr, PudPtr, pgprot_t, pmd_t, pte_t, pud_t
from legacy.x86.ptdump import X86Ptdump
from legacy.x86.thp import X86Thp
from legacy.x86.tlbflush import X86Tlbflush

PP_ = _PAGE_PRESENT
RW_ = _PAGE_RW
_USR = _PAGE_USER
A__ = _PAGE_ACCESSED
D__ = _PAGE_DIRTY
G__ = _PAGE_GLOBAL

_PAGE_TABLE = PP_ | RW_ | _USR | A__ | D__
_KERNPG_TABLE = PP_ | RW_ | A__ | D__
_PAGE_KNL_ERRATUM_MASK = _PAGE_DIRTY | _PAGE_ACCESSED


class X86Kernel(X86Tlbflush, X86Ptdump, X86Thp):
    """arch/x86/include/asm/pgtable.h: predicates, modifiers, pfn conversion, populate.
    Huge-page helpers common to every paging mode are in :mod:`legacy.x86.thp`, TLB flushing
    (asm/tlbflush.h, asm/tlb.h) in :mod:`legacy.x86.tlbflush`."""

    PHYSICAL_MASK_SHIFT: int
    """``__PHYSICAL_MASK_SHIFT`` of the paging mode."""
    HAS_NX = True
    """``_PAGE_NX`` is in ``__supported_pte_mask`` (64-bit entries with EFER.NXE)."""
    PFN_INVERT = True
    """L1TF PFN inversion of PROT_NONE entries (pgtable-invert.h; not on 2-level)."""
    KNL_ERRATUM_MASK = _PAGE_KNL_ERRATUM_MASK
    MEM_SOFT_DIRTY = True
    """``CONFIG_MEM_SOFT_DIRTY``: ``HAVE_ARCH_SOFT_DIRTY`` is selected by X86_64 only; without
    it ``_PAGE_SOFT_DIRTY`` is 0 (pgtable_types.h)."""
    HAVE_ARCH_USERFAULTFD_WP = True
    """``CONFIG_HAVE_ARCH_USERFAULTFD_WP`` (X86_64 only); without it ``_PAGE_UFFD_WP`` is 0."""
    # arch/x86/Kconfig: select HAVE_ARCH_TRANSPARENT_HUGEPAGE, ARCH_WANT_GENERAL_HUGETLB
    HAVE_ARCH_TRANSPARENT_HUGEPAGE = True
    TRANSPARENT_HUGEPAGE = True
    HUGETLB_PAGE = True
    ARCH_WANT_GENERAL_HUGETLB = True
    HAVE_MOVE_PMD = True  # arch/x86/Kconfig: select HAVE_MOVE_PMD
    HAVE_MOVE_PUD = True  # arch/x86/Kconfig: select HAVE_MOVE_PUD
    PAGE_BIT_SAVED_DIRTY = _PAGE_BIT_SOFTW5
    """pgtable_types.h: ``_PAGE_BIT_SAVED_DIRTY`` is ``_PAGE_BIT_SOFTW5`` (58) on X86_64 and
    ``_PAGE_BIT_SOFTW2`` (10, "shared with _PAGE_BIT_UFFD_WP which is not supported on 32
    bit") otherwise.  Used on every CPU since v6.6 ("x86/mm: Introduce _PAGE_SAVED_DIRTY")."""
    X86_FEATURE_USER_SHSTK = False
    """``cpu_feature_enabled(X86_FEATURE_USER_SHSTK)``: only ``pXX_mkdirty`` depend on it.
    Off by default (a CPU without CET shadow stacks; always off without X86_64, where
    ``CONFIG_X86_USER_SHADOW_STACK`` cannot be set)."""

    def derive_sizes(self) -> None:
        """Masks and protections: derived once the geometry, folded levels included, is final."""
        super().derive_sizes()
        m = (1 << (8 * self.SIZEOF_PTE)) - 1  # pteval_t: unsigned long on 2-level, else u64
        self._PAGE_SOFT_DIRTY = _PAGE_SOFT_DIRTY if self.MEM_SOFT_DIRTY else 0
        self._PAGE_UFFD_WP = _PAGE_UFFD_WP if self.HAVE_ARCH_USERFAULTFD_WP else 0
        self.PHYSICAL_MASK = (1 << self.PHYSICAL_MASK_SHIFT) - 1
        page_mask = ~((1 << self.PAGE_SHIFT) - 1) & m
        self.PTE_PFN_MASK = page_mask & self.PHYSICAL_MASK
        self.PTE_FLAGS_MASK = ~self.PTE_PFN_MASK & m
        self.PHYSICAL_PMD_PAGE_MASK = ~((1 << self.PMD_SHIFT) - 1) & self.PHYSICAL_MASK
        self.PHYSICAL_PUD_PAGE_MASK = ~((1 << self.PUD_SHIFT) - 1) & self.PHYSICAL_MASK
        self.supported_pte_mask = m if self.HAS_NX else m & ~_PAGE_NX
        # pgtable_types.h: _PAGE_SAVED_DIRTY and _PAGE_DIRTY_BITS
        self._PAGE_SAVED_DIRTY = 1 << self.PAGE_BIT_SAVED_DIRTY
        self._PAGE_DIRTY_BITS = _PAGE_DIRTY | self._PAGE_SAVED_DIRTY
        # _COMMON_PAGE_CHG_MASK (no _PAGE_DEVMAP since 6.15; _PAGE_CC is 0 without SME)
        common_chg_mask = (
            self.PTE_PFN_MASK | _PAGE_PCD | _PAGE_PWT | _PAGE_SPECIAL | _PAGE_ACCESSED
            | self._PAGE_DIRTY_BITS | self._PAGE_SOFT_DIRTY | self._PAGE_UFFD_WP
        )
        self._PAGE_CHG_MASK = common_chg_mask | _PAGE_PAT
        self._HPAGE_CHG_MASK = common_chg_mask | _PAGE_PSE | _PAGE_PAT_LARGE
        nx = _PAGE_NX if self.HAS_NX else 0
        p = pgprot_t
        self.PAGE_NONE = p(A__ | G__)
        self.PAGE_SHARED = p(PP_ | RW_ | _USR | A__ | nx)
        self.PAGE_SHARED_EXEC = p(PP_ | RW_ | _USR | A__)
        self.PAGE_COPY = p(PP_ | _USR | A__ | nx)
        self.PAGE_COPY_EXEC = p(PP_ | _USR | A__)
        self.PAGE_READONLY = p(PP_ | _USR | A__ | nx)
        self.PAGE_READONLY_EXEC = p(PP_ | _USR | A__)
        self.PAGE_KERNEL = p(PP_ | RW_ | A__ | nx | D__ | G__)
        self.PAGE_KERNEL_EXEC = p(PP_ | RW_ | A__ | D__ | G__)
        self.PAGE_KERNEL_RO = p(PP_ | A__ | nx | G__)
        self.PAGE_KERNEL_ROX = p(PP_ | A__ | G__)
        self.PAGE_KERNEL_LARGE = p(self.PAGE_KERNEL | _PAGE_PSE)
        # arch/x86/mm/pgprot.c
        self.protection_map = (
            self.PAGE_NONE, self.PAGE_READONLY, self.PAGE_COPY, self.PAGE_COPY,
            self.PAGE_READONLY_EXEC, self.PAGE_READONLY_EXEC,
            self.PAGE_COPY_EXEC, self.PAGE_COPY_EXEC,
            self.PAGE_NONE, self.PAGE_READONLY, self.PAGE_SHARED, self.PAGE_SHARED,
            self.PAGE_READONLY_EXEC, self.PAGE_READONLY_EXEC,
            self.PAGE_SHARED_EXEC, self.PAGE_SHARED_EXEC,
        )

    # -- pgtable-invert.h ----------------------------------------------------------------

    def _pte_needs_invert(self, val: int) -> bool:
        return self.PFN_INVERT and val != 0 and not (val & _PAGE_PRESENT)

    def protnone_mask(self, val: int) -> int:
        """All ones for a PROT_NONE (present-but-inaccessible) value: its PFN is inverted.
        (``__pte_needs_invert(val)`` spelled out: this runs for every pfn read or made.)"""
        if self.PFN_INVERT and val and not val & _PAGE_PRESENT:
            return (1 << 64) - 1
        return 0

    def flip_protnone_guard(self, oldval: int, val: int, mask: int) -> int:
        if self._pte_needs_invert(oldval) != self._pte_needs_invert(val):
            val = (val & ~mask) | (~val & mask)
        return val

    def check_pgprot(self, pgprot: pgprot_t) -> int:
        return pgprot & self.supported_pte_mask

    # -- SavedDirty (asm/pgtable.h): "Write protection operations can result in Dirty=1,
    # Write=0 PTEs ... a software bit is used: _PAGE_BIT_SAVED_DIRTY".  The kernel's
    # mksaveddirty_shift, clear_saveddirty_shift and pXX_{mk,clear_}saveddirty, kept private
    # here (underscore) as internal helpers of wrprotect/mkwrite/modify ------------------

    def _mksaveddirty_shift(self, v: int) -> int:
        """Dirty -> SavedDirty if the entry is Write=0."""
        cond = int(not v & (1 << _PAGE_BIT_RW))
        v |= ((v >> _PAGE_BIT_DIRTY) & cond) << self.PAGE_BIT_SAVED_DIRTY
        v &= ~(cond << _PAGE_BIT_DIRTY)
        return v

    def _clear_saveddirty_shift(self, v: int) -> int:
        """SavedDirty -> Dirty if the entry is Write=1."""
        cond = int(bool(v & (1 << _PAGE_BIT_RW)))
        v |= ((v >> self.PAGE_BIT_SAVED_DIRTY) & cond) << _PAGE_BIT_DIRTY
        v &= ~(cond << self.PAGE_BIT_SAVED_DIRTY)
        return v

    def _pte_mksaveddirty(self, pte: pte_t) -> pte_t:
        return pte_t(self._mksaveddirty_shift(pte))

    def _pte_clear_saveddirty(self, pte: pte_t) -> pte_t:
        return pte_t(self._clear_saveddirty_shift(pte))

    def _pmd_mksaveddirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self._mksaveddirty_shift(pmd))

    def _pmd_clear_saveddirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(self._clear_saveddirty_shift(pmd))

    def _pud_mksaveddirty(self, pud: pud_t) -> pud_t:
        return pud_t(self._mksaveddirty_shift(pud))

    def _pud_clear_saveddirty(self, pud: pud_t) -> pud_t:
        return pud_t(self._clear_saveddirty_shift(pud))

    # -- flags and pfn --------------------------------------------------------------------

    def pte_flags(self, pte: pte_t) -> int:
        return pte & self.PTE_FLAGS_MASK

    def pmd_pfn_mask(self, pmd: pmd_t) -> int:
        return self.PHYSICAL_PMD_PAGE_MASK if pmd & _PAGE_PSE else self.PTE_PFN_MASK

    def pmd_flags(self, pmd: pmd_t) -> int:
        return pmd & ~self.pmd_pfn_mask(pmd) & ((1 << 64) - 1)

    def pud_pfn_mask(self, pud: pud_t) -> int:
        return self.PHYSICAL_PUD_PAGE_MASK if pud & _PAGE_PSE else self.PTE_PFN_MASK

    def pud_flags(self, pud: pud_t) -> int:
        return pud & ~self.pud_pfn_mask(pud) & ((1 << 64) - 1)

    def pte_pfn(self, pte: pte_t) -> int:
        phys = pte ^ self.protnone_mask(pte)
        return (phys & self.PTE_PFN_MASK) >> self.PAGE_SHIFT

    def pmd_pfn(self, pmd: pmd_t) -> int:
        pfn = pmd ^ self.protnone_mask(pmd)
        return (pfn & self.pmd_pfn_mask(pmd)) >> self.PAGE_SHIFT

    def pud_pfn(self, pud: pud_t) -> int:
        pfn = pud ^ self.protnone_mask(pud)
        return (pfn & self.pud_pfn_mask(pud)) >> self.PAGE_SHIFT

    def _check_pfn(self, page_nr: int, what: str) -> None:
        # page_nr is an unsigned long: on PAE that, not the 52-bit mask, is the limit (44 bits)
        beyond = (page_nr << self.PAGE_SHIFT) & ~self.PHYSICAL_MASK
        if not 0 <= page_nr <= self.ULONG_MASK or beyond:
            raise BadInput(
                f"{what}: pfn {page_nr:#x} is beyond the physical mask "
                f"({self.PHYSICAL_MASK_SHIFT} bits) or does not fit an unsigned long"
            )

    def pfn_pte(self, page_nr: int, pgprot: pgprot_t) -> pte_t:
        self._check_pfn(page_nr, "pfn_pte")
        pfn = page_nr << self.PAGE_SHIFT
        pfn ^= self.protnone_mask(pgprot)
        pfn &= self.PTE_PFN_MASK
        return pte_t(pfn | self.check_pgprot(pgprot))

    def pte_advance_pfn(self, pte: pte_t, nr: int) -> pte_t:
        """arch/x86/include/asm/pgtable.h: a PROT_NONE pte holds its pfn inverted
        (L1TF, pgtable-invert.h), so its pfn field goes down by ``nr``."""
        if self._pte_needs_invert(pte):
            return pte_t(pte - (nr << self.PAGE_SHIFT))
        return pte_t(pte + (nr << self.PAGE_SHIFT))

    def pfn_pmd(self, page_nr: int, pgprot: pgprot_t) -> pmd_t:
        self._check_pfn(page_nr, "pfn_pmd")
        pfn = page_nr << self.PAGE_SHIFT
        pfn ^= self.protnone_mask(pgprot)
        pfn &= self.PHYSICAL_PMD_PAGE_MASK
        return pmd_t(pfn | self.check_pgprot(pgprot))

    def pfn_pud(self, page_nr: int, pgprot: pgprot_t) -> pud_t:
        self._check_pfn(page_nr, "pfn_pud")
        pfn = page_nr << self.PAGE_SHIFT
        pfn ^= self.protnone_mask(pgprot)
        pfn &= self.PHYSICAL_PUD_PAGE_MASK
        return pud_t(pfn | self.check_pgprot(pgprot))

    def mk_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t:
        """``mk_pte(page, prot)``: pages are named by pfn here."""
        return self.pfn_pte(pfn, pgprot)

    def pte_pgprot(self, pte: pte_t) -> pgprot_t:
        return pgprot_t(self.pte_flags(pte))

    def pmd_pgprot(self, pmd: pmd_t) -> pgprot_t:
        return pgprot_t(self.pmd_flags(pmd))

    def pud_pgprot(self, pud: pud_t) -> pgprot_t:
        return pgprot_t(self.pud_flags(pud))

    # -- pte predicates -------------------------------------------------------------------

    def pte_none(self, pte: pte_t) -> bool:
        return not (pte & ~self.KNL_ERRATUM_MASK)

    def pte_present(self, pte: pte_t) -> bool:
        return bool(pte & (_PAGE_PRESENT | _PAGE_PROTNONE))

    def pte_protnone(self, pte: pte_t) -> bool:
        return (pte & (_PAGE_PROTNONE | _PAGE_PRESENT)) == _PAGE_PROTNONE

    def pte_dirty(self, pte: pte_t) -> bool:
        return bool(self.pte_flags(pte) & self._PAGE_DIRTY_BITS)

    def pte_young(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_ACCESSED)

    def pte_write(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_RW)

    def pte_exec(self, pte: pte_t) -> bool:
        return not (pte & _PAGE_NX)

    def pte_huge(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_PSE)

    def pte_global(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_GLOBAL)

    def pte_special(self, pte: pte_t) -> bool:
        return bool(pte & _PAGE_SPECIAL)

    def pte_soft_dirty(self, pte: pte_t) -> bool:
        return bool(pte & self._PAGE_SOFT_DIRTY)

    # -- pte modifiers --------------------------------------------------------------------

    def pte_set_flags(self, pte: pte_t, set_: int) -> pte_t:
        return pte_t(pte | set_)

    def pte_clear_flags(self, pte: pte_t, clear: int) -> pte_t:
        return pte_t(pte & ~clear)

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, self._PAGE_DIRTY_BITS)

    def pte_mkold(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, _PAGE_ACCESSED)

    def pte_wrprotect(self, pte: pte_t) -> pte_t:
        """Clear Write, then "move the hardware dirty value to the software bit"."""
        return self._pte_mksaveddirty(self.pte_clear_flags(pte, _PAGE_RW))

    def pte_mkexec(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, _PAGE_NX)

    def pte_mkdirty(self, pte: pte_t) -> pte_t:
        """"Avoid creating Dirty=1,Write=0 PTEs" (only with X86_FEATURE_USER_SHSTK)."""
        dirty = _PAGE_DIRTY
        if self.X86_FEATURE_USER_SHSTK and not self.pte_write(pte):
            dirty = self._PAGE_SAVED_DIRTY
        return self.pte_set_flags(pte, dirty | self._PAGE_SOFT_DIRTY)

    def pte_mkyoung(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, _PAGE_ACCESSED)

    def pte_mkwrite_novma(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, _PAGE_RW)

    def pte_mkwrite(self, pte: pte_t, vma: vm_area_struct | None = None) -> pte_t:
        """``pte_mkwrite(pte, vma)`` (arch/x86/mm/pgtable.c) without shadow-stack vmas:
        ``pte_mkwrite_novma``, then ``pte_clear_saveddirty``."""
        return self._pte_clear_saveddirty(self.pte_mkwrite_novma(pte))

    def pte_mkhuge(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, _PAGE_PSE)

    def pte_clrhuge(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, _PAGE_PSE)

    def pte_mkglobal(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, _PAGE_GLOBAL)

    def pte_clrglobal(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, _PAGE_GLOBAL)

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, _PAGE_SPECIAL)

    def pte_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, self._PAGE_SOFT_DIRTY)

    def pte_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, self._PAGE_SOFT_DIRTY)

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        """Keep ``_PAGE_CHG_MASK`` (pfn, A/D, special...), take the rest from ``newprot``,
        and flip the PFN if the entry crosses between present and PROT_NONE.  Then avoid
        Write=0,Dirty=1: SavedDirty fix-up, "only ... if the old value was Write=1"."""
        oldval = pte
        val = pte & self._PAGE_CHG_MASK
        val |= self.check_pgprot(newprot) & ~self._PAGE_CHG_MASK
        result = pte_t(self.flip_protnone_guard(oldval, val, self.PTE_PFN_MASK))
        if oldval & _PAGE_RW:
            return self._pte_mksaveddirty(result)
        return self._pte_clear_saveddirty(result)

    # -- pmd ------------------------------------------------------------------------------

    def pmd_none(self, pmd: pmd_t) -> bool:
        """"Only check low word on 32-bit platforms, since it might be out of sync with upper
        half": the value is cut to ``unsigned long`` (PAE ignores the high 32 bits)."""
        return (pmd & self.ULONG_MASK & ~self.KNL_ERRATUM_MASK) == 0

    def pmd_present(self, pmd: pmd_t) -> bool:
        """Checks PSE too: a THP being split keeps PSE with P cleared."""
        return bool(self.pmd_flags(pmd) & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE))

    def pmd_bad(self, pmd: pmd_t) -> bool:
        return (self.pmd_flags(pmd) & ~(_PAGE_USER | _PAGE_ACCESSED)) != (
            _KERNPG_TABLE & ~_PAGE_ACCESSED
        )

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        return bool(self.pmd_flags(pmd) & _PAGE_PSE)

    def pmd_protnone(self, pmd: pmd_t) -> bool:
        return (self.pmd_flags(pmd) & (_PAGE_PROTNONE | _PAGE_PRESENT)) == _PAGE_PROTNONE

    def pmd_write(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_RW)

    def pmd_dirty(self, pmd: pmd_t) -> bool:
        return bool(self.pmd_flags(pmd) & self._PAGE_DIRTY_BITS)

    def pmd_young(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_ACCESSED)

    def pmd_special(self, pmd: pmd_t) -> bool:
        return bool(pmd & _PAGE_SPECIAL)

    def pmd_soft_dirty(self, pmd: pmd_t) -> bool:
        return bool(pmd & self._PAGE_SOFT_DIRTY)

    def pmd_mkold(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~_PAGE_ACCESSED)

    def pmd_mkclean(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~self._PAGE_DIRTY_BITS)

    def pmd_wrprotect(self, pmd: pmd_t) -> pmd_t:
        return self._pmd_mksaveddirty(pmd_t(pmd & ~_PAGE_RW))

    def pmd_mkdirty(self, pmd: pmd_t) -> pmd_t:
        dirty = _PAGE_DIRTY
        if self.X86_FEATURE_USER_SHSTK and not self.pmd_flags(pmd) & _PAGE_RW:
            dirty = self._PAGE_SAVED_DIRTY
        return pmd_t(pmd | dirty | self._PAGE_SOFT_DIRTY)

    def pmd_mkyoung(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | _PAGE_ACCESSED)

    def pmd_mkwrite_novma(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | _PAGE_RW)

    def pmd_mkwrite(self, pmd: pmd_t, vma: vm_area_struct | None = None) -> pmd_t:
        """``pmd_mkwrite(pmd, vma)`` (arch/x86/mm/pgtable.c) without shadow-stack vmas:
        ``pmd_mkwrite_novma``, then ``pmd_clear_saveddirty``."""
        return self._pmd_clear_saveddirty(self.pmd_mkwrite_novma(pmd))

    def pmd_mkhuge(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | _PAGE_PSE)

    def pmd_mkspecial(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | _PAGE_SPECIAL)

    def pmd_mksoft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | self._PAGE_SOFT_DIRTY)

    def pmd_clear_soft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~self._PAGE_SOFT_DIRTY)

    def pmd_mkinvalid(self, pmd: pmd_t) -> pmd_t:
        """Clear P and PROTNONE, keep PSE, invert the PFN (arch/x86/include/asm/pgtable.h)."""
        val = pmd & ~(_PAGE_PRESENT | _PAGE_PROTNONE)
        return pmd_t(self.flip_protnone_guard(pmd, val, self.PHYSICAL_PMD_PAGE_MASK))

    def pmd_modify(self, pmd: pmd_t, newprot: pgprot_t) -> pmd_t:
        """As ``pte_modify``, but the old value is masked with ``_HPAGE_CHG_MASK &
        ~_PAGE_DIRTY``: hardware Dirty is dropped before the SavedDirty fix-up."""
        oldval = pmd
        val = pmd & (self._HPAGE_CHG_MASK & ~_PAGE_DIRTY)
        val |= self.check_pgprot(newprot) & ~self._HPAGE_CHG_MASK
        result = pmd_t(self.flip_protnone_guard(oldval, val, self.PHYSICAL_PMD_PAGE_MASK))
        if oldval & _PAGE_RW:
            return self._pmd_mksaveddirty(result)
        return self._pmd_clear_saveddirty(result)

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        return PtePtr(pmd & self.pmd_pfn_mask(pmd), self.SIZEOF_PTE)

    # -- pud (asm/pgtable.h: predicates under CONFIG_PGTABLE_LEVELS > 2) --------------------

    def pud_none(self, pud: pud_t) -> bool:
        return (pud & ~self.KNL_ERRATUM_MASK) == 0

    def pud_present(self, pud: pud_t) -> bool:
        return bool(self.pud_flags(pud) & _PAGE_PRESENT)

    def pud_bad(self, pud: pud_t) -> bool:
        return (self.pud_flags(pud) & ~(_KERNPG_TABLE | _PAGE_USER)) != 0

    def pud_leaf(self, pud: pud_t) -> bool:
        return bool(pud & _PAGE_PSE)

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        return PmdPtr(pud & self.pud_pfn_mask(pud), self.SIZEOF_PMD)

    def pud_write(self, pud: pud_t) -> bool:
        return bool(pud & _PAGE_RW)

    def pud_dirty(self, pud: pud_t) -> bool:
        return bool(self.pud_flags(pud) & self._PAGE_DIRTY_BITS)

    def pud_young(self, pud: pud_t) -> bool:
        return bool(pud & _PAGE_ACCESSED)

    def pud_mkold(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~_PAGE_ACCESSED)

    def pud_mkclean(self, pud: pud_t) -> pud_t:
        return pud_t(pud & ~self._PAGE_DIRTY_BITS)

    def pud_wrprotect(self, pud: pud_t) -> pud_t:
        return self._pud_mksaveddirty(pud_t(pud & ~_PAGE_RW))

    def pud_mkdirty(self, pud: pud_t) -> pud_t:
        dirty = _PAGE_DIRTY
        if self.X86_FEATURE_USER_SHSTK and not self.pud_flags(pud) & _PAGE_RW:
            dirty = self._PAGE_SAVED_DIRTY
        return pud_t(pud | dirty | self._PAGE_SOFT_DIRTY)

    def pud_mkyoung(self, pud: pud_t) -> pud_t:
        return pud_t(pud | _PAGE_ACCESSED)

    def pud_mkwrite(self, pud: pud_t) -> pud_t:
        return self._pud_clear_saveddirty(pud_t(pud | _PAGE_RW))

    def pud_mkhuge(self, pud: pud_t) -> pud_t:
        return pud_t(pud | _PAGE_PSE)

    def pud_modify(self, pud: pud_t, newprot: pgprot_t) -> pud_t:
        oldval = pud
        val = pud & self._HPAGE_CHG_MASK
        val |= self.check_pgprot(newprot) & ~self._HPAGE_CHG_MASK
        result = pud_t(self.flip_protnone_guard(oldval, val, self.PHYSICAL_PUD_PAGE_MASK))
        if oldval & _PAGE_RW:
            return self._pud_mksaveddirty(result)
        return self._pud_clear_saveddirty(result)

    # -- populate (arch/x86/include/asm/pgalloc.h) ----------------------------------------

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t(pte.pa | _PAGE_TABLE))

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self.set_pmd(pmd, pmd_t(pte.pa | _PAGE_TABLE))

    # -- huge vmap (arch/x86/mm/pgtable.c) ------------------------------------------------

    def protval_4k_2_large(self, val: int) -> int:
        """Move the PAT bit from bit 7 (4K) to bit 12 (2M/1G)."""
        return (val & ~(_PAGE_PAT | _PAGE_PAT_LARGE)) | ((val & _PAGE_PAT) << 5)

    def protval_large_2_4k(self, val: int) -> int:
        """Move the PAT bit back from bit 12 to bit 7 (which drops PSE, the same bit)."""
        return (val & ~(_PAGE_PAT | _PAGE_PAT_LARGE)) | ((val & _PAGE_PAT_LARGE) >> 5)

    def pgprot_large_2_4k(self, pgprot: pgprot_t) -> pgprot_t:
        return pgprot_t(self.protval_large_2_4k(pgprot))

    def pmd_free_pte_page(self, pmd: PmdPtr, addr: int) -> int:
        """Clear the pmd and free the (unmapped) PTE table it points to.  !CONFIG_X86_64
        (PAE): only succeeds on an empty pmd, so ioremap never changes sync'd pmds."""
        if self.config.word_bits != 64:
            return int(self.pmd_none(self.pmdp_get(pmd)))
        pte = self.pmd_page_vaddr(self.pmdp_get(pmd))
        self.pmd_clear(pmd)
        # "INVLPG to clear all paging-structure caches"
        self.flush_tlb_kernel_range(addr, addr + self.PAGE_SIZE - 1)
        self.pte_free_kernel(self.init_mm, pte)
        return 1

    def pud_free_pmd_page(self, pud: PudPtr, addr: int) -> int:
        """X86_64: clear the pud, free the PMD table and every PTE table below it (the range
        is unmapped).  0 if the bounce page ``pmd_sv`` cannot be allocated."""
        pmd = self.pud_pgtable(self.pudp_get(pud))
        try:
            pmd_sv = self.mem.alloc_frame()  # __get_free_page(GFP_KERNEL): not a page table
        except OutOfMemory:
            return 0
        for i in range(self.PTRS_PER_PMD):
            val = self.pmdp_get(pmd + i)
            self.mem.write(pmd_sv + i * self.SIZEOF_PMD, self.SIZEOF_PMD, val)
            if not self.pmd_none(val):
                self.pmd_clear(pmd + i)
        self.pud_clear(pud)
        # "INVLPG to clear all paging-structure caches"
        self.flush_tlb_kernel_range(addr, addr + self.PAGE_SIZE - 1)
        for i in range(self.PTRS_PER_PMD):
            val = pmd_t(self.mem.read(pmd_sv + i * self.SIZEOF_PMD, self.SIZEOF_PMD))
            if not self.pmd_none(val):
                self.pte_free_kernel(self.init_mm, self.pmd_page_vaddr(val))
        self.mem.free_frame(pmd_sv)
        self.pmd_free(self.init_mm, pmd)  # pagetable_dtor(); free_page()
        return 1

    def arch_vmap_pmd_supported(self, prot: pgprot_t) -> bool:
        """asm/vmalloc.h: ``boot_cpu_has(X86_FEATURE_PSE)``."""
        return True

    def arch_vmap_pud_supported(self, prot: pgprot_t) -> bool:
        """asm/vmalloc.h: ``boot_cpu_has(X86_FEATURE_GBPAGES)`` on X86_64, else false."""
        return self.config.word_bits == 64

    def p4d_set_huge(self, p4d: P4dPtr, addr: int, prot: pgprot_t) -> int:
        """"No 512GB pages yet -- always return 0" (also the stub of a folded p4d)."""
        return 0

    def p4d_clear_huge(self, p4d: P4dPtr) -> None:
        pass

    def pmd_set_huge(self, pmd: PmdPtr, addr: int, prot: pgprot_t) -> int:
        """Bail out (0) on a populated non-leaf entry; else install a 2M/4M leaf."""
        cur = self.pmdp_get(pmd)
        if self.pmd_present(cur) and not self.pmd_leaf(cur):
            return 0
        prot = pgprot_t(self.protval_4k_2_large(prot) | _PAGE_PSE)
        self.set_pte(PtePtr(pmd.pa, pmd.size), self.pfn_pte(addr >> self.PAGE_SHIFT, prot))
        return 1

    def pmd_clear_huge(self, pmd: PmdPtr) -> int:
        if self.pmd_leaf(self.pmdp_get(pmd)):
            self.pmd_clear(pmd)
            return 1
        return 0

    def pud_set_huge(self, pud: PudPtr, addr: int, prot: pgprot_t) -> int:
        """As ``pmd_set_huge``: ``set_pte((pte_t *)pud, pfn_pte(...))``, so a non-present
        protection inverts every ``PTE_PFN_MASK`` bit (12 and up), not only bits 30 and up."""
        cur = self.pudp_get(pud)
        if self.pud_present(cur) and not self.pud_leaf(cur):
            return 0
        prot = pgprot_t(self.protval_4k_2_large(prot) | _PAGE_PSE)
        self.set_pte(PtePtr(pud.pa, pud.size), self.pfn_pte(addr >> self.PAGE_SHIFT, prot))
        return 1

    def pud_clear_huge(self, pud: PudPtr) -> int:
        if self.pud_leaf(self.pudp_get(pud)):
            self.pud_clear(pud)
            return 1
        return 0

    # -- read-modify-write helpers (x86's __HAVE_ARCH_PTEP_* versions) ----------------------
    # x86 also overrides ptep_get_and_clear(_full) and p?dp_huge_get_and_clear with an xchg;
    # in a single-threaded emulator that is the generic read-then-clear, so those stay generic.

    def ptep_set_wrprotect(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        self.set_pte(ptep, self.pte_wrprotect(self.ptep_get(ptep)))

    def ptep_test_and_clear_young(self, vma: object, addr: int, ptep: PtePtr) -> int:
        pte = self.ptep_get(ptep)
        if not self.pte_young(pte):
            return 0
        self.set_pte(ptep, self.pte_mkold(pte))
        return 1

    def ptep_set_access_flags(
        self, vma: object, addr: int, ptep: PtePtr, entry: pte_t, dirty: int
    ) -> int:
        changed = not self.pte_same(self.ptep_get(ptep), entry)
        if changed and dirty:
            self.set_pte(ptep, entry)
        return int(changed)

    def pmdp_set_wrprotect(self, mm: mm_struct, addr: int, pmdp: PmdPtr) -> None:
        self.set_pmd(pmdp, self.pmd_wrprotect(self.pmdp_get(pmdp)))

    def pmdp_test_and_clear_young(self, vma: object, addr: int, pmdp: PmdPtr) -> int:
        pmd = self.pmdp_get(pmdp)
        if not self.pmd_young(pmd):
            return 0
        self.set_pmd(pmdp, self.pmd_mkold(pmd))
        return 1

    def pmdp_set_access_flags(
        self, vma: object, addr: int, pmdp: PmdPtr, entry: pmd_t, dirty: int
    ) -> int:
        changed = not self.pmd_same(self.pmdp_get(pmdp), entry)
        if changed and dirty:
            self.set_pmd(pmdp, entry)
        return int(changed)
