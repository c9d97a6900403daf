"""The x86 hardware walkers against page tables written by hand from the Intel SDM.

Entry values are built here from the SDM bit layout (Vol. 3A Tables 4-4..4-19) with the
constants below; nothing from ``legacy``/``unified`` (or from ``arches.x86.bits``) is used to
build tables or expected values.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arches import CONFIGS
from arches.config import ArchConfig, Fault, Translation
from arches.errors import BadInput, PhysMemError
from arches.memory import PhysMem
from arches.x86.walkcore import entry_view
from arches.x86.walker import Ia32eWalker, PaeWalker, Paging32Walker, PagingWalker

P, RW, US, PWT, PCD, A, D, PS, G = (1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 8))
PAT_4K = 1 << 7  # bit 7 of a PTE is PAT
PAT_BIG = 1 << 12  # bit 12 of a 2M/4M/1G leaf is PAT
XD = 1 << 63
TBL = P | RW | US  # a permissive table entry
K4, M2, M4, G1 = 1 << 12, 1 << 21, 1 << 22, 1 << 30

CR0 = 0x8001_0001  # PG (31) | WP (16) | PE (0)
REGS_4L = {"cr0": CR0, "cr4": 0x0A0, "efer": 0xD00}  # CR4 PAE|PGE; EFER LME|LMA|NXE
REGS_5L = {"cr0": CR0, "cr4": 0x10A0, "efer": 0xD00}  # + CR4.LA57 (bit 12)
REGS_PAE = {"cr0": CR0, "cr4": 0x0A0, "efer": 0x800}  # EFER.NXE only
REGS_32 = {"cr0": CR0, "cr4": 0x090, "efer": 0}  # CR4 PSE|PGE


def regs(base: dict[str, int], cr3: int, **over: int) -> dict[str, int]:
    return {**base, "cr3": cr3, **over}


def new_mem() -> PhysMem:
    return PhysMem(4096, "little", 52)


def put(mem: PhysMem, table: int, index: int, value: int, size: int = 8) -> None:
    mem.write(table + index * size, size, value)


def fault_reason(result: Translation | Fault) -> str:
    assert isinstance(result, Fault), result
    return result.reason


def ok(result: Translation | Fault) -> Translation:
    assert isinstance(result, Translation), result
    return result


class Chain:
    """A hand-built 4- or 5-level walk to one VA: one fresh table per level."""

    def __init__(self, mem: PhysMem, va: int, levels: int = 4) -> None:
        self.mem = mem
        shifts = (48, 39, 30, 21, 12)[5 - levels :]
        self.idx = [va >> s & 511 for s in shifts]
        self.tables = [mem.alloc_frame() for _ in shifts]
        for lv in range(levels - 1):
            put(mem, self.tables[lv], self.idx[lv], self.tables[lv + 1] | TBL)

    @property
    def root(self) -> int:
        return self.tables[0]

    def set(self, level: int, value: int) -> None:
        put(self.mem, self.tables[level], self.idx[level], value)

    def get(self, level: int) -> int:
        return self.mem.read(self.tables[level] + 8 * self.idx[level], 8)


# -- configurations -------------------------------------------------------------------------


def test_configs_registered() -> None:
    assert {"x86_64", "x86_64-la57", "i386", "i386-pae"} <= set(CONFIGS)
    c = CONFIGS["x86_64"]
    assert [(lv.name, lv.shift, lv.entries, lv.entry_size) for lv in c.hw_levels] == [
        ("PML4", 39, 512, 8),
        ("PDPT", 30, 512, 8),
        ("PD", 21, 512, 8),
        ("PT", 12, 512, 8),
    ]
    assert c.leaf_sizes == (K4, M2, G1)
    assert CONFIGS["x86_64-la57"].hw_levels[0].shift == 48
    assert CONFIGS["i386"].leaf_sizes == (K4, M4)
    assert [lv.entries for lv in CONFIGS["i386-pae"].hw_levels] == [4, 512, 512]
    assert CONFIGS["i386-pae"].phys_bits == 52  # page_32_types.h: PAE __PHYSICAL_MASK_SHIFT
    assert CONFIGS["x86_64"].kernel_range[0] >> 39 & 511 == 273
    assert CONFIGS["x86_64-la57"].kernel_range[0] >> 48 & 511 == 273


@pytest.mark.parametrize("name", ["x86_64", "x86_64-la57", "i386", "i386-pae"])
def test_walker_geometry_matches_config(name: str) -> None:
    c = CONFIGS[name]
    w = c.walker
    assert isinstance(w, PagingWalker)
    rules = w.setup(c.make_registers(0x10_0000, 0x10_0000)).rules
    assert [(r.shift, r.entries, r.entry_size) for r in rules] == [
        (lv.shift, lv.entries, lv.entry_size) for lv in c.hw_levels
    ]
    assert [r.ps_leaf or r.last for r in rules] == [lv.leaf_ok for lv in c.hw_levels]
    assert w.va_bits == c.va_bits and w.word_bits == c.word_bits


@pytest.mark.parametrize(
    ("name", "cr4", "efer"),
    [
        ("x86_64", 0x0A0, 0xD00),
        ("x86_64-la57", 0x10A0, 0xD00),
        ("i386", 0x090, 0),
        ("i386-pae", 0x0A0, 0x800),
    ],
)
def test_make_registers(name: str, cr4: int, efer: int) -> None:
    c = CONFIGS[name]
    assert c.make_registers(0x0123_4000, 0x0123_4000) == {
        "cr0": 0x8001_0001,
        "cr3": 0x0123_4000,
        "cr4": cr4,
        "efer": efer,
    }
    with pytest.raises(BadInput):
        c.make_registers(0x0123_4000, 0x0123_5000)


def test_make_registers_rejects_roots_cr3_cannot_hold() -> None:
    assert CONFIGS["i386-pae"].make_registers(0x0123_4020, 0x0123_4020)["cr3"] == 0x0123_4020
    for name, root in [
        ("x86_64", 0x0123_4020),
        ("i386-pae", 0x0123_4010),
        ("i386-pae", 1 << 32),
        ("i386", 1 << 32),
    ]:
        with pytest.raises(BadInput):
            CONFIGS[name].make_registers(root, root)


def test_walker_rejects_registers_of_another_mode() -> None:
    mem = new_mem()
    root = mem.alloc_frame()
    with pytest.raises(BadInput):
        Ia32eWalker(levels=5).translate(mem, regs(REGS_4L, root), 0)
    with pytest.raises(BadInput):
        Ia32eWalker(levels=4).translate(mem, regs(REGS_5L, root), 0)
    with pytest.raises(BadInput):
        PaeWalker().translate(mem, regs(REGS_4L, root), 0)
    with pytest.raises(BadInput):
        Paging32Walker().translate(mem, regs(REGS_PAE, root), 0)
    with pytest.raises(BadInput):
        Ia32eWalker().translate(mem, {"cr3": root}, 0)
    with pytest.raises(BadInput):
        Ia32eWalker().translate(mem, regs(REGS_4L, root, cr0=0x0001_0001), 0)  # PG = 0


# -- 4-level and 5-level: sizes and addresses ---------------------------------------------


def test_4k_page_4level() -> None:
    mem = new_mem()
    ch = Chain(mem, 0x7F12_3456_7000)
    ch.set(3, 0x0005_5555_5000 | P | RW | US | PAT_4K)  # bit 7 is PAT in a PTE, not PS
    t = ok(Ia32eWalker().translate(mem, regs(REGS_4L, ch.root), 0x7F12_3456_7ABC))
    assert (t.pa, t.size, t.level) == (0x0005_5555_5ABC, K4, 3)
    assert (t.writable, t.user, t.executable) == (True, True, True)
    assert t.va == 0x7F12_3456_7ABC


def test_2m_and_1g_leaves_ignore_pat_bit_12() -> None:
    mem = new_mem()
    w = Ia32eWalker()
    ch = Chain(mem, 0x4000_0000 + 5 * M2)
    ch.set(2, 0x0007_4560_0000 | P | RW | PS | PAT_BIG)
    t = ok(w.translate(mem, regs(REGS_4L, ch.root), 0x4000_0000 + 5 * M2 + 0x1_2345))
    assert (t.pa, t.size, t.level) == (0x0007_4560_0000 + 0x1_2345, M2, 2)
    assert t.user is False  # the leaf has U/S = 0

    ch = Chain(mem, 3 * G1)
    ch.set(1, 0x00AB_C000_0000 | P | RW | US | PS | PAT_BIG | XD)
    t = ok(w.translate(mem, regs(REGS_4L, ch.root), 3 * G1 + 0x2345_6789))
    assert (t.pa, t.size, t.level) == (0x00AB_C000_0000 + 0x2345_6789, G1, 1)
    assert t.executable is False


def test_top_half_4level_and_leaves_sign_extend() -> None:
    mem = new_mem()
    va = 0xFFFF_8880_0000_1000  # PAGE_OFFSET + 4K: PML4 slot 273, PDPT 0, PD 0, PT 1
    ch = Chain(mem, va)
    assert ch.idx == [273, 0, 0, 1]
    ch.set(3, 0x1234_5000 | P | RW | XD)
    r = regs(REGS_4L, ch.root)
    t = ok(Ia32eWalker().translate(mem, r, va + 0x10))
    assert (t.pa, t.level, t.user, t.writable, t.executable) == (0x1234_5010, 3, False, True, False)
    leaves = list(Ia32eWalker().leaves(mem, r))
    assert leaves == [Translation(va, 0x1234_5000, K4, 3, True, False, False)]


def test_5level_sizes_and_top_half() -> None:
    mem = new_mem()
    w = Ia32eWalker(levels=5)
    va = 0x0000_8000_0000_0000  # 2^47: canonical only with LA57; PML5 0, PML4 256
    ch = Chain(mem, va, levels=5)
    assert ch.idx == [0, 256, 0, 0, 0]
    ch.set(4, 0x0009_8765_4000 | P | RW | US)
    t = ok(w.translate(mem, regs(REGS_5L, ch.root), va + 0xFFF))
    assert (t.pa, t.size, t.level) == (0x0009_8765_4FFF, K4, 4)

    top = 0xFF11_0000_4000_0000  # PML5 273, PML4 0, PDPT 1
    ch = Chain(mem, top, levels=5)
    assert ch.idx[:3] == [273, 0, 1]
    ch.set(2, 0x0001_C000_0000 | P | RW | PS)  # 1G leaf
    r = regs(REGS_5L, ch.root)
    t = ok(w.translate(mem, r, top + 0x123))
    assert (t.pa, t.size, t.level) == (0x0001_C000_0123, G1, 2)
    assert list(w.leaves(mem, r)) == [Translation(top, 0x0001_C000_0000, G1, 2, True, True, False)]


@pytest.mark.parametrize(
    ("levels", "va", "canonical"),
    [
        (4, 0x0000_8000_0000_0000, False),
        (4, 0xFFFF_7FFF_FFFF_F000, False),
        (4, 0x0001_0000_0000_0000, False),
        (4, 0x8000_0000_0000_0000, False),
        (4, 0x0000_7FFF_FFFF_F000, True),
        (4, 0xFFFF_8000_0000_0000, True),
        (5, 0x0000_8000_0000_0000, True),
        (5, 0x00FF_FFFF_FFFF_F000, True),
        (5, 0x0100_0000_0000_0000, False),
        (5, 0xFEFF_FFFF_FFFF_F000, False),
        (5, 0xFF00_0000_0000_0000, True),
    ],
)
def test_canonical_check(levels: int, va: int, canonical: bool) -> None:
    mem = new_mem()
    root = mem.alloc_frame()  # empty tables: canonical addresses fault as not present
    f = Ia32eWalker(levels=levels).translate(
        mem, regs(REGS_5L if levels == 5 else REGS_4L, root), va
    )
    assert isinstance(f, Fault)
    if canonical:
        assert f.reason.startswith("not present") and f.level == 0
    else:
        assert f.reason == "non-canonical" and f.level is None


def test_va_out_of_word_is_bad_input() -> None:
    mem = new_mem()
    with pytest.raises(BadInput):
        Ia32eWalker().translate(mem, regs(REGS_4L, mem.alloc_frame()), 1 << 64)
    with pytest.raises(BadInput):
        Paging32Walker().translate(mem, regs(REGS_32, mem.alloc_frame()), 1 << 32)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_not_present_at_each_level(level: int) -> None:
    mem = new_mem()
    ch = Chain(mem, 0x1234_5678_9000)
    ch.set(3, 0x5000 | P)
    ch.set(level, ch.get(level) & ~P)
    f = Ia32eWalker().translate(mem, regs(REGS_4L, ch.root), 0x1234_5678_9000)
    assert isinstance(f, Fault) and f.level == level and f.reason.startswith("not present")


def test_table_pointer_to_unallocated_memory_raises() -> None:
    mem = new_mem()
    root = mem.alloc_frame()
    put(mem, root, 0, 0x7777_0000 | TBL)
    with pytest.raises(PhysMemError):
        Ia32eWalker().translate(mem, regs(REGS_4L, root), 0x1000)


# -- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize(
    ("clear", "set_", "expect"),
    [
        (RW, 0, (False, True, True)),
        (US, 0, (True, False, True)),
        (0, XD, (True, True, False)),
    ],
)
def test_permission_composition(
    level: int, clear: int, set_: int, expect: tuple[bool, bool, bool]
) -> None:
    """SDM §4.6: R/W and U/S are ANDed over all levels, XD is ORed."""
    mem = new_mem()
    va = 0x0000_0040_0020_3000
    ch = Chain(mem, va)
    ch.set(3, 0x0066_6000 | P | RW | US)
    ch.set(level, (ch.get(level) & ~clear) | set_)
    t = ok(Ia32eWalker().translate(mem, regs(REGS_4L, ch.root), va))
    assert (t.writable, t.user, t.executable) == expect
    assert t.pa == 0x0066_6000
    (leaf,) = Ia32eWalker().leaves(mem, regs(REGS_4L, ch.root))
    assert (leaf.writable, leaf.user, leaf.executable) == expect


# -- reserved bits --------------------------------------------------------------------------


def _reserved(w: Ia32eWalker, mem: PhysMem, r: dict[str, int], va: int, level: int) -> None:
    f = w.translate(mem, r, va)
    assert isinstance(f, Fault) and f.level == level, f
    assert f.reason.startswith("reserved bit")
    assert list(w.leaves(mem, r)) == []


def test_ps_in_pml4e_and_pml5e_is_reserved() -> None:
    mem = new_mem()
    ch = Chain(mem, 0x1000)
    ch.set(3, 0x9000 | P)
    ch.set(0, ch.get(0) | PS)
    _reserved(Ia32eWalker(), mem, regs(REGS_4L, ch.root), 0x1000, 0)
    ch5 = Chain(mem, 0x1000, levels=5)
    ch5.set(4, 0x9000 | P)
    ch5.set(0, ch5.get(0) | PS)
    _reserved(Ia32eWalker(levels=5), mem, regs(REGS_5L, ch5.root), 0x1000, 0)
    ch5.set(0, ch5.get(0) & ~PS)
    ch5.set(1, ch5.get(1) | PS)
    _reserved(Ia32eWalker(levels=5), mem, regs(REGS_5L, ch5.root), 0x1000, 1)


@pytest.mark.parametrize("bit", [13, 20])
def test_2m_leaf_low_reserved_bits(bit: int) -> None:
    mem = new_mem()
    ch = Chain(mem, M2)
    ch.set(2, 0x4000_0000 | P | PS | 1 << bit)
    _reserved(Ia32eWalker(), mem, regs(REGS_4L, ch.root), M2, 2)


@pytest.mark.parametrize("bit", [13, 29])
def test_1g_leaf_low_reserved_bits(bit: int) -> None:
    mem = new_mem()
    ch = Chain(mem, G1)
    ch.set(1, 0x8000_0000 | P | PS | 1 << bit)
    _reserved(Ia32eWalker(), mem, regs(REGS_4L, ch.root), G1, 1)


def test_pfn_bit_above_maxphyaddr() -> None:
    mem = new_mem()
    ch = Chain(mem, 0x5000)
    ch.set(3, 1 << 45 | 0x5000 | P)
    w46 = Ia32eWalker(phys_bits=46)
    t = ok(w46.translate(mem, regs(REGS_4L, ch.root), 0x5000))
    assert t.pa == 1 << 45 | 0x5000
    ch.set(3, 1 << 46 | 0x5000 | P)
    _reserved(w46, mem, regs(REGS_4L, ch.root), 0x5000, 3)
    # With MAXPHYADDR 52 bit 46 is an address bit; bits 62:52 are ignored (SDM §4.5.4).
    t = ok(Ia32eWalker(phys_bits=52).translate(mem, regs(REGS_4L, ch.root), 0x5000))
    assert t.pa == 1 << 46 | 0x5000
    ch.set(3, 1 << 62 | 1 << 52 | 1 << 51 | 0x5000 | P)
    t = ok(Ia32eWalker(phys_bits=52).translate(mem, regs(REGS_4L, ch.root), 0x5000))
    assert t.pa == 1 << 51 | 0x5000
    # A table pointer with a bit above MAXPHYADDR is reserved too.
    ch.set(3, 0x5000 | P)
    ch.set(1, ch.get(1) | 1 << 47)
    _reserved(w46, mem, regs(REGS_4L, ch.root), 0x5000, 1)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_xd_without_nxe_is_reserved(level: int) -> None:
    mem = new_mem()
    ch = Chain(mem, 0x20_0000)
    ch.set(3, 0x7000 | P | RW)
    ch.set(level, ch.get(level) | XD)
    t = ok(Ia32eWalker().translate(mem, regs(REGS_4L, ch.root), 0x20_0000))
    assert t.executable is False
    _reserved(Ia32eWalker(), mem, regs(REGS_4L, ch.root, efer=0x500), 0x20_0000, level)


def test_nxe_clear_everything_executable() -> None:
    mem = new_mem()
    ch = Chain(mem, 0x20_0000)
    ch.set(3, 0x7000 | P)
    t = ok(Ia32eWalker().translate(mem, regs(REGS_4L, ch.root, efer=0x500), 0x20_0000))
    assert t.executable is True


def test_pde_referencing_table_has_no_low_reserved_bits() -> None:
    """Bits 20:13 are reserved only in a 2M leaf: in a table pointer they are address bits."""
    mem = new_mem()
    ch = Chain(mem, 0x3000)
    assert ch.tables[3] & 0x1F_E000  # the PT frame's address sets some of bits 20:13
    ch.set(3, 0xA000 | P)
    assert ok(Ia32eWalker().translate(mem, regs(REGS_4L, ch.root), 0x3000)).pa == 0xA000


# -- leaves() -------------------------------------------------------------------------------


def test_leaves_order_and_completeness_4level() -> None:
    mem = new_mem()
    w = Ia32eWalker()
    pml4, pdpt_lo, pd_lo, pt_lo, pdpt_hi, pd_hi = (mem.alloc_frame() for _ in range(6))
    put(mem, pml4, 0, pdpt_lo | TBL)
    put(mem, pml4, 273, pdpt_hi | P | RW)  # kernel: supervisor
    put(mem, pml4, 5, pdpt_hi | P | PS)  # reserved PS in a PML4E: skipped
    put(mem, pdpt_lo, 0, pd_lo | TBL)
    put(mem, pdpt_lo, 2, 0x0000_0004_0000_0000 | P | PS | RW | US)  # 1G at 2G
    put(mem, pdpt_lo, 3, 0x0000_0005_0000_0000 | P | PS | 1 << 13)  # reserved: skipped
    put(mem, pd_lo, 0, pt_lo | TBL)
    put(mem, pd_lo, 7, 0x0000_0000_3460_0000 | P | PS | US | XD)  # 2M at 14M
    put(mem, pd_lo, 8, 0x0000_0000_3480_0000 | PS)  # not present: skipped
    put(mem, pt_lo, 511, 0x0000_0000_0BEE_F000 | P | RW | US)  # 4K at 2M - 4K
    put(mem, pt_lo, 1, 0x0000_0000_0CAF_E000 | P | US | PAT_4K)  # 4K at 4K, PAT: still 4K
    put(mem, pdpt_hi, 0, pd_hi | TBL)
    put(mem, pd_hi, 0, 0x0000_0000_0120_0000 | P | RW | PS)  # 2M at PAGE_OFFSET
    got = list(w.leaves(mem, regs(REGS_4L, pml4)))
    assert got == [
        Translation(0x1000, 0x0CAF_E000, K4, 3, False, True, True),
        Translation(0x1F_F000, 0x0BEE_F000, K4, 3, True, True, True),
        Translation(0xE0_0000, 0x3460_0000, M2, 2, False, False, True),
        Translation(0x8000_0000, 0x4_0000_0000, G1, 1, True, True, True),
        Translation(0xFFFF_8880_0000_0000, 0x0120_0000, M2, 2, True, True, False),
    ]


# -- PAE ------------------------------------------------------------------------------------


def _pae_tables(mem: PhysMem) -> tuple[int, int, int]:
    """A PDPT at offset 0x20 of its frame (32-byte aligned), PD for slot 3, one PT."""
    pdpt = mem.alloc_frame() + 0x20
    pd, pt = mem.alloc_frame(), mem.alloc_frame()
    put(mem, pdpt, 3, pd | P)
    put(mem, pd, 0, pt | TBL)
    return pdpt, pd, pt


def test_pae_4k_2m_and_nx() -> None:
    mem = new_mem()
    w = PaeWalker()
    pdpt, pd, pt = _pae_tables(mem)
    put(mem, pt, 2, 0x0000_0012_3456_7000 | P | RW | US)  # PA above 4G
    put(mem, pd, 1, 0x0000_0000_0AC0_0000 | P | PS | PAT_BIG | XD)  # 2M
    r = regs(REGS_PAE, pdpt)
    t = ok(w.translate(mem, r, 0xC000_2ABC))
    assert (t.pa, t.size, t.level, t.writable, t.user) == (0x12_3456_7ABC, K4, 2, True, True)
    assert t.executable is True
    t = ok(w.translate(mem, r, 0xC020_0000 + 0x1_2345))
    assert (t.pa, t.size, t.level, t.executable) == (0x0AC0_0000 + 0x1_2345, M2, 1, False)
    assert list(w.leaves(mem, r)) == [
        Translation(0xC000_2000, 0x12_3456_7000, K4, 2, True, True, True),
        Translation(0xC020_0000, 0x0AC0_0000, M2, 1, False, False, False),
    ]
    f = w.translate(mem, r, 0x4000_0000)  # PDPTE 1 not present
    assert isinstance(f, Fault) and f.level == 0 and f.reason.startswith("not present")


@pytest.mark.parametrize("bit", [1, 2, 5, 6, 7, 8, 52, 63])
def test_pae_pdpte_reserved_bits(bit: int) -> None:
    mem = new_mem()
    pdpt, pd, pt = _pae_tables(mem)
    put(mem, pt, 0, 0x5000 | P)
    put(mem, pdpt, 3, pd | P | 1 << bit)
    f = PaeWalker().translate(mem, regs(REGS_PAE, pdpt), 0xC000_0000)
    assert isinstance(f, Fault) and f.level == 0 and f.reason.startswith("reserved bit")
    assert list(PaeWalker().leaves(mem, regs(REGS_PAE, pdpt))) == []


@pytest.mark.parametrize("bits", [PWT, PCD, 1 << 9 | 1 << 11])
def test_pae_pdpte_allowed_bits(bits: int) -> None:
    mem = new_mem()
    pdpt, pd, pt = _pae_tables(mem)
    put(mem, pt, 0, 0x5000 | P)
    put(mem, pdpt, 3, pd | P | bits)
    t = ok(PaeWalker().translate(mem, regs(REGS_PAE, pdpt), 0xC000_0000))
    assert t.pa == 0x5000


def test_pae_entry_reserved_bits() -> None:
    mem = new_mem()
    w = PaeWalker()
    pdpt, pd, pt = _pae_tables(mem)
    r = regs(REGS_PAE, pdpt)
    put(mem, pt, 0, 1 << 62 | 0x5000 | P)  # 62:M reserved in PAE (ignored in IA-32e)
    assert fault_reason(w.translate(mem, r, 0xC000_0000)).startswith("reserved bit")
    put(mem, pt, 0, XD | 0x5000 | P)
    assert ok(w.translate(mem, r, 0xC000_0000)).executable is False
    assert fault_reason(w.translate(mem, regs(REGS_PAE, pdpt, efer=0), 0xC000_0000)).startswith(
        "reserved bit"
    )
    put(mem, pd, 1, 0x0AC0_0000 | 1 << 20 | P | PS)
    assert fault_reason(w.translate(mem, r, 0xC020_0000)).startswith("reserved bit")
    put(mem, pt, 1, 1 << 40 | 0x5000 | P)
    assert fault_reason(PaeWalker(phys_bits=40).translate(mem, r, 0xC000_1000)).startswith(
        "reserved bit"
    )


# -- 32-bit paging --------------------------------------------------------------------------


def test_i386_4m_pse_and_4k() -> None:
    mem = new_mem()
    w = Paging32Walker()
    pd, pt = mem.alloc_frame(), mem.alloc_frame()
    put(mem, pd, 0x300, 0x0840_0000 | P | RW | PS | PAT_BIG, 4)  # 4M at 0xC0000000
    put(mem, pd, 0x001, pt | TBL, 4)
    put(mem, pt, 0x005, 0x0123_4000 | P | US | PAT_4K, 4)  # 4K at 0x00405000
    r = regs(REGS_32, pd)
    t = ok(w.translate(mem, r, 0xC012_3456))
    assert (t.pa, t.size, t.level) == (0x0852_3456, M4, 0)
    assert (t.writable, t.user, t.executable) == (True, False, True)
    t = ok(w.translate(mem, r, 0x0040_5ABC))
    assert (t.pa, t.size, t.level) == (0x0123_4ABC, K4, 1)
    assert (t.writable, t.user, t.executable) == (False, True, True)
    assert list(w.leaves(mem, r)) == [
        Translation(0x0040_5000, 0x0123_4000, K4, 1, False, True, True),
        Translation(0xC000_0000, 0x0840_0000, M4, 0, True, True, False),
    ]


def test_i386_4m_reserved_bits_and_pse_off() -> None:
    mem = new_mem()
    w = Paging32Walker()
    pt = mem.alloc_frame()  # the first frame, 0x0100_0000, is 4M-aligned
    assert pt % M4 == 0
    pd = mem.alloc_frame()
    put(mem, pt, 0x000, 0x0BAD_0000 | P, 4)
    put(mem, pd, 0x000, pt | P | PS, 4)
    t = ok(w.translate(mem, regs(REGS_32, pd), 0x0000_0123))
    assert (t.pa, t.size) == (pt + 0x123, M4)
    # CR4.PSE = 0: PS is ignored and the PDE references a page table (SDM §4.3).
    t = ok(w.translate(mem, regs(REGS_32, pd, cr4=0x080), 0x0000_0123))
    assert (t.pa, t.size) == (0x0BAD_0123, K4)
    # MAXPHYADDR 32: no PSE-36 bits, so bits 21:13 of a 4M PDE are reserved (Table 4-4).
    for bit in (13, 21):
        put(mem, pd, 0x000, pt | P | PS | 1 << bit, 4)
        f = w.translate(mem, regs(REGS_32, pd), 0x0000_0123)
        assert isinstance(f, Fault) and f.level == 0 and f.reason.startswith("reserved bit")
    # MAXPHYADDR 36: bits 16:13 hold PA[35:32], bits 21:17 stay reserved.
    put(mem, pd, 0x000, pt | P | PS | 0b1010 << 13, 4)
    t = ok(Paging32Walker(phys_bits=36).translate(mem, regs(REGS_32, pd), 0x0000_0123))
    assert t.pa == 0xA_0000_0000 + pt + 0x123


# -- hypothesis: random mappings built by hand ----------------------------------------------


Level = tuple[int, int]  # (shift, index bits)


def build(
    mem: PhysMem, levels: Sequence[Level], size: int, flags: Sequence[int], pages: dict[int, int]
) -> int:
    """Map each VA -> PA of ``pages`` with 4K pages; return the root table address."""
    root = mem.alloc_frame()
    tables: dict[tuple[int, int], int] = {}
    for va, pa in pages.items():
        table = root
        for depth, (shift, nbits) in enumerate(levels[:-1]):
            key = (depth, va >> shift)
            if key not in tables:
                tables[key] = mem.alloc_frame()
                put(mem, table, va >> shift & ((1 << nbits) - 1), tables[key] | flags[depth], size)
            table = tables[key]
        put(mem, table, va >> 12 & ((1 << levels[-1][1]) - 1), pa | flags[-1], size)
    return root


MODES = {
    "x86_64": ([(39, 9), (30, 9), (21, 9), (12, 9)], 8, [TBL] * 4, REGS_4L, 48),
    "x86_64-la57": ([(48, 9), (39, 9), (30, 9), (21, 9), (12, 9)], 8, [TBL] * 5, REGS_5L, 57),
    "i386-pae": ([(30, 2), (21, 9), (12, 9)], 8, [P, TBL, TBL], REGS_PAE, 32),
    "i386": ([(22, 10), (12, 10)], 4, [TBL, TBL], REGS_32, 32),
}


def canonical(vpn: int, va_bits: int) -> int:
    va = vpn << 12
    return va | ((1 << 64) - (1 << va_bits)) if va_bits > 32 and va >> (va_bits - 1) else va


@pytest.mark.parametrize("name", list(MODES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_random_pages_translate_and_leaves_agree(name: str, data: st.DataObject) -> None:
    levels, size, flags, base_regs, va_bits = MODES[name]
    config: ArchConfig = CONFIGS[name]
    pa_bits = 32 if name == "i386" else 46
    vpns = data.draw(st.sets(st.integers(0, (1 << (va_bits - 12)) - 1), min_size=1, max_size=24))
    pages = {
        canonical(v, va_bits): data.draw(st.integers(0, (1 << (pa_bits - 12)) - 1)) << 12
        for v in vpns
    }
    mem = new_mem()
    root = build(mem, levels, size, flags, pages)
    r = regs(base_regs, root)
    expected = [
        Translation(va, pages[va], K4, len(levels) - 1, True, True, True) for va in sorted(pages)
    ]
    assert list(config.walker.leaves(mem, r)) == expected
    for va, pa in pages.items():
        off = data.draw(st.integers(0, K4 - 1))
        assert config.walker.translate(mem, r, va + off) == Translation(
            va + off, pa + off, K4, len(levels) - 1, True, True, True
        )
    # A page next to a mapped one is unmapped unless it was drawn too.
    some = sorted(pages)[0]
    other = some ^ K4
    if other not in pages:
        assert isinstance(config.walker.translate(mem, r, other), Fault)


def test_leaves_complete_for_262144_pages() -> None:
    mem = new_mem()
    pml4, pdpt, pd = mem.alloc_frame(), mem.alloc_frame(), mem.alloc_frame()
    put(mem, pml4, 0, pdpt | TBL)
    put(mem, pdpt, 0, pd | TBL)
    for i in range(512):
        pt = mem.alloc_frame()
        put(mem, pd, i, pt | TBL)
        for j in range(512):
            put(mem, pt, j, (i * 512 + j) << 12 | P)
    leaves = list(Ia32eWalker().leaves(mem, regs(REGS_4L, pml4)))
    assert len(leaves) == 512 * 512
    assert all(leaf.va == leaf.pa for leaf in leaves)
    assert [leaf.va for leaf in leaves[:2]] == [0, K4]


@pytest.mark.parametrize("name", ["x86_64", "x86_64-la57", "i386", "i386-pae", "pse-36"])
def test_tlb_view_remembers_only_what_the_address_does_not_change(name: str) -> None:
    """The TLB's decoding (``structure``) remembers, per level, what the bits of an entry
    other than its address decode to.  Every entry must still decode as :func:`entry_view`
    (which remembers nothing) decodes it: table pointers whose address bits a leaf of the
    level would find reserved (PDE bits 20:13), leaves, reserved bits, XD, and the PA bits
    39:32 that PSE-36 takes from bits 20:13 of a 4-MByte leaf."""
    if name == "pse-36":
        walker: PagingWalker = Paging32Walker(phys_bits=40)
        r = regs(REGS_32, 0x10_0000)
    else:
        walker = CONFIGS[name].walker
        r = CONFIGS[name].make_registers(0x10_0000, 0x10_0000)
    warm = walker.structure(r)[0]
    rules, nxe = walker.setup(r).rules, walker.setup(r).nxe
    rng = random.Random(name)
    for level, shape in enumerate(warm.levels):
        width = shape.entry_size * 8
        low = (1 << 12) - 1
        high = ((1 << width) - 1) & ~((1 << 52) - 1)  # XD and the bits above the address
        # A few flag words, so that entries share them (what is remembered is reused).
        pool = [rng.getrandbits(width) & (low | high) | (P if rng.random() < 0.9 else 0)
                for _ in range(12)]
        # Bits 20:12 from a few values too (0: an aligned address, a valid big leaf).
        middle = [0] + [rng.getrandbits(9) << 12 for _ in range(3)]
        for _ in range(300):
            entry = (rng.getrandbits(width) & ~(low | high | (1 << 21) - 1)
                     | rng.choice(middle) | rng.choice(pool))
            assert warm.decode(level, entry) == entry_view(rules[level], entry, nxe), (
                f"{name} level {level}: {entry:#x}")


@pytest.mark.parametrize("name", ["x86_64", "x86_64-la57", "i386", "i386-pae", "pse-36"])
def test_leaves_list_what_translate_makes_of_every_entry(name: str) -> None:
    """``leaves`` remembers per level what an entry's non-address bits decode to, as the
    TLB's view does; every leaf it lists must be what ``translate`` (which remembers
    nothing) makes of that address, and every address ``translate`` maps through such an
    entry must be listed.  A chain of tables through entry 0 of every level; the other
    entries of each level that may hold leaves are random: flags from a few words, any
    address bits (reserved ones included), PSE-36 bits."""
    if name == "pse-36":
        walker: PagingWalker = Paging32Walker(phys_bits=40)
        base_regs = REGS_32
    else:
        walker = CONFIGS[name].walker
        base_regs = {"x86_64": REGS_4L, "x86_64-la57": REGS_5L, "i386": REGS_32,
                     "i386-pae": REGS_PAE}[name]
    mem = new_mem()
    root = mem.alloc_frame()
    rules = walker.setup(regs(base_regs, root)).rules
    rng = random.Random(name)
    table, slots = root, []
    for rule in rules:
        width = rule.entry_size * 8
        flags = ((1 << 12) - 1) | (((1 << width) - 1) & ~((1 << 52) - 1))
        pool = [rng.getrandbits(width) & flags | P | (PS if rule.ps_leaf else 0)
                for _ in range(6)]
        pool += [word & ~(((1 << 11) - 1) << 52) for word in pool]  # PAE: 62:52 reserved
        middle = [0] + [rng.getrandbits(9) << 12 for _ in range(3)]
        if rule.last or rule.ps_leaf:
            for index in range(1, rule.entries):
                entry = (rng.getrandbits(min(width, 52)) & ~flags & ~((1 << 21) - 1)
                         | rng.choice(middle) | rng.choice(pool))
                put(mem, table, index, entry, rule.entry_size)
                slots.append(index << rule.shift)
        if not rule.last:
            below = mem.alloc_frame()
            put(mem, table, 0, below | (P if rule.name == "PDPTE" and not rule.access
                                        else TBL), rule.entry_size)
            table = below
    r = regs(base_regs, root)
    want = []
    for va in slots:
        va = canonical(va >> 12, walker.va_bits)
        t = walker.translate(mem, r, va)
        if isinstance(t, Translation):
            want.append(t)
    assert len(want) > 100
    assert list(walker.leaves(mem, r)) == sorted(want)
