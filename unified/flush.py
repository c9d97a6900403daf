"""TLB flush obligations: the flush a page-table change owes, as a value that must be used.

The rust ``x86_64`` crate's ``Mapper`` returns a ``#[must_use] MapperFlush`` from every
operation that changes a translation; the caller must ``flush()`` it or ``ignore()`` it on
purpose.  Here every restricting operation of :class:`~unified.pagetables.PageTables`
(``clear``, ``get_and_clear``, ``write`` over a present entry, ``set_wrprotect``,
``free_table``) returns a :class:`TlbFlush` naming the mm, the range ``[start, end)``, the
level(s) whose entries changed and the kind (a leaf translation, or a table entry whose
walk caches and freed table must go too).  An obligation is consumed by exactly one of:

- ``owed.flush(vma)``: the legacy ``flush_tlb_page``/``flush_tlb_range``/
  ``flush_pmd_tlb_range``/``flush_pud_tlb_range`` (``flush_tlb_kernel_range``, or
  ``flush_tlb_all`` for kernel table entries, on ``init_mm``), then the tables it owns are
  freed -- the kernel's "unhook, invalidate, free"; a user table it owns goes through an
  ``mmu_gather`` of its own (``pXd_free_tlb``, ``tlb_finish_mmu``), the only way the kernel
  frees one;
- ``owed.gather(tlb)``: handed to an ``mmu_gather`` (``tlb_flush_pte_range``/
  ``_pmd_``/``_pud_``/``_p4d_range``, ``pte_free_tlb``/``pmd_free_tlb``... for owned tables),
  which flushes and frees at ``tlb_finish_mmu``;
- ``owed.waive(reason)``: nothing to flush (e.g. a permission *upgrade* through ``write``,
  which the unified API cannot tell from a restriction on every architecture).

Obligations merge: ``a | b`` (same mm) is one obligation over the hull of both ranges, so a
loop that clears 512 PTEs consumes one; ``owed.add(start, end)`` grows one in place.

**Enforcement is at run time** (Python has no ``#[must_use]``; mypy cannot see a discarded
return value): every obligation is registered with its kernel's book when created and
removed when consumed.  One that is garbage-collected unconsumed is recorded with the line
that dropped it; at the end of the call site (``k.syscall_exit(where)``, through
``k.syscall_exit_hooks``, or ``pt.check_obligations(where)`` directly) every dropped or still
unconsumed obligation raises :class:`UnconsumedFlush` naming the port line that created it.
The emulated TLB's own check (stale translations) runs right after and catches a flush of
the wrong range.

Usage in a port (``unified/mm``), one obligation per run of entries::

    owed = pt.owe(mm, Level.PTE)                 # nothing yet; created here (file:line)
    for ptr, a, nxt in pt.slots(table, addr, end):
        lv.get_and_clear(mm, a, ptr)             # a raw LevelOps store ...
        owed.add(a, nxt)                         # ... and what it owes
    owed.gather(tlb)                             # or owed.flush(vma)

or with the PageTables operations, which return the obligation themselves::

    owed = pt.clear(entry) | pt.clear(other)
    owed.flush(vma)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from enum import Enum

from legacy import BadInput, EntryPtr, GenericKernel, PtshimError, mm_struct, vm_area_struct
from legacy.mm.mmu_gather import mmu_gather, tlb_finish_mmu, tlb_gather_mmu
from legacy.tlbflush import call_site
from unified.legacy_ops import (
    flush_leaf_range,
    free_frame_of_level,
    gather_range,
    gather_table_free,
)
from unified.levels import Level

__all__ = ["FlushKind", "TlbFlush", "UnconsumedFlush", "book_of", "owe"]


class UnconsumedFlush(PtshimError):
    """A flush obligation was dropped, or not consumed by the end of its call site."""


class FlushKind(Enum):
    LEAF = "leaf"
    """A leaf translation was removed or restricted: its TLB entries are stale."""
    TABLE = "table"
    """A table entry was cleared or replaced: paging-structure (walk) caches are stale too,
    and a table the entry pointed to may be freed only after the flush."""


class _Book:
    """The obligations of one kernel: live (registered, unconsumed) and dropped."""

    def __init__(self, k: GenericKernel) -> None:
        self._k = weakref.ref(k)  # the book is the value of a WeakKeyDictionary keyed by k:
        # a strong reference back would keep every kernel (and its memory) alive for ever
        self.live: dict[int, weakref.ref[TlbFlush]] = {}
        self.dropped: list[str] = []

    @property
    def k(self) -> GenericKernel:
        k = self._k()
        assert k is not None, "a flush obligation outlived its kernel"
        return k

    def check(self, where: str) -> None:
        """Raise :class:`UnconsumedFlush` if an obligation was dropped or is still owed at
        the end of ``where``; each is reported once."""
        problems = list(self.dropped)
        self.dropped.clear()
        for ref in list(self.live.values()):
            owed = ref()
            if owed is not None and owed.pending:
                problems.append(f"{owed.describe()}, not consumed by the end of {where}")
                owed._settle()
        self.live.clear()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UnconsumedFlush(f"TLB flush obligation {problems[0]}{more}")


_BOOKS: weakref.WeakKeyDictionary[GenericKernel, _Book] = weakref.WeakKeyDictionary()


def book_of(k: GenericKernel) -> _Book:
    """The kernel's book of obligations; the first call registers its end-of-call-site
    check in ``k.syscall_exit_hooks``."""
    book = _BOOKS.get(k)
    if book is None:
        book = _BOOKS[k] = _Book(k)
        hooks: list[Callable[[str], None]] | None = getattr(k, "syscall_exit_hooks", None)
        if hooks is not None:
            hooks.append(book.check)
    return book


_TableToFree = tuple[Level, EntryPtr, int]
"""(level of the table's entries, its first entry, the address it maps)."""


class TlbFlush:
    """A TLB flush owed for ``[start, end)`` of ``mm`` (``end`` 0 = the top): the module
    docstring says how to consume it.  ``levels`` are the levels whose entries changed,
    ``kind`` whether walk caches (and tables) are involved, ``site`` where it was made."""

    __slots__ = ("_book", "mm", "start", "end", "levels", "kind", "site", "_tables",
                 "_pending", "__weakref__")

    def __init__(self, book: _Book, mm: mm_struct, level: Level, start: int, end: int,
                 kind: FlushKind = FlushKind.LEAF, site: object = None,
                 tables: list[_TableToFree] | None = None) -> None:
        self._book = book
        self.mm = mm
        self.start = start
        self.end = end
        self.levels: set[Level] = {level}
        self.kind = kind
        self.site = site if site is not None else call_site(2)
        self._tables: list[_TableToFree] = tables or []
        self._pending = start != end
        if self._pending:
            book.live[id(self)] = weakref.ref(self)

    @classmethod
    def nothing(cls, book: _Book, mm: mm_struct, level: Level) -> TlbFlush:
        """An empty obligation (nothing owed yet): :meth:`add` or ``|`` make it owe."""
        return cls(book, mm, level, 0, 0, site=call_site(2))

    # -- what is owed --------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Owed and not consumed yet."""
        return self._pending

    @property
    def level(self) -> Level:
        """The highest level whose entries changed."""
        return max(self.levels)

    def describe(self) -> str:
        lv = "/".join(lvl.name for lvl in sorted(self.levels))
        return (f"({self.kind.value} {lv} [{self.start:#x}, {self.end:#x}) of {self.mm.name}) "
                f"created by {self.site}")  # Site prints as function (dir/file:line)

    def __repr__(self) -> str:
        state = "pending" if self._pending else "consumed" if self.start != self.end else (
            "nothing owed")
        return f"<TlbFlush {self.describe()} {state}>"

    def add(self, start: int, end: int, level: Level | None = None,
            kind: FlushKind = FlushKind.LEAF) -> None:
        """Grow the obligation to cover ``[start, end)`` too (a loop's next entry)."""
        if start == end:
            return
        if not self._pending:
            if self.start != self.end:
                raise BadInput(f"TlbFlush.add on a consumed obligation {self.describe()}")
            self.start, self.end = start, end
            self._pending = True
            self._book.live[id(self)] = weakref.ref(self)
        else:
            self.start = min(self.start, start)
            self.end = 0 if 0 in (self.end, end) else max(self.end, end)
        if level is not None:
            self.levels.add(level)
        if kind is FlushKind.TABLE:
            self.kind = kind

    def __or__(self, other: TlbFlush) -> TlbFlush:
        """One obligation owing both (same mm); both operands are consumed by the merge."""
        if other.mm is not self.mm:
            raise BadInput(f"cannot merge flushes of {self.mm.name} and {other.mm.name}")
        for o in (self, other):
            if not o._pending and o.start != o.end:
                raise BadInput(f"merging a consumed obligation {o.describe()}")
        if not other._pending:
            return self
        if not self._pending:
            return other
        merged = TlbFlush(self._book, self.mm, self.level, self.start, self.end, self.kind,
                          self.site, self._tables + other._tables)
        merged.levels |= self.levels
        merged.add(other.start, other.end, other.level, other.kind)
        merged.levels |= other.levels
        self._settle()
        other._settle()
        return merged

    # -- consuming -----------------------------------------------------------------------

    def _settle(self) -> None:
        self._pending = False
        self._book.live.pop(id(self), None)

    def _take(self) -> bool:
        if not self._pending:
            if self.start != self.end:
                raise BadInput(f"TLB flush obligation consumed twice: {self.describe()}")
            return False
        self._settle()
        return True

    def waive(self, reason: str) -> None:
        """Consume without flushing: ``reason`` says why none is needed.  Refused when the
        obligation owns tables to free (they must go through a flush)."""
        if self._tables:
            raise BadInput(f"cannot waive {self.describe()}: it frees tables ({reason})")
        self._take()

    def flush(self, vma: vm_area_struct | None = None) -> None:
        """Flush what is owed now (``vma`` defaults to a pseudo-vma over the range), then
        free the tables it owns."""
        if self._tables and self._pending and not self.mm.is_init_mm:
            # A user table is freed only through an mmu_gather in the kernel (free_pgtables:
            # pXd_free_tlb, whose architecture versions add to the flush -- s390 sets
            # flush_mm, without which its flush_tlb_range purges nothing; classic arm
            # widens the range): there is no "flush_tlb_range, then free" for user tables.
            k = self._book.k
            tlb = tlb_gather_mmu(k, self.mm)
            self.gather(tlb)
            tlb_finish_mmu(k, tlb)
            return
        if not self._take():
            return
        k = self._book.k
        mm, start, end = self.mm, self.start, self.end
        if mm.is_init_mm:
            if self.kind is FlushKind.TABLE:
                k.flush_tlb_all()
            else:
                k.flush_tlb_kernel_range(start, end)
        else:
            if vma is None:
                vma = vm_area_struct(vm_mm=mm, vm_start=start, vm_end=end, vm_flags=0,
                                     vm_page_prot=0)
            if self.kind is FlushKind.TABLE or len(self.levels) > 1:
                k.flush_tlb_range(vma, start, end)  # walk caches too / mixed strides
            else:
                flush_leaf_range(k, vma, self.level, start, end)
        for level, first, _addr in self._tables:
            free_frame_of_level(k, mm, level, first)

    def gather(self, tlb: mmu_gather) -> None:
        """Hand what is owed to ``tlb`` (same mm): its range and cleared-level flags, and
        the tables to free after its flush (``pXd_free_tlb``)."""
        if tlb.mm is not self.mm:
            raise BadInput(f"gathering a flush of {self.mm.name} into {tlb.mm.name}'s mmu_gather")
        if not self._take():
            return
        k = self._book.k
        size = (self.end - self.start) & k.ULONG_MASK
        for level in sorted(self.levels):
            gather_range(k, tlb, level, self.start, size)
        if self.kind is FlushKind.TABLE:
            tlb.freed_tables = True
        for level, first, addr in self._tables:
            gather_table_free(k, tlb, level, first, addr)

    def __del__(self) -> None:
        try:
            if self._pending:
                self._book.live.pop(id(self), None)
                self._pending = False
                self._book.dropped.append(f"{self.describe()}, dropped by {call_site(2)}")
        except Exception:  # interpreter shutdown: nothing left to report to
            pass


def owe(k: GenericKernel, mm: mm_struct, level: Level, start: int = 0, end: int = 0,
        kind: FlushKind = FlushKind.LEAF) -> TlbFlush:
    """An obligation for ``[start, end)`` (empty by default) created at the caller's call
    site (the port line)."""
    return TlbFlush(book_of(k), mm, level, start, end, kind, call_site(2))

