"""An emulated TLB, in its worst case: anything that was ever a valid translation may still
be cached until a flush covering it (Intel SDM Vol. 3A §4.10 "Caching Translation
Information"; Arm ARM D8.16 "Translation Lookaside Buffers" and the translation table walk
caches).

No accesses are simulated.  Instead every store into a live page table is seen (a
:class:`~arches.memory.PhysMem` write observer) and decoded the way the MMU decodes it
(:meth:`~arches.config.HardwareWalker.structure`, written from the same manual as the
walker).  A store that *removes or restricts* a translation -- clears a valid entry, changes
its output address or size, takes away write, execute or changes user access -- leaves a
**stale mark** on the VA range the entry maps, in the address space (ASID/PCID, or the
kernel's global space) that reaches it.  A store to a non-leaf entry leaves a *walk-cache*
mark that also remembers the tables below it, which a paging-structure cache may still use.
Permission upgrades and new translations leave nothing: a stale, more restrictive entry
only costs a spurious fault, which the kernel handles.

Invalidations (:meth:`Tlb.flush`, :meth:`Tlb.flush_space`, :meth:`Tlb.flush_all`) clear the
marks they cover.  The rules, each a :class:`~arches.errors.TlbError`:

- :meth:`Tlb.check_flushed`: no mark may remain when the kernel is about to return (the end
  of a call site, when ``mmap_lock`` is dropped);
- a page-table frame may not be freed while a walk-cache mark still references it;
- with ``break_before_make`` (Arm ARM D8.16.1, the kernel's ``pgattr_change_is_safe()``):
  a valid entry may not be replaced by a valid one of another output address or size, and a
  valid entry may not be written over a range whose old translation of another output
  address or size may still be cached.

The TLB only knows tables reachable from the roots it was told about (:meth:`activate`):
stores into other frames (a table being prepared, a deposited table) translate nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import NamedTuple, cast

from arches.errors import TlbError

# Permission bits of an :class:`EntryView` (what one entry contributes to a translation).
PERM_W = 1 << 0
"""Writable (x86 R/W, arm64 AP[2] = 0 or DBM with hardware dirty management)."""
PERM_X = 1 << 1
"""Executable at the kernel's privilege (x86 !XD, arm64 !PXN)."""
PERM_UX = 1 << 2
"""Executable from user mode (x86 !XD, arm64 !UXN)."""
PERM_U = 1 << 3
"""Accessible from user mode (x86 U/S, arm64 AP[1]); a change either way needs a flush."""
PERM_ALL = PERM_W | PERM_X | PERM_UX | PERM_U

NONE, TABLE, LEAF = "none", "table", "leaf"

KERNEL_SPACE = -1
"""The address space of kernel translations (global: x86 G bit, arm64 TTBR1 with nG = 0)."""


class EntryView(NamedTuple):
    """One entry as the MMU decodes it: invalid, a pointer to a table, or a leaf (a named
    tuple: every store the TLB follows decodes one or two)."""

    kind: str
    target: int = 0
    """Next table's PA (table) or output base PA (leaf)."""
    perms: int = PERM_ALL
    """``PERM_*`` bits this entry grants (table entries may restrict what is below)."""


INVALID = EntryView(NONE)

_entry_view = tuple.__new__
"""``EntryView(kind, target, perms)`` without the named tuple's ``__new__`` frame."""


def remembered(decode: Callable[[int, int], EntryView],
               address: Sequence[int]) -> Callable[[int, int], EntryView]:
    """``decode`` (a walk's ``(level, raw) -> EntryView``), remembering per level what the
    bits of an entry other than ``address[level]`` decode to: the TLB model decodes an
    entry or two per store, and entries differ mostly in their output address.
    ``address[level]`` must be bits that the decoding only copies into the output, the
    same bits whatever the entry is (table or leaf), and reads for nothing else; 0
    remembers nothing at that level."""
    known: list[dict[int, EntryView | tuple[str, int, int]]] = [{} for _ in address]
    others = [~bits for bits in address]

    def view(level: int, raw: int) -> EntryView:
        bits = address[level]
        if not bits:
            return decode(level, raw)
        key = raw & others[level]
        hit = known[level].get(key)
        if hit is None:
            v = decode(level, raw)
            hit = known[level][key] = INVALID if v.kind == NONE else (
                v.kind, v.perms, v.target & ~bits)
        if hit is INVALID:
            return INVALID
        kind, perms, rest = hit
        return _entry_view(EntryView, (kind, raw & bits | rest, perms))

    return view


@dataclass(frozen=True)
class LevelShape:
    """One level of a hardware walk: manual name, VA shift, entries, entry size."""

    name: str
    shift: int
    entries: int
    entry_size: int
    table_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table_bytes", self.entries * self.entry_size)


@dataclass(frozen=True)
class RootWalk:
    """How the MMU walks from one root register: the root table, the VA of its entry 0,
    its levels (top first) and how an entry of each level decodes."""

    register: str
    table: int
    va_base: int
    levels: tuple[LevelShape, ...]
    decode: Callable[[int, int], EntryView]
    """``decode(level_index, raw_entry)``."""
    canonical: Callable[[int], int]
    """The VA the indexes select, in canonical (sign-extended) form."""


class _TableRef:
    """One way the MMU reaches a table: from which address space's root, at which level,
    mapping which VA with its entry 0.  Two are equal when those four are (a plain
    slotted class: one is made for every table a root reaches, each time it does)."""

    __slots__ = ("asid", "walk", "level", "va_base", "shape", "last", "space")

    def __init__(self, asid: int, walk: RootWalk, level: int, va_base: int,
                 shape: LevelShape, last: bool, space: int | None) -> None:
        self.asid = asid
        self.walk = walk
        self.level = level
        self.va_base = va_base
        self.shape = shape
        self.last = last
        """The walk's last level: every valid entry is a leaf."""
        self.space = space
        """The address space of every entry (None for a root, whose entries may span
        both)."""

    def _key(self) -> tuple[int, RootWalk, int, int]:
        return (self.asid, self.walk, self.level, self.va_base)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _TableRef) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass
class StaleMark:
    """A VA range whose old translation may still be cached."""

    space: int
    """The mm's ASID, or :data:`KERNEL_SPACE`."""
    start: int
    end: int
    level: str
    """Hardware name of the level whose entry changed."""
    walk: bool
    """A walk-cache (non-leaf) entry: only a flush that invalidates walk caches clears it."""
    change: str
    site: object
    """The call site that wrote the entry (printable); of a run of entries, the first."""
    op: str
    """What the machine was doing (set by the owner of the TLB, e.g. a scenario op)."""
    old: EntryView
    size: int
    """Bytes one entry of the level maps (for break-before-make: the old leaf's size)."""
    old_va: int
    """The VA the changed entry mapped first (``old.target`` is its output address)."""
    tables: frozenset[int] = field(default=frozenset())
    """Frames a paging-structure cache may still reference through this entry."""
    targets: list[int] | None = None
    """For a run of leaves whose outputs are not contiguous (anonymous pages cleared one
    after another): the output of each entry from ``old_va`` on, one per ``size``."""

    def old_output(self, va: int) -> int:
        """What the old translation mapped ``va`` to (a table entry: its next table)."""
        if self.old.kind != LEAF:
            return self.old.target
        if self.targets is None:
            return self.old.target + (va - self.old_va)
        i, off = divmod(va - self.old_va, self.size)
        return self.targets[i] + off

    def describe(self) -> str:
        space = "kernel" if self.space == KERNEL_SPACE else f"asid {self.space}"
        kind = "walk-cache entry" if self.walk else "translation"
        where = f" during {self.op}" if self.op else ""
        return (f"[{self.start:#x}, {self.end:#x}) {space}: {self.level} {kind} "
                f"{self.change} by {self.site or '?'}{where}")


def _restricts(old: EntryView, new: EntryView) -> str | None:
    """Why replacing ``old`` with ``new`` leaves ``old`` stale in a TLB, or None."""
    if old.kind == NONE:
        return None
    if new.kind == NONE:
        return "cleared"
    if old.kind != new.kind:
        return f"changed from a {old.kind} to a {new.kind}"
    if old.target != new.target:
        return ("pointed at another table" if old.kind == TABLE
                else f"output address changed {old.target:#x} -> {new.target:#x}")
    lost = _rights_lost(old.perms, new.perms)
    if lost & ~PERM_U:
        names = [n for b, n in ((PERM_W, "write"), (PERM_X, "exec"), (PERM_UX, "user exec"))
                 if lost & b]
        return f"{'/'.join(names)} permission removed"
    if lost:
        return "user access changed"
    return None


def _rights_lost(old: int, new: int) -> int:
    """The ``PERM_*`` bits that going from rights ``old`` to ``new`` takes away (a change of
    user access either way counts as :data:`PERM_U` lost)."""
    return (old & ~new & (PERM_W | PERM_X | PERM_UX)) | ((old ^ new) & PERM_U)


_NOWHERE: list[tuple[_TableRef, int]] = []
"""What :meth:`Tlb._find` answers for an entry no active root reaches (never modified)."""


def _same_leaf_slot(found: list[tuple[_TableRef, int]]) -> bool:
    """Whether every way of reaching one entry sees the same last-level slot of the same
    address space (the kernel's tables, shared by every mm's kernel root): a store there is
    one change to one cached translation, however many roots reach it."""
    r0 = found[0][0]
    return r0.last and r0.space is not None and all(
        r.last and r.space == r0.space and r.va_base == r0.va_base and r.level == r0.level
        for r, _ in found)


class Tlb:
    """The emulated TLB of one machine (see the module docstring).

    ``space_of(asid, va)`` tells which address space a VA reached from ``asid``'s roots
    belongs to (the kernel's global space for kernel addresses).  ``site`` names the code
    that is writing (called only when a mark is made); ``op`` is free text set by the owner.
    ``range_flush_clears_walk_caches``: x86 INVLPG invalidates every paging-structure-cache
    entry of the PCID whatever its address (SDM §4.10.4.1); Arm ``TLBI VAE1`` only those for
    the address.
    """

    def __init__(
        self,
        mem_read: Callable[[int, int], int],
        read_table: Callable[[int, int], bytes],
        byteorder: str,
        space_of: Callable[[int, int], int],
        addr_mask: int,
        *,
        break_before_make: bool = False,
        range_flush_clears_walk_caches: bool = False,
    ) -> None:
        self._read = mem_read
        self._read_table = read_table
        self._byteorder = byteorder
        self.space_of = space_of
        self._mask = addr_mask
        self.break_before_make = break_before_make
        self.range_flush_clears_walk_caches = range_flush_clears_walk_caches
        self.site: Callable[[], object] = lambda: ""
        self.op = ""
        self.enabled = True
        """False: follow the tables but make no marks and check nothing."""
        self.marks: list[StaleMark] = []
        self.flushes: list[tuple[int, int, int, bool]] = []
        """Every invalidation: (space, start, end, walk caches too); ``end`` is exclusive and
        0 means the top; a whole-space flush is (space, 0, 0, True)."""
        self._refs: dict[int, list[_TableRef]] = {}
        """Table base -> how the active roots reach it.  Every change goes through
        :meth:`_changed`, which drops what :meth:`_find` remembers."""
        self._sizes: set[int] = set()
        self._one_size = 0
        """``-size`` (the mask of a table base) while every table has that one size."""
        self._found_pa = -1
        self._found: list[tuple[_TableRef, int]] = []
        self._slot_start = self._slot_end = -1
        """The table the last store went to, when one slot reaches each of its entries
        (:meth:`on_write`), until the next change."""
        self._slot_ref: _TableRef = cast(_TableRef, None)  # read only inside the bounds
        self._unreached: set[int] = set()
        self._unreached_shift = 0
        self.generation = 0
        """Counts the changes of which tables the active roots reach: an answer derived from
        :meth:`space_at` or :meth:`is_live` holds while it is unchanged."""
        self._roots: dict[int, tuple[RootWalk, ...]] = {}
        self._codecs: dict[tuple[int, int], struct.Struct] = {}

    # -- roots ---------------------------------------------------------------------------

    def activate(self, asid: int, walks: Iterable[RootWalk]) -> None:
        """The CPU loaded ``asid``'s roots (``switch_mm``): learn every table they reach."""
        self.deactivate(asid)
        walks = tuple(walks)
        self._roots[asid] = walks
        for w in walks:
            self._register(self._ref(asid, w, 0, w.va_base), w.table)

    def deactivate(self, asid: int) -> None:
        """``asid`` is retired (its mm is gone): its tables are no longer reachable from it,
        and its user translations cannot be used again before the ASID is reallocated, which
        the kernel's allocator does with a flush (arm64 ``tlb_flush`` skips the flush for a
        ``fullmm`` gather for that reason)."""
        if asid not in self._roots:
            return
        del self._roots[asid]
        self._changed()
        for pa in list(self._refs):
            refs = [r for r in self._refs[pa] if r.asid != asid]
            if refs:
                self._refs[pa] = refs
            else:
                del self._refs[pa]
        self.marks = [m for m in self.marks if m.space != asid]

    def is_live(self, pa: int) -> bool:
        """Whether the entry at ``pa`` lies in a table some active root reaches."""
        return bool(self._find(pa))

    def lookup(self, pa: int) -> tuple[int, int, int, str] | None:
        """``(space, va, span, level name)`` of the entry at ``pa`` as the first active root
        that reaches it sees it, or None."""
        found = self._find(pa)
        if not found:
            return None
        ref, idx = found[0]
        shape = ref.walk.levels[ref.level]
        va = ref.walk.canonical(ref.va_base | idx << shape.shift)
        return self.space_of(ref.asid, va), va, 1 << shape.shift, shape.name

    def tables_of(self, asid: int) -> list[tuple[int, int, int | None]]:
        """``(table pa, table bytes, space)`` of every table ``asid``'s roots reach (the
        roots themselves with space None: their entries may belong to both halves)."""
        return [(pa, r.shape.table_bytes, r.space)
                for pa, refs in self._refs.items() for r in refs if r.asid == asid]

    def entries_of(self, asid: int, span: int, space: int) -> list[int]:
        """The non-zero raw entries of ``space`` that map ``span`` bytes each, in every
        table ``asid``'s roots reach."""
        out: list[int] = []
        for pa, refs in self._refs.items():
            for r in refs:
                if r.asid != asid or 1 << r.shape.shift != span or r.space not in (None, space):
                    continue
                for idx, raw in enumerate(self._entries(r, pa)):
                    if raw and (r.space is not None or self.space_of(
                        asid, r.walk.canonical(r.va_base | idx << r.shape.shift)) == space
                    ):
                        out.append(raw)
        return out

    def leaves(self, asid: int) -> list[tuple[int, int, int]]:
        """``(va, output pa, size)`` of every leaf reachable from ``asid``'s roots, as the
        TLB's decoding sees them (cross-checked against the walker in the tests)."""
        out: list[tuple[int, int, int]] = []
        for refs_pa, refs in self._refs.items():
            for r in refs:
                if r.asid != asid:
                    continue
                shape = r.walk.levels[r.level]
                for idx, raw in enumerate(self._entries(r, refs_pa)):
                    if raw and (v := r.walk.decode(r.level, raw)).kind == LEAF:
                        va = r.walk.canonical(r.va_base | idx << shape.shift)
                        out.append((va, v.target, 1 << shape.shift))
        return sorted(set(out))

    def classify(self, pa: int, raw: int) -> str | None:
        """What ``raw`` would be at ``pa`` to the MMU (``none``/``table``/``leaf``), or None
        if no active root reaches ``pa``."""
        found = self._find(pa)
        if not found:
            return None
        ref, _ = found[0]
        return ref.walk.decode(ref.level, raw).kind

    def _ref(self, asid: int, walk: RootWalk, level: int, va_base: int) -> _TableRef:
        return _TableRef(asid, walk, level, va_base, walk.levels[level],
                         level + 1 == len(walk.levels),
                         None if level == 0 else self.space_of(asid, va_base))

    def space_at(self, pa: int) -> int | None:
        """The address space the entry at ``pa`` belongs to, or None if no root reaches it."""
        found = self._find(pa)
        if not found:
            return None
        r, idx = found[0]
        if r.space is not None:
            return r.space
        shape = r.shape
        return self.space_of(r.asid, r.walk.canonical(r.va_base | idx << shape.shift))

    def at_last_level(self, pa: int) -> bool:
        """Whether the entry at ``pa`` is reached as an entry of the last level (it can
        point at no table)."""
        found = self._find(pa)
        return bool(found) and all(r.last for r, _ in found)

    def table_space(self, pa: int) -> int | None:
        """The address space of every entry of the table holding ``pa``, when the roots
        reach it below their top level only (a root's entries may belong to either half);
        else None."""
        found = self._find(pa)
        if not found:
            return None
        space = found[0][0].space
        for r, _ in found:
            if r.space != space:
                return None
        return space

    def _changed(self) -> None:
        """Which tables the active roots reach has changed: forget the answers kept."""
        self._found_pa = -1
        self._slot_start = self._slot_end = -1
        self._unreached.clear()
        self._unreached_shift = min(self._sizes).bit_length() - 1 if self._sizes else 0
        self._one_size = -min(self._sizes) if len(self._sizes) == 1 else 0
        self.generation += 1

    def _find(self, pa: int) -> list[tuple[_TableRef, int]]:
        """Every (reference, index) through which an active root reaches the entry at
        ``pa``.  Two answers are kept until the next change: the last one (lockdep asks,
        :meth:`space_at`, just before the store asks, :meth:`on_write`, about the same
        entry), and the blocks of the smallest table size no root reaches (the stores that
        fill a table before it is linked: a split's thousands).  Table sizes are powers of
        two, so every table base of an entry is the same throughout such a block.  Callers
        must not modify the answer."""
        if pa == self._found_pa:
            return self._found
        block = pa >> self._unreached_shift
        if block in self._unreached:
            return _NOWHERE
        out: list[tuple[_TableRef, int]] = []
        if self._one_size:  # every table has the one size (x86): no size to match
            base = pa & self._one_size
            refs = self._refs.get(base)
            if refs:
                for r in refs:
                    out.append((r, (pa - base) // r.shape.entry_size))
        else:
            for size in self._sizes:
                base = pa - pa % size
                refs = self._refs.get(base)
                if refs:
                    for r in refs:
                        if r.shape.table_bytes == size:
                            out.append((r, (pa - base) // r.shape.entry_size))
        if not out:
            self._unreached.add(block)
            return _NOWHERE
        self._found_pa, self._found = pa, out
        return out

    def _entries(self, ref: _TableRef, table: int) -> tuple[int, ...]:
        """The entries of ``table``; ``()`` for an all-zero one (nothing below it: riscv
        preallocates 64 empty vmalloc tables that every ``activate`` reaches)."""
        shape = ref.shape
        data = self._read_table(table, shape.table_bytes)
        if data == bytes(shape.table_bytes):
            return ()
        key = (shape.entries, shape.entry_size)
        codec = self._codecs.get(key)
        if codec is None:
            codec = self._codecs[key] = struct.Struct(
                (">" if self._byteorder == "big" else "<") + str(shape.entries)
                + ("Q" if shape.entry_size == 8 else "I"))
        return tuple(codec.unpack(data))

    def _register(self, ref: _TableRef, table: int) -> None:
        shape = ref.walk.levels[ref.level]
        self._sizes.add(shape.table_bytes)
        self._changed()
        self._refs.setdefault(table, []).append(ref)
        if ref.level + 1 == len(ref.walk.levels):
            return
        for idx, raw in self._table_entries(ref, table):
            v = ref.walk.decode(ref.level, raw)
            if v.kind == TABLE:
                va = ref.walk.canonical(ref.va_base | idx << shape.shift)
                self._register(self._ref(ref.asid, ref.walk, ref.level + 1, va), v.target)

    def _table_entries(self, ref: _TableRef, table: int) -> list[tuple[int, int]]:
        """``(index, raw)`` of the entries of ``table`` that may point at a table: not 0,
        and not the value of the last entry when half the table holds it and it is no
        table (s390x's empty region and segment entries are not zero: decoding 2048 of
        them per table was most of the cost of registering one; counting every value of
        a table of 512 distinct huge leaves cost as much)."""
        entries = self._entries(ref, table)
        if not entries:
            return []
        nonzero = list(compress(enumerate(entries), entries))
        common = entries[-1]
        if not common or entries.count(common) * 2 < len(entries) or (
                ref.walk.decode(ref.level, common).kind == TABLE):
            return nonzero
        return [(idx, raw) for idx, raw in nonzero if raw != common]

    def _unregister(self, ref: _TableRef, table: int, out: set[int]) -> None:
        """Forget ``table`` (reached through ``ref``) and what is below it; collect them."""
        refs = self._refs.get(table)
        if refs is None:
            return
        self._changed()
        refs = [r for r in refs if r != ref]
        if refs:
            self._refs[table] = refs
        else:
            del self._refs[table]
        out.add(table)
        if ref.level + 1 == len(ref.walk.levels):
            return
        shape = ref.walk.levels[ref.level]
        for idx, raw in self._table_entries(ref, table):
            v = ref.walk.decode(ref.level, raw)
            if v.kind == TABLE:
                va = ref.walk.canonical(ref.va_base | idx << shape.shift)
                self._unregister(self._ref(ref.asid, ref.walk, ref.level + 1, va), v.target,
                                 out)

    # -- stores (the PhysMem observer) ----------------------------------------------------

    def on_write(self, pa: int, size: int, old: int, new: int) -> None:
        if old == new:
            return
        if self._slot_start <= pa < self._slot_end:
            # In the table the last store went to, which one slot of one root reaches.
            ref = self._slot_ref
            idx = (pa - self._slot_start) // ref.shape.entry_size
        else:
            found = self._find(pa)
            if not found:
                return
            if len(found) > 1 and _same_leaf_slot(found):
                found = found[:1]  # a kernel table every mm's kernel root reaches: one slot
            if len(found) > 1:
                self._write_slots(found, old, new)
                return
            ref, idx = found[0]
            self._slot_ref = ref
            self._slot_start = start = pa - idx * ref.shape.entry_size
            self._slot_end = start + ref.shape.table_bytes
        # The stores made by the hundred in one call site: a leaf made where there was
        # none, or a leaf cleared (a zap).  A last-level entry has no tables to follow, a
        # cleared leaf none to forget, and a cleared entry restores nothing: what the
        # general path (:meth:`_write_slots`) does, without its bookkeeping.
        if ref.last and (not self.enabled or (not old and not self.marks)):
            return
        if not old and not self.marks and ref.walk.decode(ref.level, new).kind != TABLE:
            return  # a huge leaf where there was none
        # A last-level entry made where there was none, marks pending (the commit of an
        # mprotect's pte, a fault after a zap), may only restore a mark's translation; a
        # leaf cleared leaves its translation stale.
        made = ref.last and not old
        view = ref.walk.decode(ref.level, new if made else old) if made or not new else None
        if view is not None and view.kind != TABLE:
            if view.kind == NONE or not self.enabled:
                return
            shape = ref.shape
            va = ref.va_base | idx << shape.shift  # canonical below the root already
            if not ref.level:
                va = ref.walk.canonical(va)
            span = 1 << shape.shift
            space = self.space_of(ref.asid, va) if ref.space is None else ref.space
            if made:
                self._restore(space, va, (va + span) & self._mask, span, shape, INVALID,
                              view)
            elif not (self.marks and self._extend(space, va, shape.name, "cleared", view,
                                                  span)):
                self._mark(StaleMark(space, va, (va + span) & self._mask, shape.name,
                                     False, "cleared", None, self.op, view, span, va,
                                     frozenset()))
            return
        self._write_slots([(ref, idx)], old, new)

    def _write_slots(self, found: list[tuple[_TableRef, int]], old: int, new: int) -> None:
        """A store of ``new`` over ``old`` into the entry every ``(ref, index)`` of ``found``
        reaches: restore, forget and learn tables, mark."""
        seen: set[tuple[int, int, int]] = set()
        for ref, idx in found:
            if ref.last and not old and not self.marks:
                continue  # a new leaf where there was none: nothing cached, nothing to follow
            shape = ref.shape
            ov = ref.walk.decode(ref.level, old)
            nv = ref.walk.decode(ref.level, new)
            va = ref.walk.canonical(ref.va_base | idx << shape.shift)
            span = 1 << shape.shift
            end = (va + span) & self._mask
            space = self.space_of(ref.asid, va) if ref.space is None else ref.space
            key = (space, va, ref.level)
            first = key not in seen
            seen.add(key)
            if not self.enabled:
                first = False
            if first and nv.kind != NONE and (
                self.marks or (self.break_before_make and ov.kind != NONE)
            ):
                self._restore(space, va, end, span, shape, ov, nv)
            tables: set[int] = set()
            if ov.kind == TABLE and not (nv.kind == TABLE and nv.target == ov.target):
                self._unregister(self._ref(ref.asid, ref.walk, ref.level + 1, va), ov.target,
                                 tables)
            if nv.kind == TABLE and not (ov.kind == TABLE and ov.target == nv.target):
                self._register(self._ref(ref.asid, ref.walk, ref.level + 1, va), nv.target)
            why = _restricts(ov, nv)
            if why is None or not first:
                continue
            self._mark(StaleMark(space, va, end, shape.name, ov.kind == TABLE, why,
                                 None, self.op, ov, span, va, frozenset(tables)))

    def _mark(self, m: StaleMark) -> None:
        """Record ``m``, extending the previous mark when ``m`` continues it (see
        :meth:`_extend`).  The writer is looked up (a walk up the Python stack) only for a
        new mark."""
        if (self.marks and not m.walk and not m.tables and m.end - m.start == m.size
                and self._extend(m.space, m.start, m.level, m.change, m.old, m.size)):
            return
        if m.site is None:
            m.site = self.site()
        self.marks.append(m)

    def _extend(self, space: int, va: int, level: str, change: str, old: EntryView,
                size: int) -> bool:
        """Extend the last mark by the leaf entry mapping ``[va, va+size)`` when it
        continues it: the same change of the next entry of the same level during the same
        op (so a zap of a thousand pages is one mark, whatever pages they mapped)."""
        last = self.marks[-1]
        end = (va + size) & self._mask
        if not (end - va == size and last.space == space and last.end == va and last.end
                and last.level == level and not last.walk and last.change == change
                and last.op == self.op and not last.tables
                and last.old.kind == old.kind == LEAF and last.old.perms == old.perms
                and last.size == size):
            return False
        n = (last.end - last.old_va) // size
        if last.targets is None:
            if old.target == last.old.target + (va - last.old_va):
                last.end = end
                return True
            last.targets = [last.old.target + i * size for i in range(n)]
        if len(last.targets) == n:  # a piece that ends where its list ends
            last.targets.append(old.target)
            last.end = end
            return True
        return False

    def _restore(self, space: int, va: int, end: int, span: int, shape: LevelShape,
                 ov: EntryView, nv: EntryView) -> None:
        """A valid entry is stored over ``[va, end)``.  Where a stale mark says the old
        translation may still be cached: if the new entry gives the same translation with
        at least its rights, the cached copy is no longer stale (``ptep_modify_prot_start``
        / ``_commit`` writing back what was there: no flush is owed, x86
        ``pte_needs_flush``); otherwise, with break-before-make, the make came before the
        invalidation (a conflicting TLB entry)."""
        if self.break_before_make and ov.kind != NONE and (
            ov.kind != nv.kind or ov.target != nv.target
        ):
            raise TlbError(
                f"break-before-make: {shape.name} entry for [{va:#x}, +{span:#x}) changed "
                f"from a valid {ov.kind} ({ov.target:#x}) to a valid {nv.kind} "
                f"({nv.target:#x}) without an invalid entry and a TLB invalidation in "
                f"between, by {self.site() or '?'}"
                + (f" during {self.op}" if self.op else "")
            )
        full = 1 << self._mask.bit_length()
        top = end or full
        kept: list[StaleMark] = []
        changed = False
        for m in self.marks:
            m_end = m.end or full
            if m.space != space or m.old.kind == NONE or not (m.start < top and va < m_end):
                kept.append(m)
                continue
            old_out = m.old_output(va)
            same = m.old.kind == nv.kind and m.size == span and old_out == nv.target
            if same and not _rights_lost(m.old.perms, nv.perms):
                changed = True  # the cached copy is what the entry says again
                if m.start < va:
                    kept.append(_piece(m, m.start, va))
                if top < m_end:
                    kept.append(_piece(m, top, m.end))
                continue
            if self.break_before_make and not same:
                raise TlbError(
                    f"break-before-make: {shape.name} entry for [{va:#x}, +{span:#x}) made "
                    f"valid ({nv.kind} {nv.target:#x}) by {self.site() or '?'} while the old "
                    f"translation may still be cached ({m.describe()}): the TLB invalidation "
                    f"between break and make is missing"
                )
            kept.append(m)
        if changed:
            self.marks = kept

    def on_free(self, pa: int, size: int) -> None:
        """A frame is returned to the allocator: no walk cache may still reference it."""
        if not self.enabled:
            return
        for m in self.marks:
            if m.walk and m.tables:
                hit = [t for t in m.tables if pa <= t < pa + size]
                if hit:
                    raise TlbError(
                        f"page-table frame {pa:#x} freed while a walk cache may still "
                        f"reference it: {m.describe()}, not yet flushed"
                    )

    # -- invalidation ---------------------------------------------------------------------

    def flush(self, space: int, start: int, end: int, walk: bool = True,
              stride: int | None = None) -> None:
        """Invalidate ``[start, end)`` of ``space`` (``end`` 0 = the top): leaf entries, and
        walk-cache entries too when ``walk`` (Arm ``TLBI VAE1`` vs ``VALE1``).

        A cached entry maps one entry's span (a 4K page, a 2M block, the 2M a PMD table
        entry covers...); an invalidation by address drops every cached entry *used to
        translate* its address, whole (Arm ARM D8.16; SDM §4.10.4.1).  With ``stride`` the
        invalidation is one TLBI per ``stride`` bytes from ``start`` (arm64
        ``__flush_tlb_range``): an entry smaller than the stride goes only if one of those
        addresses falls in it.  Without, every entry overlapping the range goes."""
        self.flushes.append((space, start, end, walk))
        full = 1 << self._mask.bit_length()
        top = end or full
        kept: list[StaleMark] = []
        for m in self.marks:
            if m.space != space or (m.walk and not walk):
                kept.append(m)
                continue
            if m.walk and self.range_flush_clears_walk_caches:
                continue
            m_end = m.end or full
            lo, hi = max(m.start, start), min(m_end, top)
            if lo >= hi:
                kept.append(m)
                continue
            size = m.size
            if stride is None or stride <= size:
                # every entry overlapping [start, end) holds one of the addresses
                hits = [(lo - (lo - m.start) % size, min(m_end, hi + (-(hi - m.start) % size)))]
            else:
                hits = []
                va = start + -(-(lo - start) // stride) * stride
                while va < hi:
                    base = va - (va - m.start) % size
                    hits.append((base, base + size))
                    va += stride
            pos = m.start
            for a, b in hits:
                a, b = max(a, m.start), min(b, m_end)
                if a > pos:
                    kept.append(_piece(m, pos, a))
                pos = max(pos, b)
            if pos < m_end:
                kept.append(_piece(m, pos, m.end))
        self.marks = kept

    def flush_space(self, space: int) -> None:
        """Invalidate every entry of ``space`` (``flush_tlb_mm``: ASID/PCID-wide)."""
        self.flushes.append((space, 0, 0, True))
        self.marks = [m for m in self.marks if m.space != space]

    def flush_all(self) -> None:
        """Invalidate everything (``flush_tlb_all``)."""
        for s in {m.space for m in self.marks}:
            self.flushes.append((s, 0, 0, True))
        self.marks = []

    # -- checks ---------------------------------------------------------------------------

    def stale(self, space: int | None = None) -> list[StaleMark]:
        return [m for m in self.marks if space is None or m.space == space]

    def check_flushed(self, where: str) -> None:
        """No translation may be left stale at ``where`` (the end of a call site)."""
        if self.marks:
            first = self.marks[0]
            more = f" (and {len(self.marks) - 1} more)" if len(self.marks) > 1 else ""
            raise TlbError(f"TLB not flushed at the end of {where}: {first.describe()}{more}")


def _piece(m: StaleMark, start: int, end: int) -> StaleMark:
    return StaleMark(m.space, start, end, m.level, m.walk, m.change, m.site, m.op, m.old,
                     m.size, m.old_va, m.tables, m.targets)


def space_by_range(kernel_start: int) -> Callable[[int, int], int]:
    """The usual ``space_of``: kernel addresses are global, the rest belong to the ASID."""
    def space_of(asid: int, va: int) -> int:
        return KERNEL_SPACE if va >= kernel_start else asid
    return space_of

