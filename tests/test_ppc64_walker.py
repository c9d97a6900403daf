"""The radix walker (``arches/ppc64/walker.py``) on hand-built, big-endian tables.

Every expectation is a rule of the Power ISA v3.0B, Book III "Storage Control" ("Radix Tree
Translation", "Process Table", "Radix Tree Page Directory Entry", "Radix Tree Page Table
Entry", "Storage Protection"); the Linux encodings of :mod:`arches.ppc64.bits` are used only
where a test says what the hardware makes of an entry Linux writes
(``arch/powerpc/include/asm/book3s/64/pgtable.h``, ``radix.h``).
"""

from __future__ import annotations

import pytest

from arches.config import Fault, Translation
from arches.errors import BadInput
from arches.memory import PhysMem
from arches.ppc64 import PPC64_RADIX_4K, PPC64_RADIX_64K
from arches.ppc64 import bits as L
from arches.ppc64.registers import RadixRegisters
from arches.ppc64.walker import RadixWalker
from arches.tlb import LEAF, NONE, PERM_U, PERM_W, TABLE

V, LEAFBIT = 1 << 63, 1 << 62
PRIV, READ, RW, EXEC = 8, 4, 2, 1
R, C = 1 << 8, 1 << 7


def table(mem: PhysMem, nbits: int) -> int:
    """A zeroed table of 2^nbits entries, aligned to its size (frames come in order)."""
    size = 8 << nbits
    while True:
        base = mem.alloc_frame()
        if base % max(size, mem.frame_size) == 0:
            break
    for _ in range(1, size // mem.frame_size):
        mem.alloc_frame()
    return base


class Tree:
    """A 4-level 52-bit tree like Linux's (13/9/9/pte_bits), built entry by entry."""

    def __init__(self, page_shift: int = 12) -> None:
        self.mem = PhysMem(1 << page_shift, "big", 56)
        self.ps = page_shift
        self.pte_bits = 9 if page_shift == 12 else 5
        self.walker = RadixWalker((13, 9, 9, self.pte_bits), page_shift)
        self.user = table(self.mem, 13)
        self.kernel = table(self.mem, 13)
        self.regs = RadixRegisters()(self.user, self.kernel)

    def shifts(self) -> tuple[int, int, int, int]:
        p = self.ps + self.pte_bits
        return p + 18, p + 9, p, self.ps

    def map(self, va: int, pa: int, level: int, eaa: int, root: int | None = None,
            extra: int = R | C) -> int:
        """Map ``va`` with a leaf at ``level`` (0 = root ... 3 = PT); returns the leaf's PA."""
        t = self.user if root is None else root
        bits = (13, 9, 9, self.pte_bits)
        for lv in range(level):
            idx = va >> self.shifts()[lv] & ((1 << bits[lv]) - 1)
            e = self.mem.read(t + 8 * idx, 8)
            if not e & V:
                nt = table(self.mem, bits[lv + 1])
                self.mem.write(t + 8 * idx, 8, V | nt | bits[lv + 1])
                e = self.mem.read(t + 8 * idx, 8)
            t = e & 0x0FFF_FFFF_FFFF_FF00
        idx = va >> self.shifts()[level] & ((1 << bits[level]) - 1)
        self.mem.write(t + 8 * idx, 8, V | LEAFBIT | pa | extra | eaa)
        return t + 8 * idx

    def tr(self, va: int) -> Translation | Fault:
        return self.walker.translate(self.mem, self.regs, va)


def test_entries_are_read_big_endian() -> None:
    t = Tree()
    slot = t.map(0x1234000, 0x5000_0000, 3, RW | READ)
    raw = t.mem.read_bytes(slot, 8)
    assert raw[0] & 0x80 and raw[0] & 0x40  # V and L are the first byte in storage
    got = t.tr(0x1234ABC)
    assert isinstance(got, Translation) and got.pa == 0x5000_0ABC and got.size == 4096


def test_4k_leaf_levels_and_sizes() -> None:
    t = Tree()
    t.map(0x4000_0000, 0x8000_0000, 1, READ)  # 1G
    t.map(0x20_0000, 0x60_0000, 2, READ | RW)  # 2M
    g = t.tr(0x4123_4567)
    m = t.tr(0x2F_FFFF)
    assert isinstance(g, Translation) and (g.size, g.pa, g.level) == (1 << 30, 0x8123_4567, 1)
    assert isinstance(m, Translation) and (m.size, m.pa, m.writable) == (1 << 21, 0x6F_FFFF,
                                                                           True)


def test_64k_page_table_has_32_entries() -> None:
    t = Tree(16)
    t.map(0x1_0000 * 33, 0x7_0000, 3, READ)  # index 1 of the second PT
    got = t.tr(0x1_0000 * 33 + 0x1234)
    assert isinstance(got, Translation) and (got.size, got.pa) == (1 << 16, 0x7_1234)


def test_leaf_at_root_is_unsupported_page_size() -> None:
    t = Tree()
    t.map(0x80_0000_0000, 0, 0, READ)  # 512G: not a POWER9/10 page size
    got = t.tr(0x80_0000_0000)
    assert isinstance(got, Fault) and "page size" in got.reason


def test_misaligned_rpn_faults() -> None:
    t = Tree()
    t.map(0x20_0000, 0x60_1000, 2, READ)
    got = t.tr(0x20_0000)
    assert isinstance(got, Fault) and "aligned" in got.reason


def test_invalid_and_bad_nls() -> None:
    t = Tree()
    assert isinstance(t.tr(0x1000), Fault)
    # A PDE whose NLS is below 5 is not a valid tree.
    t.mem.write(t.user, 8, V | table(t.mem, 9) | 4)
    got = t.tr(0x1000)
    assert isinstance(got, Fault) and "directory" in got.reason


def test_nls_is_honoured_not_assumed() -> None:
    """A PT of 2^5 entries under a 4K tree: the walk consumes 5 bits there and ends on a
    64K-sized remainder (16 bits) -- which is a supported page size."""
    t = Tree()
    pd2 = table(t.mem, 9)
    pd1 = table(t.mem, 9)
    pt = table(t.mem, 5)
    t.mem.write(t.user, 8, V | pd1 | 9)
    t.mem.write(pd1, 8, V | pd2 | 9)
    t.mem.write(pd2, 8, V | pt | 5)
    t.mem.write(pt + 8 * 3, 8, V | LEAFBIT | 0x9_0000 | READ | R | C)
    got = t.tr(3 << 16 | 0x42)
    assert isinstance(got, Translation) and (got.size, got.pa) == (1 << 16, 0x9_0042)


def test_quadrants_and_segment_check() -> None:
    t = Tree()
    t.map(0x1000, 0x2000, 3, READ)
    t.map(0x1000, 0x3000, 3, READ | PRIV, root=t.kernel)
    u = t.tr(0x1000)
    k = t.tr(0xC000_0000_0000_1000)
    assert isinstance(u, Translation) and u.pa == 0x2000 and u.user
    assert isinstance(k, Translation) and k.pa == 0x3000 and not k.user
    assert isinstance(t.tr(0x4000_0000_0000_1000), Fault)  # quadrant 1
    seg = t.tr(1 << 52 | 0x1000)  # EA bit 52 set: outside the 52-bit tree
    assert isinstance(seg, Fault) and "segment" in seg.reason


def test_eaa_permissions_and_prot_none() -> None:
    t = Tree()
    t.map(0x1000, 0x1000, 3, READ)
    t.map(0x2000, 0x2000, 3, RW)  # read/write alone grants read too
    t.map(0x3000, 0x3000, 3, EXEC | READ)
    t.map(0x4000, 0x4000, 3, PRIV)  # Linux PAGE_NONE: valid, no access
    a, b, c = t.tr(0x1000), t.tr(0x2000), t.tr(0x3000)
    assert isinstance(a, Translation) and a.prot == "r"
    assert isinstance(b, Translation) and b.prot == "rw"
    assert isinstance(c, Translation) and c.prot == "rx"
    none = t.tr(0x4000)
    assert isinstance(none, Fault) and "no access" in none.reason
    assert [x.va for x in t.walker.leaves(t.mem, t.regs)] == [0x1000, 0x2000, 0x3000]


def test_linux_page_none_translates_nothing() -> None:
    """Linux's PAGE_NONE (radix) is V | L | R | privileged with no EAA right: any access
    faults, so the TLB model counts it as no translation (as ``leaves`` does), while a
    privileged read-only leaf keeps its rights minus U and W."""
    t = Tree()
    slot = t.map(0x5000, 0x5000, 3, 0, extra=0)
    t.mem.write(slot, 8, L._PAGE_PRESENT | L._PAGE_PTE | 0x5000 | L._PAGE_ACCESSED
                | L._PAGE_PRIVILEGED)
    walk = t.walker.structure(t.regs)[0]
    assert walk.decode(3, t.mem.read(slot, 8)).kind == NONE
    view = walk.decode(3, t.mem.read(slot, 8) | L._PAGE_READ)
    assert view.kind == LEAF and not view.perms & (PERM_U | PERM_W)
    assert walk.decode(0, V | 0x10000 | 9).kind == TABLE
    assert walk.decode(0, V | 0x10000 | 5).kind != TABLE  # NLS disagrees with Linux's PD1


def test_registers_and_bad_roots() -> None:
    regs = RadixRegisters()(0x10000, 0x20000)
    assert regs["prte_pidr"] == L.RTS_FIELD | 0x10000 | 13 and regs["pidr"] == 1
    assert regs["prte_0"] & 0x0FFF_FFFF_FFFF_FF00 == 0x20000
    with pytest.raises(BadInput):
        RadixRegisters()(0x1000, 0x20000)  # a 64 KiB root must be 64 KiB aligned
    w = RadixWalker((13, 9, 9, 9), 12)
    with pytest.raises(BadInput):
        w.trees({**regs, "lpidr": 1})


def test_configs() -> None:
    for c, pte in ((PPC64_RADIX_4K, 512), (PPC64_RADIX_64K, 32)):
        assert [lv.entries for lv in c.hw_levels] == [8192, 512, 512, pte]
        assert c.endianness == "big" and c.leaf_sizes[1:] == (1 << 21, 1 << 30)
