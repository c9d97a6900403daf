"""Where a byte of page-table memory sits, and what an entry value means.

:class:`TableMap` walks a booted kernel's tables from its roots (the process ``mm``'s pgd
over the user and kernel ranges, and ``init_mm``'s where the kernel has a root of its own)
with the unified API, which is a wrapper over the legacy one, and records every table it
reaches.  :meth:`TableMap.locate` then turns a frame's physical address and a byte offset
into an :class:`EntryLocation`: the VA range the entry maps, its level (kernel names, folded
members included, and the hardware manual's name), the table's physical address and the
entry's index.  :func:`describe_value` decodes an entry value into the architecture's flag
names with the kernel object's ptdump hook (``k.ptdump_flags``: ``legacy/x86/ptdump.py``,
``legacy/arm64/ptdump.py``), and :func:`describe_translation` says what the hardware walker
makes of one address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from arches.config import Fault, Translation
from legacy import GenericKernel, mm_struct
from ptshim.dump import top_table_span
from unified.handles import Table, Value
from unified.levels import Level, LevelGroup
from unified.pagetables import PageTables

__all__ = [
    "EntryLocation", "TableInfo", "TableMap", "describe_translation", "describe_value",
    "entry_diffs", "kernel_level_name", "size_name",
]


def size_name(n: int) -> str:
    """``4K``, ``2M``, ``1G``... (bytes if not a multiple of 1K)."""
    for unit in ("", "K", "M", "G", "T", "P"):
        if n < 1024 or n % 1024:
            return f"{n}{unit}"
        n //= 1024
    return f"{n}E"


def kernel_level_name(group: LevelGroup) -> str:
    """``pte``, ``pmd``... or, for a group of folded levels, ``pgd/p4d/pud/pmd``."""
    return "/".join(m.legacy_name for m in group.members)


@dataclass(frozen=True)
class TableInfo:
    """One table reached from a root: its first byte, entry size and count, its real level
    and the hardware level at the same depth, and the VA of each entry's first byte."""

    pa: int
    entry_size: int
    entries: int
    group: LevelGroup
    depth: int
    """0 for a root, 1 below it..."""
    hw_name: str
    span: int
    """Bytes of VA one entry maps."""
    root: str
    """``mm`` (the process pgd) or ``init_mm``."""
    va_of: dict[int, int]
    """Index -> first VA the entry maps (only the entries the walk met)."""


@dataclass(frozen=True)
class EntryLocation:
    """One entry of one table, located."""

    table: TableInfo
    index: int
    va: int | None
    """First VA the entry maps (None if no walk from a root reaches it)."""

    @property
    def pa(self) -> int:
        return self.table.pa + self.index * self.table.entry_size

    @property
    def level_name(self) -> str:
        return kernel_level_name(self.table.group)

    def describe(self) -> str:
        t = self.table
        where = ("VA ?" if self.va is None
                 else f"VA [{self.va:#x}, {self.va + t.span:#x}) ({size_name(t.span)})")
        return (f"{where}, {self.level_name} entry (hardware {t.hw_name}), table "
                f"{t.pa:#x} index {self.index} (from {t.root}'s root)")


class TableMap:
    """Every table reachable from ``k``'s roots for ``mm`` (see the module docstring)."""

    def __init__(self, k: GenericKernel, mm: mm_struct) -> None:
        self.k = k
        self.pt = PageTables(k)
        self.tables: dict[int, TableInfo] = {}
        c = k.config
        m = k.ULONG_MASK
        # the user walk stops where the mm's top table does (as ``ptshim dump``'s): past
        # it pgd_offset wraps (s390: a 3-level mm spans 4 TiB, ``asce_limit``)
        user_end = min(c.user_range[1], top_table_span(k, mm))
        spans = [(mm, "mm", c.user_range[0], user_end), (mm, "mm", *c.kernel_range)]
        if k.SEPARATE_KERNEL_ROOT or k.init_mm.pgd.pa != mm.pgd.pa:
            spans.append((k.init_mm, "init_mm", *c.kernel_range))
        for owner, label, lo, hi in spans:
            root = self.pt.root_for(owner, lo)
            if label == "mm" and root.mm is not mm:
                label = "init_mm"
            self._walk(root, lo & m, hi & m, 0, label)

    def _info(self, table: Table, depth: int, root: str) -> TableInfo:
        pa = table.first.pa
        info = self.tables.get(pa)
        if info is None:
            hw = self.k.config.hw_levels
            info = TableInfo(
                pa=pa, entry_size=table.first.size,
                entries=self.pt.entries_per_table(table.group), group=table.group,
                depth=depth, hw_name=hw[depth].name if depth < len(hw) else "?",
                span=self.pt.level_size(table.group), root=root, va_of={},
            )
            self.tables[pa] = info
        return info

    def _walk(self, table: Table, lo: int, hi: int, depth: int, root: str) -> None:
        info = self._info(table, depth, root)
        pt = self.pt
        for entry, a, nxt in pt.entries(table, lo, hi):
            info.va_of.setdefault(entry.index, entry.va)
            if table.group.bottom is Level.PTE:
                continue
            if pt.is_table(pt.read(entry)):
                self._walk(pt.descend(entry), a, nxt, depth + 1, root)

    def locate(self, pa: int) -> EntryLocation | None:
        """The entry holding the byte at physical address ``pa``, if a walk reached its
        table."""
        for t in self.tables.values():
            if t.pa <= pa < t.pa + t.entries * t.entry_size:
                i = (pa - t.pa) // t.entry_size
                return EntryLocation(t, i, t.va_of.get(i))
        return None

    def owner_of(self, frame: int) -> str:
        """What ``k.ptdescs`` says about a frame no walk reaches (a deposited PTE table, a
        table left behind...)."""
        d = self.k.ptdescs.get(frame)
        if d is None:
            return "not a page-table frame"
        owner = "no mm" if d.mm is None else d.mm.name
        return f"unreachable {d.level} table of {owner}"


def describe_value(k: GenericKernel, group: LevelGroup, raw: int) -> str:
    """An entry value as the architecture's ptdump names its flags, with what the entry is
    (``none``, ``table``, ``leaf``, ``not present``)."""
    pt = PageTables(k)
    v = Value(group.bottom, raw)
    if pt.is_none(v):
        kind = "none"
    elif group.bottom is not Level.PTE and pt.is_leaf(v):
        kind = "huge leaf"
    elif group.bottom is not Level.PTE and pt.is_table(v):
        kind = "table"
    elif not pt.is_present(v):
        kind = "not present"
    else:
        kind = "leaf"
    flags = " ".join(k.ptdump_flags(4 - int(group.bottom), raw).split())
    return f"{raw:#x} ({kind}{': ' + flags if flags and kind != 'none' else ''})"


def describe_translation(t: Translation | Fault) -> str:
    """What the hardware walker says about one address, in a few words."""
    if isinstance(t, Fault):
        return f"fault ({t.reason})"
    return (f"pa {t.pa:#x} in a {size_name(t.size)} leaf, {t.prot}"
            f"{' user' if t.user else ' kernel'}")


def entry_diffs(frames_a: Mapping[int, bytes | bytearray],
                frames_b: Mapping[int, bytes | bytearray], entry_size: int,
                limit: int = 16) -> list[tuple[int, bytes, bytes]]:
    """``(pa, bytes a, bytes b)`` of the first ``limit`` entries that differ between two
    memory images with the same frames, in address order (entries of ``entry_size``)."""
    out: list[tuple[int, bytes, bytes]] = []
    for pa in sorted(frames_a.keys() & frames_b.keys()):
        x, y = frames_a[pa], frames_b[pa]
        if x == y:
            continue
        for off in range(0, len(x), entry_size):
            ex, ey = bytes(x[off:off + entry_size]), bytes(y[off:off + entry_size])
            if ex != ey:
                out.append((pa + off, ex, ey))
                if len(out) >= limit:
                    return out
    return out
