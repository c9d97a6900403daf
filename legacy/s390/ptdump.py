"""s390's part of ptdump: ``arch/s390/mm/dump_pagetables.c`` (``print_prot``, ``note_page``,
``note_page_update_state``; Linux v6.18 as read from a stored copy with ``get_lowcore()``
and ``add_marker``), a base of :class:`~legacy.s390.pgtable.S390Kernel`.

A line is the range, the size (``%9lu%c`` in K/M/G/T/P/E) and ``print_prot``: the level name
then ``I`` (invalid), or ``RO``/``RW`` and ``NX``/``X``::

    0x0000000000400000-0x0000000000404000        16K PTE RW NX

Quirks kept: the level names are ``ASCE``, ``PGD``, ``PUD``, ``PMD``, ``PTE`` for ptdump
levels 0..4 -- one off from the generic pgd/p4d/pud/pmd/pte (there is no ``P4D``); a pte with
the invalid bit (empty, PROT_NONE, old or swap) and a hole (``val`` 0 above the pte level)
both print ``I``; only ``_PAGE_PROTECT`` and ``_PAGE_NOEXEC`` are compared otherwise, so a
clean writable page (protected until dirty) prints ``RO``.  The listing starts with the first
marker's name (``st->marker->name``: the kernel's own first marker is ``Kernel Virtual
Address Space``); the kernel's sorted ``Start``/``End`` markers are not emulated (the
caller's markers print as the other architectures').
"""

from __future__ import annotations

from arches.s390.bits import _PAGE_INVALID, _PAGE_NOEXEC, _PAGE_PROTECT
from legacy.generic import GenericKernel
from legacy.ptdump import PgState, addr_marker, ptdump_range, scale

LEVEL_NAME = ("ASCE", "PGD", "PUD", "PMD", "PTE")
"""``print_prot``'s ``level_name[]``, indexed by ptdump level."""


def print_prot(pr: int, level: int) -> str:
    out = f"{LEVEL_NAME[level]} "
    if pr & _PAGE_INVALID:
        return out + "I"
    out += "RO " if pr & _PAGE_PROTECT else "RW "
    return out + ("NX" if pr & _PAGE_NOEXEC else "X")


class S390PgState(PgState):
    """``struct pg_state`` and ``note_page`` (no W+X check)."""

    def _update_state(self, addr: int, prot: int, level: int) -> None:
        """``note_page_update_state``: step past the markers ``addr`` reached."""
        nxt = self.next_marker_start()
        while nxt is not None and addr >= nxt:
            self.marker += 1
            self.print_marker()
            nxt = self.next_marker_start()
        self.start_address, self.current_prot, self.level = addr, prot, level

    def note_page(self, addr: int, level: int, val: int) -> None:
        k = self.k
        prot = val & (_PAGE_PROTECT | _PAGE_NOEXEC)
        if level == 4 and val & _PAGE_INVALID:
            prot = _PAGE_INVALID
        # For pmd_none() & friends val gets passed as zero.
        if level != 4 and not val:
            prot = _PAGE_INVALID
        # Final flush from generic code.
        if level == -1:
            addr = self.flush_address
        if self.level == -1:
            if level == -1 and not self.lines:
                return  # nothing was noted
            if self.markers:  # the kernel's list always has one (address_markers)
                self.print_marker()  # "---[ %s ]---", st->marker->name: the first
            self._update_state(addr, prot, level)
            return
        nxt = self.next_marker_start()
        if prot != self.current_prot or level != self.level or (nxt is not None
                                                                  and addr >= nxt):
            delta, unit = scale(((addr - self.start_address) & k.ULONG_MASK) >> 10, "KMGTPE")
            self.lines.append(f"0x{self.start_address:016x}-0x{addr:016x} {delta:9d}{unit} "
                              + print_prot(self.current_prot, self.level))
            self._update_state(addr, prot, level)


class S390Ptdump(GenericKernel):
    """The kernel's ptdump hook on s390 (see :class:`legacy.ptdump.PtdumpGeneric`)."""

    PTDUMP_LEVEL_NAMES = LEVEL_NAME

    def ptdump_prot_mask(self, level: int) -> int:
        return _PAGE_PROTECT | _PAGE_NOEXEC | _PAGE_INVALID

    def ptdump_flags(self, level: int, val: int) -> str:
        return print_prot(val, level)[len(LEVEL_NAME[level]) + 1:]

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        return S390PgState(self, ranges, markers)


__all__ = ["LEVEL_NAME", "S390PgState", "S390Ptdump", "print_prot"]
