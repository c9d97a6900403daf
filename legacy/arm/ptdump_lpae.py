"""arm's page-table dump with LPAE: ``arch/arm/mm/dump.c`` (``pte_bits``, ``section_bits``,
``pg_level``, ``dump_prot``, ``note_page``), a base of the ``arm-lpae`` kernel class.

Only the pmd and pte levels have a name and bits; a hole at the pgd/pud level has a zero
mask, so it prints nothing.  A line is ``0x%08lx-0x%08lx   `` then the size
(``%9lu%c`` in K/M/G...), the level name and one `` %s`` per ``prot_bits`` entry whose
value matches (``set``) or not (``clear``, when it has one)::

    0x00400000-0x00401000           4K PTE       USR ro NX SHD MEM/CACHED/WBWA

There is no domain column with LPAE (``get_domain_name`` returns NULL), and the marker
advances once per run change (``if``, not ``while``).  The W+X check is not run.
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.arm.lpae_bits import (
    L_PMD_SECT_RDONLY,
    L_PTE_MT_BUFFERABLE,
    L_PTE_MT_DEV_SHARED,
    L_PTE_MT_MASK,
    L_PTE_MT_UNCACHED,
    L_PTE_MT_WRITEALLOC,
    L_PTE_MT_WRITEBACK,
    L_PTE_MT_WRITETHROUGH,
    L_PTE_RDONLY,
    L_PTE_SHARED,
    L_PTE_USER,
    L_PTE_XN,
    PMD_SECT_AP2,
    PMD_SECT_S,
    PMD_SECT_USER,
    PMD_SECT_XN,
)
from legacy.generic import GenericKernel
from legacy.ptdump import PgState, addr_marker, ptdump_range, scale


@dataclass(frozen=True)
class prot_bits:
    mask: int
    val: int
    set: str
    clear: str | None = None


PTE_BITS = (
    prot_bits(L_PTE_USER, L_PTE_USER, "USR", "   "),
    prot_bits(L_PTE_RDONLY, L_PTE_RDONLY, "ro", "RW"),
    prot_bits(L_PTE_XN, L_PTE_XN, "NX", "x "),
    prot_bits(L_PTE_SHARED, L_PTE_SHARED, "SHD", "   "),
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_UNCACHED, "SO/UNCACHED"),
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_BUFFERABLE, "MEM/BUFFERABLE/WC"),
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_WRITETHROUGH, "MEM/CACHED/WT"),
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_WRITEBACK, "MEM/CACHED/WBRA"),
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_WRITEALLOC, "MEM/CACHED/WBWA"),
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_DEV_SHARED, "DEV/SHARED"),
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_BUFFERABLE, "DEV/WC"),  # L_PTE_MT_DEV_WC
    prot_bits(L_PTE_MT_MASK, L_PTE_MT_WRITEBACK, "DEV/CACHED"),  # L_PTE_MT_DEV_CACHED
)
"""``pte_bits[]`` with CONFIG_ARM_LPAE (no MINICACHE, no DEV/NONSHARED).  With LPAE the
device types alias normal ones, so a write-back page prints both ``MEM/CACHED/WBRA`` and
``DEV/CACHED``, as the kernel's table makes it."""

SECTION_BITS = (
    prot_bits(PMD_SECT_USER, PMD_SECT_USER, "USR"),
    prot_bits(L_PMD_SECT_RDONLY | PMD_SECT_AP2, L_PMD_SECT_RDONLY | PMD_SECT_AP2, "ro", "RW"),
    prot_bits(PMD_SECT_XN, PMD_SECT_XN, "NX", "x "),
    prot_bits(PMD_SECT_S, PMD_SECT_S, "SHD", "   "),
)
"""``section_bits[]`` with CONFIG_ARM_LPAE."""

_LEVEL_BITS: dict[int, tuple[prot_bits, ...]] = {3: SECTION_BITS, 4: PTE_BITS}
_LEVEL_NAMES = ("", "", "", "PMD", "PTE")


def dump_prot(prot: int, bits: tuple[prot_bits, ...]) -> str:
    out = ""
    for b in bits:
        s = b.set if prot & b.mask == b.val else b.clear
        if s is not None:
            out += " " + s
    return out


class ArmLpaePgState(PgState):
    """``struct pg_state`` and ``note_page`` of arch/arm/mm/dump.c (levels counted from 0
    here, the walker's 1..5 in the kernel)."""

    def _dump(self, end: int) -> None:
        k = self.k
        delta, unit = scale(((end - self.start_address) & k.ULONG_MASK) >> 10, "KMGTPE")
        self.lines.append(
            f"0x{self.start_address:08x}-0x{end:08x}   {delta:9d}{unit} "
            f"{k.ptdump_level_name(self.level)}" + k.ptdump_flags(self.level, self.current_prot)
        )

    def note_page(self, addr: int, level: int, val: int) -> None:
        k = self.k
        prot = val & k.ptdump_prot_mask(level) if level >= 0 else 0
        flush = level == -1
        if self.level == -1:
            if flush:
                return
            self.level, self.current_prot, self.start_address = level, prot, addr
            self.print_marker()
            return
        nxt = self.next_marker_start()
        crossed = not flush and nxt is not None and addr >= nxt
        if flush or prot != self.current_prot or level != self.level or crossed:
            if self.current_prot:
                self._dump(self.flush_address if flush else addr)
            if crossed:
                self.marker += 1
                self.print_marker()
            self.start_address, self.current_prot, self.level = addr, prot, level


class ArmLpaePtdump(GenericKernel):
    """The kernel's ptdump hook on arm with LPAE (see :class:`legacy.ptdump.PtdumpGeneric`)."""

    PTDUMP_LEVEL_NAMES = _LEVEL_NAMES

    def ptdump_prot_mask(self, level: int) -> int:
        """``pg_level[level].mask``: the OR of its ``prot_bits`` masks (0 above the pmd)."""
        mask = 0
        for b in _LEVEL_BITS.get(level, ()):
            mask |= b.mask
        return mask

    def ptdump_flags(self, level: int, val: int) -> str:
        return dump_prot(val, _LEVEL_BITS.get(level, ()))

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        return ArmLpaePgState(self, ranges, markers)


__all__ = ["PTE_BITS", "SECTION_BITS", "ArmLpaePgState", "ArmLpaePtdump", "dump_prot",
           "prot_bits"]
