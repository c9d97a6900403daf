"""LoongArch64 page-table walk, written from the LoongArch Reference Manual, Volume 1
(Loongson, v1.10; "Multi-level page table structure supported by page walking", the
``LDDIR``/``LDPTE`` instructions, the CSRs ``PGDL``/``PGDH``/``PWCL``/``PWCH``/``TLBRBADV``
and the TLB entry format), with QEMU's ``target/loongarch/cpu_helper.c``
(``loongarch_page_table_walker``, ``get_dir_base_width``) as a second reading.  There is no
LoongArch emulator in this project (Unicorn 2.1.4 has no LoongArch, drgn no LoongArch page
walker): this walker is checked against hand-built bytes only (tests/test_loongarch_walker.py).

LoongArch has no hardware walker in the classic sense (the 3A6000's optional PTW aside, not
modelled): a TLB miss raises the TLB refill exception, whose handler (Linux
``handle_tlb_refill``, arch/loongarch/mm/tlbex.S) is ``csrrd PGD; lddir 3; lddir 1; ldpte 0;
ldpte 1; tlbfill``.  This module computes what those instructions produce, which is what the
hardware then translates with:

1. The VA: bits 63:VALEN must all be equal (else an address error, ADEF/ADEM); bit VALEN-1
   and the bits between the top directory's index and it are *not* translated.
2. ``CSR.PGD`` reads ``PGDH`` when VA bit 63 is 1, ``PGDL`` otherwise; the base address is
   its bits PALEN-1:12 (the high bits -- Linux writes a DMW kernel address -- are dropped).
3. For each directory level ``n`` = 4, 3, 2, 1 whose width in ``PWCH``/``PWCL``
   (``Dir{n}_width``) is non-zero, ``LDDIR``: index = VA[``Dir{n}_base`` + width - 1 :
   ``Dir{n}_base``]; the entry at ``base | index << 3`` (``PTEWidth`` = 0: 8-byte entries).
   There is **no valid bit** in a directory entry: whatever it holds (bits PALEN-1:0) is the
   next table's address -- except an entry with bit 6 set, a huge page (``LDDIR`` returns it
   unchanged and the walk ends there).
4. ``LDPTE``: the PTE at ``base | VA[PTbase + PTwidth - 1 : PTbase] << 3`` -- in fact the
   even/odd pair of PTEs the TLB entry will hold; a huge entry is split into two halves of
   size ``2^(Dir_base - 1)``, its HG bit (12) becoming G and bit 6 dropped.
5. The TLB entry: ``V`` = 0 is a page-invalid exception (PIL/PIS/PIF); a store to a page
   with ``D`` = 0 a page-modify exception (PME); ``NR``/``NX`` read/execute inhibits;
   ``PLV``: with ``RPLV`` = 0 any privilege level numerically at most ``PLV`` may access,
   so a user (PLV3) access needs ``PLV`` = 3; with ``RPLV`` = 1 only ``PLV`` itself; the
   physical address is ``PPN`` (bits PALEN-1:page shift) and the VA's low bits.

Names here are the manual's (V, D, PLV, MAT, G, H, HG, PPN, NR, NX, RPLV; PWCL.PTbase...);
nothing is shared with the Linux names of :mod:`arches.loongarch.bits`.  A directory entry
that points at memory which is not an allocated frame makes the walk raise
:class:`~arches.errors.PhysMemError` (real hardware would read whatever is there).
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

# TLB entry (EntryLo) fields, LA64 (the manual's names).
V = 1 << 0
D = 1 << 1
PLV_SHIFT = 2
PLV_MASK = 3 << PLV_SHIFT
MAT_SHIFT = 4
G = 1 << 6
H = 1 << 6
"""In a directory entry: a huge page (the manual's "huge page" flag, same bit as G)."""
HG = 1 << 12
"""In a huge directory entry: the global bit (moved to G when the entry is loaded)."""
NR = 1 << 61
NX = 1 << 62
RPLV = 1 << 63

# CSR fields.
CRMD_DA = 1 << 3
CRMD_PG = 1 << 4


def _field(v: int, lo: int, width: int) -> int:
    return v >> lo & ((1 << width) - 1)


@dataclass(frozen=True)
class WalkParams:
    """What the CSRs select: both roots, the directory levels in use (top first, as
    (name, base, width)), the PT level and whether paging is on."""

    pgdl: int
    pgdh: int
    dirs: tuple[tuple[str, int, int], ...]
    pt_base: int
    pt_width: int


FAULTS = (
    "page invalid exception (PIL/PIS/PIF): V = 0",
    "address error exception (ADEM): VA bits 63:VALEN are not all equal",
)


class LoongarchWalker(RunsOfLeaves):
    """LA64 with paging (``CRMD.PG`` = 1, ``DA`` = 0); ``valen``/``palen`` are
    ``CPUCFG1.VALEN``/``PALEN`` (48/48 on Loongson 3A5000/3A6000).

    ``empty_tables`` are the physical addresses of tables whose every entry the refill
    handler's loads can only turn into an invalid TLB entry (Linux: ``invalid_pmd_table``,
    ``invalid_pte_table``).  The walk reads through them like any table; they only say
    *where* a translation was lost: :meth:`translate` reports a fault reached through one
    at the level of the directory entry pointing into it, and :meth:`structure` decodes
    such an entry as invalid (see there)."""

    def __init__(self, valen: int = 48, palen: int = 48,
                 empty_tables: frozenset[int] = frozenset()) -> None:
        self.valen = valen
        self.palen = palen
        self.pa_mask = (1 << palen) - 1
        self.empty_tables = empty_tables

    def __repr__(self) -> str:
        return f"LoongarchWalker(valen={self.valen}, palen={self.palen})"

    # -- registers ----------------------------------------------------------------------

    def setup(self, regs: Mapping[str, int]) -> WalkParams:
        crmd = reg(regs, "crmd")
        if not crmd & CRMD_PG or crmd & CRMD_DA:
            raise BadInput(f"CRMD {crmd:#x}: paging is off (PG = 0 or DA = 1); this walker "
                           "models mapped translation only")
        pwcl, pwch = reg(regs, "pwcl"), reg(regs, "pwch")
        if _field(pwcl, 30, 2):
            raise BadInput(f"PWCL {pwcl:#x}: PTEWidth {_field(pwcl, 30, 2)} (entries wider "
                           "than 64 bits) is not modelled")
        dirs = []
        for name, base, width in (("Dir4", _field(pwch, 12, 6), _field(pwch, 18, 6)),
                                  ("Dir3", _field(pwch, 0, 6), _field(pwch, 6, 6)),
                                  ("Dir2", _field(pwcl, 20, 5), _field(pwcl, 25, 5)),
                                  ("Dir1", _field(pwcl, 10, 5), _field(pwcl, 15, 5))):
            if width:
                dirs.append((name, base, width))
        pt_base, pt_width = _field(pwcl, 0, 5), _field(pwcl, 5, 5)
        if not pt_width:
            raise BadInput(f"PWCL {pwcl:#x}: PTwidth is 0")
        return WalkParams(reg(regs, "pgdl"), reg(regs, "pgdh"), tuple(dirs), pt_base,
                          pt_width)

    def root(self, p: WalkParams, va: int) -> int:
        """``CSR.PGD``: PGDH for VA bit 63 set, else PGDL; bits PALEN-1:12 are the base."""
        return (p.pgdh if va >> 63 & 1 else p.pgdl) & self.pa_mask & ~0xFFF

    def canonical(self, va: int) -> bool:
        top = va >> self.valen
        return top in (0, (1 << (64 - self.valen)) - 1)

    # -- one entry ----------------------------------------------------------------------

    def decode_dir(self, e: int) -> tuple[str, int]:
        """``LDDIR`` on a directory entry: ('huge', entry) or ('table', next base)."""
        if e & H:
            return "huge", e
        return "table", e & self.pa_mask

    def _translation(self, e: int, va: int, size: int, level: int) -> Translation:
        base = e & self.pa_mask & ~(size - 1)
        plv = (e & PLV_MASK) >> PLV_SHIFT
        return Translation(va, base | (va & (size - 1)), size, level, bool(e & D),
                           not e & NX, plv == 3)

    # -- one address ----------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        if not 0 <= va < 1 << 64:
            raise BadInput(f"virtual address {va:#x} does not fit in 64 bits")
        p = self.setup(regs)
        if not self.canonical(va):
            return Fault(va, FAULTS[1])
        base = self.root(p, va)
        empty_from: int | None = None
        for n, (name, dbase, width) in enumerate(p.dirs):
            idx = va >> dbase & ((1 << width) - 1)
            e = mem.read(base | idx << 3, 8)
            kind, value = self.decode_dir(e)
            if kind == "huge":
                # LDPTE on a huge entry: the half holding va, each 2^(dbase - 1) bytes;
                # the pair makes one 2^dbase translation.
                if not e & V:
                    return Fault(va, f"{FAULTS[0]} (huge entry at {name})", n)
                return self._translation(e, va, 1 << dbase, n)
            if empty_from is None and value & ~0xFFF in self.empty_tables:
                empty_from = n
            base = value
        idx = va >> p.pt_base & ((1 << p.pt_width) - 1)
        e = mem.read(base | idx << 3, 8)
        if not e & V:
            if empty_from is not None:
                # The refill reached the PTE through an empty table: the translation was
                # lost at the directory entry that points there.
                return Fault(va, f"{FAULTS[0]} (PTE of an empty table, reached through "
                                 f"{p.dirs[empty_from][0]})", empty_from)
            return Fault(va, f"{FAULTS[0]} (PTE)", len(p.dirs))
        return self._translation(e, va, 1 << p.pt_base, len(p.dirs))

    # -- structure (for the TLB) ----------------------------------------------------------

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """Two walks, PGDL (VA bit 63 = 0) and PGDH (bit 63 = 1), each over the directory
        levels the PWC registers enable and the PT level, for the TLB model.

        What the TLB can hold on LoongArch is leaf translations only (TLB entries made by
        ``tlbfill``/``tlbwr`` from PTE pairs): the refill handler reads the directories
        afresh on every miss, so there is no walk cache.  A directory entry is decoded as a
        table -- except one that points at an ``empty_tables`` table (Linux's
        ``invalid_pmd_table``/``invalid_pte_table``), which is decoded as *invalid*: every
        translation the refill can build through it has V = 0, which the TLB may hold but
        which translates nothing (the page-invalid exception handler replaces it), so
        re-pointing such an entry at a real table leaves nothing stale.  An entry of 0,
        which Linux never writes (its tables are at ``CACHE_BASE | pa``), is invalid too:
        the emulated machine has no table at physical address 0.  Rights of a leaf:
        D (write), NX (execute), PLV = 3 (user)."""
        p = self.setup(regs)
        ndirs = len(p.dirs)

        def view(n: int, e: int) -> EntryView:
            if n < ndirs:
                kind, value = self.decode_dir(e)
                if kind == "table":
                    if value & ~0xFFF in self.empty_tables or not e:
                        return INVALID
                    return EntryView(TABLE, value & ~0xFFF, PERM_ALL)
                size_shift = p.dirs[n][1]
            else:
                size_shift = p.pt_base
            if not e & V:
                return INVALID
            perms = PERM_ALL
            if not e & D:
                perms &= ~PERM_W
            if e & NX:
                perms &= ~(PERM_X | PERM_UX)
            if (e & PLV_MASK) >> PLV_SHIFT != 3:
                perms &= ~(PERM_U | PERM_UX)
            return EntryView(LEAF, e & self.pa_mask & ~((1 << size_shift) - 1), perms)

        shapes = tuple(LevelShape(name, base, 1 << width, 8) for name, base, width in p.dirs)
        shapes += (LevelShape("PT", p.pt_base, 1 << p.pt_width, 8),)
        high = ((1 << 64) - 1) & ~((1 << self.valen) - 1)
        return (
            RootWalk("pgdl", self.root(p, 0), 0, shapes, view, lambda va: va),
            RootWalk("pgdh", self.root(p, 1 << 63), high, shapes, view,
                     lambda va: va | high),
        )

    # -- every leaf -----------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every V = 1 leaf reachable from PGDL then PGDH, in VA order, one per entry.
        Each table's leaves are computed once per call (empty directory entries all point
        at the same invalid tables)."""
        p = self.setup(regs)
        high = ((1 << 64) - 1) & ~((1 << self.valen) - 1)
        memo: dict[tuple[int, int], list[tuple[int, int, int, bool]]] = {}
        for va_base, rootpa in ((0, self.root(p, 0)), (high, self.root(p, 1 << 63))):
            for off, e, n, huge in self._table_leaves(mem, p, 0, rootpa, memo):
                size = 1 << (p.dirs[n][1] if huge else p.pt_base)
                yield self._translation(e, va_base | off, size, n)

    def _table_leaves(self, mem: PhysMem, p: WalkParams, n: int, table: int,
                      memo: dict[tuple[int, int], list[tuple[int, int, int, bool]]],
                      ) -> list[tuple[int, int, int, bool]]:
        """(VA offset, entry, level, huge) of every valid leaf under ``table`` at level
        ``n`` (0 = the top directory), offsets relative to the table's first VA."""
        key = (n, table)
        got = memo.get(key)
        if got is not None:
            return got
        ndirs = len(p.dirs)
        if n < ndirs:
            _name, dbase, width = p.dirs[n]
            entries = 1 << width
        else:
            dbase, width = p.pt_base, p.pt_width
            entries = 1 << width
        raw = mem.read_bytes(table, entries * 8)
        fmt = ("<" if mem.byteorder == "little" else ">") + f"{entries}Q"
        out: list[tuple[int, int, int, bool]] = []
        below: dict[int, list[tuple[int, int, int, bool]] | None] = {}
        """A directory entry value -> the leaves of the table it points at (None: a huge
        leaf); most entries of a directory hold the same value (the invalid table)."""
        for idx, e in enumerate(struct.unpack(fmt, raw)):
            if n < ndirs:
                if e in below:
                    sub = below[e]
                else:
                    kind, value = self.decode_dir(e)
                    sub = below[e] = None if kind == "huge" else self._table_leaves(
                        mem, p, n + 1, value & ~0xFFF, memo)
                if sub is None:
                    if e & V:
                        out.append((idx << dbase, e, n, True))
                    continue
                off = idx << dbase
                for sub_off, se, sn, sh in sub:
                    out.append((off | sub_off, se, sn, sh))
            elif e & V:
                out.append((idx << dbase, e, n, False))
        memo[key] = out
        return out
