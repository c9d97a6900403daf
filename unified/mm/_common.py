"""What the level-generic call-site ports share: errnos, the deposit rule, handles for
tables that are not linked yet, and the kernel-faithful ``pXd_none_or_clear_bad``.

Everything here is built from :class:`~unified.pagetables.PageTables` and the per-level
adapters of :mod:`unified.legacy_ops`; nothing names a level's legacy function.
"""

from __future__ import annotations

from legacy import EntryPtr, mm_struct
from legacy.mm.internal import BUG_ON, EAGAIN, EBUSY, EFAULT, EINVAL, ENOMEM
from unified.handles import Entry, Table
from unified.legacy_ops import LevelOps
from unified.levels import LEVELS, Level, LevelGroup
from unified.pagetables import PageTables

__all__ = [
    "BUG_ON", "EAGAIN", "EBUSY", "EFAULT", "EINVAL", "ENOMEM", "deposits_at", "group_of_level",
    "kernel_none_or_clear_bad", "ops_of", "unlinked_table",
]


def deposits_at(level: int, mm: mm_struct) -> bool:
    """Whether a huge leaf at ``level`` of ``mm`` carries a deposited lower table.

    The legacy call sites give every *user* huge PMD one PTE table, deposited when the leaf
    is made (``insert_pfn_pmd``, ``copy_huge_pmd``, the split of a huge PUD) and withdrawn
    when it is split or zapped (legacy/mm/huge_memory.py: "one deposit per user huge pmd");
    kernel leaves and huge PUDs have none."""
    return level == Level.PMD and not mm.is_init_mm


def ops_of(pt: PageTables, mm: mm_struct, level: int) -> LevelOps:
    """The legacy adapters of ``level`` for tables of ``mm``."""
    return pt.ops(mm)[LEVELS[level]]


def group_of_level(pt: PageTables, mm: mm_struct, level: int) -> LevelGroup | None:
    """The real level of ``mm`` named ``level`` (None if that level is folded away)."""
    for g in pt.levels(mm):
        if g.level == level:
            return g
    return None


def unlinked_table(pt: PageTables, parent: Entry, first: EntryPtr) -> Table:
    """A handle for a lower table of ``parent`` that is allocated but not installed yet
    (filled before ``pXd_populate``, as the kernel's splits do)."""
    child = pt.lower(parent.table.group, parent.mm)
    if child is None:
        raise ValueError("a PTE entry has no table below it")
    return Table(child, first, parent.va, parent.mm, parent)


def kernel_none_or_clear_bad(pt: PageTables, entry: Entry) -> bool:
    """The legacy ``pXd_none_or_clear_bad`` of the entry's level, exactly: unlike
    :meth:`PageTables.none_or_clear_bad` it also clears a huge leaf when the architecture's
    ``pXd_bad`` calls one bad (x86 and arm64 do for a huge PUD).  The call sites that the
    kernel writes with it (``get_old_pud`` in mremap) must behave the same to stay
    byte-identical with the legacy path."""
    return ops_of(pt, entry.mm, entry.level).none_or_clear_bad(entry.ptr)
