"""Deliberate misuses of the unified API: ``mypy --strict`` must reject each marked line.

Every line ending in ``# expect: CODE`` must produce a mypy error with that error code on
that line, and no other line may produce one (tests/test_unified_typing.py).  The handles
are distinct classes (review point R1): a table is not an entry, an entry is not a value, a
level is not a table, and a root has no writable pseudo-entry (R8).  The correct versions
are in ``correct.py``.
"""

from __future__ import annotations

from legacy import PtePtr, spinlock_t
from unified import Entry, Level, PageTables, Table, Value
from unified.walk import walk_range


def misuses(pt: PageTables, table: Table, entry: Entry, value: Value, ptr: PtePtr) -> None:
    # R1: a table is not an entry -- read/write/clear take an entry.
    pt.read(table)  # expect: arg-type
    pt.write(table, value)  # expect: arg-type
    pt.clear(table)  # expect: arg-type
    # R1: an entry is not a value, a value is not an entry.
    pt.write(entry, entry)  # expect: arg-type
    pt.is_leaf(entry)  # expect: arg-type
    pt.is_none(table)  # expect: arg-type
    # R6: descend takes an entry (the one pointing to the lower table), not its value.
    pt.descend(value)  # expect: arg-type
    pt.descend(table)  # expect: arg-type
    pt.ensure_table(value)  # expect: arg-type
    # R7: free_table takes the table to free -- never an entry or a value.
    pt.free_table(entry)  # expect: arg-type
    pt.free_table(value)  # expect: arg-type
    # A level is not a table.
    pt.entry(Level.PTE, 0x1000)  # expect: arg-type
    pt.entry_at(Level.PMD, 3)  # expect: arg-type
    pt.lockptr(Level.PTE)  # expect: arg-type
    pt.lockptr(entry)  # expect: arg-type
    # A legacy pointer is not a unified entry.
    pt.read(ptr)  # expect: arg-type
    # ensure_table may fail (-ENOMEM): its result must be checked before use.
    pt.entry(pt.ensure_table(entry), 0)  # expect: arg-type
    # R8: a root has no parent entry, so there is no "fake CR3 entry" to write.
    pt.write(pt.kernel_root().parent, value)  # expect: arg-type
    # Handles are immutable: descending returns a new handle, nothing is moved in place.
    entry.index = 3  # expect: misc
    table.group = table.group  # expect: misc
    # The walker's callback has one shape, (entry, value, addr, next) -> Action | None.
    walk_range(pt, table, 0, 0, lambda e: None)  # expect: arg-type, misc
    # read returns the entry's Value, not its lock (that is lockptr/locked of the table).
    lock: spinlock_t = pt.read(entry)  # expect: assignment
    del lock
    # Restricting operations return the flush they owe (unified/flush.py), not None: the
    # obligation is consumed by a flush, a gather or an explicit waive.  (Dropping it is
    # caught at run time, at the end of the call site: mypy has no must-use.)
    nothing: None = pt.clear(entry)  # expect: assignment
    del nothing
    pt.clear(entry).flush(entry)  # expect: arg-type
    pt.free_table(table).gather(table)  # expect: arg-type
    pt.get_and_clear(entry).flush()  # expect: attr-defined
    # Value operations take a Value, not an entry (nor a raw int).
    pt.is_writable(entry)  # expect: arg-type
    pt.wrprotect(value.raw)  # expect: arg-type
