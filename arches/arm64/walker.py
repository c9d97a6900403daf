"""VMSAv8-64 stage 1 translation for the EL1&0 regime, written from the Arm ARM (DDI 0487,
chapter D8 "The AArch64 Virtual Memory System Architecture").

Names here are the Arm ARM's (TTBR0_EL1/TTBR1_EL1, TCR_EL1.{T0SZ,T1SZ,TG0,TG1,IPS,HA,HD,
HPD0,HPD1,TBI0,TBI1,EPD0,EPD1}, descriptor fields AP[2:1], AF, DBM, PXN, UXN, PXNTable,
UXNTable, APTable); nothing is shared with the Linux names of :mod:`arches.arm64.bits`.

What is modelled:

- Region selection by VA[55]: 0 → TTBR0_EL1 (T0SZ, TG0), 1 → TTBR1_EL1 (T1SZ, TG1).  The VA
  bits above the region size must all equal VA[55]; with TBIx = 1 bits [63:56] are ignored.
  A VA outside both regions, or in a region whose walks EPDx disables, gets a Translation
  fault before any table is read (reported with ``level=None``).
- One granule per configuration (4K, 16K or 64K, without FEAT_LPA/FEAT_LPA2: TCR_EL1.DS = 0),
  the start level and the top table size from TxSZ, 8-byte descriptors.  The start table
  may be smaller than a granule (2 entries for 16K/48-bit, 64 for 64K/48-bit); TTBRn_EL1
  holds its address aligned to its size, not to a page.
- Descriptors: bit[0] = 0 → Translation fault; bits[1:0] = 0b11 → table (levels < 3) or page
  (level 3); 0b01 → block at a level that permits blocks (4K: 1 and 2; 16K and 64K: 2), else a
  Translation fault (0b01 at level 3 is reserved).
- Output / next-table address: descriptor bits [47:granule] (block: [47:block size]); bits
  [49:48] take no part when DS = 0 (as the Arm ARM's AArch64.NextTableBase/BlockBase compute
  it; QEMU does the same), and an address at or above the PA size TCR_EL1.IPS selects (capped
  by the implemented PARange) is an Address size fault.
- AF = 0 in a block/page: Access flag fault unless TCR_EL1.HA = 1 (then the hardware sets AF
  and the translation succeeds; this walker does not write the descriptor back).
- Permissions of the result: ``user`` = AP[1] and no APTable[0] above; ``writable`` = AP[2] = 0,
  or DBM = 1 with hardware dirty-state management (TCR_EL1.HA = HD = 1: the first write clears
  AP[2]), and no APTable[1] above; ``executable`` = not UXN and no UXNTable above for a user
  page, not PXN and no PXNTable above for a privileged one.  TCR_EL1.HPDx = 1 disables the
  table attributes.  Not modelled: SCTLR_EL1.WXN, PAN, FEAT_PAN3 EPAN, permission indirection
  and overlays, the implicit PXN of EL0-writable pages, nG/ASIDs, the contiguous hint.

A valid descriptor that points at memory which is not an allocated frame makes the walk raise
:class:`~arches.errors.PhysMemError`, as on x86: the emulation calls it a bug.
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
    remembered,
)

# Arm ARM names of the descriptor fields (D8.3, "Translation table descriptor formats").
VALID = 1 << 0
TYPE = 1 << 1  # 1: table (levels 0-2) or page (level 3); 0: block
AP1 = 1 << 6  # AP[1]: EL0 access
AP2 = 1 << 7  # AP[2]: read-only
AF = 1 << 10
DBM = 1 << 51
PXN = 1 << 53
UXN = 1 << 54
PXN_TABLE = 1 << 59
UXN_TABLE = 1 << 60
AP_TABLE_SHIFT = 61  # APTable[1:0] = bits [62:61]
AP_TABLE_NO_EL0 = 1 << 0  # APTable[0]: no EL0 access at subsequent levels
AP_TABLE_RO = 1 << 1  # APTable[1]: no write access at subsequent levels

# TCR_EL1 fields (D19 "TCR_EL1").
T0SZ_SHIFT, T1SZ_SHIFT, TXSZ_MASK = 0, 16, 0x3F
EPD0, EPD1 = 1 << 7, 1 << 23
TG0_SHIFT, TG1_SHIFT = 14, 30
IPS_SHIFT = 32
TBI0, TBI1 = 1 << 37, 1 << 38
HA, HD = 1 << 39, 1 << 40
HPD0, HPD1 = 1 << 41, 1 << 42
DS = 1 << 59

TG0_GRANULE = {0b00: 12, 0b01: 16, 0b10: 14}  # 4K, 64K, 16K (0b11 reserved)
TG1_GRANULE = {0b10: 12, 0b11: 16, 0b01: 14}  # 4K, 64K, 16K (0b00 reserved)
IPS_BITS = {0b000: 32, 0b001: 36, 0b010: 40, 0b011: 42, 0b100: 44, 0b101: 48, 0b110: 52}
BLOCK_LEVELS = {12: frozenset({1, 2}), 14: frozenset({2}), 16: frozenset({2})}
"""Levels whose descriptors may be blocks when DS = 0 (64K level 1 blocks need FEAT_LPA)."""

MASK64 = (1 << 64) - 1

FAULTS = (
    "translation fault: invalid descriptor",
    "translation fault: block descriptor not permitted at this level",
    "translation fault: reserved descriptor type at level 3",
    "address size fault: address above the PA size",
    "access flag fault: AF = 0 and TCR_EL1.HA = 0",
)
"""Reasons the walk of one descriptor stops short of a translation (D8.14 "MMU faults")."""


def bits(hi: int, lo: int) -> int:
    """Mask of bits ``hi:lo`` inclusive (Arm ARM notation); 0 when ``hi < lo``."""
    return ((1 << (hi + 1)) - (1 << lo)) if hi >= lo else 0


_OUTPUT = {(granule, level): bits(47, granule + (granule - 3) * (3 - level))
           for granule in (12, 14, 16) for level in range(4)}
"""The output address bits (47 down to the level's offset) of a page (level 3, and of a
next-level table) or a block at ``level``, by granule: looked up once per descriptor."""


def output_bits(region: Region, wp: WalkParams, level: int) -> int:
    """The address bits of a descriptor at ``level`` that :meth:`Arm64Walker._decode` only
    copies into its output, whatever the descriptor is (a table, a page or a block): below
    the PA size (a bit above it makes an Address size fault) and, where a block may be,
    from the block's offset up (the bits below are a table's address, a block's RES0)."""
    top = min(47, wp.pa_bits - 1)
    if level != 3 and level in BLOCK_LEVELS[region.granule]:
        return bits(top, region.shift(level))
    return bits(top, region.granule)



@dataclass(frozen=True)
class Region:
    """One of the two VA ranges of the EL1&0 regime and how its walks start."""

    n: int
    """0 for TTBR0_EL1 (VA[55] = 0), 1 for TTBR1_EL1 (VA[55] = 1)."""
    root: int
    va_bits: int
    """64 - TnSZ."""
    granule: int
    """log2 of the translation granule: 12, 14 or 16."""
    start_level: int
    disabled: bool
    """EPDn = 1: a TLB miss in this region is a Translation fault, no walk."""
    tbi: bool
    hpd: bool
    """HPDn = 1: APTable, PXNTable and UXNTable are ignored."""

    @property
    def stride(self) -> int:
        return self.granule - 3

    def shift(self, level: int) -> int:
        """Lowest VA bit resolved by a lookup at ``level``."""
        return self.granule + self.stride * (3 - level)

    def entries(self, level: int) -> int:
        if level == self.start_level:
            return 1 << (self.va_bits - self.shift(level))
        return 1 << self.stride

    def in_range(self, va: int) -> bool:
        """VA bits [top:va_bits] all equal VA[55] (top = 55 with TBI, else 63)."""
        top = 55 if self.tbi else 63
        field = (va & bits(top, self.va_bits)) >> self.va_bits
        width = top - self.va_bits + 1
        return field == (((1 << width) - 1) if self.n else 0)

    def region_base(self) -> int:
        """The VA whose table indexes are all zero: 0, or 0xffff... above va_bits."""
        return bits(63, self.va_bits) if self.n else 0


@dataclass(frozen=True)
class WalkParams:
    regions: tuple[Region, Region]
    pa_bits: int
    ha: bool
    hd: bool
    """Hardware dirty-state management (DBM) in effect: TCR_EL1.HD with TCR_EL1.HA."""


@dataclass
class _Perms:
    """Hierarchical attributes collected from the table descriptors walked so far."""

    ap_table: int = 0
    pxn_table: bool = False
    uxn_table: bool = False

    def below(self, region: Region, desc: int) -> _Perms:
        if region.hpd:
            return self
        return _Perms(
            self.ap_table | (desc >> AP_TABLE_SHIFT & 3),
            self.pxn_table or bool(desc & PXN_TABLE),
            self.uxn_table or bool(desc & UXN_TABLE),
        )


class Arm64Walker(RunsOfLeaves):
    """Stage 1 EL1&0 walker for one granule / VA size, both regions.

    ``setup`` refuses registers that select another granule or VA size than the
    configuration's (``granule``, ``va_bits``), or FEAT_LPA2 (TCR_EL1.DS = 1).
    """

    word_bits = 64

    def __init__(self, granule: int = 12, va_bits: int = 48, pa_bits: int = 48) -> None:
        if granule not in BLOCK_LEVELS:
            raise ValueError(f"granule 2^{granule} is not 4K, 16K or 64K")
        if not granule + (granule - 3) <= va_bits <= 48:
            raise ValueError(f"VA size {va_bits} is outside what DS = 0 allows")
        self.granule = granule
        self.va_bits = va_bits
        self.pa_bits = pa_bits
        """Implemented physical address size (ID_AA64MMFR0_EL1.PARange)."""

    def __repr__(self) -> str:
        g, v, p = self.granule, self.va_bits, self.pa_bits
        return f"Arm64Walker(granule={g}, va_bits={v}, pa_bits={p})"

    @property
    def start_level(self) -> int:
        stride = self.granule - 3
        return 4 - -(-(self.va_bits - self.granule) // stride)

    # -- registers --------------------------------------------------------------------

    def setup(self, regs: Mapping[str, int]) -> WalkParams:
        """Decode TCR_EL1, TTBR0_EL1 and TTBR1_EL1."""
        tcr = reg(regs, "tcr_el1")
        if tcr & DS:
            raise BadInput(f"TCR_EL1 {tcr:#x} sets DS (FEAT_LPA2), which is not modelled")
        ips = tcr >> IPS_SHIFT & 7
        if ips not in IPS_BITS:
            raise BadInput(f"TCR_EL1.IPS {ips:#05b} is a reserved encoding")
        pa_bits = min(IPS_BITS[ips], self.pa_bits)
        ha = bool(tcr & HA)
        regions = (
            self._region(0, reg(regs, "ttbr0_el1"), tcr, T0SZ_SHIFT, TG0_SHIFT, TG0_GRANULE,
                         EPD0, TBI0, HPD0, pa_bits),
            self._region(1, reg(regs, "ttbr1_el1"), tcr, T1SZ_SHIFT, TG1_SHIFT, TG1_GRANULE,
                         EPD1, TBI1, HPD1, pa_bits),
        )
        # Hardware dirty-state management takes effect only with hardware Access flag
        # management (TCR_EL1.HD with HA = 1).
        return WalkParams(regions, pa_bits, ha, ha and bool(tcr & HD))

    def _region(
        self, n: int, ttbr: int, tcr: int, sz_shift: int, tg_shift: int,
        tg_map: Mapping[int, int], epd: int, tbi: int, hpd: int, pa_bits: int,
    ) -> Region:
        tg = tcr >> tg_shift & 3
        granule = tg_map.get(tg)
        va_bits = 64 - (tcr >> sz_shift & TXSZ_MASK)
        if granule != self.granule or va_bits != self.va_bits:
            got = "reserved" if granule is None else f"2^{granule}"
            raise BadInput(
                f"TCR_EL1 {tcr:#x} selects a {got} granule and {va_bits}-bit VAs for TTBR{n}; "
                f"this configuration has 2^{self.granule} and {self.va_bits}"
            )
        # TTBRn_EL1: ASID [63:48], BADDR [47:1], CnP [0]; the table is aligned to its size
        # (BADDR[47:x], bits [x-1:1] RES0): 16 bytes for a 2-entry start table.  Only
        # 52-bit PAs (FEAT_LPA, BADDR[5:2] = PA[51:48]) make 64 bytes the least.
        root = ttbr & bits(47, 1)
        start = self.start_level
        table_bytes = 8 << (va_bits - (self.granule + (self.granule - 3) * (3 - start)))
        align = table_bytes if pa_bits <= 48 else max(table_bytes, 64)
        if root % align or root >> pa_bits:
            raise BadInput(
                f"TTBR{n}_EL1 {ttbr:#x}: base {root:#x} is not a {table_bytes}-byte aligned "
                f"address below 2^{pa_bits}"
            )
        return Region(n, root, va_bits, granule, start, bool(tcr & epd), bool(tcr & tbi),
                      bool(tcr & hpd))

    # -- one address --------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        """The stage 1 walk of ``va`` the MMU would do on a TLB miss."""
        if not 0 <= va <= MASK64:
            raise BadInput(f"virtual address {va:#x} does not fit in 64 bits")
        wp = self.setup(regs)
        region = wp.regions[va >> 55 & 1]
        if not region.in_range(va):
            return Fault(va, f"translation fault: VA outside the TTBR{region.n} range "
                             f"(bits above {region.va_bits} must all equal VA[55])")
        if region.disabled:
            return Fault(va, f"translation fault: TTBR{region.n} walks disabled by EPD{region.n}")
        table = region.root
        perms = _Perms()
        for level in range(region.start_level, 4):
            idx = va >> region.shift(level) & (region.entries(level) - 1)
            desc = mem.read(table + 8 * idx, 8)
            i = level - region.start_level
            kind, value = self._decode(region, wp, level, desc)
            if kind == "fault":
                return Fault(va, f"{FAULTS[value]} (level {level})", i)
            if kind == "table":
                table = value
                perms = perms.below(region, desc)
                continue
            size = 1 << region.shift(level)
            return self._translation(wp, region, perms, desc, va, value + (va & (size - 1)),
                                     size, i)
        raise AssertionError("a level 3 descriptor is a page or a fault")

    def _decode(self, region: Region, wp: WalkParams, level: int, desc: int) -> tuple[str, int]:
        """('table', next table) / ('leaf', output base) / ('fault', index into FAULTS)."""
        if not desc & VALID:
            return "fault", 0
        if desc & TYPE:
            if level == 3:
                base = desc & _OUTPUT[region.granule, 3]
            else:
                nxt = desc & _OUTPUT[region.granule, 3]
                if nxt >> wp.pa_bits:
                    return "fault", 3
                return "table", nxt
        elif level == 3:
            return "fault", 2
        elif level not in BLOCK_LEVELS[region.granule]:
            return "fault", 1
        else:
            base = desc & _OUTPUT[region.granule, level]
        if base >> wp.pa_bits:
            return "fault", 3
        if not desc & AF and not wp.ha:
            return "fault", 4
        return "leaf", base

    @staticmethod
    def _translation(
        wp: WalkParams, region: Region, perms: _Perms, desc: int, va: int, pa: int, size: int,
        level: int,
    ) -> Translation:
        user = bool(desc & AP1) and not perms.ap_table & AP_TABLE_NO_EL0
        writable = (not desc & AP2 or (wp.hd and bool(desc & DBM))) and not (
            perms.ap_table & AP_TABLE_RO
        )
        if user:
            executable = not desc & UXN and not perms.uxn_table
        else:
            executable = not desc & PXN and not perms.pxn_table
        return Translation(va, pa, size, level, writable, executable, user)

    # -- structure (for the TLB) ---------------------------------------------------------

    def descriptor_view(self, region: Region, wp: WalkParams, level: int,
                        desc: int) -> EntryView:
        """One descriptor as the TLB model sees it: :meth:`_decode`, and the rights it
        grants (a table descriptor's APTable/PXNTable/UXNTable restrict what is below
        unless HPD)."""
        kind, value = self._decode(region, wp, level, desc)
        if kind == "fault":
            return INVALID
        perms = PERM_ALL
        if kind == "table":
            if not region.hpd:
                ap = desc >> AP_TABLE_SHIFT & 3
                if ap & AP_TABLE_RO:
                    perms &= ~PERM_W
                if ap & AP_TABLE_NO_EL0:
                    perms &= ~(PERM_U | PERM_UX)
                if desc & PXN_TABLE:
                    perms &= ~PERM_X
                if desc & UXN_TABLE:
                    perms &= ~PERM_UX
            return EntryView(TABLE, value, perms)
        if desc & AP2 and not (wp.hd and desc & DBM):
            perms &= ~PERM_W
        if not desc & AP1:
            perms &= ~PERM_U
        if desc & PXN:
            perms &= ~PERM_X
        if desc & UXN:
            perms &= ~PERM_UX
        return EntryView(LEAF, value, perms)

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """Both regions' walks as the TLB model sees them: root, levels (start level
        first), and one descriptor's decoding -- kind, next table or output base, and the
        rights it grants (a table descriptor's APTable/PXNTable/UXNTable restrict what is
        below unless HPD)."""
        wp = self.setup(regs)
        out: list[RootWalk] = []
        for region in wp.regions:
            if region.disabled:
                continue
            first = region.start_level

            def decode(i: int, desc: int, region: Region = region,
                       first: int = first) -> EntryView:
                return self.descriptor_view(region, wp, first + i, desc)

            view = remembered(decode, [output_bits(region, wp, lv) for lv in range(first, 4)])
            shapes = tuple(
                LevelShape(f"L{lv}", region.shift(lv), region.entries(lv), 8)
                for lv in range(first, 4)
            )
            out.append(RootWalk(f"ttbr{region.n}_el1", region.root, region.region_base(),
                                shapes, view, lambda va: va))
        return tuple(out)

    # -- every leaf ---------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every block/page that translates (the VAs ``translate`` maps), TTBR0's region
        first, then TTBR1's with its VAs sign-extended: ascending VA order."""
        wp = self.setup(regs)
        endian = "<" if mem.byteorder == "little" else ">"
        for region in wp.regions:
            if region.disabled:
                continue
            yield from self._leaves(mem, wp, region, endian)

    def _leaves(self, mem: PhysMem, wp: WalkParams, region: Region,
                endian: str) -> Iterator[Translation]:
        """One region's leaves, depth first with an explicit stack of table iterators (a
        recursive generator would pass each leaf up through one frame per level)."""

        def entries(level: int, table: int) -> Iterator[tuple[int, int]]:
            n = region.entries(level)
            raw = mem.read_bytes(table, 8 * n)
            if raw == bytes(8 * n):  # no valid descriptor
                return iter(())
            return enumerate(struct.unpack(f"{endian}{n}Q", raw))

        first = region.start_level
        stack = [(first, region.region_base(), _Perms(), entries(first, region.root))]
        while stack:
            level, va_base, perms, it = stack[-1]
            shift = region.shift(level)
            for idx, desc in it:
                if not desc & VALID:
                    continue
                kind, value = self._decode(region, wp, level, desc)
                va = va_base | idx << shift
                if kind == "table":
                    stack.append((level + 1, va, perms.below(region, desc),
                                  entries(level + 1, value)))
                    break
                if kind == "leaf":
                    yield self._translation(wp, region, perms, desc, va, value, 1 << shift,
                                            level - first)
            else:
                stack.pop()
