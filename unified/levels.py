"""What a level number means, and which levels a configuration really has.

**Level 0 is the leaf-most level (the PTE level) and numbers grow toward the root.**  The
numbers are the kernel's own (``enum pgtable_level`` in include/linux/pgtable.h:
``PGTABLE_LEVEL_PTE = 0`` ... ``PGTABLE_LEVEL_PGD = 4``), the PoC's and generic_pt's: an
entry at level L maps ``1 << shift(L)`` bytes, and level 0 is the same on every
configuration while the top differs (4-level x86-64: 3; i386: 1).

**Folded levels are skipped, never present with one entry.**  A configuration's real levels
are discovered through the legacy API alone (``mm_p4d_folded``/``mm_pud_folded``/
``mm_pmd_folded``, which the kernel defines from the folding headers or at run time).  A
folded level merges with its parent into one *group*: one hardware table whose entries the
legacy API reaches through the whole chain of ``*_offset`` calls of the group.  The group
is named by its **lowest** member, because that is where the legacy predicates are
meaningful (the folding headers make the upper members' predicates constants): on 4-level
x86-64 the root is level 3 (P4D; ``pgd_none`` is constant 0 there), on i386 the root is
level 1 (PMD: ``pmd_leaf`` sees the 4M PSE page), on i386-pae level 2 (PUD = the PDPT).
Descending from level L always lands on the next *real* level below L.

**A group's geometry is that of the member whose index selects the entry.**  With
compile-time folding (pgtable-nop?d.h) the folded members have ``PTRS_PER_X`` = 1 and the
top's ``pXd_index`` does the work; where folding is decided per mm at run time (s390:
``pgd_offset_raw`` indexes the top table with the shift of the level its entries really
are, arch/s390/include/asm/pgtable.h) the upper members keep their full-size constants and
the *lowest* member's shift and entry count are the table's.  Both cases are one rule: the
lowest member with more than one entry per table, else the top.  The levels of an mm are
recomputed whenever its folding predicates change (s390 ``crst_table_upgrade`` adds levels
under a live mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from legacy import GenericKernel, mm_struct


class Level(IntEnum):
    """A page-table level; 0 is the PTE level (see the module docstring)."""

    PTE = 0
    PMD = 1
    PUD = 2
    P4D = 3
    PGD = 4

    @property
    def legacy_name(self) -> str:
        """The legacy API's prefix for this level: ``pte``, ``pmd``, ``pud``, ``p4d``, ``pgd``."""
        return self.name.lower()


LEVELS: tuple[Level, ...] = tuple(Level)
"""``LEVELS[n]`` is ``Level(n)`` without the enum's call machinery (hot paths)."""


@dataclass(frozen=True)
class LevelGroup:
    """One real level: the legacy levels ``top``..``bottom`` that share one table.

    ``top`` says how to reach the table from the parent entry (the chain of ``*_offset``
    calls starts there); :attr:`geometry` gives its entry count, index and the span of an
    entry; ``bottom`` gives the entries' meaning (none, leaf, present, populate, lock).
    Without folding ``top == bottom``."""

    top: Level
    bottom: Level
    geometry_level: Level | None = None
    """The member whose ``X_SHIFT``/``PTRS_PER_X`` index the table when it is not ``top``
    (s390's run-time folding; see the module docstring)."""
    members: tuple[Level, ...] = field(init=False, compare=False, repr=False)
    """``top`` down to ``bottom``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", LEVELS[self.bottom:self.top + 1][::-1])

    @property
    def level(self) -> Level:
        return self.bottom

    @property
    def geometry(self) -> Level:
        """The member giving the table's geometry: entry count, index, span of an entry."""
        return self.top if self.geometry_level is None else self.geometry_level


def folding(k: GenericKernel, mm: mm_struct) -> tuple[bool, bool, bool]:
    """``(mm_p4d_folded, mm_pud_folded, mm_pmd_folded)`` of ``mm`` now."""
    return k.mm_p4d_folded(mm), k.mm_pud_folded(mm), k.mm_pmd_folded(mm)


def _group(k: GenericKernel, top: Level, bottom: Level) -> LevelGroup:
    ptrs = {Level.PGD: k.PTRS_PER_PGD, Level.P4D: k.PTRS_PER_P4D, Level.PUD: k.PTRS_PER_PUD,
            Level.PMD: k.PTRS_PER_PMD, Level.PTE: k.PTRS_PER_PTE}
    for lv in range(bottom, top):  # lowest member first, the top excluded
        if ptrs[Level(lv)] > 1:
            return LevelGroup(top, bottom, Level(lv))
    return LevelGroup(top, bottom)


def real_levels(k: GenericKernel, mm: mm_struct,
                folded_now: tuple[bool, bool, bool] | None = None) -> tuple[LevelGroup, ...]:
    """The levels ``mm`` really has on kernel ``k``, root first, from the legacy API only
    (``folded_now``: :func:`folding` of ``mm``, if the caller has it)."""
    p4d, pud, pmd = folding(k, mm) if folded_now is None else folded_now
    folded = {Level.P4D: p4d, Level.PUD: pud, Level.PMD: pmd, Level.PTE: False}
    groups: list[LevelGroup] = []
    top = Level.PGD
    bottom = Level.PGD
    for lv in (Level.P4D, Level.PUD, Level.PMD, Level.PTE):
        if folded[lv]:
            bottom = lv
            continue
        groups.append(_group(k, top, bottom))
        top = bottom = lv
    groups.append(_group(k, top, bottom))
    return tuple(groups)
