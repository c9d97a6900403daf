"""Radix address translation, written from the Power ISA v3.0B / v3.1 (Book III, "Storage
Control": "Radix Tree Translation", "Partition Table", "Process Table", "Radix Tree Page
Directory Entry", "Radix Tree Page Table Entry", "Storage Protection", "Reference and Change
Recording").

Names here are the ISA's (quadrant, PID, RTS, RPDB, RPDS, V, L, NLB, NLS, RPN, R, C, ATT,
EAA); nothing is shared with the Linux names of :mod:`arches.ppc64.bits`.  Bit numbers are
LSB-0 of the doubleword as the CPU loads it (the tables are big-endian in storage: the ISA
numbers bit 0 as the most significant).

The walk of one effective address (host, LPID 0, LPCR[HR] = LPCR[UPRT] = 1):

1. The quadrant is EA bits 63:62.  Quadrant 0 (problem-state or hypervisor access to the
   application's space) uses the process-table entry of PIDR; quadrant 3 uses PID 0's.
   Quadrants 1 and 2 (hypervisor access to a guest's space) are not modelled: a fault.
2. The process-table entry gives RTS (RTS1 = bits 62:61, RTS2 = bits 7:5: the tree maps
   2^(RTS+31) bytes), RPDB (bits 59:8, the root directory's real address) and RPDS (bits
   4:0: the root has 2^RPDS entries of 8 bytes).  EA bits between the tree size and the
   quadrant must be 0, else a segment interrupt (no table is read).
3. Each level indexes the next ``N`` bits of the EA below those consumed (N = RPDS for the
   root, NLS of the entry above for the others) and reads a doubleword.
4. V (bit 63) = 0: a page fault.  L (bit 62) = 1: a leaf (PTE) mapping the remaining EA bits;
   else a directory entry (PDE): NLB = bits 59:8 is the next table's base, NLS = bits 4:0 its
   entry count (log2).  NLS < 5, a next table not aligned to its size, or fewer than 12 EA
   bits left below it, is an invalid tree: a fault here.
5. A leaf's page size is 2^(remaining bits); only 4K, 64K, 2M and 1G exist (POWER9/10),
   any other is a fault.  RPN = bits 56:12; an RPN not aligned to the page size is a fault.
6. R (bit 8) and C (bit 7) are recorded by the hardware on access and store (POWER9 and
   later: "the hardware sets R and C"); no interrupt is taken for them.
7. EAA (bits 3:0): privilege (bit 3: no problem-state access), read (bit 2), read/write
   (bit 1), execute (bit 0).  Read needs read or read/write; a leaf granting no access
   (Linux's PROT_NONE: privileged, no R/RW/X) faults on any access.  AMR/IAMR storage keys
   and KUAP are not modelled.

Not modelled: partition-scoped (nested) translation, quadrants 1 and 2, ATT (bits 5:4:
storage attributes), the "page walk cache" hints, hash (HPT) translation.  A valid entry
that points at memory which is not an allocated frame makes the walk raise
:class:`~arches.errors.PhysMemError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from arches.config import Fault, RunsOfLeaves, Translation, reg
from arches.errors import BadInput
from arches.memory import PhysMem
from arches.tlb import (
    INVALID,
    LEAF,
    PERM_ALL,
    PERM_U,
    PERM_UX,
    PERM_W,
    PERM_X,
    TABLE,
    EntryView,
    LevelShape,
    RootWalk,
)

# Entry fields (the ISA's names; LSB-0).
V = 1 << 63
L = 1 << 62
NLB_MASK = ((1 << 60) - 1) & ~0xFF
"""PDE bits 59:8 (ISA 4:55): next level base."""
NLS_MASK = 0x1F
RPN_MASK = ((1 << 57) - 1) & ~0xFFF
"""PTE bits 56:12 (ISA 7:51): real page number."""
R_BIT = 1 << 8
C_BIT = 1 << 7
EAA_PRIV = 1 << 3
EAA_READ = 1 << 2
EAA_RW = 1 << 1
EAA_EXEC = 1 << 0

# Process-table entry doubleword 0.
RTS1_SHIFT = 61
RTS2_SHIFT = 5
RPDB_MASK = ((1 << 60) - 1) & ~0xFF
RPDS_MASK = 0x1F

# LPCR
LPCR_HR = 1 << 20
LPCR_UPRT = 1 << 22

PAGE_SIZES = (12, 16, 21, 30)
"""log2 of the page sizes radix translation supports on POWER9/10: 4K, 64K, 2M, 1G."""

QUADRANT_BASE = {0: 0, 3: 0xC000000000000000}
LEVEL_NAMES = ("RPD", "PD1", "PD2", "PT")
"""The root page directory, two page directories and the page table of Linux's 4-level
trees (the ISA names only 'page directory' and 'page table')."""


@dataclass(frozen=True)
class Tree:
    """One radix tree: what a process-table entry selects."""

    quadrant: int
    pid: int
    root: int
    rpds: int
    tree_bits: int


def rts(prte: int) -> int:
    return (prte >> RTS1_SHIFT & 3) << 3 | (prte >> RTS2_SHIFT & 7)


class RadixWalker(RunsOfLeaves):
    """Radix translation for one base page size (``page_shift`` 12 or 16): the size only
    names the levels for the TLB model; the walk itself follows the entries' NLS."""

    def __init__(self, level_bits: tuple[int, ...], page_shift: int) -> None:
        self.level_bits = level_bits
        self.page_shift = page_shift

    def __repr__(self) -> str:
        return f"RadixWalker({self.level_bits}, {self.page_shift})"

    # -- registers ------------------------------------------------------------------------

    def trees(self, regs: Mapping[str, int]) -> dict[int, Tree]:
        """Quadrant -> tree, from LPCR/LPIDR/PIDR and the two process-table entries."""
        lpcr = reg(regs, "lpcr")
        if lpcr & (LPCR_HR | LPCR_UPRT) != LPCR_HR | LPCR_UPRT:
            raise BadInput(f"LPCR {lpcr:#x} does not select radix with a process table "
                           "(HR and UPRT must be set)")
        if reg(regs, "lpidr"):
            raise BadInput("only the host partition (LPIDR = 0) is modelled")
        out = {}
        for q, pid, name in ((0, reg(regs, "pidr"), "prte_pidr"), (3, 0, "prte_0")):
            prte = reg(regs, name)
            bits = rts(prte) + 31
            if not 0 <= prte < 1 << 64 or bits > 62:
                raise BadInput(f"{name} {prte:#x}: RTS {rts(prte)} is not a radix tree size")
            out[q] = Tree(q, pid, prte & RPDB_MASK, prte & RPDS_MASK, bits)
        return out

    # -- one entry ------------------------------------------------------------------------

    @staticmethod
    def decode(entry: int, remaining: int) -> tuple[str, int, int]:
        """('leaf', real base, log2 size) / ('table', next base, NLS) / ('fault', 0, 0)
        for an entry read with ``remaining`` EA bits still to translate below it."""
        if not entry & V:
            return "fault", 0, 0
        if entry & L:
            if remaining not in PAGE_SIZES:
                return "fault", 1, 0
            rpn = entry & RPN_MASK
            if rpn & ((1 << remaining) - 1):
                return "fault", 2, 0
            return "leaf", rpn, remaining
        nls = entry & NLS_MASK
        nlb = entry & NLB_MASK
        if nls < 5 or remaining - nls < 12 or nlb % (8 << nls):
            return "fault", 3, 0
        return "table", nlb, nls

    FAULTS = (
        "page fault: V = 0",
        "page fault: leaf page size not supported",
        "page fault: RPN not aligned to the page size",
        "page fault: invalid page directory entry (NLS, NLB alignment or tree depth)",
    )

    @staticmethod
    def _translation(entry: int, va: int, base: int, size: int, level: int) -> Translation:
        return Translation(va, base + (va & (size - 1)), size, level, bool(entry & EAA_RW),
                           bool(entry & EAA_EXEC), not entry & EAA_PRIV)

    @staticmethod
    def accessible(entry: int) -> bool:
        """Some access is permitted by EAA (read, read/write or execute)."""
        return bool(entry & (EAA_READ | EAA_RW | EAA_EXEC))

    # -- one address ------------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        if not 0 <= va < 1 << 64:
            raise BadInput(f"effective address {va:#x} does not fit in 64 bits")
        trees = self.trees(regs)
        q = va >> 62
        if q not in trees:
            return Fault(va, f"quadrant {q} (hypervisor access to a guest) not modelled")
        t = trees[q]
        if (va & ((1 << 62) - 1)) >> t.tree_bits:
            return Fault(va, f"segment interrupt: EA bits 61:{t.tree_bits} not zero")
        table, nbits, remaining, depth = t.root, t.rpds, t.tree_bits, 0
        while True:
            remaining -= nbits
            idx = va >> remaining & ((1 << nbits) - 1)
            entry = int.from_bytes(mem.read_bytes(table + 8 * idx, 8), "big")
            kind, value, extra = self.decode(entry, remaining)
            if kind == "fault":
                return Fault(va, f"{self.FAULTS[value]} (level {depth})", depth)
            if kind == "table":
                table, nbits, depth = value, extra, depth + 1
                continue
            if not self.accessible(entry):
                return Fault(va, f"storage protection: EAA grants no access (level {depth})",
                             depth)
            return self._translation(entry, va, value, 1 << extra, depth)

    # -- structure (for the TLB) ----------------------------------------------------------

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """One walk per quadrant (0: PIDR's tree, 3: PID 0's), with Linux's level shapes
        (``level_bits``); a directory entry whose NLS disagrees with the next shape
        translates nothing here (Linux never writes one).  A leaf's rights: W = read/write,
        X and UX = execute, U = not privileged.  A leaf granting no access at all (Linux's
        PROT_NONE) counts as no translation, as :meth:`leaves` has it: whatever a TLB may
        hold of it can only fault, so replacing it needs no flush, while replacing a leaf
        that granted something by it still leaves a stale mark."""
        out = []
        for q, t in sorted(self.trees(regs).items()):
            shifts = []
            rem = t.tree_bits
            for b in self.level_bits:
                rem -= b
                shifts.append(rem)
            shapes = tuple(LevelShape(LEVEL_NAMES[i], shifts[i], 1 << self.level_bits[i], 8)
                           for i in range(len(self.level_bits)))

            def view(n: int, entry: int, shifts: tuple[int, ...] = tuple(shifts)) -> EntryView:
                kind, value, extra = self.decode(entry, shifts[n])
                if kind == "fault":
                    return INVALID
                if kind == "table":
                    if n + 1 >= len(self.level_bits) or extra != self.level_bits[n + 1]:
                        return INVALID
                    return EntryView(TABLE, value, PERM_ALL)
                if not self.accessible(entry):
                    return INVALID
                perms = PERM_ALL
                if not entry & EAA_RW:
                    perms &= ~PERM_W
                if not entry & EAA_EXEC:
                    perms &= ~(PERM_X | PERM_UX)
                if entry & EAA_PRIV:
                    perms &= ~(PERM_U | PERM_UX)
                return EntryView(LEAF, value, perms)

            base = QUADRANT_BASE[q]

            def canonical(va: int, base: int = base) -> int:
                return va | base

            out.append(RootWalk(f"prte[{t.pid}]", t.root, base, shapes, view, canonical))
        return tuple(out)

    # -- every leaf -----------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every leaf that grants some access, in ascending EA order (quadrant 0 first),
        one per PTE."""
        for q, t in sorted(self.trees(regs).items()):
            yield from self._leaves(mem, t.root, t.rpds, t.tree_bits, QUADRANT_BASE[q], 0)

    def _leaves(self, mem: PhysMem, table: int, nbits: int, above: int, va_base: int,
                depth: int) -> Iterator[Translation]:
        remaining = above - nbits
        raw = mem.read_bytes(table, 8 << nbits)
        if raw == bytes(8 << nbits):  # no entry with V set
            return
        for idx, entry in enumerate(struct.unpack(f">{1 << nbits}Q", raw)):
            if not entry & V:
                continue
            kind, value, extra = self.decode(entry, remaining)
            va = va_base | idx << remaining
            if kind == "table":
                yield from self._leaves(mem, value, extra, remaining, va, depth + 1)
            elif kind == "leaf" and self.accessible(entry):
                yield self._translation(entry, va, value, 1 << extra, depth)
