"""Sv32, Sv39, Sv48 and Sv57 address translation, written from the RISC-V privileged
specification (Volume II, "Supervisor-Level ISA": "Sv32: Page-Based 32-bit Virtual-Memory
Systems" and its "Virtual Address Translation Process", "Sv39", "Sv48", "Sv57"; the
"Svnapot", "Svpbmt" and "Svadu" extension chapters).

Names here are the specification's (``satp.MODE``/``ASID``/``PPN``, PTE fields V, R, W, X,
U, G, A, D, RSW, PPN[i], PBMT, N; ``menvcfg.ADUE``); nothing is shared with the Linux names of
:mod:`arches.riscv.bits`.

The walk of one address, as the specification's algorithm has it (``LEVELS`` = 2, 3, 4, 5):

1. ``a = satp.ppn * PAGESIZE``, ``i = LEVELS - 1``; on RV64 the VA bits above the top VPN
   must all equal the highest translated bit, else a page fault (no table is read).
2. ``pte = a + va.vpn[i] * PTESIZE``.
3. ``pte.v = 0``, or ``pte.r = 0`` and ``pte.w = 1`` (reserved: W without R), or a reserved
   bit or encoding set: page fault.  Reserved here: bits 60:54; PBMT (62:61) = 3, and PBMT in
   a non-leaf PTE; N in a non-leaf PTE, N in a leaf above level 0, and any N = 1 leaf whose
   ``ppn[3:0]`` is not ``1000`` (Svnapot defines only the 64 KiB size); D, A and U in a
   non-leaf PTE ("reserved for future standard use"; the algorithm's step 3 makes any such
   bit a page fault).
4. ``R = X = 0``: a pointer to the next level; at ``i = 0`` a page fault.
5. A leaf: its R/W/X/U are the access rights (this walker reports them; it simulates no
   access).
6. ``i > 0`` and ``pte.ppn[i-1:0] != 0``: a misaligned superpage, page fault.
7. ``pte.a = 0`` (or a store with ``pte.d = 0``): with ``menvcfg.ADUE = 1`` (Svadu) the
   hardware sets the bits and the access proceeds; with ``ADUE = 0`` (Svade) it is a page
   fault.  Reported as a fault (A = 0) or as not writable (D = 0) when ADUE = 0.
8. The physical address: the PTE's PPN above level ``i``, the VA's VPN below it (and, for a
   NAPOT PTE, ``va.vpn[0][3:0]`` in place of ``ppn[3:0]``).

Not modelled: SUM/MXR (a result says which mode the page is for, not what S-mode may do to
a U page), Sv64, the hypervisor's G-stage, Zicfiss shadow-stack pages (W without R stays
reserved, as with ``menvcfg.SSE = 0``).  A valid PTE that points at memory which is not an
allocated frame makes the walk raise :class:`~arches.errors.PhysMemError`.
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

# PTE fields (the specification's names).
V = 1 << 0
R = 1 << 1
W = 1 << 2
X = 1 << 3
U = 1 << 4
G = 1 << 5
A = 1 << 6
D = 1 << 7
PPN_SHIFT = 10
RSVD_54_60 = ((1 << 61) - 1) & ~((1 << 54) - 1)
"""Sv39/48/57 bits 60:54: "reserved for future standard use"."""
PBMT_SHIFT = 61
PBMT_MASK = 3 << PBMT_SHIFT
N = 1 << 63

# satp (RV64: MODE[63:60], ASID[59:44], PPN[43:0]; RV32: MODE[31], ASID[30:22], PPN[21:0]).
SATP64_MODE_SHIFT = 60
SATP64_PPN = (1 << 44) - 1
SATP32_MODE = 1 << 31
SATP32_PPN = (1 << 22) - 1
MODE_BARE = 0
MODE_SV32 = 1
MODE_SV39 = 8
MODE_SV48 = 9
MODE_SV57 = 10
MENVCFG_ADUE = 1 << 61
"""Svadu: hardware updating of PTE A/D bits enabled."""

LEVELS = {MODE_SV39: 3, MODE_SV48: 4, MODE_SV57: 5}
MODE_NAMES = {MODE_SV32: "Sv32", MODE_SV39: "Sv39", MODE_SV48: "Sv48", MODE_SV57: "Sv57"}

FAULTS = (
    "page fault: V = 0",
    "page fault: W = 1 with R = 0 is reserved",
    "page fault: reserved PTE bits set",
    "page fault: non-leaf PTE at level 0",
    "page fault: misaligned superpage",
    "page fault: A = 0 and menvcfg.ADUE = 0 (Svade)",
)
"""Why the walk of one PTE stops short of a translation (the algorithm's steps 3, 4, 6, 7)."""



@dataclass(frozen=True)
class SvParams:
    """What ``satp`` and ``menvcfg`` select: the root table, the mode and A/D updating."""

    root: int
    levels: int
    adue: bool


class SvWalker(RunsOfLeaves):
    """One Sv mode's walker: ``mode`` is ``satp.MODE`` (1 = Sv32 on RV32; 8, 9, 10 on RV64).

    ``setup`` refuses a ``satp`` selecting another mode (Bare included) than the
    configuration's."""

    def __init__(self, mode: int) -> None:
        if mode != MODE_SV32 and mode not in LEVELS:
            raise ValueError(f"satp.MODE {mode} is not Sv32/39/48/57")
        self.mode = mode
        self.rv32 = mode == MODE_SV32
        self.word_bits = 32 if self.rv32 else 64
        self.nlevels = 2 if self.rv32 else LEVELS[mode]
        self.pte_size = 4 if self.rv32 else 8
        self.vpn_bits = 10 if self.rv32 else 9
        self.va_bits = 32 if self.rv32 else 12 + 9 * self.nlevels
        self.ppn_mask = ((1 << 22) - 1) if self.rv32 else ((1 << 44) - 1)

    def __repr__(self) -> str:
        return f"SvWalker(mode={self.mode})"

    # -- registers ----------------------------------------------------------------------

    def setup(self, regs: Mapping[str, int]) -> SvParams:
        satp = reg(regs, "satp")
        if self.rv32:
            mode = MODE_SV32 if satp & SATP32_MODE else MODE_BARE
            ppn = satp & SATP32_PPN
        else:
            mode = satp >> SATP64_MODE_SHIFT & 0xF
            ppn = satp & SATP64_PPN
        if mode != self.mode:
            got = MODE_NAMES.get(mode, "Bare" if mode == MODE_BARE else f"reserved {mode}")
            raise BadInput(f"satp {satp:#x} selects {got}; this configuration is "
                           f"{MODE_NAMES[self.mode]}")
        adue = bool(regs.get("menvcfg", 0) & MENVCFG_ADUE)
        return SvParams(ppn << 12, self.nlevels, adue)

    # -- levels -----------------------------------------------------------------------------

    def shift(self, i: int) -> int:
        """Lowest VA bit of ``vpn[i]``."""
        return 12 + self.vpn_bits * i

    def entries(self) -> int:
        return 1 << self.vpn_bits

    def canonical(self, va: int) -> bool:
        """RV64: bits 63:va_bits all equal bit va_bits - 1."""
        if self.rv32:
            return True
        top = va >> (self.va_bits - 1)
        return top in (0, (1 << (64 - self.va_bits + 1)) - 1)

    def sign_extend(self, va: int) -> int:
        if self.rv32 or not va >> (self.va_bits - 1) & 1:
            return va
        return va | (((1 << 64) - 1) & ~((1 << self.va_bits) - 1))

    # -- one PTE ------------------------------------------------------------------------------

    def decode(self, i: int, pte: int, adue: bool = True) -> tuple[str, int]:
        """('table', next table PA) / ('leaf', output base PA) / ('fault', index into
        FAULTS) for a PTE found at level ``i``."""
        if not pte & V:
            return "fault", 0
        if pte & W and not pte & R:
            return "fault", 1
        leaf = bool(pte & (R | X))
        if not self.rv32:
            if pte & RSVD_54_60 or (pte & PBMT_MASK) == PBMT_MASK:
                return "fault", 2
            if not leaf and pte & (PBMT_MASK | N):
                return "fault", 2
        if not leaf:
            if pte & (D | A | U):
                return "fault", 2
            if i == 0:
                return "fault", 3
            return "table", (pte >> PPN_SHIFT & self.ppn_mask) << 12
        ppn = pte >> PPN_SHIFT & self.ppn_mask
        if not self.rv32 and pte & N:
            if i != 0 or ppn & 0xF != 0b1000:
                return "fault", 2
            ppn &= ~0xF
        if i and ppn & ((1 << (self.vpn_bits * i)) - 1):
            return "fault", 4
        if not pte & A and not adue:
            return "fault", 5
        return "leaf", ppn << 12

    def leaf_size(self, i: int, pte: int) -> int:
        if not self.rv32 and pte & N:
            return 1 << 16
        return 1 << self.shift(i)

    def _translation(self, pte: int, va: int, base: int, size: int, level: int,
                     adue: bool) -> Translation:
        writable = bool(pte & W) and (adue or bool(pte & D))
        return Translation(va, base + (va & (size - 1)), size, level, writable,
                           bool(pte & X), bool(pte & U))

    # -- one address ----------------------------------------------------------------------

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        if not 0 <= va < 1 << self.word_bits:
            raise BadInput(f"virtual address {va:#x} does not fit in {self.word_bits} bits")
        sp = self.setup(regs)
        if not self.canonical(va):
            return Fault(va, f"page fault: VA bits 63:{self.va_bits} differ from bit "
                             f"{self.va_bits - 1}")
        a = sp.root
        for n, i in enumerate(range(self.nlevels - 1, -1, -1)):
            idx = va >> self.shift(i) & (self.entries() - 1)
            pte = mem.read(a + idx * self.pte_size, self.pte_size)
            kind, value = self.decode(i, pte, sp.adue)
            if kind == "fault":
                return Fault(va, f"{FAULTS[value]} (level {i})", n)
            if kind == "table":
                a = value
                continue
            size = self.leaf_size(i, pte)
            return self._translation(pte, va, value, size, n, sp.adue)
        raise AssertionError("level 0 PTEs are leaves or faults")

    # -- structure (for the TLB) ----------------------------------------------------------

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """The walk from ``satp`` as the TLB model sees it: one root, ``LEVELS`` levels of
        ``PAGESIZE / PTESIZE`` PTEs, and one PTE's decoding (a PTE the walk would fault on
        translates nothing).  A and D do not change what is cached: the TLB model treats
        the A/D state as the hardware's (Svadu) business.  A leaf's rights: W, X (S-mode or
        U-mode execution by U), U.  Non-leaf PTEs carry no rights (U/A/D are reserved)."""
        sp = self.setup(regs)
        top = self.nlevels - 1

        def view(n: int, pte: int) -> EntryView:
            kind, value = self.decode(top - n, pte, True)
            if kind == "fault":
                return INVALID
            if kind == "table":
                return EntryView(TABLE, value, PERM_ALL)
            perms = PERM_ALL
            if not pte & W:
                perms &= ~PERM_W
            if not pte & X:
                perms &= ~(PERM_X | PERM_UX)
            if not pte & U:
                perms &= ~PERM_U
            return EntryView(LEAF, value, perms)

        names = ("L0", "L1", "L2", "L3", "L4")
        shapes = tuple(LevelShape(f"{names[i]}", self.shift(i), self.entries(),
                                  self.pte_size) for i in range(top, -1, -1))
        return (RootWalk("satp", sp.root, 0, shapes, view, self.sign_extend),)

    # -- every leaf -----------------------------------------------------------------------

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every leaf that translates, in ascending (sign-extended) VA order, one per PTE
        (a NAPOT PTE is reported with its 64 KiB size and base)."""
        sp = self.setup(regs)
        codec = struct.Struct(("<" if mem.byteorder == "little" else ">") + str(self.entries())
                              + ("I" if self.rv32 else "Q"))
        # Depth first with an explicit stack of table iterators (a recursive generator
        # would pass each leaf up through one frame per level).
        nbytes = self.entries() * self.pte_size
        zeros = bytes(nbytes)

        def entries(table: int) -> Iterator[tuple[int, int]]:
            data = mem.read_bytes(table, nbytes)
            if data == zeros:  # no PTE with V set (Linux preallocates 64 such vmalloc tables)
                return iter(())
            return enumerate(codec.unpack(data))

        stack = [(self.nlevels - 1, 0, entries(sp.root))]
        while stack:
            i, va_base, it = stack[-1]
            n = self.nlevels - 1 - i
            shift = self.shift(i)
            for idx, pte in it:
                if not pte & V:
                    continue
                kind, value = self.decode(i, pte, sp.adue)
                va = va_base | idx << shift
                if kind == "table":
                    stack.append((i - 1, va, entries(value)))
                    break
                if kind == "leaf":
                    size = self.leaf_size(i, pte)
                    va = self.sign_extend(va & ~(size - 1))
                    yield self._translation(pte, va, value, size, n, sp.adue)
            else:
                stack.pop()
