"""The page-table dumper's walk: ``mm/ptdump.c``.

:func:`ptdump_walk_pgd` walks each range of a :class:`~legacy.ptdump.ptdump_state` with the
no-vma walker (``walk_page_range_debug``), calls ``effective_prot`` on every entry it meets,
``note_page`` on every leaf (and every pte, empty or not) and on every hole, then flushes
with ``note_page(st, 0, -1, 0)``.  ptdump levels count from the top: 0 = pgd ... 4 = pte;
a hole is reported at its ``real_depth`` (a hole in a folded level is one of the level it
folds into).

What the listing looks like is the architecture's business (``arch/*/mm/ptdump.c``): the
state comes from the kernel class, ``k.ptdump_pg_state(ranges, markers)`` (the hook and its
generic default are in :mod:`legacy.ptdump`, ``include/linux/ptdump.h``; x86's format in
:mod:`legacy.x86.ptdump`, arm64's in :mod:`legacy.arm64.ptdump`).
"""

from __future__ import annotations

from legacy.generic import GenericKernel
from legacy.mm.pagewalk import (
    ACTION_CONTINUE,
    mm_walk,
    mm_walk_ops,
    walk_page_range_debug,
)
from legacy.mm_types import mm_struct
from legacy.ptdump import (
    GenericPgState,
    PgState,
    addr_marker,
    ptdump_range,
    ptdump_state,
)
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr


def _st(walk: mm_walk) -> ptdump_state:
    st = walk.private
    assert isinstance(st, ptdump_state)
    return st


def ptdump_pgd_entry(pgd: PgdPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.pgdp_get(pgd)
    st.effective_prot(0, val)
    if k.pgd_leaf(val):
        st.note_page(addr, 0, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_p4d_entry(p4d: P4dPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.p4dp_get(p4d)
    st.effective_prot(1, val)
    if k.p4d_leaf(val):
        st.note_page(addr, 1, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_pud_entry(pud: PudPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.pudp_get(pud)
    st.effective_prot(2, val)
    if k.pud_leaf(val):
        st.note_page(addr, 2, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_pmd_entry(pmd: PmdPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.pmdp_get(pmd)
    st.effective_prot(3, val)
    if k.pmd_leaf(val):
        st.note_page(addr, 3, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_pte_entry(pte: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.ptep_get_lockless(pte)
    st.effective_prot(4, val)
    st.note_page(addr, 4, val)
    return 0


def ptdump_hole(addr: int, next: int, depth: int, walk: mm_walk) -> int:
    _st(walk).note_page(addr, depth, 0)
    return 0


ptdump_ops = mm_walk_ops(
    pgd_entry=ptdump_pgd_entry,
    p4d_entry=ptdump_p4d_entry,
    pud_entry=ptdump_pud_entry,
    pmd_entry=ptdump_pmd_entry,
    pte_entry=ptdump_pte_entry,
    pte_hole=ptdump_hole,
)


def ptdump_walk_pgd(k: GenericKernel, st: ptdump_state, mm: mm_struct,
                    pgd: PgdPtr | None = None, flush: bool = True) -> None:
    """Walk every range of ``st`` in ``mm`` (or ``pgd``), then flush the last run
    (``flush=False`` lets a caller walk another mm into the same listing first)."""
    for r in st.range:
        walk_page_range_debug(k, mm, r.start, r.end, ptdump_ops, pgd, st)
    if flush:
        # Flush out the last page
        st.note_page(0, -1, 0)


__all__ = [
    "GenericPgState", "PgState", "addr_marker", "ptdump_ops", "ptdump_range", "ptdump_state",
    "ptdump_walk_pgd",
]
