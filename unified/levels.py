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
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class LevelGroup:
    """One real level: the legacy levels ``top``..``bottom`` that share one table.

    ``top`` gives the table's geometry (entry count, index, span of an entry, how to reach
    the table from the parent entry); ``bottom`` gives the entries' meaning (none, leaf,
    present, populate, lock).  Without folding ``top == bottom``."""

    top: Level
    bottom: Level

    @property
    def level(self) -> Level:
        return self.bottom

    @property
    def members(self) -> tuple[Level, ...]:
        return tuple(Level(n) for n in range(self.top, self.bottom - 1, -1))


def real_levels(k: GenericKernel, mm: mm_struct) -> tuple[LevelGroup, ...]:
    """The levels ``mm`` really has on kernel ``k``, root first, from the legacy API only."""
    folded = {
        Level.P4D: k.mm_p4d_folded(mm),
        Level.PUD: k.mm_pud_folded(mm),
        Level.PMD: k.mm_pmd_folded(mm),
        Level.PTE: False,
    }
    groups: list[LevelGroup] = []
    top = Level.PGD
    bottom = Level.PGD
    for lv in (Level.P4D, Level.PUD, Level.PMD, Level.PTE):
        if folded[lv]:
            bottom = lv
            continue
        groups.append(LevelGroup(top, bottom))
        top = bottom = lv
    groups.append(LevelGroup(top, bottom))
    return tuple(groups)
