"""One range walker for every level: the unified ``walk_page_range``.

The legacy walker (mm/pagewalk.c) is five nested loops with five callbacks
(``pgd_entry`` ... ``pte_entry``); here one recursive routine visits every entry covering a
range with one callback shape, ``visit(entry, value, addr, next) -> Action``, and reports
empty entries to ``hole(addr, next, empty)``, with the empty entry's value: empty is not
always zero (s390's invalid bits; LoongArch's kernel ptes keep ``_PAGE_GLOBAL``, its
directory entries point at ``invalid_pte_table``), and ``mm/ptdump.c`` notes what it read.
``Action`` has the legacy walker's meanings:
``SUBTREE`` (the default, also for a callback returning None) descends into a table entry;
``CONTINUE`` skips the entry's subtree; ``AGAIN`` reads the entry again and calls ``visit``
once more (after the callback changed it, e.g. split a huge leaf into a table).

The walker itself changes nothing.  A ``visit`` that removes or restricts translations owes
flushes (:mod:`unified.flush`): merge what its ``PageTables`` operations return into one
obligation (``owed |= pt.set_wrprotect(entry)``) and consume it after the walk, once.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from unified.handles import Entry, Table, Value
from unified.pagetables import PageTables


class Action(Enum):
    SUBTREE = 0
    CONTINUE = 1
    AGAIN = 2


Visit = Callable[[Entry, Value, int, int], "Action | None"]
Hole = Callable[[int, int, Value], None]


def walk_range(
    pt: PageTables,
    table: Table,
    start: int,
    end: int,
    visit: Visit,
    hole: Hole | None = None,
) -> None:
    """Visit every entry of ``table`` and the tables below it that covers ``[start, end)``
    (``end == 0`` is the top of the address space), root to leaf, in address order."""
    if table.group.bottom == 0:
        _walk_leaves(pt, table, start, end, visit, hole)
        return
    for entry, addr, nxt in pt.entries(table, start, end):
        while True:
            value = pt.read(entry)
            if pt.is_none(value):
                if hole is not None:
                    hole(addr, nxt, value)
                break
            action = visit(entry, value, addr, nxt) or Action.SUBTREE
            if action is Action.AGAIN:
                continue
            if action is Action.SUBTREE and pt.is_table(pt.read(entry)):
                walk_range(pt, pt.descend(entry), addr, nxt, visit, hole)
            break


def _walk_leaves(
    pt: PageTables,
    table: Table,
    start: int,
    end: int,
    visit: Visit,
    hole: Hole | None,
) -> None:
    """:func:`walk_range` on a PTE table, the loop that runs for most entries: the same
    visits, with the entry handles built directly (a PTE table has no folded members and no
    entry below it, so there is nothing to descend into after ``visit``)."""
    k = pt.k
    m = k.ULONG_MASK
    lv = pt.legacy[table.group.top]
    get, none = lv.get, lv.none
    size = 1 << lv.shift
    level = table.group.bottom
    index = lv.index(start)
    ptr = table.first + index
    again = Action.AGAIN
    # Entries [start, end) of one table: every one spans ``size`` except possibly the
    # first and last (clipped to the walk's range).
    va = start & ~(size - 1) & m
    last_va = (end - 1) & ~(size - 1) & m
    addr = start
    while True:
        nxt = end if va == last_va else va + size
        while True:
            raw = get(ptr)
            if none(raw):
                if hole is not None:
                    hole(addr, nxt, Value(level, raw))
                break
            if visit(Entry(table, index, ptr, va), Value(level, raw), addr, nxt) is not again:
                break
        if va == last_va:
            return
        va = addr = nxt
        index += 1
        ptr = ptr + 1
