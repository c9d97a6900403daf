"""riscv's part of ptdump: ``arch/riscv/mm/ptdump.c`` (``pte_bits``, ``pg_level``,
``dump_prot``, ``dump_addr``, ``note_page``; Linux v6.18), a base of :class:`RiscvKernel`.

Only runs with a non-zero protection are printed -- a hole prints nothing, unlike x86 and
arm64.  A line is the range, the physical address of its first page, the size
(``%9lu%c`` in K/M/G/T/P/E), the level name, then one column per ``pte_bits`` entry, each
after a space (RV64; the addresses shortened here)::

    0x0..0400000-0x0..0404000    0x0..10000000        16K PTE . ..  ..   D A . U . W R V

``N`` (Svnapot), ``MT(NC)``/``MT(IO)`` (Svpbmt), ``RSW(n)``, then D A G U X W R V (``.``
when clear); RV32 has neither N nor MT.  The level names are ``CONFIG_PGTABLE_LEVELS``'s, not
the run-time folding's: RV64 always says PGD, P4D, PUD, PMD, PTE (a 1G leaf of Sv39 is a
``PUD``), RV32 says PGD for every level above the PTE.
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.riscv.bits import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_EXEC,
    _PAGE_GLOBAL,
    _PAGE_IO_SVPBMT,
    _PAGE_MTMASK_SVPBMT,
    _PAGE_NAPOT,
    _PAGE_NOCACHE_SVPBMT,
    _PAGE_PRESENT,
    _PAGE_READ,
    _PAGE_SOFT,
    _PAGE_USER,
    _PAGE_WRITE,
)
from legacy.generic import GenericKernel
from legacy.ptdump import PgState, addr_marker, ptdump_range, scale
from legacy.types import pte_t


@dataclass(frozen=True)
class prot_bits:
    mask: int
    set: str
    clear: str


_PTE_BITS_COMMON = (
    prot_bits(_PAGE_SOFT, "RSW(%d)", "  ..  "),
    prot_bits(_PAGE_DIRTY, "D", "."),
    prot_bits(_PAGE_ACCESSED, "A", "."),
    prot_bits(_PAGE_GLOBAL, "G", "."),
    prot_bits(_PAGE_USER, "U", "."),
    prot_bits(_PAGE_EXEC, "X", "."),
    prot_bits(_PAGE_WRITE, "W", "."),
    prot_bits(_PAGE_READ, "R", "."),
    prot_bits(_PAGE_PRESENT, "V", "."),
)
PTE_BITS_64 = (
    prot_bits(_PAGE_NAPOT, "N", "."),
    prot_bits(_PAGE_MTMASK_SVPBMT, "MT(%s)", "  ..  "),
) + _PTE_BITS_COMMON
"""``pte_bits[]`` with CONFIG_64BIT."""
PTE_BITS_32 = _PTE_BITS_COMMON


def dump_prot(prot: int, bits: tuple[prot_bits, ...]) -> str:
    """``dump_prot``: one column per ``pte_bits`` entry, each after a space."""
    out = ""
    for b in bits:
        val = prot & b.mask
        if val:
            if b.mask == _PAGE_SOFT:
                s = b.set % (val >> 8)
            elif b.mask == _PAGE_MTMASK_SVPBMT:
                mt = {_PAGE_NOCACHE_SVPBMT: "NC", _PAGE_IO_SVPBMT: "IO"}.get(val, "??")
                s = b.set % mt
            else:
                s = b.set
        else:
            s = b.clear
        out += " " + s
    return out


class RiscvPgState(PgState):
    """``struct pg_state`` and ``note_page`` of arch/riscv/mm/ptdump.c (no W+X check)."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range],
                 markers: list[addr_marker]) -> None:
        super().__init__(k, ranges, markers)
        self.start_pa = 0

    def _pa(self, val: int) -> int:
        """``PFN_PHYS(pte_pfn(__pte(val)))``."""
        return self.k.pte_pfn(pte_t(val)) << self.k.PAGE_SHIFT

    def _dump(self, end: int) -> None:
        k = self.k
        w = k.config.word_bits // 4
        delta, unit = scale(((end - self.start_address) & k.ULONG_MASK) >> 10, "KMGTPE")
        self.lines.append(
            f"0x{self.start_address:0{w}x}-0x{end:0{w}x}   "
            f" 0x{self.start_pa:0{w}x} "
            f"{delta:9d}{unit} {k.ptdump_level_name(self.level)}"
            + k.ptdump_flags(self.level, self.current_prot)
        )

    def note_page(self, addr: int, level: int, val: int) -> None:
        k = self.k
        pa = self._pa(val)
        prot = val & k.ptdump_prot_mask(level) if level >= 0 else 0
        flush = level == -1
        if self.level == -1:
            if flush:
                return  # nothing was noted
            self.level, self.current_prot, self.start_address = level, prot, addr
            self.start_pa = pa
            self.print_marker()
            return
        nxt = self.next_marker_start()
        if flush or prot != self.current_prot or level != self.level or (
                nxt is not None and addr >= nxt):
            if self.current_prot:
                self._dump(self.flush_address if flush else addr)
            while not flush and nxt is not None and addr >= nxt:
                self.marker += 1
                self.print_marker()
                nxt = self.next_marker_start()
            self.start_address, self.start_pa = addr, pa
            self.current_prot, self.level = prot, level


class RiscvPtdump(GenericKernel):
    """The kernel's ptdump hook on riscv (see :class:`legacy.ptdump.PtdumpGeneric`)."""

    RV64: bool

    @property
    def PTDUMP_LEVEL_NAMES(self) -> tuple[str, ...]:  # type: ignore[override]
        """``pg_level[].name``: by ``CONFIG_PGTABLE_LEVELS`` (5 on RV64, 2 on RV32)."""
        if self.RV64:
            return ("PGD", "P4D", "PUD", "PMD", "PTE")
        return ("PGD", "PGD", "PGD", "PGD", "PTE")

    def _pte_bits(self) -> tuple[prot_bits, ...]:
        return PTE_BITS_64 if self.RV64 else PTE_BITS_32

    def ptdump_prot_mask(self, level: int) -> int:
        """``pg_level[level].mask``: the OR of the ``pte_bits`` masks."""
        mask = 0
        for b in self._pte_bits():
            mask |= b.mask
        return mask

    def ptdump_flags(self, level: int, val: int) -> str:
        return dump_prot(val & self.ptdump_prot_mask(level), self._pte_bits())

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        return RiscvPgState(self, ranges, markers)


__all__ = ["PTE_BITS_32", "PTE_BITS_64", "RiscvPgState", "RiscvPtdump", "dump_prot",
           "prot_bits"]
