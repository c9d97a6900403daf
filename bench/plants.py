"""The catalogue of planted bugs :mod:`bench.detection` times the built-in campaign on.

Each plant swaps one helper of a unified port (the ``unified`` backend of ``ptshim diff``)
for a copy with one bug, the kind migrations really make: the first seven are the plants of
tests/test_diff_teeth.py (there on one hand-written scenario each), the last two reach
what only some generated scenarios reach: a PTE table freed by ``free_pgtables`` although
the next vma still uses it (mm/memory.c ``free_pgd_range``'s ceiling), and a PMD-aligned
mremap of a whole PTE table (mm/mremap.c ``move_normal_pmd``, reached by small ranges too
through ``try_realign_addr``).  There is no gather-overflow plant: the batches hold
``MMU_GATHER_BUNDLE + MAX_GATHER_BATCH_COUNT * MAX_GATHER_BATCH`` pages (9,698 with 4K
pages, 8,198 with 64K), more anonymous pages than any generated scenario frees in one
gather, and dropping the forced flush changes nothing the harness compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import unified.mm.copy as ucopy
import unified.mm.move as umove
import unified.mm.protect as uprotect
import unified.mm.split as usplit
import unified.mm.unmap as uunmap
from legacy import spin_lock, spin_unlock, vm_area_struct
from legacy.mm.mmu_gather import tlb_change_page_size
from unified.flush import FlushKind
from unified.handles import Entry, Table
from unified.legacy_ops import free_frame_of_level
from unified.levels import Level
from unified.mm._common import deposits_at, ops_of
from unified.pagetables import PageTables

__all__ = ["PLANTS", "Plant", "change_leaves_copy", "free_tables_early",
           "move_ptes_keeping_old", "planted", "split_without_bbm", "swapped"]

Plant = Callable[[], AbstractContextManager[None]]


@contextmanager
def swapped(module: Any, name: str, fn: object) -> Iterator[None]:
    """``module.name`` (a port's helper) replaced by ``fn`` for the block."""
    saved = getattr(module, name)
    setattr(module, name, fn)
    try:
        yield
    finally:
        setattr(module, name, saved)


def change_leaves_copy(*, lock: str = "split", flush: str = "all") -> Callable[..., int]:
    """A copy of ``unified.mm.protect._change_leaves``, right as it stands (the defaults),
    or with one planted bug: ``lock`` "none" or "mm" (``mm->page_table_lock``: the wrong
    lock); ``flush`` "none" (waived) or "first" (the first changed page only)."""
    def change_leaves(pt: PageTables, tlb: Any, vma: vm_area_struct, table: Table,
                      addr: int, end: int, newprot: int) -> int:
        mm = vma.vm_mm
        lv = ops_of(pt, mm, table.level)
        owed = pt.owe(mm, table.level)
        tlb_change_page_size(pt.k, tlb, lv.size)
        ptl = {"split": pt.lockptr(table), "mm": mm.page_table_lock, "none": None}[lock]
        if ptl is not None:
            spin_lock(ptl)
        pages = 0
        try:
            for ptr, a, nxt in pt.slots(table, addr, end):
                v = lv.get(ptr)
                if lv.present(v):
                    old = lv.get_and_clear(mm, a, ptr)
                    new = lv.modify(old, newprot)
                    lv.set_at(mm, a, ptr, new)
                    if lv.needs_flush(old, new) and (flush == "all" or not pages):
                        owed.add(a, nxt)
                    pages += 1
                elif lv.swap(v):
                    new = lv.change_swap(v)
                    if new != v:
                        lv.set_at(mm, a, ptr, new)
                        pages += 1
            if flush == "none":
                owed.waive("planted bug: no flush")
            else:
                owed.gather(tlb)
        finally:
            if ptl is not None:
                spin_unlock(ptl)
        return pages
    return change_leaves


def move_ptes_keeping_old(pt: PageTables, pmc: Any, extent: int, old: Entry,
                           new: Entry) -> int:
    """``move_ptes`` that copies the entries and leaves the old ones (no flush owed)."""
    mm = pmc.old.vm_mm
    lv = ops_of(pt, mm, Level.PTE)
    if not pt.is_table(pt.read(old)) or not pt.is_table(pt.read(new)):
        return -11
    old_t, new_t = pt.descend(old), pt.descend(new)
    same = pt.lockptr(old_t) is pt.lockptr(new_t)
    with pt.locked(old_t), (nullcontext() if same else pt.locked(new_t)):
        new_slots = pt.slots(new_t, pmc.new_addr, pmc.new_addr + extent)
        for old_ptr, _a, _ in pt.slots(old_t, pmc.old_addr, pmc.old_addr + extent):
            new_ptr, na, _n = next(new_slots)
            v = lv.get(old_ptr)
            if not lv.none(v):
                lv.set_at(mm, na, new_ptr, v)
    return 0


def split_without_bbm(pt: PageTables, vma: vm_area_struct, entry: Entry) -> int:
    """``split_leaf`` populating the deposited table over the live huge leaf."""
    mm = entry.mm
    if not deposits_at(entry.level, mm):
        return _split_leaf(pt, vma, entry)
    lv = ops_of(pt, mm, entry.level)
    ptl = lv.lockptr(mm, entry.ptr)
    spin_lock(ptl)
    try:
        if lv.trans_huge(lv.get(entry.ptr)):
            old = lv.get(entry.ptr)
            pgtable = lv.withdraw(mm, entry.ptr)
            usplit._fill(pt, entry, pgtable, old, check_none=True)
            lv.populate(mm, entry.ptr, pgtable)
    finally:
        spin_unlock(ptl)
    return 0


_split_leaf = usplit.split_leaf
_free_tables = uunmap._free_tables
_free_pgd_range = uunmap.free_pgd_range


def free_tables_early(pt: PageTables, tlb: Any, table: Table, addr: int, end: int,
                       floor: int, ceiling: int) -> None:
    """``_free_tables`` freeing PTE tables at once instead of through the gather."""
    mm = tlb.mm
    lv = ops_of(pt, mm, table.level)
    child = pt.lower(table.group, mm)
    if child is None or child.level != Level.PTE:
        return _free_tables(pt, tlb, table, addr, end, floor, ceiling)
    for entry, a, _ in pt.entries(table, addr, end):
        if lv.none_or_clear_bad(entry.ptr):
            continue
        token = lv.pgtable(lv.get(entry.ptr))
        lv.clear(mm, a, entry.ptr)
        free_frame_of_level(pt.k, mm, Level.PTE, token)
        ops_of(pt, mm, Level.PTE).dec_nr(mm)
    return None


def _free_ignoring_ceiling(pt: PageTables, tlb: Any, addr: int, end: int, floor: int,
                           ceiling: int) -> None:
    """``free_pgd_range`` that ignores ``ceiling`` (the next vma's start): a PTE table the
    next vma still uses is freed."""
    _free_pgd_range(pt, tlb, addr, end, floor, 0)


def _move_table_unflushed(pt: PageTables, pmc: Any, old: Entry, new: Entry) -> bool:
    """``_move_table`` (``move_normal_pmd``) that moves the table and owes a leaf-only
    flush: the walk caches keep the old table entry."""
    mm = pmc.old.vm_mm
    lv = ops_of(pt, mm, old.level)
    if not lv.can_move_table or not lv.none(lv.get(new.ptr)):
        return False
    old_ptl, new_ptl = lv.lockptr(mm, old.ptr), lv.lockptr(mm, new.ptr)
    spin_lock(old_ptl)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    v = lv.get(old.ptr)
    res = lv.present(v) and not lv.leaf(v)
    if res:
        lv.clear(mm, pmc.old_addr, old.ptr)
        lv.populate(mm, new.ptr, lv.pgtable(v))
        pt.owe(mm, old.level, pmc.old_addr, (pmc.old_addr + lv.size) & pt.k.ULONG_MASK,
               FlushKind.LEAF).waive("planted bug: no flush of the moved table")
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return res


PLANTS: dict[str, Plant] = {
    "missing-flush": lambda: swapped(uprotect, "_change_leaves",
                                     change_leaves_copy(flush="none")),
    "wrong-flush-range": lambda: swapped(uprotect, "_change_leaves",
                                         change_leaves_copy(flush="first")),
    "unlocked-pte-write": lambda: swapped(uprotect, "_change_leaves",
                                          change_leaves_copy(lock="none")),
    "fork-without-cow": lambda: swapped(ucopy, "is_cow_mapping", lambda flags: False),
    "mremap-keeps-old": lambda: swapped(umove, "_move_ptes", move_ptes_keeping_old),
    "split-without-bbm": lambda: swapped(usplit, "split_leaf", split_without_bbm),
    "table-freed-early": lambda: swapped(uunmap, "_free_tables", free_tables_early),
    "free-ignores-ceiling": lambda: swapped(uunmap, "free_pgd_range",
                                            _free_ignoring_ceiling),
    "move-pmd-unflushed": lambda: swapped(umove, "_move_table", _move_table_unflushed),
}
"""Name -> a context manager planting the bug for the block."""


def planted(name: str) -> AbstractContextManager[None]:
    """The plant ``name`` (a key of :data:`PLANTS`)."""
    return PLANTS[name]()
