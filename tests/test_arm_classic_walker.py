"""The ``arm`` hardware: the Short-descriptor walker (:mod:`arches.arm.short`) on hand-built
tables, each case from the ARM ARM (ARMv7-A/R, DDI 0406C): B3.5.1 descriptor formats,
B3.5.4 TTBCR.N, B3.7.1 AP[2:0], B3.7.2 XN/PXN, B3.7.3 domains.  The same tables are run
through Unicorn's Cortex-A15 in ``tests/test_arm_classic_unicorn.py``.
"""

from __future__ import annotations

import pytest

from arches.arm import ARM
from arches.arm.short import ShortWalker
from arches.config import Fault, Translation
from arches.errors import BadInput
from arches.memory import PhysMem
from arches.tlb import INVALID, LEAF, PERM_U, PERM_UX, PERM_W, PERM_X, TABLE

# descriptor fields, from the manual
SECT = 0b10
PAGE_TABLE = 0b01
SMALL = 0b10
LARGE = 0b01


def ap_sect(ap: int) -> int:
    """AP[2:0] of a section: AP[1:0] in bits 11:10, AP[2] in bit 15."""
    return ((ap & 3) << 10) | ((ap >> 2) << 15)


def ap_page(ap: int) -> int:
    """AP[2:0] of a small/large page: AP[1:0] in bits 5:4, AP[2] in bit 9."""
    return ((ap & 3) << 4) | ((ap >> 2) << 9)


def domain(d: int) -> int:
    return d << 5


class Tables:
    """A first-level table (16 KiB, 16 KiB aligned) and second-level tables in one page."""

    def __init__(self, n: int = 0) -> None:
        self.mem = PhysMem(4096, "little", 32)
        self.l1 = self.mem.alloc_frames(2)
        self.l1b = self.mem.alloc_frames(2) if n else self.l1
        self.l2page = self.mem.alloc_frame()
        self.n = n
        self.regs = {"sctlr": 0x10C03C7D, "ttbcr": n, "ttbr0": self.l1 | 0x6A,
                     "ttbr1": self.l1b | 0x6A, "dacr": 0x55, "contextidr": 0}

    def l1_entry(self, va: int, desc: int, *, ttbr1: bool = False) -> None:
        base = self.l1b if ttbr1 else self.l1
        self.mem.write(base + 4 * (va >> 20), 4, desc)

    def table(self, va: int, which: int, extra: int = 0) -> int:
        """Hang second-level table ``which`` (0..3, 1 KiB each) under ``va``'s entry."""
        t = self.l2page + 1024 * which
        self.l1_entry(va, t | PAGE_TABLE | extra)
        return t

    def l2_entry(self, table: int, va: int, desc: int) -> None:
        self.mem.write(table + 4 * ((va >> 12) & 0xFF), 4, desc)

    def walk(self, va: int) -> Translation | Fault:
        return ShortWalker().translate(self.mem, self.regs, va)


def test_small_pages_and_ap_encodings() -> None:
    """Table B3-8 (SCTLR.AFE = 0): 000 no access, 001 PL1 RW, 010 PL1 RW/PL0 RO, 011 RW,
    100 reserved, 101 PL1 RO, 110 and 111 RO."""
    t = Tables()
    tab = t.table(0x0040_0000, 0, domain(1))
    for ap in range(8):
        t.l2_entry(tab, 0x0040_0000 + ap * 0x1000, 0x1000_0000 + ap * 0x1000 | SMALL | ap_page(ap))
    got = {ap: t.walk(0x0040_0000 + ap * 0x1000 + 0x123) for ap in range(8)}
    for ap in (0b000, 0b100):
        assert isinstance(got[ap], Fault), ap
    assert "reserved" in got[0b100].reason  # type: ignore[union-attr]
    want = {0b001: (True, False), 0b010: (False, True), 0b011: (True, True),
            0b101: (False, False), 0b110: (False, True), 0b111: (False, True)}
    for ap, (writable, user) in want.items():
        r = got[ap]
        assert isinstance(r, Translation), ap
        assert (r.pa, r.size, r.level) == (0x1000_0000 + ap * 0x1000 + 0x123, 4096, 1)
        # writable: the owner's right -- PL0 for a page PL0 may read, else PL1
        assert (r.writable, r.user) == (writable, user), ap


def test_xn_pxn_and_pxntable() -> None:
    """XN forbids execution at every level, PXN (of a section, or PXNTable of the page
    table descriptor) only at PL1; a user page's executability is PL0's."""
    t = Tables()
    plain = t.table(0x0010_0000, 0, domain(0))
    pxnt = t.table(0x0020_0000, 1, domain(0) | (1 << 2))  # PXNTable
    t.l2_entry(plain, 0x0010_0000, 0x2000_0000 | SMALL | ap_page(0b001))
    t.l2_entry(plain, 0x0010_1000, 0x2000_1000 | SMALL | ap_page(0b001) | 1)  # XN
    t.l2_entry(pxnt, 0x0020_0000, 0x2000_2000 | SMALL | ap_page(0b001))
    t.l2_entry(pxnt, 0x0020_1000, 0x2000_3000 | SMALL | ap_page(0b011))
    t.l1_entry(0x0030_0000, 0x3000_0000 | SECT | ap_sect(0b001))
    t.l1_entry(0x0040_0000, 0x3010_0000 | 0b11 | ap_sect(0b001))  # section with PXN
    t.l1_entry(0x0050_0000, 0x3020_0000 | SECT | ap_sect(0b011) | 1)  # PXN, user page
    ex = {va: getattr(t.walk(va), "executable", None)
          for va in (0x0010_0000, 0x0010_1000, 0x0020_0000, 0x0020_1000, 0x0030_0000,
                     0x0040_0000, 0x0050_0000)}
    assert ex == {0x0010_0000: True, 0x0010_1000: False, 0x0020_0000: False,
                  0x0020_1000: True, 0x0030_0000: True, 0x0040_0000: False,
                  0x0050_0000: True}


def test_sections_supersections_and_large_pages() -> None:
    t = Tables()
    t.l1_entry(0x0060_0000, 0x4560_0000 | SECT | ap_sect(0b011))
    for i in range(16):  # a supersection is 16 identical descriptors
        t.l1_entry(0x0100_0000 + (i << 20), 0x7F00_0000 | SECT | (1 << 18) | ap_sect(0b001))
    tab = t.table(0x0200_0000, 2)
    for i in range(16):
        t.l2_entry(tab, 0x0201_0000 + (i << 12), 0x5550_0000 | LARGE | ap_page(0b011) | 1 << 15)
    sect = t.walk(0x0065_4321)
    assert isinstance(sect, Translation)
    assert (sect.pa, sect.size, sect.level) == (0x4565_4321, 1 << 20, 0)
    sup = t.walk(0x01AB_CDEF)
    assert isinstance(sup, Translation)
    assert (sup.pa, sup.size, sup.user) == (0x7FAB_CDEF, 1 << 24, False)
    large = t.walk(0x0201_ABCD)
    assert isinstance(large, Translation)
    assert (large.pa, large.size, large.executable) == (0x5550_ABCD, 1 << 16, False)
    leaves = list(ShortWalker().leaves(t.mem, t.regs))
    assert [(x.va, x.size) for x in leaves] == (
        [(0x0060_0000, 1 << 20)] + [(0x0100_0000, 1 << 24)] * 16 + [(0x0201_0000, 1 << 16)] * 16)
    assert [x.va for x in leaves] == sorted(x.va for x in leaves)


def test_domains() -> None:
    """DACR 00 (no access) is a Domain fault whatever AP says; 11 (manager) skips the
    permission checks; a supersection is always domain 0."""
    t = Tables()
    t.l1_entry(0x0070_0000, 0x1070_0000 | SECT | ap_sect(0b000) | domain(5))
    t.l1_entry(0x0080_0000, 0x1080_0000 | SECT | ap_sect(0b011) | domain(6))
    t.regs["dacr"] = 0x55 | 3 << (2 * 5)  # domain 5 manager, domain 6 no access
    mgr = t.walk(0x0070_0000)
    assert isinstance(mgr, Translation)
    assert (mgr.writable, mgr.user, mgr.executable) == (True, True, True)
    no = t.walk(0x0080_0000)
    assert isinstance(no, Fault) and "Domain fault" in no.reason
    t.regs["dacr"] = 0x55
    assert isinstance(t.walk(0x0070_0000), Fault)  # client: AP = 000 is no access


def test_ttbcr_n_splits_ttbr0_and_ttbr1() -> None:
    """N = 1: VA[31] = 0 walks TTBR0's 8 KiB table, VA[31] = 1 TTBR1's; PD1 disables the
    TTBR1 walks."""
    t = Tables(n=1)
    t.l1_entry(0x8000_0000, 0x1110_0000 | SECT | ap_sect(0b001), ttbr1=True)
    t.l1_entry(0x0000_0000, 0x1220_0000 | SECT | ap_sect(0b001))
    t.l1_entry(0x8000_0000, 0x1330_0000 | SECT | ap_sect(0b001))  # TTBR0's table: unused
    hi, lo = t.walk(0x8000_0010), t.walk(0x10)
    assert isinstance(hi, Translation) and hi.pa == 0x1110_0010
    assert isinstance(lo, Translation) and lo.pa == 0x1220_0010
    t.regs["ttbcr"] = 1 | 1 << 5
    assert isinstance(t.walk(0x8000_0010), Fault)
    walks = ShortWalker().structure(t.regs)
    assert [w.register for w in walks] == ["ttbr0"]
    assert walks[0].levels[0].entries == 2048


def test_structure_views() -> None:
    """The TLB's decoding: PXNTable takes PL1 execution from everything below; a page table
    in a no-access domain translates nothing; rights of a leaf."""
    t = Tables()
    walks = ShortWalker().structure(t.regs)
    (w,) = walks
    assert (w.register, w.table, [lv.entries for lv in w.levels]) == ("ttbr0", t.l1, [4096, 256])
    v = w.decode(0, 0x0010_4800 | PAGE_TABLE | domain(1) | 1 << 2)
    assert v.kind == TABLE and v.target == 0x0010_4800 and not v.perms & PERM_X
    t.regs["dacr"] = 0x55 & ~(3 << 2)
    w2 = ShortWalker().structure(t.regs)[0]
    assert w2.decode(0, 0x0010_4800 | PAGE_TABLE | domain(1)) == INVALID
    leaf = w.decode(1, 0x1234_5000 | SMALL | ap_page(0b111) | 1)
    assert leaf.kind == LEAF and leaf.target == 0x1234_5000
    assert leaf.perms == PERM_U  # read-only, XN: no W, X or UX
    rw = w.decode(1, 0x1234_5000 | SMALL | ap_page(0b011))
    assert rw.perms == PERM_W | PERM_X | PERM_UX | PERM_U
    assert w.decode(1, 0) == INVALID and w.decode(0, 0) == INVALID


def test_register_checks() -> None:
    regs = ARM.make_registers(0x0100_0000, 0x0100_0000)
    assert regs["ttbr0"] == 0x0100_006A and regs["ttbcr"] == 0 and regs["dacr"] == 0x55
    with pytest.raises(BadInput, match="16 KiB aligned"):
        ARM.make_registers(0x0100_1000, 0x0100_1000)
    with pytest.raises(BadInput, match="one root"):
        ARM.make_registers(0x0100_0000, 0x0200_0000)
    t = Tables()
    with pytest.raises(BadInput, match="Long-descriptor"):
        ShortWalker().translate(t.mem, {**t.regs, "ttbcr": 1 << 31}, 0)
    with pytest.raises(BadInput, match="MMU off"):
        ShortWalker().translate(t.mem, {**t.regs, "sctlr": 0}, 0)
    with pytest.raises(BadInput, match="missing"):
        ShortWalker().translate(t.mem, {"sctlr": 1}, 0)
