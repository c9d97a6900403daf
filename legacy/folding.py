"""The asm-generic folding headers as three small mixins.

``Nop4d`` = ``include/asm-generic/pgtable-nop4d.h``, ``Nopud`` = ``pgtable-nopud.h``
(includes nop4d), ``Nopmd`` = ``pgtable-nopmd.h`` (includes nopud).  Each folds one level
into its parent: the folded level has one entry that *is* the parent entry, so
``X_offset(parent, addr)`` returns the parent pointer re-typed and ignores ``addr``, the
parent's predicates become constants ("the pXd is never bad, and a pXd always exists (as
it's folded into the parent entry)"), and ``X_addr_end`` is ``end``.

Put the mixin *before* the architecture class in the bases (``class I386(Nopmd, X86_32)``):
like the ``#include``, it wins for the names it defines; the architecture keeps the rest.
"""

from __future__ import annotations

from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr, p4d_t, pgd_t, pmd_t, pud_t


class Nop4d(GenericKernel):
    """include/asm-generic/pgtable-nop4d.h: p4d folded into pgd."""

    PAGETABLE_P4D_FOLDED = True

    def fold_geometry(self) -> None:
        super().fold_geometry()
        self.P4D_SHIFT = self.PGDIR_SHIFT
        self.PTRS_PER_P4D = 1
        self.SIZEOF_P4D = self.SIZEOF_PGD

    def pgd_none(self, pgd: pgd_t) -> bool:
        return False

    def pgd_bad(self, pgd: pgd_t) -> bool:
        return False

    def pgd_present(self, pgd: pgd_t) -> bool:
        return True

    def pgd_clear(self, pgdp: PgdPtr) -> None:
        pass

    def pgd_populate(self, mm: mm_struct, pgd: PgdPtr, p4d: P4dPtr) -> None:
        pass

    def set_pgd(self, pgdp: PgdPtr, pgd: pgd_t) -> None:
        """"doesn't get actually called, but the define is needed"."""
        self.set_p4d(P4dPtr(pgdp.pa, pgdp.size), p4d_t(pgd))

    def p4d_offset(self, pgd: PgdPtr, a: int) -> P4dPtr:
        return P4dPtr(pgd.pa, pgd.size)

    def p4d_alloc_one(self, mm: mm_struct, addr: int) -> P4dPtr | None:
        return None

    def p4d_free(self, mm: mm_struct, p4d: P4dPtr) -> None:
        pass

    def p4d_addr_end(self, addr: int, end: int) -> int:
        return end

    def p4d_clear_bad(self, p4d: P4dPtr) -> None:
        pass


class Nopud(Nop4d):
    """include/asm-generic/pgtable-nopud.h: pud folded into p4d."""

    PAGETABLE_PUD_FOLDED = True

    def fold_geometry(self) -> None:
        super().fold_geometry()
        self.PUD_SHIFT = self.P4D_SHIFT
        self.PTRS_PER_PUD = 1
        self.SIZEOF_PUD = self.SIZEOF_P4D

    def p4d_none(self, p4d: p4d_t) -> bool:
        return False

    def p4d_bad(self, p4d: p4d_t) -> bool:
        return False

    def p4d_present(self, p4d: p4d_t) -> bool:
        return True

    def p4d_clear(self, p4dp: P4dPtr) -> None:
        pass

    def p4d_populate(self, mm: mm_struct, p4d: P4dPtr, pud: PudPtr) -> None:
        pass

    def set_p4d(self, p4dp: P4dPtr, p4d: p4d_t) -> None:
        self.set_pud(PudPtr(p4dp.pa, p4dp.size), pud_t(p4d))

    def pud_offset(self, p4d: P4dPtr, a: int) -> PudPtr:
        return PudPtr(p4d.pa, p4d.size)

    def pud_alloc_one(self, mm: mm_struct, addr: int) -> PudPtr | None:
        return None

    def pud_free(self, mm: mm_struct, pud: PudPtr) -> None:
        pass

    def pud_addr_end(self, addr: int, end: int) -> int:
        return end

    def pud_clear_bad(self, pud: PudPtr) -> None:
        pass


class Nopmd(Nopud):
    """include/asm-generic/pgtable-nopmd.h: pmd folded into pud."""

    PAGETABLE_PMD_FOLDED = True

    def fold_geometry(self) -> None:
        super().fold_geometry()
        self.PMD_SHIFT = self.PUD_SHIFT
        self.PTRS_PER_PMD = 1
        self.SIZEOF_PMD = self.SIZEOF_PUD

    def pud_none(self, pud: pud_t) -> bool:
        return False

    def pud_bad(self, pud: pud_t) -> bool:
        return False

    def pud_present(self, pud: pud_t) -> bool:
        return True

    def pud_clear(self, pudp: PudPtr) -> None:
        pass

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        pass

    def set_pud(self, pudp: PudPtr, pud: pud_t) -> None:
        self.set_pmd(PmdPtr(pudp.pa, pudp.size), pmd_t(pud))

    def pmd_offset(self, pud: PudPtr, a: int) -> PmdPtr:
        return PmdPtr(pud.pa, pud.size)

    def pmd_alloc_one(self, mm: mm_struct, addr: int) -> PmdPtr | None:
        return None

    def pmd_free(self, mm: mm_struct, pmd: PmdPtr) -> None:
        pass

    def pmd_addr_end(self, addr: int, end: int) -> int:
        return end


__all__ = ["Nop4d", "Nopmd", "Nopud", "PtePtr"]
