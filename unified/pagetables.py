"""The unified page-table API: level-generic access built only from legacy calls.

``PageTables(k)`` wraps one booted legacy kernel.  Its vocabulary (docs/unified-api.md):

- **level**: :class:`~unified.levels.Level`, 0 = PTE, growing toward the root; folded levels
  are skipped (R2).
- **table** / **entry** / **value**: :class:`~unified.handles.Table`,
  :class:`~unified.handles.Entry`, :class:`~unified.handles.Value` (R1).
- **root**: the table the MMU starts from for an address, :meth:`root_for`; the kernel's own
  root is :meth:`kernel_root` (R4, R5).  Roots are real tables; there is no pseudo-entry
  standing for CR3/TTBR that a caller could write to (R8).
- **leaf**: a present entry that maps memory rather than a lower table (a PTE, or a huge
  PMD/PUD).
- **range end**: :meth:`range_end`, the end of what the current entry covers, clipped to the
  walk's end (R3).

Every method is a composition of legacy API calls through :mod:`unified.legacy_ops`; no
method knows an architecture (R9).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from legacy import BadInput, EntryPtr, GenericKernel, mm_struct, spin_lock, spin_unlock, spinlock_t
from unified.flush import FlushKind, TlbFlush, book_of
from unified.handles import Entry, Table, Value
from unified.legacy_ops import (
    LegacyLevel,
    LevelOps,
    alloc_below,
    descend_offset,
    legacy_levels,
    level_ops,
    lockptr,
    uncharge_level,
)
from unified.legacy_ops import none_or_clear_bad as legacy_none_or_clear_bad
from unified.levels import LEVELS, Level, LevelGroup, folding, real_levels


class PageTables:
    """Level-generic page-table operations for the kernel ``k``."""

    def __init__(self, k: GenericKernel) -> None:
        self.k = k
        self.legacy: dict[Level, LegacyLevel] = legacy_levels(k)
        self._groups: dict[tuple[int, tuple[bool, bool, bool]], tuple[LevelGroup, ...]] = {}
        self._lower: dict[tuple[int, int], LevelGroup | None] = {}
        self._by_int: tuple[LegacyLevel, ...] = tuple(self.legacy[lv] for lv in LEVELS)
        """``self.legacy`` indexed by the int level (no ``Level(n)`` on hot paths)."""
        self._ops: dict[bool, dict[Level, LevelOps]] = {}
        """The adapters of user (False) and ``init_mm`` (True) tables, built when first
        asked for (a session that touches no kernel table never needs the second)."""
        self._book = book_of(k)
        """The kernel's flush obligations (:mod:`unified.flush`), checked at
        ``k.syscall_exit`` and by :meth:`check_obligations`."""

    # -- levels ----------------------------------------------------------------------

    def levels(self, mm: mm_struct) -> tuple[LevelGroup, ...]:
        """The real levels of ``mm``, root first (discovered from the legacy folding
        predicates; cached per mm and folding: s390 adds levels under a live mm)."""
        now = folding(self.k, mm)
        key = (id(mm), now)
        groups = self._groups.get(key)
        if groups is None:
            groups = self._groups[key] = real_levels(self.k, mm, now)
        return groups

    def level_size(self, group: LevelGroup) -> int:
        """Bytes one entry at this level maps (``1 << X_SHIFT`` of the group's
        :attr:`~unified.levels.LevelGroup.geometry` member)."""
        return 1 << self.legacy[group.geometry].shift

    def entries_per_table(self, group: LevelGroup) -> int:
        return self.legacy[group.geometry].ptrs

    def lower(self, group: LevelGroup, mm: mm_struct) -> LevelGroup | None:
        """The next real level below ``group``, or None at the PTE level."""
        key = (id(mm), id(group))  # groups live as long as the levels cached for mm
        try:
            return self._lower[key]
        except KeyError:
            pass
        groups = self.levels(mm)
        i = groups.index(group)
        low = self._lower[key] = groups[i + 1] if i + 1 < len(groups) else None
        return low

    def ops(self, mm: mm_struct) -> dict[Level, LevelOps]:
        """The per-level legacy adapters (:class:`~unified.legacy_ops.LevelOps`) for tables
        of ``mm`` (``init_mm`` has its own: ``pte_alloc_one_kernel``, ``pmd_populate_kernel``)."""
        return self._level_ops(mm.is_init_mm)

    def _level_ops(self, kernel: bool) -> dict[Level, LevelOps]:
        ops = self._ops.get(kernel)
        if ops is None:
            ops = self._ops[kernel] = level_ops(self.k, kernel=kernel)
        return ops

    def is_bottom(self, table: Table) -> bool:
        """True for a PTE table: every entry is a leaf slot, none points to a table."""
        return table.group.bottom is Level.PTE

    # -- roots (R4, R5, R8) --------------------------------------------------------------

    def root_for(self, mm: mm_struct, addr: int) -> Table:
        """The root table the MMU uses for ``addr`` while ``mm`` is current.

        On architectures with one root per mm (x86, RISC-V), that is ``mm->pgd`` for every
        address: the kernel half is cloned into it.  Where the kernel has a root of its own
        (arm64 TTBR1 = ``swapper_pg_dir``, ``k.SEPARATE_KERNEL_ROOT``), a kernel address
        gets the kernel root even for a user ``mm`` -- walking the user pgd for it would
        find nothing, since ``pgd_alloc`` there clones nothing (or, worse, the user mapping
        that aliases the address's low bits)."""
        if (mm is not self.k.init_mm and self.is_kernel_address(addr)
                and self.k.SEPARATE_KERNEL_ROOT):
            mm = self.k.init_mm
        return self._root(mm)

    def kernel_root(self) -> Table:
        """The root of ``init_mm`` (``swapper_pg_dir``): Andy's ``ptp_get_kernel_root()``."""
        return self._root(self.k.init_mm)

    def is_kernel_address(self, addr: int) -> bool:
        return addr >= self.k.TASK_SIZE

    def _root(self, mm: mm_struct) -> Table:
        return Table(self.levels(mm)[0], mm.pgd, 0, mm, None)

    # -- entries (R1) --------------------------------------------------------------------

    def _entry(self, table: Table, index: int, va: int) -> Entry:
        group = table.group
        ptr: EntryPtr = table.first + index
        for member in group.members[1:]:
            ptr = descend_offset(self.k, member, ptr, va)
        return Entry(table, index, ptr, va)

    def entry(self, table: Table, addr: int) -> Entry:
        """The entry of ``table`` that maps ``addr`` (``pXd_offset`` for this level)."""
        top = self.legacy[table.group.geometry]
        span_mask = ~((1 << top.shift) - 1) & self.k.ULONG_MASK
        return self._entry(table, top.index(addr), addr & span_mask)

    def entry_at(self, table: Table, index: int) -> Entry:
        """Entry number ``index`` of ``table``.  Its ``va`` is ``table.va + index * size``,
        not sign-extended: walk by address for canonical upper-half addresses."""
        if not 0 <= index < self.entries_per_table(table.group):
            raise BadInput(f"index {index} is outside a level-{table.level} table")
        va = (table.va + index * self.level_size(table.group)) & self.k.ULONG_MASK
        return self._entry(table, index, va)

    def _check_in_table(self, table: Table, addr: int, end: int) -> None:
        """Refuse a range that runs off a (non-root) table: its loop would index the
        entries of whatever lies after the table."""
        if table.parent is None:
            return
        m = self.k.ULONG_MASK
        span = self.entries_per_table(table.group) * self.level_size(table.group)
        if not (0 <= addr - table.va < span and 0 <= ((end - 1) & m) - table.va < span):
            raise BadInput(
                f"range [{addr:#x}, {end:#x}) is not inside the level-{table.level} table "
                f"mapping [{table.va:#x}, {table.va + span:#x})"
            )

    def entries(self, table: Table, addr: int, end: int) -> Iterator[tuple[Entry, int, int]]:
        """``(entry, addr, next)`` for each entry of ``table`` covering ``[addr, end)``, the
        loop every legacy ``*_range`` function writes by hand."""
        self._check_in_table(table, addr, end)
        m = self.k.ULONG_MASK
        group = table.group
        top = self.legacy[group.geometry]
        size = 1 << top.shift
        span_mask = ~(size - 1) & m
        index = top.index(addr)
        members = group.members[1:]
        first = table.first
        k = self.k
        last = (end - 1) & m
        while True:
            va = addr & span_mask
            nxt = (va + size) & m
            if ((nxt - 1) & m) >= last:  # range_end(): boundary - 1 < end - 1, else end
                nxt = end
            ptr: EntryPtr = first + index
            for member in members:
                ptr = descend_offset(k, member, ptr, va)
            yield Entry(table, index, ptr, va), addr, nxt
            addr = nxt
            if addr == end or addr == 0 and end & m == 0:
                return
            index += 1

    def slots(self, table: Table, addr: int, end: int) -> Iterator[tuple[EntryPtr, int, int]]:
        """``(legacy pointer, addr, next)`` for each entry of ``table`` covering ``[addr,
        end)``: :meth:`entries` without building :class:`Entry` handles, for the loops over
        the hundreds of entries of one table (a PTE table's leaves).  The pointer is typed
        at the entry's level (``PtePtr``...)."""
        self._check_in_table(table, addr, end)
        m = self.k.ULONG_MASK
        group = table.group
        top = self.legacy[group.geometry]
        size = 1 << top.shift
        span_mask = ~(size - 1) & m
        members = group.members[1:]
        ptr: EntryPtr = table.first + top.index(addr)
        last = (end - 1) & m
        if not members:
            while True:
                nxt = ((addr & span_mask) + size) & m
                if ((nxt - 1) & m) >= last:
                    nxt = end
                yield ptr, addr, nxt
                addr = nxt
                if addr == end or addr == 0 and end & m == 0:
                    return
                ptr = ptr + 1
        for e, a, nxt in self.entries(table, addr, end):
            yield e.ptr, a, nxt

    def read(self, entry: Entry) -> Value:
        """``pXdp_get(ptr)`` at the entry's level."""
        level = entry.table.group.bottom
        return Value(level, self._by_int[level].get(entry.ptr))

    def write(self, entry: Entry, value: Value) -> TlbFlush:
        """``set_pte_at``/``set_pmd_at``/``set_pud_at``/``set_p4d``/``set_pgd``, under the
        lock of the entry's table (:meth:`locked`).

        Returns the flush owed (:mod:`unified.flush`): nothing for an entry that was not
        present or is unchanged, else the entry's range -- also for a permission upgrade,
        which the API cannot tell apart on every architecture (``waive`` it).  On a
        break-before-make MMU (arm64) a valid entry must be cleared and flushed before it
        gets another output address or size."""
        if value.level != entry.level:
            raise BadInput(f"level-{value.level} value written to a level-{entry.level} entry")
        lv = self._by_int[entry.level]
        old = lv.get(entry.ptr)
        lv.set(entry.mm, entry.va, entry.ptr, value.raw)
        if old == value.raw or not lv.present(old):
            return self._owed(entry, 0)
        return self._owed(entry, old)

    def clear(self, entry: Entry) -> TlbFlush:
        """``pte_clear``/``pmd_clear``/... at the entry's level, under the lock of the
        entry's table.  Returns the flush owed for what the entry mapped (a table entry owes
        a walk-cache flush too)."""
        lv = self._by_int[entry.level]
        old = lv.get(entry.ptr)
        lv.clear(entry.mm, entry.va, entry.ptr)
        return self._owed(entry, old if lv.present(old) else 0)

    def get_and_clear(self, entry: Entry) -> tuple[Value, TlbFlush]:
        """``ptep_get_and_clear``/``pmdp_huge_get_and_clear``/``pudp_huge_get_and_clear``
        (read + clear for a table entry): the old value and the flush owed.  The legacy
        ``ptep_clear_flush(vma, addr, ptep)`` is ``v, owed = pt.get_and_clear(e);
        owed.flush(vma)``."""
        level = entry.level
        lv = self._by_int[level]
        old = lv.get(entry.ptr)
        if level == Level.PTE or lv.leaf(old):
            ops = self.ops(entry.mm)[LEVELS[level]]
            old = ops.get_and_clear(entry.mm, entry.va, entry.ptr)
        else:
            lv.clear(entry.mm, entry.va, entry.ptr)
        # A huge leaf owes its flush even when pXd_present says no (x86's PROT_NONE pud):
        # pmdp_huge_clear_flush / pudp_huge_clear_flush flush unconditionally
        # (mm/pgtable-generic.c), and a zap queues it on the gather all the same.
        owes = lv.present(old) or (level != Level.PTE and lv.leaf(old))
        return Value(level, old), self._owed(entry, old if owes else 0)

    def set_wrprotect(self, entry: Entry) -> TlbFlush:
        """``ptep_set_wrprotect``/``pmdp_set_wrprotect``/``pudp_set_wrprotect`` of a leaf,
        under the lock of the entry's table: the flush owed if it was writable."""
        ops = self.ops(entry.mm)[LEVELS[entry.level]]
        old = ops.get(entry.ptr)
        if not ops.leaf(old):
            raise BadInput(f"level-{entry.level} entry at {entry.va:#x} is not a leaf")
        writable = ops.write(old)
        ops.set_wrprotect(entry.mm, entry.va, entry.ptr)
        return self._owed(entry, old if writable else 0)

    def owe(self, mm: mm_struct, level: int, start: int = 0, end: int = 0,
            kind: FlushKind = FlushKind.LEAF) -> TlbFlush:
        """A flush obligation for ``[start, end)`` of ``mm`` (empty by default), for ports
        that store through the raw :class:`~unified.legacy_ops.LevelOps`; it names the
        caller's line as its creator.  Grow it with :meth:`TlbFlush.add`."""
        return TlbFlush(self._book, mm, Level(level), start, end, kind)  # checks ``level``

    def _owed(self, entry: Entry, old: int) -> TlbFlush:
        """The obligation for replacing the present value ``old`` of ``entry`` (0: none)."""
        mm = entry.mm
        if not old:
            return TlbFlush(self._book, mm, LEVELS[entry.level], 0, 0)
        lv = self._by_int[entry.level]
        kind = FlushKind.TABLE if entry.level != Level.PTE and not lv.leaf(old) else (
            FlushKind.LEAF)
        end = (entry.va + self.level_size(entry.table.group)) & self.k.ULONG_MASK
        return TlbFlush(self._book, mm, LEVELS[entry.level], entry.va, end, kind)

    def check_obligations(self, where: str) -> None:
        """Raise :class:`~unified.flush.UnconsumedFlush` for every flush obligation of this
        kernel dropped, or still owed, at the end of ``where`` (``k.syscall_exit`` runs this
        too, through ``k.syscall_exit_hooks``)."""
        self._book.check(where)

    # -- values ------------------------------------------------------------------------

    def is_none(self, v: Value) -> bool:
        return self._by_int[v.level].none(v.raw)

    def is_present(self, v: Value) -> bool:
        return self._by_int[v.level].present(v.raw)

    def is_bad(self, v: Value) -> bool:
        return self._by_int[v.level].bad(v.raw)

    def is_leaf(self, v: Value) -> bool:
        """A present entry that maps memory: any present PTE, a huge PMD/PUD (``pXd_leaf``)."""
        return self._by_int[v.level].leaf(v.raw)

    def is_table(self, v: Value) -> bool:
        """A present entry that points to a lower table (not none, not a leaf, not bad)."""
        lv = self._by_int[v.level]
        return v.level != Level.PTE and not lv.none(v.raw) and not lv.leaf(v.raw) and (
            not lv.bad(v.raw)
        )

    # -- value operations (level-generic pte_write/pmd_write, pte_wrprotect...) -------------

    def _vops(self, v: Value) -> LevelOps:
        if not Level.PTE <= v.level <= Level.PUD:
            raise BadInput(f"level-{v.level} values have no leaf operations")
        return self._level_ops(False)[LEVELS[v.level]]

    def is_writable(self, v: Value) -> bool:
        """``pte_write``/``pmd_write``/``pud_write``."""
        return bool(self._vops(v).write(v.raw))

    def is_dirty(self, v: Value) -> bool:
        """``pte_dirty``/``pmd_dirty``/``pud_dirty``."""
        return bool(self._vops(v).dirty(v.raw))

    def is_young(self, v: Value) -> bool:
        """``pte_young``/``pmd_young``/``pud_young``."""
        return bool(self._vops(v).young(v.raw))

    def wrprotect(self, v: Value) -> Value:
        """``pte_wrprotect``/``pmd_wrprotect``/``pud_wrprotect``: a new value."""
        return Value(v.level, self._vops(v).wrprotect(v.raw))

    def mkclean(self, v: Value) -> Value:
        """``pte_mkclean``/``pmd_mkclean``/``pud_mkclean``."""
        return Value(v.level, self._vops(v).mkclean(v.raw))

    def mkold(self, v: Value) -> Value:
        """``pte_mkold``/``pmd_mkold``/``pud_mkold``."""
        return Value(v.level, self._vops(v).mkold(v.raw))

    def none_or_clear_bad(self, entry: Entry) -> bool:
        """``pXd_none_or_clear_bad`` of the entry's level: True if the entry is empty, or was
        bad (then reported and cleared, unless folding makes ``pXd_clear_bad`` a no-op).
        Unlike the legacy call, never clears a leaf (a huge PMD/PUD is not "bad")."""
        v = self.read(entry)
        if self.is_none(v):
            return True
        if v.level == Level.PTE or self.is_leaf(v):
            return False
        return legacy_none_or_clear_bad(self.k, LEVELS[entry.level], entry.ptr)

    # -- boundaries (R3) -------------------------------------------------------------

    def range_end(self, entry: Entry, addr: int, end: int) -> int:
        """The end of the range ``entry`` covers, clipped to the walk's ``end``.

        Returns the next multiple of this level's size above ``addr``, or ``end`` if that
        comes first.  The comparison is ``boundary - 1 < end - 1`` in unsigned
        arithmetic: at the top of the address space the boundary wraps to 0, and a walk
        to the very top passes ``end == 0``; subtracting one turns both into the largest
        address, so a wrapped boundary never looks smaller than ``end`` and the loop
        ``addr = next; if addr == end: stop`` ends exactly at the top.  It is the legacy
        ``pXd_addr_end`` of the level (``p?d_addr_end``, never the folded ``end``-only
        variant, since a real level is never folded)."""
        return self.legacy[entry.table.group.geometry].addr_end(addr, end)

    # -- walking (R6) -----------------------------------------------------------------

    def descend(self, entry: Entry) -> Table:
        """The lower table ``entry`` points to, as a new handle one real level down.

        Nothing is mutated: the caller keeps ``entry``.  The step skips folded levels, so
        the level number may drop by more than one (x86-64 4-level: 3 → 2; i386: 1 → 0).
        Raises :class:`BadInput` if the entry is not a table (none, a leaf, or bad)."""
        v = self.read(entry)
        if not self.is_table(v):
            raise BadInput(f"level-{entry.level} entry at {entry.va:#x} is not a table")
        child = self.lower(entry.table.group, entry.mm)
        assert child is not None
        first = descend_offset(self.k, child.top, entry.ptr, entry.va)
        return Table(child, first, entry.va, entry.mm, entry)

    # -- allocation and freeing (R7) ------------------------------------------------------

    def ensure_table(self, entry: Entry) -> Table | None:
        """The table below ``entry``, allocated and installed first if the entry is none.

        Allocation is the legacy ``*_alloc`` of the lower level, so it takes the kernel's
        race logic (allocate, lock, recheck, populate or free the loser) and its accounting
        (``mm_inc_nr_*``).  Returns None on -ENOMEM; raises on a leaf."""
        child = self.lower(entry.table.group, entry.mm)
        if child is None:
            raise BadInput("a PTE entry has no table below it")
        if self.is_none(self.read(entry)) and not alloc_below(
            self.k, entry.mm, child.top, entry.ptr, entry.va
        ):
            return None
        return self.descend(entry)

    def free_table(self, table: Table) -> TlbFlush:
        """Unlink ``table`` from its parent entry and free it, as ``free_p*_range`` does:
        clear the parent entry (under the lock of the parent's table) and undo the table's
        ``pgtables_bytes`` charge now; the returned obligation frees the frame (and its
        split lock) once consumed -- after the walk-cache flush with ``flush()``, or by the
        gather's ``pXd_free_tlb`` with ``gather(tlb)``: unhook, invalidate, free.

        Takes a table, never an entry or a value.  Refuses a root (freed with its mm by
        ``pgd_free``) and a table that still has a non-empty entry (something would be left
        pointing at freed memory)."""
        if table.parent is None:
            raise BadInput("a root table is freed with its mm (pgd_free), not by free_table")
        parent = self.read(table.parent)
        if not self.is_table(parent) or self.descend(table.parent).first != table.first:
            raise BadInput(
                f"stale handle: the level-{table.level} table at {table.first.pa:#x} is no "
                f"longer linked from its parent entry"
            )
        for i in range(self.entries_per_table(table.group)):
            if not self.is_none(self.read(self.entry_at(table, i))):
                raise BadInput(
                    f"level-{table.level} table at {table.first.pa:#x} still maps "
                    f"something (entry {i}); unmap it before freeing the table"
                )
        parent_entry = table.parent
        self._by_int[parent_entry.level].clear(table.mm, parent_entry.va, parent_entry.ptr)
        uncharge_level(self.k, table.mm, table.group.top)
        owed = self._owed(parent_entry, parent.raw)
        owed._tables.append((table.group.top, table.first, parent_entry.va))
        return owed

    # -- locking -----------------------------------------------------------------------

    def lockptr(self, table: Table) -> spinlock_t:
        """The lock the kernel takes to change ``table``'s entries."""
        return lockptr(
            self.k, table.mm, LEVELS[table.level], table.first,
            None if table.parent is None else table.parent.ptr,
        )

    @contextmanager
    def locked(self, table: Table) -> Iterator[spinlock_t]:
        ptl = self.lockptr(table)
        spin_lock(ptl)
        try:
            yield ptl
        finally:
            spin_unlock(ptl)
