"""``arch/arm/include/asm/pgtable.h``: what both ARM page-table formats share (Linux
v6.18).  The short-descriptor ``pgtable-2level.h`` and the LPAE ``pgtable-3level.h`` each
define the Linux pte bits (``L_PTE_*``, different values); ``asm/pgtable.h`` builds the pte
predicates and modifiers on them once, and lays out swap entries ("Format of swap PTEs")
for both.  :class:`ArmPgtable` is that header: a kernel class states its format's bits as
class attributes (the ``#define``s of its pgtable-*level.h) and inherits the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legacy.mm_types import mm_struct
from legacy.swapops import ShiftedSwapEntry, swp_entry_t
from legacy.types import PgdPtr, PtePtr, pgprot_t, pmd_t, pte_t

# The swap entry layout; Python mangles __names in a class, so they lose their leading
# underscores.
SWP_TYPE_SHIFT = 2
SWP_TYPE_BITS = 5
SWP_TYPE_MASK = (1 << SWP_TYPE_BITS) - 1
SWP_OFFSET_SHIFT = SWP_TYPE_BITS + SWP_TYPE_SHIFT + 1


class ArmPgtable(ShiftedSwapEntry):
    """The ``pte_*`` helpers of asm/pgtable.h (``pte_isset``/``pte_isclear``,
    ``set_pte_bit``) and its swap entries (the shifts below), over the ``L_PTE_*`` bits of
    the kernel class."""

    L_PTE_VALID: int
    L_PTE_PRESENT: int
    L_PTE_YOUNG: int
    L_PTE_DIRTY: int
    L_PTE_RDONLY: int
    L_PTE_USER: int
    L_PTE_XN: int
    L_PTE_SWP_EXCLUSIVE: int
    ARCH_SWP_TYPE_SHIFT = SWP_TYPE_SHIFT  # the swap layout, the same for both formats
    ARCH_SWP_TYPE_MASK = SWP_TYPE_MASK
    ARCH_SWP_OFFSET_SHIFT = SWP_OFFSET_SHIFT

    if TYPE_CHECKING:
        ULONG_MASK: int

        def pfn_pte(self, pfn: int, prot: pgprot_t) -> pte_t: ...
        def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t,
                     nr: int) -> None: ...
        def _pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None: ...

    def mk_pte(self, pfn: int, pgprot: pgprot_t) -> pte_t:
        """``mk_pte(page, prot)``: pages are named by pfn here."""
        return self.pfn_pte(pfn, pgprot)

    # -- pte predicates (pte_isset/pte_isclear) ----------------------------------------------

    def pte_none(self, pte: pte_t) -> bool:
        return pte == 0

    def pte_valid(self, pte: pte_t) -> bool:
        return bool(pte & self.L_PTE_VALID)

    def pte_write(self, pte: pte_t) -> bool:
        return not pte & self.L_PTE_RDONLY

    def pte_dirty(self, pte: pte_t) -> bool:
        return bool(pte & self.L_PTE_DIRTY)

    def pte_young(self, pte: pte_t) -> bool:
        return bool(pte & self.L_PTE_YOUNG)

    def pte_exec(self, pte: pte_t) -> bool:
        return not pte & self.L_PTE_XN

    def pte_valid_user(self, pte: pte_t) -> bool:
        return self.pte_valid(pte) and bool(pte & self.L_PTE_USER)

    def pte_access_permitted(self, pte: pte_t, write: bool) -> bool:
        mask = self.L_PTE_PRESENT | self.L_PTE_USER
        needed = mask
        if write:
            mask |= self.L_PTE_RDONLY
        return (pte & mask) == needed

    # -- pte modifiers (set_pte_bit) ----------------------------------------------------------

    def pte_wrprotect(self, pte: pte_t) -> pte_t:
        return pte_t(pte | self.L_PTE_RDONLY)

    def pte_mkdirty(self, pte: pte_t) -> pte_t:
        return pte_t(pte | self.L_PTE_DIRTY)

    def pte_mkyoung(self, pte: pte_t) -> pte_t:
        return pte_t(pte | self.L_PTE_YOUNG)

    def pte_mknexec(self, pte: pte_t) -> pte_t:
        return pte_t(pte | self.L_PTE_XN)

    def set_pte_at(self, mm: mm_struct, addr: int, ptep: PtePtr, pte: pte_t) -> None:
        """include/linux/pgtable.h: ``set_ptes(mm, addr, ptep, pte, 1)``."""
        self.set_ptes(mm, addr, ptep, pte, 1)

    def pmd_none(self, pmd: pmd_t) -> bool:
        return pmd == 0

    # -- swap entries ("Format of swap PTEs") ------------------------------------------------

    def _swp_entry_to_pte(self, x: swp_entry_t) -> pte_t:
        return pte_t(x)

    def pte_swp_exclusive(self, pte: pte_t) -> bool:
        return bool(pte & self.L_PTE_SWP_EXCLUSIVE)

    def pte_swp_mkexclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte | self.L_PTE_SWP_EXCLUSIVE)

    # -- pgd_free (arch/arm/mm/pgd.c) ---------------------------------------------------------

    def pgd_free_lpae(self, mm: mm_struct, pgd_base: PgdPtr) -> None:
        """The ``#ifdef CONFIG_ARM_LPAE`` part of :meth:`pgd_free` (nothing without LPAE)."""

    def pgd_free(self, mm: mm_struct, pgd_base: PgdPtr) -> None:
        """Free the tables under address 0, which ``free_pgtables`` leaves (its floor is
        ``FIRST_USER_ADDRESS``): the low-vectors PTE page, and with LPAE the pmd table
        holding it; then (:meth:`pgd_free_lpae`) the other pmds of an LPAE pgd; then the
        pgd.  The kernel's labels are the ends of the nested blocks."""
        k: Any = self  # the folding helpers of the kernel class
        if not pgd_base.pa:
            return
        pgd = pgd_base + k.pgd_index(0)
        if not k.pgd_none_or_clear_bad(pgd):
            p4d = k.p4d_offset(pgd, 0)
            if not k.p4d_none_or_clear_bad(p4d):
                pud = k.pud_offset(p4d, 0)
                if not k.pud_none_or_clear_bad(pud):
                    pmd = k.pmd_offset(pud, 0)
                    if not k.pmd_none_or_clear_bad(pmd):
                        pte = k.pmd_pgtable(k.pmdp_get(pmd))
                        k.pmd_clear(pmd)
                        k.pte_free(mm, pte)
                        k.mm_dec_nr_ptes(mm)
                    # no_pmd:
                    k.pud_clear(pud)
                    k.pmd_free(mm, pmd)
                    k.mm_dec_nr_pmds(mm)
                # no_pud:
                k.p4d_clear(p4d)
                k.pud_free(mm, pud)
            # no_p4d:
            k.pgd_clear(pgd)
            k.p4d_free(mm, p4d)
        # no_pgd:
        self.pgd_free_lpae(mm, pgd_base)
        self._pgd_free(mm, pgd_base)
