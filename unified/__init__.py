"""The unified, level-generic page-table API: a wrapper over the public legacy API only.

Start with ``PageTables(legacy.boot(name))``; see docs/unified-api.md.
"""

from unified.flush import FlushKind, TlbFlush, UnconsumedFlush
from unified.handles import Entry, Table, Value
from unified.levels import Level, LevelGroup, real_levels
from unified.pagetables import PageTables

__all__ = [
    "Entry", "FlushKind", "Level", "LevelGroup", "PageTables", "Table", "TlbFlush",
    "UnconsumedFlush", "Value", "real_levels",
]
