"""x86's part of ptdump: ``arch/x86/mm/dump_pagetables.c`` (``struct pg_state``,
``effective_prot``, ``note_page``, ``printk_prot``), a base of :class:`X86Kernel`.

Runs of entries with the same flags, the same effective protection and the same level are
merged into one line::

    ---[ User Space ]---
    0x0000000000400000-0x0000000000410000          64K USR RW                     NX pte

(``0x%0*lx-0x%0*lx   %9lu%c `` with the size in B/K/M/G/T/P/E, then ``printk_prot``:
``USR``, ``RW``/``ro``, ``PWT``, ``PCD``, ``PSE``, ``PAT``, ``GLB``, ``NX``/``x``, the level
name; a not-present run -- a hole, or a PROT_NONE entry, which has ``_PAGE_PRESENT`` clear --
has blank flag columns.)  A marker line ``---[ name ]---`` starts each area.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arches.x86.bits import (
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PAT,
    _PAGE_PAT_LARGE,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_PWT,
    _PAGE_RW,
    _PAGE_USER,
)
from legacy.generic import GenericKernel
from legacy.ptdump import PgState, addr_marker, ptdump_range, scale


class X86PgState(PgState):
    """``struct pg_state`` of arch/x86/mm/dump_pagetables.c with its ``effective_prot``
    and ``note_page`` (no W+X check, no ``max_lines``)."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range],
                 markers: list[addr_marker]) -> None:
        super().__init__(k, ranges, markers)
        self.prot_levels = [0] * 5
        self.effective = 0
        """``st->effective_prot`` of the current run."""

    def effective_prot(self, level: int, val: int) -> None:
        prot = val & self.k.ptdump_prot_mask(level)
        if level > 0:
            higher_prot = self.prot_levels[level - 1]
            effective = (higher_prot & prot & (_PAGE_USER | _PAGE_RW)) | (
                (higher_prot | prot) & _PAGE_NX)
        else:
            effective = prot
        self.prot_levels[level] = effective

    def note_page(self, addr: int, level: int, val: int) -> None:
        k = self.k
        new_prot = val & k.ptdump_prot_mask(level)
        new_eff = 0 if not val else self.prot_levels[level]
        nxt = self.next_marker_start()
        if self.level == -1:  # First entry
            if level == -1:
                return  # nothing was noted
            self.current_prot, self.effective, self.level = new_prot, new_eff, level
            self.start_address = addr
            self.print_marker()
            return
        flush = level == -1
        if (flush or new_prot != self.current_prot or new_eff != self.effective
                or level != self.level or (nxt is not None and addr >= nxt)):
            end = self.flush_address if flush else addr
            delta, unit = scale((end - self.start_address) & k.ULONG_MASK, "BKMGTPE")
            w = k.config.word_bits // 4  # sizeof(unsigned long) * 2
            self.lines.append(
                f"0x{self.start_address:0{w}x}-0x{end:0{w}x}   {delta:9d}{unit} "
                + k.ptdump_flags(self.level, self.current_prot)
                + k.ptdump_level_name(self.level)
            )
            # markers for special areas of the address space
            while nxt is not None and addr >= nxt and not flush:
                self.marker += 1
                self.print_marker()
                nxt = self.next_marker_start()
            self.start_address = addr
            self.current_prot, self.effective, self.level = new_prot, new_eff, level


class X86Ptdump(GenericKernel):
    """The kernel's ptdump hook on x86 (see :class:`legacy.ptdump.PtdumpGeneric`)."""

    PTDUMP_LEVEL_NAMES = ("pgd", "p4d", "pud", "pmd", "pte")  # printk_prot's level_name[]

    if TYPE_CHECKING:
        PTE_FLAGS_MASK: int  # X86Kernel.derive_sizes

    def ptdump_prot_mask(self, level: int) -> int:
        """``val & PTE_FLAGS_MASK``: the entry without its pfn."""
        return self.PTE_FLAGS_MASK

    def ptdump_flags(self, level: int, val: int) -> str:
        """``printk_prot`` without the level name (30 characters)."""
        pr = val & self.PTE_FLAGS_MASK
        if not pr & _PAGE_PRESENT:
            return " " * 30  # Not present
        out = "USR " if pr & _PAGE_USER else "    "
        out += "RW " if pr & _PAGE_RW else "ro "
        out += "PWT " if pr & _PAGE_PWT else "    "
        out += "PCD " if pr & _PAGE_PCD else "    "
        # Bit 7 has a different meaning on level 3 vs 4
        out += "PSE " if level <= 3 and pr & _PAGE_PSE else "    "
        pat = (level == 4 and pr & _PAGE_PAT) or (level in (2, 3) and pr & _PAGE_PAT_LARGE)
        out += "PAT " if pat else "    "
        out += "GLB " if pr & _PAGE_GLOBAL else "    "
        out += "NX " if pr & _PAGE_NX else "x  "
        return out

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        return X86PgState(self, ranges, markers)


__all__ = ["X86PgState", "X86Ptdump"]
