"""``include/linux/ptdump.h``: what the generic page-table dumper (``mm/ptdump.c``,
:mod:`legacy.mm.ptdump`) and an architecture's listing (``arch/*/mm/ptdump.c``) share, and
the per-architecture hook of the kernel class with its generic default.

- :class:`ptdump_range`, :class:`ptdump_state` are the header's structs: the ranges to walk
  and the callbacks the walk makes (``note_page``, the optional ``effective_prot``).  ptdump
  levels count from the top: 0 = pgd ... 4 = pte, -1 = the final flush.
- :class:`PtdumpGeneric` is the hook a kernel class provides, as the kernel's
  ``arch/*/mm/ptdump.c`` does: ``ptdump_level_name(level)``, ``ptdump_flags(level, val)``
  (the flag columns) and ``ptdump_pg_state(ranges, markers)`` (the architecture's ``struct
  pg_state`` with its ``note_page``).  :class:`~legacy.generic.GenericKernel` inherits this
  generic default; x86 overrides it in :mod:`legacy.x86.ptdump`
  (``arch/x86/mm/dump_pagetables.c``), arm64 in :mod:`legacy.arm64.ptdump`
  (``arch/arm64/mm/ptdump.c``).
- :class:`PgState` is the bookkeeping every listing shares (markers, lines, text);
  :class:`GenericPgState` the default listing.

This module is the header, not ``mm/ptdump.c``: :class:`GenericKernel` inherits
:class:`PtdumpGeneric`, so it cannot import the walker (``legacy.mm.pagewalk`` imports
``legacy.generic``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from legacy.mm_types import mm_struct
from legacy.types import pte_t

if TYPE_CHECKING:
    from legacy.generic import GenericKernel

LEVEL_NAMES = ("pgd", "p4d", "pud", "pmd", "pte")
"""ptdump level 0..4 in the generic code's words."""


@dataclass(frozen=True)
class ptdump_range:
    start: int
    end: int


@dataclass(frozen=True)
class addr_marker:
    """``struct addr_marker``: where an area of the address space starts, and its name."""

    start_address: int
    name: str


class ptdump_state:
    """``struct ptdump_state``: the callbacks and the ranges to walk.

    ``mm`` is not in the C struct: it is the mm whose tables are being walked, which arm64's
    ``struct ptdump_pg_state`` keeps (``st->mm``) to tell levels folded at run time; the
    caller of a walk sets it."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range]) -> None:
        self.k = k
        self.range = ranges
        self.mm: mm_struct | None = None

    def note_page(self, addr: int, level: int, val: int) -> None:
        raise NotImplementedError

    def effective_prot(self, level: int, val: int) -> None:
        """Optional (``st->effective_prot`` may be NULL): record the protection in effect
        at ``level``.  The default does nothing."""


class PgState(ptdump_state):
    """What every listing's ``struct pg_state`` keeps: the run being merged (``level``,
    ``start_address``, ``current_prot``), the address markers and the printed lines.

    ``level == -1`` means nothing was noted yet.  The last run ends at
    :attr:`flush_address`: the kernel flushes with ``note_page(st, 0, -1, 0)`` and prints
    the end as 0, the top of the address space wrapped; here it is the end of the last range
    (masked), which is 0 where that range runs to the top."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range],
                 markers: list[addr_marker]) -> None:
        super().__init__(k, ranges)
        self.markers = markers
        self.marker = 0
        self.level = -1
        self.start_address = 0
        self.current_prot = 0
        self.lines: list[str] = []
        self.flush_address = ranges[-1].end & k.ULONG_MASK if ranges else 0

    def next_marker_start(self) -> int | None:
        """``st->marker[1].start_address``, or None past the last marker (the kernel's
        ``{ -1, NULL }`` terminator)."""
        if self.marker + 1 < len(self.markers):
            return self.markers[self.marker + 1].start_address
        return None

    def print_marker(self) -> None:
        self.lines.append(f"---[ {self.markers[self.marker].name} ]---")

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def scale(delta: int, units: str) -> tuple[int, str]:
    """``while (!(delta & 1023) && unit[1]) { delta >>= 10; unit++; }``"""
    unit = 0
    while not delta & 1023 and unit + 1 < len(units):
        delta >>= 10
        unit += 1
    return delta, units[unit]


class GenericPgState(PgState):
    """The listing of an architecture without a hook of its own: x86's layout, runs broken
    on a change of flags, level or area; the flag columns are the kernel's
    :meth:`PtdumpGeneric.ptdump_flags`."""

    def note_page(self, addr: int, level: int, val: int) -> None:
        k = self.k
        new_prot = val & k.ptdump_prot_mask(level) if level >= 0 else 0
        if self.level == -1:  # First entry
            if level == -1:
                return  # nothing was noted
            self.level, self.current_prot, self.start_address = level, new_prot, addr
            self.print_marker()
            return
        flush = level == -1
        nxt = self.next_marker_start()
        if (flush or new_prot != self.current_prot or level != self.level
                or (nxt is not None and addr >= nxt)):
            end = self.flush_address if flush else addr
            delta, unit = scale((end - self.start_address) & k.ULONG_MASK, "BKMGTPE")
            w = k.config.word_bits // 4
            self.lines.append(
                f"0x{self.start_address:0{w}x}-0x{end:0{w}x}   {delta:9d}{unit} "
                + k.ptdump_flags(self.level, self.current_prot)
                + k.ptdump_level_name(self.level)
            )
            while nxt is not None and addr >= nxt and not flush:
                self.marker += 1
                self.print_marker()
                nxt = self.next_marker_start()
            self.level, self.current_prot, self.start_address = level, new_prot, addr


class PtdumpGeneric:
    """The architecture part of ptdump, as a kernel-class mixin (the kernel's
    ``arch/*/mm/ptdump.c``).  This is the generic default, inherited by
    :class:`~legacy.generic.GenericKernel`: x86 layout, flag columns from the legacy PTE
    predicates (``pte_present``, ``pte_protnone``, ``pte_write``, ``pte_exec``) instead of
    bits.  No emulated configuration uses it (x86 and arm64 have their own)."""

    PTDUMP_LEVEL_NAMES: tuple[str, ...] = LEVEL_NAMES
    """The name printed for ptdump level 0 (pgd) ... 4 (pte)."""

    def _ptdump_kernel(self) -> GenericKernel:
        return cast("GenericKernel", self)  # the mixin is a base of GenericKernel only

    def ptdump_level_name(self, level: int) -> str:
        names = self.PTDUMP_LEVEL_NAMES
        return names[level] if 0 <= level < len(names) else "???"

    def ptdump_prot_mask(self, level: int) -> int:
        """The bits of an entry a run compares (x86's ``PTE_FLAGS_MASK``, arm64's
        ``pg_level[level].mask``); the default: all but the output address bits
        ``PAGE_SHIFT`` .. ``phys_bits``."""
        k = self._ptdump_kernel()
        return ~(((1 << k.config.phys_bits) - 1) & ~(k.PAGE_SIZE - 1))

    def _ptdump_pred(self, name: str, val: int) -> bool | None:
        """``k.<name>(pte_t(val))``, or None where the architecture lacks the predicate
        (pmd/pud leaves share the PTE format on the architectures that have them)."""
        fn = getattr(self, name, None)
        if fn is None:
            return None
        try:
            return bool(fn(pte_t(val)))
        except NotImplementedError:
            return None

    def ptdump_flags(self, level: int, val: int) -> str:
        """The flag columns of an entry (12 characters): ``RW``/``ro``, ``x``/``NX`` (blank
        without ``pte_exec``), ``huge`` above the PTE level; blank where the MMU sees no
        mapping (none, not present, or PROT_NONE)."""
        if not val or not self._ptdump_pred("pte_present", val) or self._ptdump_pred(
                "pte_protnone", val):
            return " " * 12
        write = self._ptdump_pred("pte_write", val)
        exe = self._ptdump_pred("pte_exec", val)
        out = "RW " if write else "ro "
        out += "   " if exe is None else ("x  " if exe else "NX ")
        out += "huge  " if level < 4 else "      "
        return out

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        """A fresh listing state (the architecture's ``struct pg_state``)."""
        return GenericPgState(self._ptdump_kernel(), ranges, markers)


__all__ = [
    "LEVEL_NAMES", "GenericPgState", "PgState", "PtdumpGeneric", "addr_marker", "ptdump_range",
    "ptdump_state", "scale",
]
