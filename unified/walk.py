"""One range walker for every level: the unified ``walk_page_range``.

The legacy walker (mm/pagewalk.c) is five nested loops with five callbacks
(``pgd_entry`` ... ``pte_entry``); here one recursive routine visits every entry covering a
range with one callback shape, ``visit(entry, value, addr, next) -> Action``, and reports
empty entries to ``hole(addr, next, level)``.  ``Action`` has the legacy walker's meanings:
``SUBTREE`` (the default, also for a callback returning None) descends into a table entry;
``CONTINUE`` skips the entry's subtree; ``AGAIN`` reads the entry again and calls ``visit``
once more (after the callback changed it, e.g. split a huge leaf into a table).
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
Hole = Callable[[int, int, int], None]


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
    for entry, addr, nxt in pt.entries(table, start, end):
        while True:
            value = pt.read(entry)
            if pt.is_none(value):
                if hole is not None:
                    hole(addr, nxt, entry.level)
                break
            action = visit(entry, value, addr, nxt) or Action.SUBTREE
            if action is Action.AGAIN:
                continue
            if action is Action.SUBTREE and pt.is_table(pt.read(entry)):
                walk_range(pt, pt.descend(entry), addr, nxt, visit, hole)
            break
