"""powerpc's part of ptdump: ``arch/powerpc/mm/ptdump/ptdump.c`` (``note_page``,
``dump_addr``) and ``book3s64.c`` (``flag_array``, ``pg_level``), Linux v6.18, a base of
:class:`~legacy.ppc64.pgtable.RadixKernel`.

A line is the range (``start-end`` inclusive), the physical address of its first page, the
size (``%9lu%c`` in K/M/G/T/P), then the flags of ``flag_array`` (book3s64.c) in order, each
either its ``set`` or its ``clear`` string, separated by spaces::

    0xc008000000000000-0xc00800000000ffff  0x0000000001230000        64K PTE      r  w ...

Only runs with non-zero flags are printed.  Level names: PGD, PUD, PMD, PTE (p4d folded).
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.ppc64.bits import (
    _PAGE_ACCESSED,
    _PAGE_CACHE_CTL,
    _PAGE_DIRTY,
    _PAGE_EXEC,
    _PAGE_INVALID,
    _PAGE_NON_IDEMPOTENT,
    _PAGE_PRESENT,
    _PAGE_PRIVILEGED,
    _PAGE_PTE,
    _PAGE_READ,
    _PAGE_SAO,
    _PAGE_SOFT_DIRTY,
    _PAGE_SPECIAL,
    _PAGE_TOLERANT,
    _PAGE_WRITE,
)
from legacy.generic import GenericKernel
from legacy.ptdump import PgState, addr_marker, ptdump_range, scale
from legacy.types import pte_t


@dataclass(frozen=True)
class flag_info:
    mask: int
    val: int
    set: str
    clear: str


FLAG_ARRAY = (
    flag_info(_PAGE_PRIVILEGED, 0, "user", "    "),
    flag_info(_PAGE_READ, _PAGE_READ, "r", " "),
    flag_info(_PAGE_WRITE, _PAGE_WRITE, "w", " "),
    flag_info(_PAGE_EXEC, _PAGE_EXEC, " X ", "   "),
    flag_info(_PAGE_PTE, _PAGE_PTE, "pte", "   "),
    flag_info(_PAGE_PRESENT, _PAGE_PRESENT, "valid", "     "),
    flag_info(_PAGE_PRESENT | _PAGE_INVALID, 0, "       ", "present"),
    flag_info(_PAGE_SOFT_DIRTY, _PAGE_SOFT_DIRTY, "soft_dirty", "          "),
    flag_info(_PAGE_SPECIAL, _PAGE_SPECIAL, "special", "       "),
    flag_info(_PAGE_SAO, _PAGE_SAO, "SAO", ""),
    flag_info(_PAGE_CACHE_CTL, _PAGE_NON_IDEMPOTENT, "non-idempotent", ""),
    flag_info(_PAGE_CACHE_CTL, _PAGE_TOLERANT, "tolerant", ""),
    flag_info(_PAGE_DIRTY, _PAGE_DIRTY, "dirty", "     "),
    flag_info(_PAGE_ACCESSED, _PAGE_ACCESSED, "accessed", "        "),
)
"""book3s64.c ``flag_array`` (the hash-only entries left out: they are 0 on radix)."""
FLAG_MASK = 0
for _f in FLAG_ARRAY:
    FLAG_MASK |= _f.mask


def dump_flag_info(val: int) -> str:
    """``dump_flag_info``: each flag's set or clear string, after a space."""
    out = ""
    for f in FLAG_ARRAY:
        s = f.set if val & f.mask == f.val else f.clear
        if s:
            out += " " + s
    return out


class RadixPgState(PgState):
    """``struct pg_state`` and ``note_page`` of arch/powerpc/mm/ptdump/ptdump.c."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range],
                 markers: list[addr_marker]) -> None:
        super().__init__(k, ranges, markers)
        self.start_pa = 0

    def _dump(self, end: int) -> None:
        k = self.k
        delta, unit = scale(((end - self.start_address) & k.ULONG_MASK) >> 10, "KMGTPE")
        self.lines.append(
            f"0x{self.start_address:016x}-0x{(end - 1) & k.ULONG_MASK:016x}  "
            f"0x{self.start_pa:016x} {delta:9d}{unit} {k.ptdump_level_name(self.level)}"
            + k.ptdump_flags(self.level, self.current_prot)
        )

    def note_page(self, addr: int, level: int, val: int) -> None:
        k = self.k
        pa = k.pte_pfn(pte_t(val)) << k.PAGE_SHIFT
        prot = val & FLAG_MASK if level >= 0 else 0
        flush = level == -1
        if self.level == -1:
            if flush:
                return
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


class Ppc64Ptdump(GenericKernel):
    """The kernel's ptdump hook on book3s64 radix."""

    PTDUMP_LEVEL_NAMES = ("PGD", "P4D", "PUD", "PMD", "PTE")

    def ptdump_prot_mask(self, level: int) -> int:
        return FLAG_MASK

    def ptdump_flags(self, level: int, val: int) -> str:
        return dump_flag_info(val)

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        return RadixPgState(self, ranges, markers)


__all__ = ["FLAG_ARRAY", "Ppc64Ptdump", "RadixPgState", "dump_flag_info"]
