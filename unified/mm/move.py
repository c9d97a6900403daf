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

Every move owes a TLB flush of the old range (:mod:`unified.flush`), consumed before the
locks are dropped, as the kernel flushes: ``move_ptes`` the whole extent when it moved a
present pte (``flush_tlb_range(vma, old_end - len, old_end)``), a table move its entry's
range with walk caches (``flush_tlb_range``), a leaf move its leaf
(``flush_pmd_tlb_range``/``flush_pud_tlb_range``).
"""

from __future__ import annotations

from legacy import MAP_FIXED, mm_struct, spin_lock, spin_unlock, vm_area_struct
from legacy.mm.mremap import copy_vma, pagetable_move_control, pmc_progress, try_realign_addr
from legacy.mm.vma import find_vma_intersection
from legacy.mm_types import mmap_assert_write_locked
from unified.flush import FlushKind
from unified.handles import Entry, Table
from unified.levels import Level, LevelGroup
from unified.mm._common import EAGAIN, EFAULT, ENOMEM, deposits_at, ops_of
from unified.mm.mmap import do_munmap
from unified.mm.split import split_huge_leaf
from unified.pagetables import PageTables

__all__ = ["move_page_tables", "move_vma", "mremap_to"]


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
    owed = pt.owe(mm, old.level)
    if lv.present(v):  # force_flush
        owed.add(pmc.old_addr, (pmc.old_addr + lv.size) & pt.k.ULONG_MASK)
    # "With split pmd lock we also need to move preallocated PTE page table if new_pmd is
    # on different PMD page table."
    if deposits_at(old.level, mm) and new_ptl is not old_ptl:
        lv.deposit(mm, new.ptr, lv.withdraw(mm, old.ptr))
    lv.set_at(mm, pmc.new_addr, new.ptr, lv.moved(v))
    owed.flush(pmc.old)  # flush_pmd_tlb_range / flush_pud_tlb_range of the old leaf
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
        # flush_tlb_range(vma, old_addr, old_addr + PMD_SIZE / PUD_SIZE): walk caches too
        pt.owe(mm, old.level, pmc.old_addr, (pmc.old_addr + lv.size) & pt.k.ULONG_MASK,
               FlushKind.TABLE).flush(pmc.old)
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
        old_end = old_addr + extent
        owed = pt.owe(mm, Level.PTE)
        new_slots = pt.slots(new_t, new_addr, new_addr + extent)
        for old_ptr, a, _ in pt.slots(old_t, old_addr, old_end):
            new_ptr, na, _n = next(new_slots)
            old_v = lv.get(old_ptr)
            if not lv.none(old_v):
                # "If we are remapping a valid PTE, make sure to flush TLB before we drop
                # the PTL for the PTE."
                if lv.present(old_v):
                    owed.add(old_addr, old_end)  # flush_tlb_range(vma, old_end - len, old_end)
                v = lv.get_and_clear(mm, a, old_ptr)
                lv.set_at(mm, na, new_ptr, lv.moved(v))
        if owed.pending:
            # The kernel's flush_tlb_range whatever the length (owed.flush would use
            # flush_tlb_page for one pte: last level only on arm64).
            owed.waive("move_ptes flushes the extent with flush_tlb_range right here")
            pt.k.flush_tlb_range(pmc.old, old_addr, old_end)
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


def move_vma(pt: PageTables, vma: vm_area_struct, old_addr: int, old_len: int, new_len: int,
             new_addr: int) -> int:
    """mm/mremap.c ``move_vma`` (legacy/mm/mremap.py): a new vma at ``new_addr``
    (``copy_vma``, the shared vma bookkeeping), the translations moved, the old range
    unmapped; on a short move everything is moved back and the new range unmapped.
    Returns ``new_addr`` or -errno."""
    k = pt.k
    mm = vma.vm_mm
    new_pgoff = vma.vm_pgoff + ((old_addr - vma.vm_start) >> k.PAGE_SHIFT)
    new_vma = copy_vma(k, vma, new_addr, new_len, new_pgoff)
    if new_vma is None:
        return ENOMEM
    moved_len = move_page_tables(pt, vma, old_addr, new_vma, new_addr, old_len)
    if moved_len < old_len:
        move_page_tables(pt, new_vma, new_addr, vma, old_addr, moved_len, True)
        old_addr, old_len, ret = new_addr, new_len, ENOMEM
    else:
        ret = new_addr
    do_munmap(pt, mm, old_addr, old_len)
    return ret


def mremap_to(pt: PageTables, mm: mm_struct, addr: int, old_len: int, new_addr: int,
              new_len: int) -> int:
    """``mremap(MREMAP_MAYMOVE | MREMAP_FIXED)`` of a range inside one vma, same size
    (legacy/mm/mremap.py ``mremap_to``): unmap the destination, ask the arch's
    ``get_unmapped_area`` for it (s390 adds levels there), then :func:`move_vma`."""
    k = pt.k
    mmap_assert_write_locked(mm)
    err = do_munmap(pt, mm, new_addr, new_len)
    if err:
        return err
    vma = find_vma_intersection(k, mm, addr, addr + old_len)
    if vma is None or vma.vm_start > addr or vma.vm_end < addr + old_len:
        return EFAULT
    pgoff = vma.vm_pgoff + ((addr - vma.vm_start) >> k.PAGE_SHIFT)
    ret = k.arch_get_unmapped_area(mm, new_addr, new_len, pgoff, MAP_FIXED)  # the arch's say
    if ret < 0:
        return ret
    return move_vma(pt, vma, addr, old_len, new_len, new_addr)
