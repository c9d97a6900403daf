"""The hierarchical walk shared by every x86 paging mode (Intel SDM Vol. 3A §4.2).

A paging mode is a root address taken from CR3 and a list of :class:`EntryRule`, one per level,
saying how a present entry of that level is decoded: where the next table or the page is, which
bits are reserved, whether PS makes it a leaf.  :class:`PagingWalker` does the rest the same way
for every mode: the walk of one address (:meth:`~PagingWalker.translate`) and the enumeration of
every leaf (:meth:`~PagingWalker.leaves`).  Both decode entries with :func:`decode`.

A present entry that points at memory which is not an allocated frame makes the walk raise
:class:`~arches.errors.PhysMemError`: the CPU would read garbage, the emulation calls it a bug.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any, cast

from arches.config import Fault, LeafRun, Translation
from arches.errors import BadInput
from arches.memory import PhysMem
from arches.tlb import (
    INVALID,
    LEAF,
    NONE,
    PERM_ALL,
    PERM_U,
    PERM_UX,
    PERM_W,
    PERM_X,
    TABLE,
    EntryView,
    LevelShape,
    RootWalk,
    remembered,
)

# SDM names of the entry bits the walk reads (the Linux names are in arches.x86.bits).
P = 1 << 0
RW = 1 << 1
US = 1 << 2
PS = 1 << 7
XD = 1 << 63

CR0_PE = 1 << 0
"""CR0.PE, protection enable (SDM §2.5); paging requires it (not in :mod:`arches.x86.bits`)."""


_tuple = tuple.__new__
"""A ``Translation`` made from its fields without the named tuple's ``__new__`` frame: the
leaf walk makes one per leaf."""


def bits(hi: int, lo: int) -> int:
    """Mask of bits ``hi:lo`` inclusive (SDM notation); 0 when ``hi < lo``."""
    return ((1 << (hi + 1)) - (1 << lo)) if hi >= lo else 0


def bit_list(mask: int) -> str:
    """The set bits of ``mask`` as SDM-style ranges, highest first: ``'51:48,13'``."""
    out: list[str] = []
    b = mask.bit_length() - 1
    while b >= 0:
        if mask >> b & 1:
            lo = b
            while lo > 0 and mask >> (lo - 1) & 1:
                lo -= 1
            out.append(f"{b}:{lo}" if lo != b else str(b))
            b = lo - 1
        else:
            b -= 1
    return ",".join(out)


@dataclass(frozen=True)
class EntryRule:
    """How the CPU decodes a present entry of one level."""

    name: str
    """The SDM name of the entry, e.g. ``'PDE'``."""
    shift: int
    """Lowest VA bit of this level's index."""
    index_bits: int
    entry_size: int
    table_addr: int
    """Mask of the next table's physical address in an entry that references a table."""
    table_rsvd: int
    """Reserved (must-be-0) bits of an entry that references a table."""
    leaf_addr: int = 0
    """Mask of the page's physical address in a leaf; 0 when this level never maps a page."""
    leaf_rsvd: int = 0
    """Reserved bits of a leaf entry."""
    ps_leaf: bool = False
    """PS (bit 7) set makes the entry a leaf (PDPTE, PDE); otherwise bit 7 is not PS."""
    last: bool = False
    """Every present entry maps a page (the PTE level; bit 7 is PAT there)."""
    access: bool = True
    """R/W, U/S take part in the access rights (false for the PAE PDPTE, SDM §4.4.1)."""
    xd: bool = False
    """Bit 63 is XD when IA32_EFER.NXE = 1 and reserved otherwise (64-bit entries, §4.4/§4.5)."""
    pse36_bits: int = 0
    """32-bit paging 4-MByte pages: bits (12+n):13 hold PA bits (31+n):32 (SDM Table 4-4)."""

    @property
    def span(self) -> int:
        return 1 << self.shift

    @property
    def entries(self) -> int:
        return 1 << self.index_bits


@dataclass(frozen=True)
class WalkSetup:
    """What the control registers select: the root table, the level rules and NXE."""

    root: int
    rules: tuple[EntryRule, ...]
    nxe: bool


class Kind(Enum):
    ABSENT = "not present"
    RESERVED = "reserved bit"
    TABLE = "table"
    LEAF = "leaf"


def decode(rule: EntryRule, entry: int, nxe: bool) -> tuple[Kind, int]:
    """Classify one entry: (kind, next table PA or page base PA or the reserved bits set).

    SDM §4.3/§4.4.2/§4.5.4: an entry with P = 0 or with a reserved bit set is used neither to
    reference a table nor to map a page.
    """
    if not entry & P:
        return Kind.ABSENT, 0
    leaf = rule.last or (rule.ps_leaf and bool(entry & PS))
    rsvd = rule.leaf_rsvd if leaf else rule.table_rsvd
    if rule.xd and not nxe:
        rsvd |= XD
    if entry & rsvd:
        return Kind.RESERVED, entry & rsvd
    if not leaf:
        return Kind.TABLE, entry & rule.table_addr
    base = entry & rule.leaf_addr
    if rule.pse36_bits:
        base |= (entry >> 13 & ((1 << rule.pse36_bits) - 1)) << 32
    return Kind.LEAF, base


def entry_view(rule: EntryRule, entry: int, nxe: bool) -> EntryView:
    """One entry as the TLB model sees it (:class:`~arches.tlb.EntryView`): :func:`decode`,
    and the rights it grants (SDM §4.6: R/W, U/S where the level takes part in the access
    rights, XD when IA32_EFER.NXE = 1)."""
    kind, value = decode(rule, entry, nxe)
    if kind is Kind.ABSENT or kind is Kind.RESERVED:
        return INVALID
    perms = PERM_ALL
    if rule.access:
        if not entry & RW:
            perms &= ~PERM_W
        if not entry & US:
            perms &= ~PERM_U
    if rule.xd and nxe and entry & XD:
        perms &= ~(PERM_X | PERM_UX)
    return EntryView(LEAF if kind is Kind.LEAF else TABLE, value, perms)


def output_bits(rule: EntryRule) -> int:
    """The address bits of an entry of this level that :func:`decode` only copies into its
    output, whatever the entry is (a next table or a page): no reserved bit among them, and
    none of the PSE-36 bits 20:13 it moves to PA bits 39:32 (a 4-MByte leaf's address is
    bits 31:22)."""
    if rule.last:
        address = rule.leaf_addr
    elif rule.ps_leaf:
        address = rule.leaf_addr & rule.table_addr
    else:
        address = rule.table_addr
    return address & ~(rule.leaf_rsvd | rule.table_rsvd | XD)



def _view_of(ws: WalkSetup) -> Callable[[int, int], EntryView]:
    """:func:`entry_view` of each level of ``ws``, :func:`~arches.tlb.remembered` by the bits
    other than :func:`output_bits`: the TLB model's decoding and the leaf walk's."""
    return _view_for(ws.rules, ws.nxe)


@cache
def _view_for(rules: tuple[EntryRule, ...], nxe: bool) -> Callable[[int, int], EntryView]:
    """One remembering decoder per paging mode, shared by every walk and machine in it (a
    decoding is a function of the rules alone; each machine made its own ~10 times over)."""
    return remembered(lambda level, entry: entry_view(rules[level], entry, nxe),
                      [output_bits(rule) for rule in rules])

class PagingWalker:
    """A walker for one x86 paging mode; subclasses say how the registers select it.

    Access rights (SDM §4.6): a page is writable / user-accessible only if R/W / U/S is 1 in
    every entry used to translate it, and non-executable if XD is 1 in any of them (XD counts
    only when IA32_EFER.NXE = 1; 32-bit paging has no XD).
    """

    word_bits: int = 32
    va_bits: int = 32

    def setup(self, regs: Mapping[str, int]) -> WalkSetup:
        """Check that ``regs`` select this walker's paging mode and decode CR3."""
        raise NotImplementedError

    def canonical(self, va: int) -> bool:
        """Whether ``va`` may be translated at all (IA-32e: SDM §4.5 canonicality)."""
        return True

    def sign_extend(self, va: int) -> int:
        """The canonical form of a VA built from table indexes."""
        return va

    # -- one address -------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        """Walk the tables for ``va`` as the CPU would (SDM §4.3, §4.4.2, §4.5.4)."""
        if not 0 <= va < 1 << self.word_bits:
            raise BadInput(f"virtual address {va:#x} does not fit in {self.word_bits} bits")
        ws = self.setup(regs)
        if not self.canonical(va):
            return Fault(va, "non-canonical")
        table = ws.root
        writable = user = executable = True
        for level, rule in enumerate(ws.rules):
            index = va >> rule.shift & (rule.entries - 1)
            entry = mem.read(table + index * rule.entry_size, rule.entry_size)
            kind, value = decode(rule, entry, ws.nxe)
            if kind is Kind.ABSENT:
                return Fault(va, f"not present ({rule.name})", level)
            if kind is Kind.RESERVED:
                return Fault(va, f"reserved bit ({rule.name} bits {bit_list(value)})", level)
            if rule.access:
                writable = writable and bool(entry & RW)
                user = user and bool(entry & US)
            if rule.xd and ws.nxe and entry & XD:
                executable = False
            if kind is Kind.LEAF:
                return Translation(
                    va=va,
                    pa=value + (va & (rule.span - 1)),
                    size=rule.span,
                    level=level,
                    writable=writable,
                    executable=executable,
                    user=user,
                )
            table = value
        raise AssertionError("the last level of a paging mode always maps a page")

    # -- structure (for the TLB) -------------------------------------------------------

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """The walk from CR3 as the TLB model sees it: one root, every level's shape, and
        the decoding of one entry (kind, next table or page base, the rights it grants;
        an entry with a reserved bit set translates nothing, SDM §4.3/§4.4.2/§4.5.4)."""
        ws = self.setup(regs)
        shapes = tuple(LevelShape(r.name, r.shift, r.entries, r.entry_size) for r in ws.rules)
        return (RootWalk("cr3", ws.root, 0, shapes, _view_of(ws), self.sign_extend),)

    # -- every leaf --------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every valid leaf reachable from CR3 in ascending (canonical) VA order.

        Descends the tables once; entries that are not present or have reserved bits set are
        skipped along with everything below them.
        """
        return cast(Iterator[Translation], self._walk(mem, regs, False))

    def leaf_runs(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[LeafRun]:
        """:meth:`leaves` merged within each table: an entry equal to the previous one plus
        the leaf size (every bit the same but the output address, which has not carried
        out of its field) continues the run without being decoded."""
        return cast(Iterator[LeafRun], self._walk(mem, regs, True))

    def _walk(self, mem: PhysMem, regs: Mapping[str, int], merge: bool) -> Iterator[tuple[
            int, int, int, int, bool, bool, bool]]:
        ws = self.setup(regs)
        codec = {
            (rule.entry_size, rule.entries): struct.Struct(
                ("<" if mem.byteorder == "little" else ">")
                + str(rule.entries)
                + ("Q" if rule.entry_size == 8 else "I")
            )
            for rule in ws.rules
        }
        # Depth first with an explicit stack of table iterators (a recursive generator
        # would pass every leaf up through one frame per level).
        rules = ws.rules
        outputs = [output_bits(rule) for rule in rules]
        sign_extend = self.sign_extend

        def entries(level: int, table: int) -> Iterator[tuple[int, int]]:
            rule = rules[level]
            raw = mem.read_bytes(table, rule.entries * rule.entry_size)
            if raw == bytes(len(raw)):  # no entry with P set
                return iter(())
            return enumerate(codec[rule.entry_size, rule.entries].unpack(raw))

        view = _view_of(ws)  # remembers what an entry's non-address bits decode to
        stack = [(0, 0, True, True, True, entries(0, ws.root))]
        while stack:
            level, va_base, writable, user, executable, it = stack[-1]
            shift, span = rules[level].shift, rules[level].span
            beyond = ~outputs[level]  # bits an output address may not carry into
            # Below the root, the root entry's index fixes the VA's sign: extend it once.
            base = sign_extend(va_base) if level else 0
            run: list[Any] | None = None  # [va, pa, size, leaf size, w, x, u] (merge)
            follow = -1  # the raw entry that continues the run
            for index, entry in it:
                if entry == follow:
                    run[2] += span  # type: ignore[index]
                    after = run[1] + run[2]  # type: ignore[index]
                    follow = entry + span if not after & beyond else -1
                    continue
                if run is not None:
                    yield _tuple(LeafRun, run)
                    run, follow = None, -1
                if not entry & P:
                    continue
                kind, value, perms = view(level, entry)
                if kind == NONE:  # a reserved bit set
                    continue
                w = writable and bool(perms & PERM_W)
                u = user and bool(perms & PERM_U)
                x = executable and bool(perms & PERM_X)
                if kind == TABLE:
                    va = va_base | index << shift
                    stack.append((level + 1, va, w, u, x, entries(level + 1, value)))
                    break
                va = base | index << shift if level else sign_extend(index << shift)
                if not merge:
                    yield _tuple(Translation, (va, value, span, level, w, x, u))
                    continue
                run = [va, value, span, span, w, x, u]
                follow = entry + span if not (value + span) & beyond else -1
            else:
                stack.pop()
                if run is not None:
                    yield _tuple(LeafRun, run)
