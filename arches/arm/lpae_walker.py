"""ARMv7-A Long-descriptor translation (LPAE), stage 1, PL1&0 regime, written from the Arm
ARM for ARMv7-A/R (DDI 0406C), B3.6 "Long-descriptor translation table format" and B3.5
"Selecting between TTBR0 and TTBR1".

Names here are the Arm ARM's (TTBCR.{EAE,T0SZ,T1SZ,EPD0,EPD1}, TTBR0/TTBR1 64-bit with
BADDR, descriptor fields AP[2:1], AF, nG, XN, PXN, APTable, XNTable, PXNTable); nothing is
shared with the Linux names of :mod:`arches.arm.lpae_bits`.

What is modelled:

- TTBCR.EAE = 1 (the long-descriptor format; 0 selects the short one, another walker).
- Region selection on the 32-bit VA: with T1SZ > 0, VAs at or above ``2^32 - 2^(32-T1SZ)``
  use TTBR1; with T1SZ = 0 and T0SZ > 0, VAs at or above ``2^(32-T0SZ)`` do; VAs below
  ``2^(32-T0SZ)`` (all of them when T0SZ = 0) not claimed by TTBR1 use TTBR0; anything else
  (a gap when both TnSZ > 0) is a Translation fault before any table is read
  (``level=None``), as is a VA whose region EPDn disables.
- The start level from TnSZ: 0 or 1 starts at level 1 with ``2^(2-TnSZ)`` entries (a 32- or
  16-byte table, TTBRn.BADDR aligned to it), 2..7 at level 2 with ``2^(11-TnSZ)`` entries.
- 8-byte descriptors: bit[0] = 0 is a Translation fault; bits[1:0] = 0b11 a table (levels
  1-2) or a page (level 3), 0b01 a block at levels 1 (1GB) and 2 (2MB) and reserved (a
  Translation fault) at level 3.
- Output and next-table addresses bits [39:12] (block [39:30] / [39:21]): 40-bit PAs.  Bits
  [47:40] of a descriptor's address field are UNK/SBZP; non-zero they make the result
  UNPREDICTABLE, reported here as a fault.
- AF = 0 in a block or page: Access flag fault (no hardware Access flag management with the
  Long-descriptor format in ARMv7).
- Permissions: ``user`` = AP[1] and no APTable[0] above; ``writable`` = AP[2] = 0 and no
  APTable[1] above; ``executable`` for a PL0 page = XN = 0 and no XNTable above; for a PL1
  page also PXN = 0 and no PXNTable.  Not modelled: SCTLR.WXN/UWXN, nG/ASIDs, the
  contiguous hint, NS/NSTable, domains (there are none with this format).

A valid descriptor that points at memory which is not an allocated frame makes the walk raise
:class:`~arches.errors.PhysMemError`, as on the other walkers.
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

# Arm ARM names of the descriptor fields (B3.6.1, B3.6.2).
VALID = 1 << 0
TYPE = 1 << 1  # 1: table (levels 1-2) or page (level 3); 0: block
AP1 = 1 << 6  # AP[1]: PL0 access
AP2 = 1 << 7  # AP[2]: read-only
AF = 1 << 10
PXN = 1 << 53
XN = 1 << 54
PXN_TABLE = 1 << 59
XN_TABLE = 1 << 60
AP_TABLE_SHIFT = 61  # APTable[1:0] = bits [62:61]
AP_TABLE_NO_PL0 = 1 << 0  # APTable[0]: no PL0 access at subsequent levels
AP_TABLE_RO = 1 << 1  # APTable[1]: no write access at subsequent levels
ADDR_HI = ((1 << 48) - 1) & ~((1 << 40) - 1)  # bits [47:40]: UNK/SBZP
ADDR_40 = (1 << 40) - 1

# TTBCR with EAE = 1 (B4.1.153).
T0SZ_MASK, T1SZ_SHIFT = 0x7, 16
EPD0, EPD1 = 1 << 7, 1 << 23
EAE = 1 << 31
BLOCK_LEVELS = frozenset({1, 2})

FAULTS = (
    "translation fault: invalid descriptor",
    "translation fault: reserved descriptor type at level 3",
    "address bits [47:40] not zero (UNPREDICTABLE)",
    "access flag fault: AF = 0",
)
"""Reasons the walk of one descriptor stops short of a translation (B3.13.3)."""

WORD = 1 << 32


def bits(hi: int, lo: int) -> int:
    """Mask of bits ``hi:lo`` inclusive (Arm ARM notation)."""
    return (1 << (hi + 1)) - (1 << lo)


def level_shift(level: int) -> int:
    """Lowest VA bit a lookup at ``level`` resolves: 30, 21, 12."""
    return 12 + 9 * (3 - level)


@dataclass(frozen=True)
class Region:
    """The VA range one TTBR translates and how its walks start."""

    n: int
    root: int
    tsz: int
    base: int
    """Lowest VA of the region (0 for TTBR0)."""
    end: int
    """One past its highest VA."""
    disabled: bool

    @property
    def start_level(self) -> int:
        return 1 if self.tsz <= 1 else 2

    def entries(self, level: int) -> int:
        if level == self.start_level:
            return 1 << (32 - self.tsz - level_shift(level))
        return 512

    @property
    def table_bytes(self) -> int:
        return 8 * self.entries(self.start_level)


@dataclass
class _Perms:
    """APTable/XNTable/PXNTable gathered from the table descriptors walked so far."""

    ap_table: int = 0
    pxn_table: bool = False
    xn_table: bool = False

    def below(self, desc: int) -> _Perms:
        return _Perms(self.ap_table | (desc >> AP_TABLE_SHIFT & 3),
                      self.pxn_table or bool(desc & PXN_TABLE),
                      self.xn_table or bool(desc & XN_TABLE))


class LpaeWalker(RunsOfLeaves):
    """Stage 1 PL1&0 walker for the ARMv7 Long-descriptor format, both TTBRs."""

    word_bits = 32

    def __repr__(self) -> str:
        return "LpaeWalker()"

    # -- registers --------------------------------------------------------------------

    def setup(self, regs: Mapping[str, int]) -> tuple[Region, Region]:
        """Decode TTBCR, TTBR0 and TTBR1 (64-bit: ASID [55:48], BADDR [39:x])."""
        ttbcr = reg(regs, "ttbcr")
        if not ttbcr & EAE:
            raise BadInput(f"TTBCR {ttbcr:#x} has EAE = 0: the Short-descriptor format, "
                           "which this walker does not read")
        t0sz, t1sz = ttbcr & T0SZ_MASK, ttbcr >> T1SZ_SHIFT & T0SZ_MASK
        t0_end = WORD >> t0sz
        if t1sz:
            t1_base = WORD - (WORD >> t1sz)
        else:
            t1_base = t0_end if t0sz else WORD
        r0 = Region(0, self._baddr(regs, 0, t0sz), t0sz, 0, min(t0_end, t1_base),
                    bool(ttbcr & EPD0))
        r1 = Region(1, self._baddr(regs, 1, t1sz), t1sz, t1_base, WORD, bool(ttbcr & EPD1))
        return r0, r1

    @staticmethod
    def _baddr(regs: Mapping[str, int], n: int, tsz: int) -> int:
        ttbr = reg(regs, f"ttbr{n}")
        x = 5 - tsz if tsz <= 1 else 14 - tsz
        base = ttbr & bits(39, x)
        if ttbr & bits(x - 1, 0) or ttbr & bits(47, 40) or ttbr >> 56:
            raise BadInput(f"TTBR{n} {ttbr:#x}: BADDR must be {1 << x}-byte aligned and "
                           "below 2^40 (bits [47:40] and [63:56] are zero)")
        return base

    @staticmethod
    def _region(regions: tuple[Region, Region], va: int) -> Region | None:
        for r in (regions[1], regions[0]):
            if r.base <= va < r.end:
                return r
        return None

    # -- one address --------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        """The stage 1 walk of ``va`` the MMU would do on a TLB miss."""
        if not 0 <= va < WORD:
            raise BadInput(f"virtual address {va:#x} does not fit in 32 bits")
        region = self._region(self.setup(regs), va)
        if region is None:
            return Fault(va, "translation fault: VA in neither the TTBR0 nor the TTBR1 range")
        if region.disabled:
            return Fault(va, f"translation fault: TTBR{region.n} walks disabled by "
                             f"EPD{region.n}")
        table = region.root
        perms = _Perms()
        first = region.start_level
        for level in range(first, 4):
            idx = va >> level_shift(level) & (region.entries(level) - 1)
            desc = mem.read(table + 8 * idx, 8)
            kind, value = self._decode(level, desc)
            if kind == "fault":
                return Fault(va, f"{FAULTS[value]} (level {level})", level - first)
            if kind == "table":
                table = value
                perms = perms.below(desc)
                continue
            size = 1 << level_shift(level)
            return self._translation(perms, desc, va, value + (va & (size - 1)), size,
                                     level - first)
        raise AssertionError("a level 3 descriptor is a page or a fault")

    @staticmethod
    def _decode(level: int, desc: int) -> tuple[str, int]:
        """('table', next table) / ('leaf', output base) / ('fault', index into FAULTS)."""
        if not desc & VALID:
            return "fault", 0
        if desc & ADDR_HI:
            return "fault", 2
        if desc & TYPE:
            if level < 3:
                return "table", desc & bits(39, 12)
            base = desc & bits(39, 12)
        elif level == 3:
            return "fault", 1
        else:
            base = desc & bits(39, level_shift(level))
        if not desc & AF:
            return "fault", 3
        return "leaf", base

    @staticmethod
    def _translation(perms: _Perms, desc: int, va: int, pa: int, size: int,
                     level: int) -> Translation:
        user = bool(desc & AP1) and not perms.ap_table & AP_TABLE_NO_PL0
        writable = not desc & AP2 and not perms.ap_table & AP_TABLE_RO
        executable = not desc & XN and not perms.xn_table
        if not user:
            executable = executable and not desc & PXN and not perms.pxn_table
        return Translation(va, pa, size, level, writable, executable, user)

    # -- structure (for the TLB) ---------------------------------------------------------

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """Both regions' walks as the TLB model sees them.  Where a region reaches only
        some entries of its start table (TTBR0 with a 3G/1G split: slots 0-2 of 4), those
        entries are cut into naturally aligned power-of-two runs, one walk each (slots 0-1,
        then slot 2): the model wants each table aligned to its size, and slot 3, which
        the hardware never reads through TTBR0, must translate nothing."""
        out: list[RootWalk] = []
        for region in self.setup(regs):
            if region.disabled or region.base >= region.end:
                continue
            first = region.start_level

            def view(i: int, desc: int, first: int = first) -> EntryView:
                kind, value = self._decode(first + i, desc)
                if kind == "fault":
                    return INVALID
                perms = PERM_ALL
                if kind == "table":
                    ap = desc >> AP_TABLE_SHIFT & 3
                    if ap & AP_TABLE_RO:
                        perms &= ~PERM_W
                    if ap & AP_TABLE_NO_PL0:
                        perms &= ~(PERM_U | PERM_UX)
                    if desc & PXN_TABLE:
                        perms &= ~PERM_X
                    if desc & XN_TABLE:
                        perms &= ~(PERM_X | PERM_UX)
                    return EntryView(TABLE, value, perms)
                if desc & AP2:
                    perms &= ~PERM_W
                if not desc & AP1:
                    perms &= ~PERM_U
                if desc & PXN:
                    perms &= ~PERM_X
                if desc & XN:
                    perms &= ~(PERM_X | PERM_UX)
                return EntryView(LEAF, value, perms)

            below = tuple(LevelShape(f"L{lv}", level_shift(lv), 512, 8)
                          for lv in range(first + 1, 4))
            base = region.base & ~((1 << (32 - region.tsz)) - 1)
            shift = level_shift(first)
            idx = (region.base - base) >> shift
            stop = min(region.entries(first), -(-(region.end - base) >> shift))
            while idx < stop:
                n = 1
                while idx % (2 * n) == 0 and idx + 2 * n <= stop:
                    n *= 2
                top = LevelShape(f"L{first}", shift, n, 8)
                out.append(RootWalk(f"ttbr{region.n}", region.root + 8 * idx,
                                    base + (idx << shift), (top, *below), view,
                                    lambda va: va))
                idx += n
        return tuple(out)

    # -- every leaf ---------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every block/page that translates, TTBR0's region first: ascending VA order.
        Entries of a start table outside the region's VA range are not walked."""
        endian = "<" if mem.byteorder == "little" else ">"
        for region in self.setup(regs):
            if region.disabled or region.base >= region.end:
                continue
            base = region.base & ~((1 << (32 - region.tsz)) - 1)
            yield from self._leaves(mem, region, endian, region.start_level, region.root,
                                    base, _Perms())

    def _leaves(self, mem: PhysMem, region: Region, endian: str, level: int, table: int,
                va_base: int, perms: _Perms) -> Iterator[Translation]:
        n = region.entries(level)
        shift = level_shift(level)
        raw = mem.read_bytes(table, 8 * n)
        if raw == bytes(8 * n):  # no valid descriptor
            return
        for idx, desc in enumerate(struct.unpack(f"{endian}{n}Q", raw)):
            va = va_base | idx << shift
            if not desc & VALID or not region.base <= va < region.end:
                continue
            kind, value = self._decode(level, desc)
            if kind == "table":
                yield from self._leaves(mem, region, endian, level + 1, value, va,
                                        perms.below(desc))
            elif kind == "leaf":
                yield self._translation(perms, desc, va, value, 1 << shift,
                                        level - region.start_level)
