"""The three things the unified API distinguishes (review point R1): a *table*, a pointer to
one *entry* in a table, and an entry *value*.

They are separate classes, so ``mypy --strict`` rejects passing one where another is meant
(``read(table)``, ``descend(value)``...).  A handle carries its level alongside the legacy
pointer (R12): nothing is packed into pointer bits, and no table is found by masking an
entry's address, so tables smaller or larger than a page (16-byte arm64 pgds, 32-byte PAE
PDPTs, 16 KiB s390 CRSTs) need no special case.  Values are Python ints, so 64-bit entries
on 32-bit configurations (PAE) and multi-word entries fit whole (R11).
"""

from __future__ import annotations

from typing import Final

from legacy import EntryPtr, mm_struct
from unified.levels import LevelGroup


class Table:
    """A page table at one real level: the hardware table whose first entry is ``first``.

    ``va`` is the first virtual address its entry 0 maps; ``parent`` is the entry that
    points to it, or None for a root (a root is freed only with its mm).  Equal when all
    five are; immutable for the type checker, a plain slotted class as :class:`Entry`
    (every step down a walk makes one)."""

    __slots__ = ("group", "first", "va", "mm", "parent")

    def __init__(self, group: LevelGroup, first: EntryPtr, va: int, mm: mm_struct,
                 parent: Entry | None) -> None:
        self.group: Final = group
        self.first: Final = first
        """Legacy pointer to entry 0, typed as the group's top level (``pgd_t *`` for a
        root)."""
        self.va: Final = va
        self.mm: Final = mm
        self.parent: Final = parent

    def _key(self) -> tuple[LevelGroup, EntryPtr, int, mm_struct, Entry | None]:
        return (self.group, self.first, self.va, self.mm, self.parent)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Table(level {self.level}, va {self.va:#x}, {self.first!r}"
                + (", root)" if self.parent is None else ")"))

    @property
    def level(self) -> int:
        return self.group.level

    @property
    def is_root(self) -> bool:
        return self.parent is None


class Entry:
    """A pointer to one entry of ``table`` (Andy's ``ptep_t``): ``index`` is its slot,
    ``ptr`` the legacy pointer at the group's lowest level, ``va`` the first address it maps.

    Immutable for the type checker (``Final`` attributes); a plain slotted class because the
    walker makes one per visited entry and a frozen dataclass costs twice as much to build."""

    __slots__ = ("table", "index", "ptr", "va")

    def __init__(self, table: Table, index: int, ptr: EntryPtr, va: int) -> None:
        self.table: Final = table
        self.index: Final = index
        self.ptr: Final = ptr
        self.va: Final = va

    @property
    def level(self) -> int:
        return self.table.group.level

    @property
    def mm(self) -> mm_struct:
        return self.table.mm

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and (self.table, self.index) == (other.table, other.index)

    def __hash__(self) -> int:
        return hash((self.table, self.index))

    def __repr__(self) -> str:
        return f"Entry(level {self.level}, index {self.index}, va {self.va:#x}, {self.ptr!r})"


class Value:
    """The value read from an entry at ``level`` (the raw bits, in the legacy encoding).
    Immutable for the type checker, as :class:`Entry`."""

    __slots__ = ("level", "raw")

    def __init__(self, level: int, raw: int) -> None:
        self.level: Final = level
        self.raw: Final = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and (self.level, self.raw) == (other.level, other.raw)

    def __hash__(self) -> int:
        return hash((self.level, self.raw))

    def __repr__(self) -> str:
        return f"Value(level {self.level}, {self.raw:#x})"
