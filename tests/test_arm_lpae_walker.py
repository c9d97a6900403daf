"""The ARMv7 Long-descriptor walker (``arm-lpae`` hardware) against hand-built bytes.

Facts from the Arm ARM for ARMv7-A/R (DDI 0406C): B3.5 (TTBR0/TTBR1 selection by
TTBCR.T0SZ/T1SZ), B3.6.1-B3.6.2 (descriptor formats: table/block/page, AP[2:1], AF, XN,
PXN, APTable/XNTable/PXNTable, 40-bit output addresses), B3.6.6 (the start level from TnSZ).
Descriptor bits are spelled out here, not taken from the walker or from Linux.
"""

from __future__ import annotations

import pytest

from arches.arm.lpae import ARM_LPAE
from arches.arm.lpae_walker import LpaeWalker
from arches.config import Fault, Translation
from arches.errors import BadInput
from arches.memory import PhysMem

VALID, TABLE, AP1, AP2, AF = 1 << 0, 1 << 1, 1 << 6, 1 << 7, 1 << 10
PXN, XN, PXN_TABLE, XN_TABLE = 1 << 53, 1 << 54, 1 << 59, 1 << 60
AP_TABLE_NO_PL0, AP_TABLE_RO = 1 << 61, 1 << 62
PAGE = VALID | TABLE | AF  # a level-3 page descriptor, RW at PL1 only
BLOCK = VALID | AF  # a level-1/2 block descriptor
EAE = 1 << 31


class Machine:
    """Physical memory with a TTBR0 start table (32 bytes, 4 entries) and a TTBR1 level-2
    table; TTBCR as Linux sets it for VMSPLIT_3G (T0SZ = 0, T1SZ = 2)."""

    def __init__(self, t0sz: int = 0, t1sz: int = 2) -> None:
        self.mem = PhysMem(4096, "little", 40)
        self.l1 = self.mem.alloc_frame() + 64  # a 32-byte table inside a frame
        self.k2 = self.mem.alloc_frame()
        self.ttbcr = EAE | t1sz << 16 | t0sz

    def table(self) -> int:
        return self.mem.alloc_frame()

    def put(self, table: int, idx: int, desc: int) -> None:
        self.mem.write(table + 8 * idx, 8, desc)

    def regs(self) -> dict[str, int]:
        return {"ttbcr": self.ttbcr, "ttbr0": self.l1, "ttbr1": self.k2}

    def walk(self, va: int) -> Translation | Fault:
        return LpaeWalker().translate(self.mem, self.regs(), va)


def user_page(m: Machine, va: int, pa: int, desc: int) -> None:
    """L1[va] -> L2 -> L3[va] = ``pa | desc``."""
    l2, l3 = m.table(), m.table()
    m.put(m.l1, va >> 30 & 3, l2 | VALID | TABLE)
    m.put(l2, va >> 21 & 511, l3 | VALID | TABLE)
    m.put(l3, va >> 12 & 511, pa | desc)


def test_level_3_page_with_a_40_bit_output_address() -> None:
    m = Machine()
    user_page(m, 0x4020_3000, 0xAB_CDEF_1000, PAGE | AP1)
    t = m.walk(0x4020_3ABC)
    assert isinstance(t, Translation)
    assert (t.pa, t.size, t.level, t.user, t.writable, t.executable) == (
        0xAB_CDEF_1ABC, 4096, 2, True, True, True)


def test_ttbr1_serves_the_top_gib_and_starts_at_level_2() -> None:
    """T1SZ = 2: VAs from 2^32 - 2^30 use TTBR1, whose walk starts at level 2 (B3.6.6);
    TTBR0 (T0SZ = 0) keeps the rest, from a level-1 table of 4 entries."""
    m = Machine()
    m.put(m.k2, 0, 0x8000_0000 | BLOCK)  # L2 block: VA 0xC0000000 -> PA 0x80000000
    t = m.walk(0xC012_3456)
    assert isinstance(t, Translation)
    assert (t.pa, t.size, t.level) == (0x8012_3456, 1 << 21, 0)
    # the same index of the TTBR0 tables does not serve it
    m.put(m.l1, 3, 0x9000_0000 | BLOCK)
    t2 = m.walk(0xC012_3456)
    assert isinstance(t2, Translation) and t2.pa == 0x8012_3456
    assert isinstance(m.walk(0xBFFF_F000), Fault)  # TTBR0, L1[2] empty


def test_level_1_block_is_hardware_and_level_3_block_encoding_is_reserved() -> None:
    m = Machine()
    m.put(m.l1, 1, 0x1_4000_0000 | BLOCK | AP1)  # a 1G block (Linux never makes one)
    t = m.walk(0x4567_8000)
    assert isinstance(t, Translation) and (t.pa, t.size) == (0x1_4567_8000, 1 << 30)
    user_page(m, 0x8000_0000, 0x5000, VALID | AF | AP1)  # bits[1:0] = 0b01 at level 3
    f = m.walk(0x8000_0000)
    assert isinstance(f, Fault) and "reserved" in f.reason and f.level == 2


def test_invalid_descriptor_and_access_flag_fault() -> None:
    m = Machine()
    assert isinstance(m.walk(0x1000), Fault)
    user_page(m, 0x1000, 0x5000, VALID | TABLE | AP1)  # AF = 0
    f = m.walk(0x1000)
    assert isinstance(f, Fault) and "access flag" in f.reason


def test_address_bits_above_40_are_refused() -> None:
    m = Machine()
    user_page(m, 0x1000, 0x5000, PAGE | 1 << 40)
    f = m.walk(0x1000)
    assert isinstance(f, Fault) and "[47:40]" in f.reason


def test_ap_xn_pxn_in_the_leaf() -> None:
    """AP[2] read-only, AP[1] PL0; XN stops both levels, PXN only PL1: a user page with
    PXN (as every Linux user page) is executable by the user."""
    m = Machine()
    user_page(m, 0x1000, 0x5000, PAGE | AP1 | AP2 | PXN)
    t = m.walk(0x1000)
    assert isinstance(t, Translation) and (t.user, t.writable, t.executable) == (
        True, False, True)
    m2 = Machine()
    user_page(m2, 0x1000, 0x5000, PAGE | PXN)  # a PL1 page with PXN
    t2 = m2.walk(0x1000)
    assert isinstance(t2, Translation) and (t2.user, t2.executable) == (False, False)
    m3 = Machine()
    user_page(m3, 0x1000, 0x5000, PAGE | AP1 | XN)
    t3 = m3.walk(0x1000)
    assert isinstance(t3, Translation) and not t3.executable


def test_table_attributes_restrict_what_is_below() -> None:
    m = Machine()
    l2, l3 = m.table(), m.table()
    m.put(m.l1, 0, l2 | VALID | TABLE | AP_TABLE_RO | XN_TABLE)
    m.put(l2, 0, l3 | VALID | TABLE | AP_TABLE_NO_PL0)
    m.put(l3, 1, 0x5000 | PAGE | AP1)
    t = m.walk(0x1000)
    assert isinstance(t, Translation)
    assert (t.user, t.writable, t.executable) == (False, False, False)
    m2 = Machine()
    l2b, l3b = m2.table(), m2.table()
    m2.put(m2.l1, 0, l2b | VALID | TABLE | PXN_TABLE)
    m2.put(l2b, 0, l3b | VALID | TABLE)
    m2.put(l3b, 1, 0x5000 | PAGE | AP1)
    m2.put(l3b, 2, 0x6000 | PAGE)
    user, kern = m2.walk(0x1000), m2.walk(0x2000)
    assert isinstance(user, Translation) and user.executable  # PXNTable: PL1 only
    assert isinstance(kern, Translation) and not kern.executable


def test_gap_between_the_regions_and_epd() -> None:
    """T0SZ = T1SZ = 2: TTBR0 serves 0..1G, TTBR1 3G..4G; between is a Translation fault
    before any table is read.  EPD1 disables TTBR1 walks."""
    m = Machine(t0sz=2, t1sz=2)
    m.l1 = m.table()  # a level-2 start table: 4K aligned (BADDR[39:12])
    f = m.walk(0x8000_0000)
    assert isinstance(f, Fault) and f.level is None
    m.ttbcr |= 1 << 23
    f2 = m.walk(0xC000_0000)
    assert isinstance(f2, Fault) and "EPD1" in f2.reason


def test_registers_are_checked() -> None:
    m = Machine()
    with pytest.raises(BadInput, match="EAE = 0"):
        LpaeWalker().translate(m.mem, {**m.regs(), "ttbcr": 0}, 0)
    with pytest.raises(BadInput, match="32-byte aligned"):
        LpaeWalker().translate(m.mem, {**m.regs(), "ttbr0": m.l1 + 8}, 0)
    with pytest.raises(BadInput, match="missing"):
        LpaeWalker().translate(m.mem, {"ttbcr": m.ttbcr, "ttbr0": m.l1}, 0)
    with pytest.raises(BadInput, match="32 bits"):
        m.walk(1 << 32)


def test_leaves_walk_each_region_in_va_order_only() -> None:
    m = Machine()
    user_page(m, 0x4000_1000, 0x5000, PAGE | AP1)
    m.put(m.l1, 3, 0x9000_0000 | BLOCK)  # slot 3 of TTBR0: outside its region
    m.put(m.k2, 5, 0x8000_0000 | BLOCK)
    got = [(t.va, t.pa, t.size) for t in LpaeWalker().leaves(m.mem, m.regs())]
    assert got == [(0x4000_1000, 0x5000, 4096), (0xC0A0_0000, 0x8000_0000, 1 << 21)]


def test_structure_matches_the_registers_linux_loads() -> None:
    regs = ARM_LPAE.make_registers(0x1000_0040, 0x2000_0000)
    assert regs["ttbr1"] == 0x2000_0000 + 4096 * 4  # TTBR1_OFFSET: pgd + 3 pmds
    assert regs["ttbcr"] & 7 == 0 and regs["ttbcr"] >> 16 & 7 == 2 and regs["ttbcr"] >> 31
    walks = LpaeWalker().structure(regs)
    # TTBR0 reaches slots 0-2 of its 4-entry table: two aligned runs; slot 3 is not walked
    assert [(w.register, w.table, w.va_base, [lv.entries for lv in w.levels])
            for w in walks] == [("ttbr0", 0x1000_0040, 0, [2, 512, 512]),
                                ("ttbr0", 0x1000_0050, 0x8000_0000, [1, 512, 512]),
                                ("ttbr1", 0x2000_4000, 0xC000_0000, [512, 512])]
    with pytest.raises(BadInput):
        ARM_LPAE.make_registers(0x1000_0010, 0x2000_0000)  # not 32-byte aligned
