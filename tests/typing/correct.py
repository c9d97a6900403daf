"""The unified API used correctly: ``mypy --strict`` must accept this file cleanly.

Mirror of ``misuse.py``: each operation misused there is used here as intended.  Checked by
tests/test_unified_typing.py; never imported by pytest (it is not a ``test_*`` file).
"""

from __future__ import annotations

from legacy import GenericKernel, boot, spinlock_t
from unified import Entry, Level, PageTables, Table, Value
from unified.walk import Action, walk_range


def read_entry(pt: PageTables, table: Table, addr: int) -> Value:
    entry: Entry = pt.entry(table, addr)
    return pt.read(entry)


def step_down(pt: PageTables, entry: Entry) -> Table | None:
    if pt.is_table(pt.read(entry)):
        return pt.descend(entry)
    return None


def allocate_path(pt: PageTables, root: Table, addr: int) -> Table | None:
    table = root
    while table.level != Level.PTE:
        child = pt.ensure_table(pt.entry(table, addr))
        if child is None:  # -ENOMEM: the Optional must be checked before use
            return None
        table = child
    return table


def free_it(pt: PageTables, table: Table) -> None:
    pt.free_table(table)


def rewrite(pt: PageTables, entry: Entry, value: Value) -> None:
    pt.write(entry, value)


def index_entry(pt: PageTables, table: Table, index: int) -> Entry:
    return pt.entry_at(table, index)


def lock_of(pt: PageTables, table: Table) -> spinlock_t:
    with pt.locked(table) as ptl:
        return ptl


def is_leaf_value(pt: PageTables, value: Value) -> bool:
    return pt.is_leaf(value)


def make_pte(level: Level, raw: int) -> Value:
    return Value(level, raw)


def visit(entry: Entry, value: Value, addr: int, nxt: int) -> Action | None:
    return Action.CONTINUE if value.level == Level.PMD else None


def walk(pt: PageTables, root: Table) -> None:
    walk_range(pt, root, 0, 1 << 30, visit)


def replace_parent_value(pt: PageTables, table: Table, value: Value) -> None:
    if table.parent is not None:  # a root has no parent entry: nothing to write
        pt.write(table.parent, value)


def main() -> None:
    k: GenericKernel = boot("x86_64")
    pt = PageTables(k)
    root = pt.kernel_root()
    print(read_entry(pt, root, 0), allocate_path(pt, root, 0))
