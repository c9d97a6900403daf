"""The unified API used correctly: ``mypy --strict`` must accept this file cleanly.

Mirror of ``misuse.py``: each operation misused there is used here as intended.  Checked by
tests/test_unified_typing.py; never imported by pytest (it is not a ``test_*`` file).
"""

from __future__ import annotations

from legacy import GenericKernel, boot, spinlock_t, vm_area_struct
from legacy.mm.mmu_gather import mmu_gather
from unified import Entry, Level, PageTables, Table, Value
from unified.flush import TlbFlush
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


def free_it(pt: PageTables, table: Table, tlb: mmu_gather) -> None:
    pt.free_table(table).gather(tlb)  # the obligation goes to the gather: freed after flush


def rewrite(pt: PageTables, entry: Entry, value: Value, vma: vm_area_struct) -> None:
    with pt.locked(entry.table):
        owed: TlbFlush = pt.write(entry, value)
    owed.flush(vma)


def clear_run(pt: PageTables, table: Table, addr: int, end: int) -> TlbFlush:
    """Many clears, one obligation, handed back to the caller to consume."""
    owed = pt.owe(table.mm, table.level)
    for entry, _a, _n in pt.entries(table, addr, end):
        owed |= pt.clear(entry)
    return owed


def write_protect(pt: PageTables, entry: Entry) -> Value:
    with pt.locked(entry.table):
        pt.set_wrprotect(entry).waive("the caller flushes the whole range")
    v = pt.read(entry)
    assert not pt.is_writable(v)
    return pt.mkclean(pt.mkold(pt.wrprotect(v)))


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
        pt.write(table.parent, value).waive("a fresh table: nothing was mapped")


def main() -> None:
    k: GenericKernel = boot("x86_64")
    pt = PageTables(k)
    root = pt.kernel_root()
    print(read_entry(pt, root, 0), allocate_path(pt, root, 0))
