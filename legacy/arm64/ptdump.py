"""arm64's part of ptdump: ``arch/arm64/mm/ptdump.c`` (``pte_bits``, ``kernel_pg_levels``,
``dump_prot``, ``note_page``; Linux ~6.12-6.16), a base of :class:`Arm64Kernel`.

A line is the range, the size (``%9lu%c`` in K/M/G/T/P/E), the level name, then -- for any
run whose masked value is not 0 -- one column per ``pte_bits`` entry, each after a space
(the 16-digit addresses shortened here)::

    0x0..0400000-0x0..0404000          16K PTE   USR ro NX SHD AF NG         UXN    MEM/NORMAL

``F`` (not ``PTE_VALID``: a PROT_NONE page, which the kernel keeps "present invalid"),
``USR``, ``ro``/``RW`` (``PTE_RDONLY``: a clean writable page is ``ro`` with ``PTE_WRITE`` =
DBM set), ``NX``/``x`` (``PTE_PXN``: privileged execute), ``SHD``, ``AF``, ``NG``, ``CON``,
``BLK`` (no ``PTE_TABLE_BIT``: a block), ``UXN``, ``GP``, and the memory type of
``ATTRINDX``.  A hole prints the level name alone.  Levels a configuration folds are named
after the level they fold into: a hole in the folded p4d of a 4-level kernel is ``PGD``
(``real_depth`` of the walk for folding headers, the ``mm_p4d_folded``/``mm_pud_folded`` test
of ``note_page`` for folding at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.arm64.bits import (
    MT_NORMAL,
    MT_NORMAL_NC,
    MT_NORMAL_TAGGED,
    PTE_AF,
    PTE_ATTRINDX,
    PTE_ATTRINDX_MASK,
    PTE_CONT,
    PTE_GP,
    PTE_NG,
    PTE_PXN,
    PTE_RDONLY,
    PTE_SHARED,
    PTE_TABLE_BIT,
    PTE_USER,
    PTE_UXN,
    PTE_VALID,
    MT_DEVICE_nGnRE,
    MT_DEVICE_nGnRnE,
)
from legacy.generic import GenericKernel
from legacy.ptdump import PgState, addr_marker, ptdump_range, scale


@dataclass(frozen=True)
class ptdump_prot_bits:
    mask: int
    val: int
    set: str
    clear: str | None = None


pte_bits = (
    ptdump_prot_bits(PTE_VALID, PTE_VALID, " ", "F"),
    ptdump_prot_bits(PTE_USER, PTE_USER, "USR", "   "),
    ptdump_prot_bits(PTE_RDONLY, PTE_RDONLY, "ro", "RW"),
    ptdump_prot_bits(PTE_PXN, PTE_PXN, "NX", "x "),
    ptdump_prot_bits(PTE_SHARED, PTE_SHARED, "SHD", "   "),
    ptdump_prot_bits(PTE_AF, PTE_AF, "AF", "  "),
    ptdump_prot_bits(PTE_NG, PTE_NG, "NG", "  "),
    ptdump_prot_bits(PTE_CONT, PTE_CONT, "CON", "   "),
    ptdump_prot_bits(PTE_TABLE_BIT, PTE_TABLE_BIT, "   ", "BLK"),
    ptdump_prot_bits(PTE_UXN, PTE_UXN, "UXN", "   "),
    ptdump_prot_bits(PTE_GP, PTE_GP, "GP", "  "),
    ptdump_prot_bits(PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_DEVICE_nGnRnE), "DEVICE/nGnRnE"),
    ptdump_prot_bits(PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_DEVICE_nGnRE), "DEVICE/nGnRE"),
    ptdump_prot_bits(PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_NORMAL_NC), "MEM/NORMAL-NC"),
    ptdump_prot_bits(PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_NORMAL), "MEM/NORMAL"),
    ptdump_prot_bits(PTE_ATTRINDX_MASK, PTE_ATTRINDX(MT_NORMAL_TAGGED), "MEM/NORMAL-TAGGED"),
)
"""``pte_bits[]``: every level uses it (``kernel_pg_levels[i].bits``)."""

PTE_BITS_MASK = 0
for _b in pte_bits:  # ptdump_initialize(): kernel_pg_levels[i].mask |= bits[j].mask
    PTE_BITS_MASK |= _b.mask


def dump_prot(prot: int) -> str:
    out = ""
    for b in pte_bits:
        s = b.set if prot & b.mask == b.val else b.clear
        if s is not None:
            out += " " + s
    return out


class Arm64PgState(PgState):
    """``struct ptdump_pg_state`` and ``note_page`` (no W+X/UXN check)."""

    def note_page(self, addr: int, level: int, val: int) -> None:
        k = self.k
        # check if the current level has been folded dynamically
        if self.mm is not None and ((level == 1 and k.mm_p4d_folded(self.mm))
                                    or (level == 2 and k.mm_pud_folded(self.mm))):
            level = 0
        prot = val & k.ptdump_prot_mask(level) if level >= 0 else 0
        flush = level == -1
        nxt = self.next_marker_start()
        if self.level == -1:
            if flush:
                return  # nothing was noted
            self.level, self.current_prot, self.start_address = level, prot, addr
            self.print_marker()
        elif (prot != self.current_prot or level != self.level
              or (nxt is not None and addr >= nxt)):
            end = self.flush_address if flush else addr
            delta, unit = scale(((end - self.start_address) & k.ULONG_MASK) >> 10, "KMGTPE")
            line = (f"0x{self.start_address:016x}-0x{end:016x}   "
                    f"{delta:9d}{unit} {k.ptdump_level_name(self.level)}")
            if self.current_prot:
                line += k.ptdump_flags(self.level, self.current_prot)
            self.lines.append(line)
            if nxt is not None and addr >= nxt and not flush:
                self.marker += 1
                self.print_marker()
            self.start_address, self.current_prot, self.level = addr, prot, level
        nxt = self.next_marker_start()
        if nxt is not None and addr >= nxt and not flush:
            self.marker += 1
            self.print_marker()


class Arm64Ptdump(GenericKernel):
    """The kernel's ptdump hook on arm64 (see :class:`legacy.ptdump.PtdumpGeneric`)."""

    PTDUMP_LEVEL_NAMES = ("PGD", "P4D", "PUD", "PMD", "PTE")  # kernel_pg_levels[].name

    def ptdump_prot_mask(self, level: int) -> int:
        """``pg_level[level].mask``: the OR of the ``pte_bits`` masks."""
        return PTE_BITS_MASK

    def ptdump_flags(self, level: int, val: int) -> str:
        """``dump_prot``: one column per ``pte_bits`` entry, each after a space."""
        return dump_prot(val & PTE_BITS_MASK)

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        return Arm64PgState(self, ranges, markers)


__all__ = ["Arm64PgState", "Arm64Ptdump", "dump_prot", "pte_bits", "ptdump_prot_bits"]
