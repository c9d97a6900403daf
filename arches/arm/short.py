"""ARMv7-A address translation with the Short-descriptor format (VMSAv7, stage 1, PL0/PL1,
Secure or Non-secure alike), written from the ARM Architecture Reference Manual ARMv7-A/R
edition (ARM DDI 0406C): B3.5 "Short-descriptor translation table format" (B3.5.1 the
descriptor formats, B3.5.4 selecting TTBR0/TTBR1 with TTBCR.N, B3.5.5 the walk), B3.7
"Memory access control" (B3.7.1 AP[2:0], B3.7.2 XN and PXN, B3.7.3 domains and the DACR),
B4.1.153 SCTLR, B4.1.154 TTBCR, B4.1.43 DACR.

Names are the manual's (TTBR0/TTBR1/TTBCR.N/PD0/PD1/EAE, DACR D0..D15, SCTLR.M/AFE/WXN/UWXN;
descriptor fields PXN, NS, Domain, B, C, XN, AP[2:0], TEX, S, nG, section/supersection);
nothing is shared with the Linux names of :mod:`arches.arm.bits_short`.

The walk of one address:

1. SCTLR.M = 0 is a flat map: not modelled (refused).  TTBCR.EAE = 1 selects the
   Long-descriptor format (refused here).  With N = TTBCR.N, VA[31:32-N] = 0 walks from
   TTBR0 (table of ``16KB >> N``, base TTBR0[31:14-N]), else from TTBR1 (16KB table, base
   TTBR1[31:14]); TTBCR.PD0/PD1 = 1 makes a walk through that TTBR a Translation fault.
2. First level, index VA[31-N:20] (TTBR0) or VA[31:20] (TTBR1), 4-byte descriptors:
   bits[1:0] = 00 fault; 01 page table (PXN bit 2, NS bit 3, Domain bits 8:5, base 31:10);
   1x section (PXN bit 0 on an implementation with PXN, B, C, XN bit 4, Domain 8:5,
   AP[1:0] 11:10, TEX 14:12, AP[2] 15, S 16, nG 17, bit 18 = 0, NS 19, base 31:20) or, with
   bit 18 = 1, supersection (16MB: base 31:24, extended base PA[35:32] in 23:20 and
   PA[39:36] in 8:5; always domain 0).
3. Second level, index VA[19:12], 256 4-byte descriptors: bits[1:0] = 00 fault; 01 large
   page (64KB: XN bit 15, TEX 14:12, nG 11, S 10, AP[2] 9, AP[1:0] 5:4, base 31:16); 1x
   small page (4KB: XN bit 0, AP[1:0] 5:4, TEX 8:6, AP[2] 9, S 10, nG 11, base 31:12).
4. The domain of a section or of a page table (supersections: 0) is checked against the
   DACR: 00 No access (Domain fault), 01 Client (permissions checked), 11 Manager (not
   checked: read, write and execute at any level), 10 reserved (treated as No access).
5. Client permissions with SCTLR.AFE = 0 (AP[0] is a permission bit): AP[2:0] 000 none,
   001 PL1 RW, 010 PL1 RW PL0 RO, 011 RW, 100 reserved (fault), 101 PL1 RO, 110/111 RO.
   With AFE = 1, AP[0] is the Access flag (0 = Access flag fault) and AP[2:1] the
   permissions.  XN forbids execution at any level, PXN (the leaf's, or PXNTable of the page
   table descriptor) at PL1; SCTLR.WXN makes writable regions XN, UWXN PL0-writable ones
   PXN.

A result's ``user`` is "PL0 may read"; ``writable`` and ``executable`` are the rights of the
level that owns the page (PL0 for a user page, PL1 otherwise).  Not modelled: the memory
attributes (TEX/C/B with TRE), shareability, NS, Large Physical Address Extension.  A valid
page-table descriptor pointing at memory that is not an allocated frame makes the walk raise
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

# SCTLR / TTBCR (B4.1.153, B4.1.154)
SCTLR_M = 1 << 0
SCTLR_WXN = 1 << 19
SCTLR_UWXN = 1 << 20
SCTLR_AFE = 1 << 29
TTBCR_N = 7
TTBCR_PD0 = 1 << 4
TTBCR_PD1 = 1 << 5
TTBCR_EAE = 1 << 31

# First-level descriptor fields
L1_TYPE = 3
L1_FAULT, L1_TABLE = 0, 1
L1_PXN_TABLE = 1 << 2
L1_SECT_PXN = 1 << 0
L1_SECT_XN = 1 << 4
L1_DOMAIN_SHIFT = 5
L1_SECT_AP01_SHIFT = 10
L1_SECT_AP2 = 1 << 15
L1_SUPERSECTION = 1 << 18
L1_TABLE_BASE = 0xFFFFFC00

# Second-level descriptor fields
L2_TYPE = 3
L2_FAULT, L2_LARGE = 0, 1
L2_SMALL_XN = 1 << 0
L2_LARGE_XN = 1 << 15
L2_AP01_SHIFT = 4
L2_AP2 = 1 << 9

SECTION = 1 << 20
SUPERSECTION = 1 << 24
LARGE_PAGE = 1 << 16
SMALL_PAGE = 1 << 12

DOMAIN_FAULT = "Domain fault"


@dataclass(frozen=True)
class Rights:
    """What one leaf grants: read/write at PL1 and PL0, execute at PL1 and PL0."""

    r1: bool
    w1: bool
    r0: bool
    w0: bool
    x1: bool
    x0: bool


@dataclass(frozen=True)
class ShortParams:
    """What the registers select."""

    ttbr0: int
    ttbr1: int
    n: int
    pd0: bool
    pd1: bool
    dacr: int
    afe: bool
    wxn: bool
    uwxn: bool


def ap_rights(ap: int, afe: bool) -> tuple[bool, bool, bool, bool] | None:
    """(PL1 read, PL1 write, PL0 read, PL0 write) for AP[2:0] (B3.7.1, Table B3-8; with
    AFE = 1, Table B3-9 on AP[2:1]); None for the reserved encoding 100."""
    if afe:
        ap21 = ap >> 1
        return {0: (True, True, False, False), 1: (True, True, True, True),
                2: (True, False, False, False), 3: (True, False, True, False)}[ap21]
    table: dict[int, tuple[bool, bool, bool, bool] | None] = {
        0b000: (False, False, False, False), 0b001: (True, True, False, False),
        0b010: (True, True, True, False), 0b011: (True, True, True, True),
        0b100: None, 0b101: (True, False, False, False),
        0b110: (True, False, True, False), 0b111: (True, False, True, False),
    }
    return table[ap]


class ShortWalker(RunsOfLeaves):
    """The VMSAv7 Short-descriptor walker (one per configuration; the registers say the
    rest).  Registers: ``sctlr``, ``ttbcr``, ``ttbr0``, ``ttbr1``, ``dacr``."""

    def __repr__(self) -> str:
        return "ShortWalker()"

    # -- registers ----------------------------------------------------------------------

    def setup(self, regs: Mapping[str, int]) -> ShortParams:
        sctlr = reg(regs, "sctlr")
        ttbcr = reg(regs, "ttbcr")
        if not sctlr & SCTLR_M:
            raise BadInput(f"SCTLR {sctlr:#x} has the MMU off (M = 0): nothing to walk")
        if ttbcr & TTBCR_EAE:
            raise BadInput(f"TTBCR {ttbcr:#x} selects the Long-descriptor format (EAE = 1)")
        n = ttbcr & TTBCR_N
        ttbr0 = reg(regs, "ttbr0") & (0xFFFFFFFF << (14 - n)) & 0xFFFFFFFF
        ttbr1 = reg(regs, "ttbr1") & 0xFFFFC000
        return ShortParams(ttbr0, ttbr1, n, bool(ttbcr & TTBCR_PD0), bool(ttbcr & TTBCR_PD1),
                           reg(regs, "dacr"), bool(sctlr & SCTLR_AFE),
                           bool(sctlr & SCTLR_WXN), bool(sctlr & SCTLR_UWXN))

    @staticmethod
    def _l1_entry(sp: ShortParams, va: int) -> tuple[str, int] | None:
        """(which TTBR, first-level descriptor address) for ``va``; None when PDx = 1."""
        if sp.n == 0 or not va >> (32 - sp.n):
            if sp.pd0:
                return None
            idx = (va >> 20) & ((1 << (12 - sp.n)) - 1)
            return "ttbr0", sp.ttbr0 + 4 * idx
        if sp.pd1:
            return None
        return "ttbr1", sp.ttbr1 + 4 * (va >> 20)

    # -- decoding ---------------------------------------------------------------------------

    @staticmethod
    def domain_access(sp: ShortParams, domain: int) -> int:
        """DACR field of ``domain``: 0 no access, 1 client, 2 reserved, 3 manager."""
        return (sp.dacr >> (2 * domain)) & 3

    def rights(self, sp: ShortParams, domain: int, ap: int, xn: bool, pxn: bool
               ) -> Rights | str:
        """The rights of a leaf in ``domain`` (a fault reason when there are none)."""
        acc = self.domain_access(sp, domain)
        if acc in (0, 2):
            return f"{DOMAIN_FAULT} (domain {domain}: DACR field {acc:#04b})"
        if acc == 3:  # Manager: no permission checks
            return Rights(True, True, True, True, True, True)
        if sp.afe and not ap & 1:
            return "Access flag fault (AP[0] = 0 with SCTLR.AFE = 1)"
        got = ap_rights(ap, sp.afe)
        if got is None:
            return "Permission fault (AP[2:0] = 0b100 is reserved)"
        r1, w1, r0, w0 = got
        x1 = r1 and not xn and not pxn
        x0 = r0 and not xn
        if sp.wxn and (w1 or w0):
            x1 = x0 = False
        if sp.uwxn and w0:
            x1 = False
        return Rights(r1, w1, r0, w0, x1, x0)

    @staticmethod
    def l1_kind(desc: int) -> str:
        t = desc & L1_TYPE
        if t == L1_FAULT:
            return "fault"
        if t == L1_TABLE:
            return "table"
        return "supersection" if desc & L1_SUPERSECTION else "section"

    @staticmethod
    def section_base(desc: int) -> tuple[int, int]:
        """(output base PA, size) of a section or supersection descriptor."""
        if desc & L1_SUPERSECTION:
            pa = (desc & 0xFF000000) | ((desc >> 20) & 0xF) << 32 | ((desc >> 5) & 0xF) << 36
            return pa, SUPERSECTION
        return desc & 0xFFF00000, SECTION

    @staticmethod
    def l1_leaf_fields(desc: int) -> tuple[int, int, bool, bool]:
        """(domain, AP[2:0], XN, PXN) of a section/supersection."""
        domain = 0 if desc & L1_SUPERSECTION else (desc >> L1_DOMAIN_SHIFT) & 0xF
        ap = ((desc >> L1_SECT_AP01_SHIFT) & 3) | (4 if desc & L1_SECT_AP2 else 0)
        return domain, ap, bool(desc & L1_SECT_XN), bool(desc & L1_SECT_PXN)

    @staticmethod
    def l2_leaf(desc: int) -> tuple[int, int, int, bool] | None:
        """(output base PA, size, AP[2:0], XN) of a second-level descriptor; None: fault."""
        t = desc & L2_TYPE
        if t == L2_FAULT:
            return None
        ap = ((desc >> L2_AP01_SHIFT) & 3) | (4 if desc & L2_AP2 else 0)
        if t == L2_LARGE:
            return desc & 0xFFFF0000, LARGE_PAGE, ap, bool(desc & L2_LARGE_XN)
        return desc & 0xFFFFF000, SMALL_PAGE, ap, bool(desc & L2_SMALL_XN)

    @staticmethod
    def _translation(va: int, base: int, size: int, level: int, r: Rights) -> Translation:
        user = r.r0
        writable = r.w0 if user else r.w1
        executable = r.x0 if user else r.x1
        return Translation(va, base + (va & (size - 1)), size, level, writable, executable,
                           user)

    # -- one address ----------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        if not 0 <= va < 1 << 32:
            raise BadInput(f"virtual address {va:#x} does not fit in 32 bits")
        sp = self.setup(regs)
        where = self._l1_entry(sp, va)
        if where is None:
            return Fault(va, "Translation fault, first level (TTBCR.PDx = 1)", 0)
        desc = mem.read(where[1], 4)
        kind = self.l1_kind(desc)
        if kind == "fault":
            return Fault(va, "Translation fault, first level", 0)
        if kind != "table":
            domain, ap, xn, pxn = self.l1_leaf_fields(desc)
            r = self.rights(sp, domain, ap, xn, pxn)
            if isinstance(r, str):
                return Fault(va, f"{r}, section", 0)
            if not (r.r0 or r.r1):
                return Fault(va, "Permission fault, section (no access)", 0)
            base, size = self.section_base(desc)
            return self._translation(va, base, size, 0, r)
        domain = (desc >> L1_DOMAIN_SHIFT) & 0xF
        l2 = mem.read((desc & L1_TABLE_BASE) + 4 * ((va >> 12) & 0xFF), 4)
        leaf = self.l2_leaf(l2)
        if leaf is None:
            return Fault(va, "Translation fault, second level", 1)
        base, size, ap, xn = leaf
        r = self.rights(sp, domain, ap, xn, bool(desc & L1_PXN_TABLE))
        if isinstance(r, str):
            return Fault(va, f"{r}, page", 1)
        if not (r.r0 or r.r1):
            return Fault(va, "Permission fault, page (no access)", 1)
        return self._translation(va, base, size, 1, r)

    # -- structure (for the TLB) ----------------------------------------------------------

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """One walk per TTBR in use: a first level of 4-byte descriptors (``4096 >> N``
        from TTBR0; from TTBR1 the entries at and above ``2^(32-N)``), a second level of
        256.  A descriptor the walk faults on translates nothing; a leaf's rights: W (some
        level may write), X (PL1 may execute), UX (PL0 may execute), U (PL0 may read);
        PXNTable of a page-table descriptor takes X away from everything below it."""
        sp = self.setup(regs)

        def view(level: int, desc: int) -> EntryView:
            if level == 0:
                kind = self.l1_kind(desc)
                if kind == "fault":
                    return INVALID
                if kind == "table":
                    perms = PERM_ALL & ~PERM_X if desc & L1_PXN_TABLE else PERM_ALL
                    if self.domain_access(sp, (desc >> L1_DOMAIN_SHIFT) & 0xF) in (0, 2):
                        return INVALID
                    return EntryView(TABLE, desc & L1_TABLE_BASE, perms)
                domain, ap, xn, pxn = self.l1_leaf_fields(desc)
                return self._leaf_view(sp, domain, ap, xn, pxn, self.section_base(desc)[0])
            leaf = self.l2_leaf(desc)
            if leaf is None:
                return INVALID
            base, _size, ap, xn = leaf
            # the page table's domain is checked at level 0 (INVALID there)
            return self._leaf_view(sp, None, ap, xn, False, base)

        l2 = LevelShape("L2", 12, 256, 4)
        walks = []
        n = sp.n
        if not sp.pd0:
            walks.append(RootWalk("ttbr0", sp.ttbr0, 0,
                                  (LevelShape("L1", 20, 4096 >> n, 4), l2), view, _ident))
        if n and not sp.pd1:
            first = 4096 >> n
            walks.append(RootWalk("ttbr1", sp.ttbr1 + 4 * first, 1 << (32 - n),
                                  (LevelShape("L1", 20, 4096 - first, 4), l2), view, _ident))
        return tuple(walks)

    def _leaf_view(self, sp: ShortParams, domain: int | None, ap: int, xn: bool, pxn: bool,
                   base: int) -> EntryView:
        d = _first_client(sp) if domain is None else domain
        r = self.rights(sp, d, ap, xn, pxn)
        if isinstance(r, str) or not (r.r0 or r.r1):
            return INVALID
        perms = 0
        if r.w0 or r.w1:
            perms |= PERM_W
        if r.x1:
            perms |= PERM_X
        if r.x0:
            perms |= PERM_UX
        if r.r0:
            perms |= PERM_U
        return EntryView(LEAF, base, perms)

    # -- every leaf -----------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every leaf that translates, in VA order, one per descriptor (the 16 copies of a
        supersection or large page each report the whole 16MB/64KB leaf)."""
        sp = self.setup(regs)
        order = "<" if mem.byteorder == "little" else ">"
        l2codec = struct.Struct(order + "256I")
        for va in range(0, 1 << 32, SECTION):
            where = self._l1_entry(sp, va)
            if where is None:
                continue
            yield from self._section_leaves(mem, sp, l2codec, va, mem.read(where[1], 4))

    def _section_leaves(self, mem: PhysMem, sp: ShortParams, l2codec: struct.Struct, va: int,
                        desc: int) -> Iterator[Translation]:
        kind = self.l1_kind(desc)
        if kind == "fault":
            return
        if kind != "table":
            domain, ap, xn, pxn = self.l1_leaf_fields(desc)
            r = self.rights(sp, domain, ap, xn, pxn)
            if isinstance(r, str) or not (r.r0 or r.r1):
                return
            base, size = self.section_base(desc)
            yield self._translation(va & ~(size - 1), base, size, 0, r)
            return
        domain = (desc >> L1_DOMAIN_SHIFT) & 0xF
        pxn_table = bool(desc & L1_PXN_TABLE)
        for i, l2 in enumerate(l2codec.unpack(mem.read_bytes(desc & L1_TABLE_BASE, 1024))):
            leaf = self.l2_leaf(l2)
            if leaf is None:
                continue
            base, size, ap, xn = leaf
            r = self.rights(sp, domain, ap, xn, pxn_table)
            if isinstance(r, str) or not (r.r0 or r.r1):
                continue
            yield self._translation((va | i << 12) & ~(size - 1), base, size, 1, r)


def _ident(va: int) -> int:
    return va


def _first_client(sp: ShortParams) -> int:
    """A domain the DACR makes Client (for judging a second-level descriptor on its own:
    its page table's domain was checked at the first level); 0 if none is."""
    for d in range(16):
        if ShortWalker.domain_access(sp, d) == 1:
            return d
    return 0
