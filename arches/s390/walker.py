"""z/Architecture dynamic address translation (DAT), written from the Principles of Operation
(IBM SA22-7832, chapter 3 "Storage", "Dynamic Address Translation": "Address-Space-Control
Element", "Translation Tables" -- region-table, segment-table and page-table entries --, and
"Translation Process"; chapter 6 "Interruptions", "Program-Interruption Conditions" for the
exceptions).

The PoP numbers bits MSB-0 (bit 0 is 2^63 of a doubleword); this module writes masks as
integers, with the PoP bit numbers in the comments.  Names are the PoP's (ASCE, DT, TL, RFX,
RSX, RTX, SX, PX, I, P, IEP, TF, TT, FC, CS/CR, PFRA...); nothing is shared with the Linux
names of :mod:`arches.s390.bits`.

What is modelled:

- Two address spaces: the user's primary space (CR1, the ASCE Linux loads on return to user
  space; CR7 holds the same ASCE while in the kernel) and the kernel's home space (CR13, the
  kernel ASCE).  The hardware picks the space from the PSW's address-space control, not from
  the address; the emulation gives each space a VA window so that one VA names one
  translation: ``[0, kernel_start)`` translates through CR1, ``[kernel_start, 2^64)`` through
  CR13 (a convention of the emulation, stated in the configuration).
- The ASCE: origin (bits 0-51), designation type DT (bits 60-61: 11 region-first, 10
  region-second, 01 region-third, 00 segment table), table length TL (bits 62-63).  The
  real-space control R (bit 58) is refused (Linux never sets it in a CR1/CR7/CR13 ASCE).
- ASCE-type exception: the VA bits to the left of those the designated table translates are
  not all zero (RFX for DT = 10, RFX and RSX for 01, RFX..RTX for 00).
- Table lengths: the two leftmost bits of the first index are compared with the ASCE's TL;
  the two leftmost bits of the next index with the table offset TF (bits 56-57) and table
  length TL (bits 62-63) of a region-table entry.  Out of range: the translation exception
  of the table being indexed (region-first/-second/-third translation, segment
  translation).
- Region-table entries: origin bits 0-51 (4 KiB aligned), P (54), IEP (55), TF, I (58), TT
  (60-61: must be the type of the table the entry is in, else translation-specification
  exception), TL.  I = 1: the translation exception of that table.  Region-third entries with
  FC (bit 53) = 1 when EDAT-2 applies: a 2 GiB region frame, RFAA bits 0-32.
- Segment-table entries: page-table origin bits 0-52 (2 KiB aligned), FC (53), P (54), IEP
  (55), I (58), CS (59), TT (60-61, must be 00).  FC = 1 when EDAT-1 applies: a 1 MiB
  segment frame, SFAA bits 0-43.  CS = 1 with the ASCE's private-space control P (bit 55)
  = 1: translation-specification exception.  Likewise CR in a region-third frame entry.
- Page-table entries, 256 of 8 bytes (2 KiB): PFRA bits 0-51, bit 52 must be zero
  (translation-specification exception), I (53): page-translation exception, P (54), IEP
  (55); bits 56-63 are not inspected.
- EDAT-1 applies when CR0 bit 40 (enhanced-DAT enablement) is one; EDAT-2 (installed on this
  machine) when EDAT-1 applies.  Without EDAT-1 the FC bit is not examined.
- DAT protection: P in the page-table entry, the segment-table entry and (with EDAT-1) any
  region-table entry on the path makes the page read-only (a store is a protection
  exception).  Instruction-execution protection: IEP in the entry that maps the page (page
  or segment/region-third frame entry), when CR0 bit 43 (IEP control) is one.
- Not modelled: storage keys and key-controlled protection (the ACCF validity bit AV is
  never set by Linux), low-address protection, prefixing, access-register mode, the
  change-recording override, ASN translation and subspace groups.  Table entries are read
  as big-endian doublewords.

A valid entry that points at memory which is not an allocated frame makes the walk raise
:class:`~arches.errors.PhysMemError`, as on x86 and arm64: the emulation calls it a bug.
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

MASK64 = (1 << 64) - 1


def msb(n: int) -> int:
    """The PoP's bit ``n`` (MSB-0) of a doubleword, as a mask."""
    return 1 << (63 - n)


def msb_range(first: int, last: int) -> int:
    """Mask of PoP bits ``first..last`` (MSB-0, inclusive)."""
    return ((1 << (last - first + 1)) - 1) << (63 - last)


# ASCE (PoP "Address-Space-Control Element").
ASCE_ORIGIN = msb_range(0, 51)
ASCE_P = msb(55)  # private-space control
ASCE_R = msb(58)  # real-space control
ASCE_DT_SHIFT = 63 - 61  # DT = bits 60-61
ASCE_TL = msb_range(62, 63)

# Region-table entries.
RTE_ORIGIN = msb_range(0, 51)
RTE_FC = msb(53)  # region-third only, EDAT-2
RTE_P = msb(54)
RTE_IEP = msb(55)
RTE_TF_SHIFT = 63 - 57  # TF = bits 56-57
RTE_I = msb(58)
RTE_CR = msb(59)  # common-region (region-third frame entries)
RTE_TT_SHIFT = 63 - 61  # TT = bits 60-61
RTE_TL = msb_range(62, 63)
RTTE_RFAA = msb_range(0, 32)

# Segment-table entries.
STE_PTO = msb_range(0, 52)
STE_SFAA = msb_range(0, 43)
STE_FC = msb(53)
STE_P = msb(54)
STE_IEP = msb(55)
STE_I = msb(58)
STE_CS = msb(59)
STE_TT_SHIFT = 63 - 61

# Page-table entries.
PTE_PFRA = msb_range(0, 51)
PTE_ZERO = msb(52)
PTE_I = msb(53)
PTE_P = msb(54)
PTE_IEP = msb(55)

# Control register 0.
CR0_EDAT = msb(40)  # enhanced-DAT enablement (EDAT-1)
CR0_IEP = msb(43)  # instruction-execution-protection control

# Designation / table types, from the first table of the walk down.
RFT, RST, RTT, ST, PT = 0, 1, 2, 3, 4
TABLE_NAMES = ("region-first table", "region-second table", "region-third table",
               "segment table", "page table")
SHORT = ("RFT", "RST", "RTT", "ST", "PT")
DT_TABLE = {0b11: RFT, 0b10: RST, 0b01: RTT, 0b00: ST}
"""ASCE DT / region-entry TT value -> the table it designates."""
TT_OF = {RFT: 0b11, RST: 0b10, RTT: 0b01, ST: 0b00}
SHIFT = (53, 42, 31, 20, 12)
"""Lowest VA bit of each table's index: RFX 0-10, RSX 11-21, RTX 22-32, SX 33-43, PX 44-51."""
ENTRIES = (2048, 2048, 2048, 2048, 256)
TRANSLATION_EXCEPTION = (
    "region-first-translation exception",
    "region-second-translation exception",
    "region-third-translation exception",
    "segment-translation exception",
    "page-translation exception",
)
"""The exception an invalid entry of (or an index beyond the length of) each table raises."""
PIC = {
    "ASCE-type exception": 0x38,
    "region-first-translation exception": 0x39,
    "region-second-translation exception": 0x3A,
    "region-third-translation exception": 0x3B,
    "segment-translation exception": 0x10,
    "page-translation exception": 0x11,
    "translation-specification exception": 0x12,
    "protection exception": 0x04,
}
"""Program-interruption codes (PoP chapter 6)."""



@dataclass(frozen=True)
class Space:
    """One address space: the ASCE that translates it and its VA window."""

    register: str
    asce: int
    first: int
    """The table the ASCE designates (RFT..ST)."""
    length: int
    """The ASCE's TL: the first table has (TL + 1) * 512 entries."""
    private: bool
    user: bool
    window: tuple[int, int]


@dataclass(frozen=True)
class WalkParams:
    spaces: tuple[Space, Space]
    edat1: bool
    edat2: bool
    iep: bool


@dataclass(frozen=True)
class Decoded:
    """One entry as DAT reads it: a fault (its exception), the next table, or a frame."""

    kind: str
    """'fault', 'table' or 'frame'."""
    value: int = 0
    """Next table origin or frame address."""
    reason: str = ""
    protect: bool = False
    """DAT protection (P) applies from this entry down."""
    noexec: bool = False
    offset: int = 0
    """TF of a region-table entry: the first valid quarter of the next table."""
    length: int = 3
    """TL of a region-table entry."""


class S390Walker(RunsOfLeaves):
    """DAT for both spaces of one configuration (see the module docstring).

    ``edat2`` says whether the machine has the enhanced-DAT facility 2 (2 GiB frames);
    ``kernel_start`` is where the emulation's home-space window starts."""

    word_bits = 64

    def __init__(self, kernel_start: int, edat2: bool = True) -> None:
        self.kernel_start = kernel_start
        self.edat2_installed = edat2

    def __repr__(self) -> str:
        return f"S390Walker(kernel_start={self.kernel_start:#x}, edat2={self.edat2_installed})"

    # -- registers ------------------------------------------------------------------------

    def setup(self, regs: Mapping[str, int]) -> WalkParams:
        """Decode CR0, CR1 (primary ASCE: user) and CR13 (home ASCE: kernel)."""
        cr0 = reg(regs, "cr0")
        edat1 = bool(cr0 & CR0_EDAT)
        spaces = (
            self._space("cr1", reg(regs, "cr1"), True, (0, self.kernel_start)),
            self._space("cr13", reg(regs, "cr13"), False, (self.kernel_start, 1 << 64)),
        )
        return WalkParams(spaces, edat1, edat1 and self.edat2_installed, bool(cr0 & CR0_IEP))

    @staticmethod
    def _space(name: str, asce: int, user: bool, window: tuple[int, int]) -> Space:
        if not 0 <= asce <= MASK64:
            raise BadInput(f"{name.upper()} {asce:#x} does not fit in 64 bits")
        if asce & ASCE_R:
            raise BadInput(f"{name.upper()} {asce:#x} is a real-space designation (R = 1), "
                           "which is not modelled")
        first = DT_TABLE[asce >> ASCE_DT_SHIFT & 3]
        return Space(name, asce, first, asce & ASCE_TL, bool(asce & ASCE_P), user, window)

    def space_of(self, wp: WalkParams, va: int) -> Space:
        return wp.spaces[0] if va < self.kernel_start else wp.spaces[1]

    # -- one entry ------------------------------------------------------------------------

    def decode(self, wp: WalkParams, space: Space, table: int, entry: int) -> Decoded:
        """What DAT makes of ``entry``, an entry of a ``table`` (RFT..PT) table."""
        if table == PT:
            if entry & PTE_I:
                return Decoded("fault", reason=TRANSLATION_EXCEPTION[PT])
            if entry & PTE_ZERO:
                return Decoded("fault", reason="translation-specification exception "
                               "(page-table entry bit 52 is one)")
            return Decoded("frame", entry & PTE_PFRA, protect=bool(entry & PTE_P),
                           noexec=wp.iep and bool(entry & PTE_IEP))
        if table == ST:
            if entry & STE_I:
                return Decoded("fault", reason=TRANSLATION_EXCEPTION[ST])
            if entry >> STE_TT_SHIFT & 3 != TT_OF[ST]:
                return Decoded("fault", reason="translation-specification exception "
                               "(segment-table entry TT is not 00)")
            if entry & STE_CS and space.private:
                return Decoded("fault", reason="translation-specification exception "
                               "(common segment in a private space)")
            protect = bool(entry & STE_P)
            if wp.edat1 and entry & STE_FC:
                return Decoded("frame", entry & STE_SFAA, protect=protect,
                               noexec=wp.iep and bool(entry & STE_IEP))
            return Decoded("table", entry & STE_PTO, protect=protect)
        if entry & RTE_I:
            return Decoded("fault", reason=TRANSLATION_EXCEPTION[table])
        if entry >> RTE_TT_SHIFT & 3 != TT_OF[table]:
            return Decoded("fault", reason=f"translation-specification exception "
                           f"({TABLE_NAMES[table]} entry TT is "
                           f"{entry >> RTE_TT_SHIFT & 3:02b}, not {TT_OF[table]:02b})")
        protect = wp.edat1 and bool(entry & RTE_P)
        if table == RTT and wp.edat2 and entry & RTE_FC:
            if entry & RTE_CR and space.private:
                return Decoded("fault", reason="translation-specification exception "
                               "(common region in a private space)")
            return Decoded("frame", entry & RTTE_RFAA, protect=protect,
                           noexec=wp.iep and bool(entry & RTE_IEP))
        return Decoded("table", entry & RTE_ORIGIN, protect=protect,
                       offset=entry >> RTE_TF_SHIFT & 3, length=entry & RTE_TL)

    # -- one address ----------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        """The DAT walk of ``va`` in the space whose window holds it."""
        if not 0 <= va <= MASK64:
            raise BadInput(f"virtual address {va:#x} does not fit in 64 bits")
        wp = self.setup(regs)
        space = self.space_of(wp, va)
        first = space.first
        if first != RFT and va >> SHIFT[first - 1]:
            return Fault(va, f"ASCE-type exception ({space.register.upper()} designates a "
                             f"{TABLE_NAMES[first]}; VA bits above {SHIFT[first - 1] - 1} "
                             "are not zero)")
        origin = space.asce & ASCE_ORIGIN
        lo, hi = 0, space.length
        protect = False
        for table in range(first, PT + 1):
            idx = va >> SHIFT[table] & (ENTRIES[table] - 1)
            if table != PT and not lo <= idx >> 9 <= hi:
                return Fault(va, f"{TRANSLATION_EXCEPTION[table]} (index {idx} outside the "
                                 f"{TABLE_NAMES[table]}'s offset {lo} / length {hi})", table)
            d = self.decode(wp, space, table, mem.read(origin + 8 * idx, 8))
            if d.kind == "fault":
                return Fault(va, d.reason, table)
            protect = protect or d.protect
            if d.kind == "table":
                origin, lo, hi = d.value, d.offset, d.length
                continue
            size = 1 << SHIFT[table]
            return Translation(va, d.value + (va & (size - 1)), size, table, not protect,
                               not d.noexec, space.user)
        raise AssertionError("a page-table entry is a frame or a fault")

    # -- structure (for the TLB) ----------------------------------------------------------

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """Both spaces' walks as the TLB model sees them: the designated table first, full
        2048-entry region and segment tables (Linux's ASCEs and table entries always have
        TL = 3 and TF = 0; an entry with a shorter next table decodes as a table all the
        same, which can only make the TLB track more), 256-entry page tables.  The user
        space's entries grant PERM_U, the kernel's do not."""
        wp = self.setup(regs)
        out: list[RootWalk] = []
        for space in wp.spaces:
            first = space.first

            def view(i: int, entry: int, space: Space = space, first: int = first) -> EntryView:
                d = self.decode(wp, space, first + i, entry)
                if d.kind == "fault":
                    return INVALID
                perms = PERM_ALL if space.user else PERM_ALL & ~PERM_U
                if d.protect:
                    perms &= ~PERM_W
                if d.kind == "table":
                    return EntryView(TABLE, d.value, perms)
                if d.noexec:
                    perms &= ~(PERM_X | PERM_UX)
                return EntryView(LEAF, d.value, perms)

            shapes = tuple(LevelShape(SHORT[t], SHIFT[t], ENTRIES[t], 8)
                           for t in range(first, PT + 1))
            out.append(RootWalk(space.register, space.asce & ASCE_ORIGIN, 0, shapes, view,
                                lambda va: va))
        return tuple(out)

    # -- every leaf -----------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every frame that translates, in ascending VA order: the user space's (VAs below
        ``kernel_start``), then the kernel's (VAs from ``kernel_start``)."""
        wp = self.setup(regs)
        for space in wp.spaces:
            first = space.first
            top = 1 << 64 if first == RFT else 1 << SHIFT[first - 1]
            lo, hi = space.window
            if lo >= top:
                continue
            yield from self._leaves(mem, wp, space, first, space.asce & ASCE_ORIGIN, 0,
                                    (0, space.length), False, (lo, min(hi, top)))

    def _leaves(
        self, mem: PhysMem, wp: WalkParams, space: Space, table: int, origin: int,
        va_base: int, span: tuple[int, int], protect: bool, window: tuple[int, int],
    ) -> Iterator[Translation]:
        first_idx = span[0] * 512 if table != PT else 0
        last_idx = (span[1] + 1) * 512 if table != PT else ENTRIES[PT]
        shift = SHIFT[table]
        invalid = PTE_I if table == PT else (STE_I if table == ST else RTE_I)
        raw = _read(mem, origin + 8 * first_idx, 8 * (last_idx - first_idx))
        for n, entry in enumerate(struct.unpack(f">{last_idx - first_idx}Q", raw)):
            if entry & invalid:
                continue  # the I bit: a translation exception, whatever else the entry says
            idx = first_idx + n
            va = va_base | idx << shift
            if va + (1 << shift) <= window[0] or va >= window[1]:
                continue
            d = self.decode(wp, space, table, entry)
            if d.kind == "table":
                yield from self._leaves(mem, wp, space, table + 1, d.value, va,
                                        (d.offset, d.length), protect or d.protect, window)
            elif d.kind == "frame":
                yield Translation(va, d.value, 1 << shift, table, not (protect or d.protect),
                                  not d.noexec, space.user)


def _read(mem: PhysMem, pa: int, length: int) -> bytes:
    """``length`` bytes at ``pa``, which may span frames (a 16 KiB region or segment table
    is four 4 KiB frames)."""
    out = bytearray()
    while length:
        n = min(length, mem.frame_size - pa % mem.frame_size)
        out += mem.read_bytes(pa, n)
        pa += n
        length -= n
    return bytes(out)
