"""The page-table dumper: ``mm/ptdump.c`` (generic walk) and the x86 ``note_page`` of
``arch/x86/mm/dump_pagetables.c`` (the output format).

:func:`ptdump_walk_pgd` walks each range of a :class:`ptdump_state` with the no-vma walker
(``walk_page_range_debug``), calls ``effective_prot`` on every entry it meets, ``note_page``
on every leaf (and every pte, empty or not) and on every hole, then flushes with
``note_page(st, 0, -1, 0)``.  ptdump levels count from the top: 0 = pgd ... 4 = pte.

:class:`X86PgState` is x86's ``struct pg_state``: runs of entries with the same flags, the
same effective protection and the same level are merged into one line::

    ---[ User Space ]---
    0x0000000000400000-0x0000000000410000          64K     USR RW                     NX pte

(``0x%0*lx-0x%0*lx   %9lu%c `` with the size in B/K/M/G/T/P/E, then ``printk_prot``:
``USR``, ``RW``/``ro``, ``PWT``, ``PCD``, ``PSE``, ``PAT``, ``GLB``, ``NX``/``x``, the level
name; a not-present run has blank flag columns.)  A marker line ``---[ name ]---`` starts
each address-space area.

Other architectures get :class:`GenericPgState`: the same layout, with flag columns computed
from the legacy predicates (``pte_present``, ``pte_write``, ``pte_exec``) instead of bits.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from legacy.mm.pagewalk import (
    ACTION_CONTINUE,
    mm_walk,
    mm_walk_ops,
    walk_page_range_debug,
)
from legacy.mm_types import mm_struct
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr, pte_t

LEVEL_NAMES = ("pgd", "p4d", "pud", "pmd", "pte")
UNITS = "BKMGTPE"


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
    """``struct ptdump_state``: the callbacks and the ranges to walk."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range]) -> None:
        self.k = k
        self.range = ranges

    def note_page(self, addr: int, level: int, val: int) -> None:
        raise NotImplementedError

    def effective_prot(self, level: int, val: int) -> None:
        """Optional: record the protection in effect at ``level``."""


# -- mm/ptdump.c ---------------------------------------------------------------------------


def _st(walk: mm_walk) -> ptdump_state:
    st = walk.private
    assert isinstance(st, ptdump_state)
    return st


def ptdump_pgd_entry(pgd: PgdPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.pgdp_get(pgd)
    st.effective_prot(0, val)
    if k.pgd_leaf(val):
        st.note_page(addr, 0, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_p4d_entry(p4d: P4dPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.p4dp_get(p4d)
    st.effective_prot(1, val)
    if k.p4d_leaf(val):
        st.note_page(addr, 1, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_pud_entry(pud: PudPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.pudp_get(pud)
    st.effective_prot(2, val)
    if k.pud_leaf(val):
        st.note_page(addr, 2, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_pmd_entry(pmd: PmdPtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.pmdp_get(pmd)
    st.effective_prot(3, val)
    if k.pmd_leaf(val):
        st.note_page(addr, 3, val)
        walk.action = ACTION_CONTINUE
    return 0


def ptdump_pte_entry(pte: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
    st, k = _st(walk), walk.k
    val = k.ptep_get_lockless(pte)
    st.effective_prot(4, val)
    st.note_page(addr, 4, val)
    return 0


def ptdump_hole(addr: int, next: int, depth: int, walk: mm_walk) -> int:
    _st(walk).note_page(addr, depth, 0)
    return 0


ptdump_ops = mm_walk_ops(
    pgd_entry=ptdump_pgd_entry,
    p4d_entry=ptdump_p4d_entry,
    pud_entry=ptdump_pud_entry,
    pmd_entry=ptdump_pmd_entry,
    pte_entry=ptdump_pte_entry,
    pte_hole=ptdump_hole,
)


def ptdump_walk_pgd(k: GenericKernel, st: ptdump_state, mm: mm_struct,
                    pgd: PgdPtr | None = None, flush: bool = True) -> None:
    """Walk every range of ``st`` in ``mm`` (or ``pgd``), then flush the last run
    (``flush=False`` lets a caller walk another mm into the same listing first)."""
    for r in st.range:
        walk_page_range_debug(k, mm, r.start, r.end, ptdump_ops, pgd, st)
    if flush:
        # Flush out the last page
        st.note_page(0, -1, 0)


# -- the listing: arch/x86/mm/dump_pagetables.c ---------------------------------------------


@dataclass
class _Run:
    start_address: int = 0
    current_prot: int = 0
    effective_prot: int = 0
    level: int = -1


class PgState(ptdump_state):
    """``struct pg_state`` and ``note_page``: merges runs, prints lines and markers.
    Subclasses say what a value's flags are (:meth:`flags`) and how they print."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range],
                 markers: list[addr_marker]) -> None:
        super().__init__(k, ranges)
        self.markers = markers
        self.marker = 0
        self.run = _Run()
        self.prot_levels = [0] * 5
        self.lines: list[str] = []
        self.width = k.config.word_bits // 4

    # -- what subclasses define --------------------------------------------------------

    def flags(self, val: int) -> int:
        """``val & PTE_FLAGS_MASK``: the entry without its output-address bits
        (``PAGE_SHIFT`` .. ``phys_bits``), the part a run compares."""
        k = self.k
        return val & ~(((1 << k.config.phys_bits) - 1) & ~(k.PAGE_SIZE - 1))

    def combine(self, higher: int, prot: int) -> int:
        """The protection in effect below a parent whose effective protection is
        ``higher``."""
        return prot

    def printk_prot(self, pr: int, level: int) -> str:
        raise NotImplementedError

    # -- the x86 algorithm -------------------------------------------------------------

    def effective_prot(self, level: int, val: int) -> None:
        prot = self.flags(val)
        if level > 0:
            prot = self.combine(self.prot_levels[level - 1], prot)
        self.prot_levels[level] = prot

    def _next_marker_start(self) -> int | None:
        if self.marker + 1 < len(self.markers):
            return self.markers[self.marker + 1].start_address
        return None

    def note_page(self, addr: int, level: int, val: int) -> None:
        st = self.run
        new_prot = self.flags(val)
        new_eff = 0 if not val else self.prot_levels[level]
        nxt = self._next_marker_start()
        if st.level == -1:  # First entry
            if level == -1:
                return  # nothing was noted
            self.run = _Run(addr, new_prot, new_eff, level)
            self.lines.append(f"---[ {self.markers[self.marker].name} ]---")
            return
        flush = level == -1
        if (flush or new_prot != st.current_prot or new_eff != st.effective_prot
                or level != st.level or (nxt is not None and addr >= nxt)):
            end = addr if not flush else self.flush_address
            delta = (end - st.start_address) & self.k.ULONG_MASK
            unit = 0
            while not delta & 1023 and unit + 1 < len(UNITS) and delta:
                delta >>= 10
                unit += 1
            w = self.width
            self.lines.append(
                f"0x{st.start_address:0{w}x}-0x{end & self.k.ULONG_MASK:0{w}x}   "
                f"{delta:9d}{UNITS[unit]} " + self.printk_prot(st.current_prot, st.level)
            )
            # markers for special areas of the address space
            while nxt is not None and addr >= nxt and not flush:
                self.marker += 1
                self.lines.append(f"---[ {self.markers[self.marker].name} ]---")
                nxt = self._next_marker_start()
            self.run = _Run(addr, new_prot, new_eff, level)

    flush_address = 0
    """The end printed for the last run (the kernel passes 0: the top of the address
    space, wrapped)."""

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


class X86PgState(PgState):
    """x86: flag columns from the entry bits, as ``printk_prot`` prints them."""

    def combine(self, higher: int, prot: int) -> int:
        return (higher & prot & (_PAGE_USER | _PAGE_RW)) | ((higher | prot) & _PAGE_NX)

    def printk_prot(self, pr: int, level: int) -> str:
        name = LEVEL_NAMES[level] if 0 <= level < len(LEVEL_NAMES) else "???"
        if not pr & _PAGE_PRESENT:
            return " " * 30 + name  # Not present
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
        return out + name


class GenericPgState(PgState):
    """Any architecture: columns from the legacy PTE predicates applied to the leaf value
    (pmd/pud leaves share the PTE format on the architectures that have them)."""

    def _pred(self, name: str, val: int) -> bool | None:
        """``k.<name>(pte_t(val))``, or None where the architecture lacks the predicate."""
        fn = getattr(self.k, name, None)
        if fn is None:
            return None
        try:
            return bool(fn(pte_t(val)))
        except NotImplementedError:
            return None

    def printk_prot(self, pr: int, level: int) -> str:
        name = LEVEL_NAMES[level] if 0 <= level < len(LEVEL_NAMES) else "???"
        if not pr or not self._pred("pte_present", pr):
            return " " * 12 + name
        write = self._pred("pte_write", pr)
        exe = self._pred("pte_exec", pr)
        out = "RW " if write else "ro "
        out += "   " if exe is None else ("x  " if exe else "NX ")
        out += "huge " if level < 4 else "     "
        return out + " " + name


def pg_state_for(k: GenericKernel, ranges: list[ptdump_range],
                 markers: list[addr_marker]) -> PgState:
    """The architecture's listing state (x86 columns on x86, generic ones elsewhere)."""
    cls = X86PgState if k.config.family == "x86" else GenericPgState
    st = cls(k, ranges, markers)
    st.flush_address = ranges[-1].end if ranges else 0
    return st


__all__ = [
    "GenericPgState", "PgState", "X86PgState", "addr_marker", "pg_state_for", "ptdump_ops",
    "ptdump_range", "ptdump_state", "ptdump_walk_pgd",
]
