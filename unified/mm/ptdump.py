"""``mm/ptdump.c`` through the unified API: the page-table dump's walk, level-generic.

The legacy walk (:mod:`legacy.mm.ptdump`) registers five entry callbacks
(``ptdump_pgd_entry`` ... ``ptdump_pte_entry``) and a hole callback with
``walk_page_range_debug``.  Here :func:`ptdump_walk_pgd` runs
:func:`~unified.walk.walk_range` from the root the MMU uses for each range
(``PageTables.root_for``: the process pgd for both halves on x86, ``swapper_pg_dir`` for
the kernel half where the kernel has its own root), with one ``visit`` for every level.

The listing itself is the architecture's, reached through the legacy kernel object (public
legacy API): the caller passes the state ``k.ptdump_pg_state(ranges, markers)``, and its
``effective_prot``/``note_page`` are called with the legacy walk's ptdump levels (0 = pgd
... 4 = pte, i.e. ``4 - Level``) and values, so both walks print the same text:

- an entry of a real level stands for every legacy level of its group: ``effective_prot``
  is called once per member, top first, with the same value, as ``pgd_entry`` ...
  ``pmd_entry`` each are on the same (folded) entry; a leaf is noted at the group's bottom,
  the level whose ``pXd_leaf`` sees it (the folded members' are constant false);
- every PTE is noted, empty or not, with the value read (``ptdump_pte_entry`` runs for
  each pte of a table; an empty pte is not always zero: LoongArch kernel ptes keep G);
- an empty entry above the PTE level is noted where the legacy walker reports it: only the
  group's *bottom* member reads the entry (a folded member's ``pXd_none`` is constant false,
  at compile time or, like riscv's ``pgd_none``/``p4d_none`` without Sv48/Sv57, at run
  time), and ``walk_pXd_range`` reports that hole at ``real_depth(bottom)``
  (mm/pagewalk.c), which moves it up only across levels with ``PTRS_PER_X == 1``.  So a
  run-time folded level keeps its own depth (a Sv39 top-level hole is a pud hole).
"""

from __future__ import annotations

from legacy import mm_struct
from legacy.mm.pagewalk import real_depth
from legacy.ptdump import ptdump_state
from unified.handles import Entry, Value
from unified.levels import Level
from unified.pagetables import PageTables
from unified.walk import Action, walk_range


def _ptdump_level(level: int) -> int:
    """The ptdump level (0 = pgd ... 4 = pte) of a unified level (0 = PTE ... 4 = PGD)."""
    return Level.PGD - level


def ptdump_walk_pgd(pt: PageTables, st: ptdump_state, mm: mm_struct,
                    flush: bool = True) -> None:
    """Walk every range of ``st`` from ``pt.root_for(mm, start)``, then flush the last run
    with ``note_page(0, -1, 0)`` (``flush=False`` leaves it open).  ``st.mm`` is set to the
    mm whose tables each range is read from."""

    def visit(entry: Entry, value: Value, addr: int, next: int) -> Action | None:
        raw = value.raw
        group = entry.table.group
        if group.bottom == Level.PTE:
            st.effective_prot(4, raw)
            st.note_page(addr, 4, raw)
            return None
        for member in group.members:  # pgd_entry ... pmd_entry on the same entry
            st.effective_prot(_ptdump_level(member), raw)
        if pt.is_leaf(value):
            st.note_page(addr, _ptdump_level(group.bottom), raw)
            return Action.CONTINUE
        return None

    def hole(addr: int, next: int, empty: Value) -> None:
        if empty.level == Level.PTE:  # ptdump_pte_entry on a none pte: what it read
            st.effective_prot(4, empty.raw)
            st.note_page(addr, 4, empty.raw)
        else:  # ptdump_hole at real_depth of the level whose pXd_none saw the hole: zero
            st.note_page(addr, real_depth(pt.k, _ptdump_level(empty.level)), 0)

    for r in st.range:
        root = pt.root_for(mm, r.start)
        st.mm = root.mm
        walk_range(pt, root, r.start, r.end, visit, hole)
    if flush:
        # Flush out the last page
        st.note_page(0, -1, 0)


__all__ = ["ptdump_walk_pgd"]
