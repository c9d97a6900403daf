"""mremap: moving the translations of a range, level-generically (mm/mremap.c
``move_page_tables`` and its helpers, legacy/mm/mremap.py).

The legacy loop tries, per extent, the biggest move first: a whole PUD entry (a huge PUD,
or the PMD table under it), then a whole PMD entry (a huge PMD with its deposit, or the PTE
table under it), then the PTEs one by one.  Here the same loop runs over the *entry-move
levels* -- the real levels named PUD and PMD that ``mm`` has, top down -- with one routine
per kind of move, whatever the level:

- :func:`_move_leaf`: a huge leaf, the destination empty (its deposit follows it when the
  two entries are under different locks);
- :func:`_move_table`: the lower table under an entry (``CONFIG_HAVE_MOVE_PUD``/``_PMD``);
- :func:`_move_ptes`: the PTEs of one extent under both PTE tables' locks.

The lookup of the old entry is the kernel's (``get_old_pud``/``get_old_pmd``): empty or bad
entries above end the lookup (bad ones are cleared); the target entry itself is tested with
``pXd_none_or_clear_bad`` at the upper entry-move level and with ``pXd_none`` at the level
that points to PTE tables.  The kernel's quirk is kept: architectures whose ``pud_bad``
calls a huge PUD bad (x86, arm64) clear it there, in both paths.
Destination tables come from the ``*_alloc`` wrappers.
"""

from __future__ import annotations

from legacy import spin_lock, spin_unlock, vm_area_struct
from legacy.mm.mremap import pagetable_move_control, pmc_progress, try_realign_addr
from unified.handles import Entry, Table
from unified.levels import Level, LevelGroup
from unified.mm._common import EAGAIN, deposits_at, ops_of
from unified.mm.split import split_huge_leaf
from unified.pagetables import PageTables

__all__ = ["move_page_tables"]


def _lookup(pt: PageTables, mm_vma: vm_area_struct, level: LevelGroup, addr: int,
            last: bool) -> Entry | None:
    """``get_old_pud``/``get_old_pmd`` for any level: the entry of ``level`` mapping
    ``addr``, or None."""
    mm = mm_vma.vm_mm
    table = pt.root_for(mm, addr)
    while True:
        entry = pt.entry(table, addr)
        lv = ops_of(pt, mm, entry.level)
        if table.group == level:
            if last:
                return None if lv.none(lv.get(entry.ptr)) else entry
            return None if lv.none_or_clear_bad(entry.ptr) else entry
        if lv.none_or_clear_bad(entry.ptr):
            return None
        table = pt.descend(entry)


def _alloc(pt: PageTables, vma: vm_area_struct, level: LevelGroup, addr: int) -> Entry | None:
    """``alloc_new_pud``/``alloc_new_pmd``: the entry of ``level`` for ``addr``, the tables
    above it allocated if missing; None on -ENOMEM."""
    table: Table | None = pt.root_for(vma.vm_mm, addr)
    while table is not None and table.group != level:
        table = pt.ensure_table(pt.entry(table, addr))
    return None if table is None else pt.entry(table, addr)


def _extent(pt: PageTables, pmc: pagetable_move_control, size: int) -> int:
    """``get_extent``: ``size`` if both addresses start an entry of that size and the range
    covers it, else up to the nearer boundary."""
    m = pt.k.ULONG_MASK
    mask = ~(size - 1) & m
    nxt = (pmc.old_addr + size) & mask & m
    # "even if next overflowed, extent below will be ok"
    extent = (nxt - pmc.old_addr) & m
    if extent > pmc.old_end - pmc.old_addr:
        extent = pmc.old_end - pmc.old_addr
    nxt = (pmc.new_addr + size) & mask & m
    if extent > (nxt - pmc.new_addr) & m:
        extent = (nxt - pmc.new_addr) & m
    return extent


def _move_leaf(pt: PageTables, pmc: pagetable_move_control, old: Entry, new: Entry) -> bool:
    """``move_huge_pmd``/``move_huge_pud``: move a whole huge leaf (and its deposit)."""
    mm = pmc.old.vm_mm
    lv = ops_of(pt, mm, old.level)
    # "The destination pmd shouldn't be established, free_pgtables() should have released it"
    if not lv.none(lv.get(new.ptr)):
        return False
    old_ptl = lv.lockptr(mm, old.ptr)
    spin_lock(old_ptl)
    if not lv.trans_huge(lv.get(old.ptr)):
        spin_unlock(old_ptl)
        return False
    new_ptl = lv.lockptr(mm, new.ptr)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    v = lv.get_and_clear(mm, pmc.old_addr, old.ptr)
    # "With split pmd lock we also need to move preallocated PTE page table if new_pmd is
    # on different PMD page table."
    if deposits_at(old.level, mm) and new_ptl is not old_ptl:
        lv.deposit(mm, new.ptr, lv.withdraw(mm, old.ptr))
    lv.set_at(mm, pmc.new_addr, new.ptr, lv.moved(v))
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return True


def _move_table(pt: PageTables, pmc: pagetable_move_control, old: Entry, new: Entry) -> bool:
    """``move_normal_pmd``/``move_normal_pud``: move the lower table under ``old``."""
    mm = pmc.old.vm_mm
    lv = ops_of(pt, mm, old.level)
    if not lv.can_move_table:
        return False
    if not lv.none(lv.get(new.ptr)):
        return False
    old_ptl = lv.lockptr(mm, old.ptr)
    spin_lock(old_ptl)
    new_ptl = lv.lockptr(mm, new.ptr)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    res = False
    v = lv.get(old.ptr)
    if lv.present(v) and not lv.leaf(v):  # "Racing with collapse?"
        lv.clear(mm, pmc.old_addr, old.ptr)
        res = True
        lv.populate(mm, new.ptr, lv.pgtable(v))
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return res


def _move_ptes(pt: PageTables, pmc: pagetable_move_control, extent: int, old: Entry,
               new: Entry) -> int:
    """``move_ptes``: 0, or -EAGAIN if the old PTE table went away."""
    mm = pmc.old.vm_mm
    lv = ops_of(pt, mm, Level.PTE)
    if not pt.is_table(pt.read(old)) or not pt.is_table(pt.read(new)):
        return EAGAIN
    old_t, new_t = pt.descend(old), pt.descend(new)
    old_ptl = pt.lockptr(old_t)
    spin_lock(old_ptl)
    new_ptl = pt.lockptr(new_t)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    try:
        old_addr, new_addr = pmc.old_addr, pmc.new_addr
        new_slots = pt.slots(new_t, new_addr, new_addr + extent)
        for old_ptr, a, _ in pt.slots(old_t, old_addr, old_addr + extent):
            new_ptr, na, _n = next(new_slots)
            if not lv.none(lv.get(old_ptr)):
                v = lv.get_and_clear(mm, a, old_ptr)
                lv.set_at(mm, na, new_ptr, lv.moved(v))
    finally:
        if new_ptl is not old_ptl:
            spin_unlock(new_ptl)
        spin_unlock(old_ptl)
    return 0


def _move_last(pt: PageTables, pmc: pagetable_move_control, extent: int, old: Entry,
               new: Entry) -> bool:
    """The level that points to PTE tables (``move_page_tables``' PMD half, from
    ``again:``); False means stop."""
    mm = pmc.old.vm_mm
    lv = ops_of(pt, mm, old.level)
    while True:
        v = lv.get(old.ptr)
        if lv.swap(v) or lv.trans_huge(v):
            if extent == lv.size and _move_leaf(pt, pmc, old, new):
                return True
            split_huge_leaf(pt, pmc.old, old)
        elif lv.can_move_table and extent == lv.size:
            if _move_table(pt, pmc, old, new):
                return True
        if lv.none(lv.get(old.ptr)):
            return True
        if pt.ensure_table(new) is None:  # pte_alloc()
            return False
        if _move_ptes(pt, pmc, extent, old, new) >= 0:
            return True


def _move_extent(pt: PageTables, pmc: pagetable_move_control, levels: list[LevelGroup],
                 i: int) -> int | None:
    """Move one extent starting at the entry-move level ``levels[i]``: the bytes to step
    over, or None to stop (a destination table could not be allocated)."""
    level = levels[i]
    last = i == len(levels) - 1
    lv = ops_of(pt, pmc.old.vm_mm, level.level)
    extent = _extent(pt, pmc, lv.size)
    old = _lookup(pt, pmc.old, level, pmc.old_addr, last)
    if old is None:
        return extent
    new = _alloc(pt, pmc.new, level, pmc.new_addr)
    if new is None:
        return None
    if last:
        return extent if _move_last(pt, pmc, extent, old, new) else None
    v = lv.get(old.ptr)
    if lv.trans_huge(v):
        if extent == lv.size:
            _move_leaf(pt, pmc, old, new)  # "We ignore and continue on error?"
            return extent
    elif lv.can_move_table and extent == lv.size:
        if _move_table(pt, pmc, old, new):
            return extent
    return _move_extent(pt, pmc, levels, i + 1)


def move_page_tables(pt: PageTables, vma: vm_area_struct, old_addr: int,
                     new_vma: vm_area_struct, new_addr: int, len: int,
                     need_rmap_locks: bool = False, for_stack: bool = False) -> int:
    """Move the translations of ``[old_addr, old_addr + len)`` of ``vma`` to ``new_addr``
    in ``new_vma`` (same mm).  Returns the bytes moved; less than ``len`` when a
    destination table could not be allocated."""
    pmc = pagetable_move_control(
        old=vma, new=new_vma, old_addr=old_addr, old_end=old_addr + len, new_addr=new_addr,
        len_in=len, need_rmap_locks=need_rmap_locks, for_stack=for_stack,
    )
    if not pmc.len_in:
        return 0
    groups = pt.levels(vma.vm_mm)
    levels = [g for g in groups[:-1] if g.level in (Level.PUD, Level.PMD)]
    if not levels or levels[-1] != groups[-2]:
        levels.append(groups[-2])
    # "If possible, realign addresses to PMD boundary for faster copy."
    try_realign_addr(pt.k, pmc, ops_of(pt, vma.vm_mm, groups[-2].level).mask)
    while pmc.old_addr < pmc.old_end:
        extent = _move_extent(pt, pmc, levels, 0)
        if extent is None:
            break
        pmc.old_addr += extent
        pmc.new_addr += extent
    return pmc_progress(pmc)
