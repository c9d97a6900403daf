"""arm64-4k-48: the VMSAv8-64 walker on hand-built tables, then the legacy API through it.

Part 1 writes descriptors by hand from the Arm ARM layout (constants below, not from
``arches.arm64.bits`` or ``legacy``).  Part 2 builds tables with the emulated kernel's legacy
API and checks what the walker makes of them; expected bit patterns there are written out by
hand from ``arch/arm64/include/asm/pgtable-prot.h`` / ``pgtable-hwdef.h``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import legacy
from arches import CONFIGS
from arches.arm64.walker import Arm64Walker
from arches.config import Fault, Translation
from arches.errors import BadInput
from arches.memory import PhysMem
from legacy import VM_EXEC, VM_READ, VM_SHARED, VM_WRITE, PmdPtr, PtePtr, pgprot_t, pmd_t, pte_t
from legacy.arm64 import Arm64_4K_48Kernel
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, spin_lock, spin_unlock, vm_area_struct

# -- Arm ARM descriptor fields (D8.3) ---------------------------------------------------------
VALID = 1 << 0
TABLE = 0b11  # levels 0-2
PAGE = 0b11  # level 3
BLOCK = 0b01  # levels 1-2 with the 4KB granule
AP1 = 1 << 6  # EL0 access
AP2 = 1 << 7  # read-only
SH_INNER = 3 << 8
AF = 1 << 10
NG = 1 << 11
DBM = 1 << 51
PXN = 1 << 53
UXN = 1 << 54
PXN_TABLE = 1 << 59
UXN_TABLE = 1 << 60
AP_TABLE0 = 1 << 61  # no EL0 access below
AP_TABLE1 = 1 << 62  # no write below
SW_55 = 1 << 55  # software bits 58:55
SW_56 = 1 << 56

K4, M2, G1 = 1 << 12, 1 << 21, 1 << 30

# -- TCR_EL1 by hand (D19): T0SZ = T1SZ = 16, TG0 = 4K (0b00), TG1 = 4K (0b10), IPS = 48 bits --
T0SZ_16 = 16
T1SZ_16 = 16 << 16
TG1_4K = 0b10 << 30
IPS_48 = 0b101 << 32
IPS_40 = 0b010 << 32
EPD0 = 1 << 7
EPD1 = 1 << 23
TBI0 = 1 << 37
HA = 1 << 39
HD = 1 << 40
HPD0 = 1 << 41
TCR_BASE = T0SZ_16 | T1SZ_16 | TG1_4K | IPS_48

KVA = 0xFFFF_8000_1234_5000  # a TTBR1 address (bits 63:48 all ones)


def new_mem() -> PhysMem:
    return PhysMem(4096, "little", 48)


def regs(ttbr0: int, ttbr1: int, tcr: int = TCR_BASE) -> dict[str, int]:
    return {"ttbr0_el1": ttbr0, "ttbr1_el1": ttbr1, "tcr_el1": tcr}


def idx(va: int, level: int) -> int:
    return va >> (12 + 9 * (3 - level)) & 511


class Chain:
    """Hand-built tables for one VA: an L0 root and one table per lower level, each linked
    with a table descriptor carrying ``table_attrs``."""

    def __init__(self, mem: PhysMem, va: int, table_attrs: int = 0) -> None:
        self.mem = mem
        self.va = va
        self.tables = [mem.alloc_frame() for _ in range(4)]
        self.other = mem.alloc_frame()
        """An empty root for the other region (TTBR1, or TTBR0 for a kernel chain)."""
        for lv in range(3):
            self.set(lv, self.tables[lv + 1] | TABLE | table_attrs)

    @property
    def root(self) -> int:
        return self.tables[0]

    def set(self, level: int, value: int) -> None:
        self.mem.write(self.tables[level] + 8 * idx(self.va, level), 8, value)


def ok(r: Translation | Fault) -> Translation:
    assert isinstance(r, Translation), r
    return r


def fault(r: Translation | Fault) -> Fault:
    assert isinstance(r, Fault), r
    return r


W = Arm64Walker(granule=12, va_bits=48, pa_bits=48)

# ============================================================================================
# Part 1: the walker against hand-built descriptors
# ============================================================================================


def test_config_registered() -> None:
    c = CONFIGS["arm64-4k-48"]
    assert [(lv.name, lv.shift, lv.entries, lv.entry_size, lv.leaf_ok) for lv in c.hw_levels] == [
        ("L0", 39, 512, 8, False),
        ("L1", 30, 512, 8, True),
        ("L2", 21, 512, 8, True),
        ("L3", 12, 512, 8, True),
    ]
    assert c.leaf_sizes == (K4, M2, G1)
    assert c.user_range == (0, 1 << 48)
    assert c.kernel_range == (0xFFFF_0000_0000_0000, 1 << 64)
    assert c.roots == ("ttbr0_el1", "ttbr1_el1")
    assert "arm64-4k-48" in legacy.arch_names()


def test_page_through_three_tables() -> None:
    mem = new_mem()
    va = 0x0000_1234_5678_9ABC
    ch = Chain(mem, va)
    ch.set(3, 0x4_5678_9000 | PAGE | AF | AP1 | UXN | PXN)
    t = ok(W.translate(mem, regs(ch.root, ch.other), va))
    assert (t.pa, t.size, t.level) == (0x4_5678_9ABC, K4, 3)
    assert (t.user, t.writable, t.executable) == (True, True, False)
    assert [(x.va, x.pa, x.size) for x in W.leaves(mem, regs(ch.root, ch.other))] == [
        (va & ~0xFFF, 0x4_5678_9000, K4)
    ]


def test_2m_block_at_l2_and_1g_block_at_l1() -> None:
    mem = new_mem()
    va = 0x0000_0040_0030_1234
    ch = Chain(mem, va)
    ch.set(2, 0x8000_0000 | BLOCK | AF | AP1 | AP2)
    t = ok(W.translate(mem, regs(ch.root, ch.other), va))
    assert (t.pa, t.size, t.level) == (0x8000_0000 + (va & (M2 - 1)), M2, 2)
    assert (t.user, t.writable, t.executable) == (True, False, True)
    # Output-address bits below the block size are not part of the address.
    ch.set(2, 0x8000_0000 | 0x1F_F000 | BLOCK | AF)
    assert ok(W.translate(mem, regs(ch.root, ch.other), va)).pa == 0x8000_0000 + (va & (M2 - 1))

    ch.set(1, 0x1_4000_0000 | BLOCK | AF | UXN)
    t = ok(W.translate(mem, regs(ch.root, ch.other), va))
    assert (t.pa, t.size, t.level) == (0x1_4000_0000 + (va & (G1 - 1)), G1, 1)
    assert (t.user, t.writable, t.executable) == (False, True, True)  # PXN clear: EL1 exec


def test_invalid_encodings_fault() -> None:
    mem = new_mem()
    va = 0x0000_0000_0040_0000
    ch = Chain(mem, va)
    ch.set(3, 0x5000 | BLOCK | AF)  # 0b01 at level 3 is reserved
    f = fault(W.translate(mem, regs(ch.root, ch.other), va))
    assert f.level == 3 and "translation fault" in f.reason
    assert list(W.leaves(mem, regs(ch.root, ch.other))) == []
    ch.set(3, 0x5000 | 0b10 | AF)  # bit[0] = 0: invalid whatever the rest says
    assert fault(W.translate(mem, regs(ch.root, ch.other), va)).level == 3
    ch.set(0, 0x80_0000_0000 | BLOCK | AF)  # no level 0 blocks with the 4KB granule
    f = fault(W.translate(mem, regs(ch.root, ch.other), va))
    assert f.level == 0 and "block" in f.reason
    ch.set(0, 0)
    assert fault(W.translate(mem, regs(ch.root, ch.other), va)).level == 0


def test_access_flag() -> None:
    mem = new_mem()
    va = 0x7F00_0000
    ch = Chain(mem, va)
    ch.set(3, 0x9000 | PAGE | AP1)  # AF = 0
    f = fault(W.translate(mem, regs(ch.root, ch.other), va))
    assert f.level == 3 and "access flag" in f.reason
    assert list(W.leaves(mem, regs(ch.root, ch.other))) == []
    # With TCR_EL1.HA the hardware sets AF itself: the access translates.
    t = ok(W.translate(mem, regs(ch.root, ch.other, TCR_BASE | HA), va))
    assert t.pa == 0x9000
    # AF in table descriptors is ignored (no FEAT_HAFT): the chain above had none.


def test_ttbr1_region() -> None:
    mem = new_mem()
    user = Chain(mem, KVA & ((1 << 48) - 1))  # same table indexes, VA[55] = 0
    kern = Chain(mem, KVA)
    user.set(3, 0x1000 | PAGE | AF | AP1)
    kern.set(3, 0x2000 | PAGE | AF)
    r = regs(user.root, kern.root)
    assert ok(W.translate(mem, r, KVA)).pa == 0x2000
    assert ok(W.translate(mem, r, KVA & ((1 << 48) - 1))).pa == 0x1000
    leaves = list(W.leaves(mem, r))
    assert [x.va for x in leaves] == [KVA & ((1 << 48) - 1), KVA]  # TTBR0 first, sign-extended
    assert [x.user for x in leaves] == [True, False]


@given(top=st.integers(1, 0xFFFE), low=st.integers(0, (1 << 48) - 1))
@settings(max_examples=60, deadline=None)
def test_va_in_neither_region_faults(top: int, low: int) -> None:
    """VA bits 63:48 neither all 0 nor all 1: no table is read (the roots are not even
    allocated memory here), the walk stops with a Translation fault."""
    f = fault(W.translate(new_mem(), regs(0x1000, 0x2000), top << 48 | low))
    assert f.level is None and "translation fault" in f.reason


def test_tbi_and_epd() -> None:
    mem = new_mem()
    va = 0x1234_5000
    ch = Chain(mem, va)
    ch.set(3, 0x3000 | PAGE | AF | AP1)
    tagged = 0x5A << 56 | va
    assert isinstance(W.translate(mem, regs(ch.root, ch.other), tagged), Fault)
    tbi = regs(ch.root, ch.other, TCR_BASE | TBI0)
    assert ok(W.translate(mem, tbi, tagged)).pa == 0x3000
    # TBI ignores only [63:56]: bits 55:48 must still be zero.
    assert isinstance(W.translate(mem, tbi, 1 << 50 | va), Fault)
    f = fault(W.translate(mem, regs(ch.root, ch.other, TCR_BASE | EPD0), va))
    assert "EPD0" in f.reason
    assert list(W.leaves(mem, regs(ch.root, ch.other, TCR_BASE | EPD0 | EPD1))) == []


@pytest.mark.parametrize(
    ("attrs", "tcr", "user", "writable", "executable"),
    [
        (0, TCR_BASE, False, True, True),  # AP = 00: EL1 RW
        (AP1, TCR_BASE, True, True, True),  # AP = 01: EL1/EL0 RW
        (AP2, TCR_BASE, False, False, True),  # AP = 10: EL1 RO
        (AP1 | AP2, TCR_BASE, True, False, True),  # AP = 11: RO everywhere
        (AP1 | UXN, TCR_BASE, True, True, False),  # user: UXN decides
        (AP1 | PXN, TCR_BASE, True, True, True),  # user: PXN does not
        (PXN, TCR_BASE, False, True, False),  # kernel: PXN decides
        (UXN, TCR_BASE, False, True, True),  # kernel: UXN does not
        (AP1 | AP2 | DBM, TCR_BASE, True, False, True),  # DBM without HA/HD: read-only
        (AP1 | AP2 | DBM, TCR_BASE | HA | HD, True, True, True),  # clean-writable
        (AP1 | AP2 | DBM, TCR_BASE | HD, True, False, True),  # HD needs HA
        (AP1 | AP2, TCR_BASE | HA | HD, True, False, True),  # no DBM: still read-only
    ],
)
def test_leaf_permissions(
    attrs: int, tcr: int, user: bool, writable: bool, executable: bool
) -> None:
    mem = new_mem()
    va = 0x4000_0000
    ch = Chain(mem, va)
    ch.set(3, 0x6000 | PAGE | AF | attrs)
    t = ok(W.translate(mem, regs(ch.root, ch.other, tcr), va))
    assert (t.user, t.writable, t.executable) == (user, writable, executable)


@pytest.mark.parametrize(
    ("table_attrs", "tcr", "user", "writable", "executable"),
    [
        (AP_TABLE0, TCR_BASE, False, True, False),  # no EL0 access; then PXN decides (set)
        (AP_TABLE1, TCR_BASE | HA | HD, True, False, True),  # no write, even through DBM
        (UXN_TABLE, TCR_BASE, True, True, False),
        (PXN_TABLE, TCR_BASE, True, True, True),  # user page: PXNTable does not matter
        (AP_TABLE0 | AP_TABLE1 | UXN_TABLE, TCR_BASE | HPD0, True, True, True),  # HPD0
    ],
)
def test_hierarchical_attributes(
    table_attrs: int, tcr: int, user: bool, writable: bool, executable: bool
) -> None:
    mem = new_mem()
    va = 0x4000_0000
    ch = Chain(mem, va, table_attrs)
    ch.set(3, 0x6000 | PAGE | AF | AP1 | PXN | DBM)
    t = ok(W.translate(mem, regs(ch.root, ch.other, tcr), va))
    assert (t.user, t.writable, t.executable) == (user, writable, executable)
    (leaf,) = W.leaves(mem, regs(ch.root, ch.other, tcr))
    assert (leaf.user, leaf.writable, leaf.executable) == (user, writable, executable)


def test_address_size_fault() -> None:
    mem = new_mem()
    va = 0x20_0000
    ch = Chain(mem, va)
    ch.set(3, (1 << 41) | PAGE | AF)  # OA above 2^40
    assert ok(W.translate(mem, regs(ch.root, ch.other), va)).pa == 1 << 41
    f = fault(W.translate(mem, regs(ch.root, ch.other, TCR_BASE & ~IPS_48 | IPS_40), va))
    assert "address size" in f.reason and f.level == 3
    # Descriptor bits [49:48] are not part of the address with the 4KB granule and DS = 0.
    ch.set(3, (3 << 48) | 0x7000 | PAGE | AF)
    assert ok(W.translate(mem, regs(ch.root, ch.other), va)).pa == 0x7000


def test_software_bits_ignored() -> None:
    mem = new_mem()
    va = 0x20_0000
    ch = Chain(mem, va)
    ch.set(3, 0x7000 | PAGE | AF | SW_55 | SW_56 | NG | SH_INNER)
    assert ok(W.translate(mem, regs(ch.root, ch.other), va)).pa == 0x7000


def test_register_checks() -> None:
    mem = new_mem()
    root = mem.alloc_frame()
    with pytest.raises(BadInput):
        W.translate(mem, regs(root, root, TCR_BASE & ~TG1_4K), 0)  # TG1 = 0b00: reserved
    with pytest.raises(BadInput):
        W.translate(mem, regs(root, root, TCR_BASE & ~0x3F | 25), 0)  # T0SZ 25: 39-bit
    with pytest.raises(BadInput):
        W.translate(mem, regs(root + 8, root), 0)  # L0 table not 4K-aligned
    with pytest.raises(BadInput):
        W.translate(mem, {"ttbr0_el1": root, "tcr_el1": TCR_BASE}, 0)


def test_make_registers() -> None:
    c = CONFIGS["arm64-4k-48"]
    r = c.make_registers(0x10_0000, 0x20_0000)
    assert (r["ttbr0_el1"], r["ttbr1_el1"]) == (0x10_0000, 0x20_0000)
    tcr = r["tcr_el1"]

    def field(hi: int, lo: int) -> int:
        return tcr >> lo & ((1 << (hi - lo + 1)) - 1)

    assert field(5, 0) == 16 and field(21, 16) == 16  # T0SZ, T1SZ
    assert field(15, 14) == 0b00 and field(31, 30) == 0b10  # TG0 = 4K, TG1 = 4K
    assert field(34, 32) == 0b101  # IPS: 48 bits
    assert field(39, 39) == 1 and field(40, 40) == 1  # HA, HD
    assert field(9, 8) == 1 and field(11, 10) == 1 and field(13, 12) == 3  # WBWA, inner
    assert field(25, 24) == 1 and field(27, 26) == 1 and field(29, 28) == 3
    assert field(7, 7) == 0 and field(23, 23) == 0  # EPD0, EPD1: walks enabled
    assert field(37, 37) == 0  # TBI0 left clear (documented)
    assert r["mair_el1"] & 0xFF == 0xFF  # MT_NORMAL (index 0): Normal WB
    with pytest.raises(BadInput):
        c.make_registers(0x10_0800, 0x20_0000)


# ============================================================================================
# Part 2: the legacy API, checked through the walker
# ============================================================================================

# pgtable-prot.h values written out by hand (_PAGE_DEFAULT = PTE_TYPE_PAGE | PTE_AF |
# PTE_SHARED | PTE_ATTRINDX(MT_NORMAL) = 0x703; no KPTI so PROT_DEFAULT has no nG).
PAGE_READONLY = 0x703 | AP1 | AP2 | NG | PXN | UXN
PAGE_READONLY_EXEC = 0x703 | AP1 | AP2 | NG | PXN
PAGE_SHARED = 0x703 | AP1 | AP2 | NG | PXN | UXN | DBM
PAGE_NONE = 0x702 | NG | AP2 | PXN | UXN
PTE_DIRTY = SW_55
# _PAGE_KERNEL* carry PTE_DIRTY since "arm64, mm: avoid always making PTE dirty in
# pte_mkwrite()" and its follow-up (arch/arm64/include/asm/pgtable-prot.h).
PAGE_KERNEL = 0x703 | PXN | UXN | DBM | PTE_DIRTY
PAGE_KERNEL_ROX = 0x703 | AP2 | UXN | PTE_DIRTY
PTE_SPECIAL = SW_56


def boot() -> Arm64_4K_48Kernel:
    k = legacy.boot("arm64-4k-48")
    assert isinstance(k, Arm64_4K_48Kernel)
    return k


def map_page(k: GenericKernel, mm: mm_struct, va: int, pfn: int, prot: pgprot_t) -> PtePtr:
    kernel = mm is k.init_mm
    pgd = k.pgd_offset_k(va) if kernel else k.pgd_offset(mm, va)
    p4d = k.p4d_alloc(mm, pgd, va)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, va)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, va)
    assert pmd is not None
    if kernel:
        pte = k.pte_alloc_kernel(pmd, va)
        assert pte is not None
        k.set_pte_at(mm, va, pte, k.pte_mkspecial(k.pfn_pte(pfn, prot)))
        return pte
    assert k.pte_alloc(mm, pmd) == 0
    r = k.pte_offset_map_lock(mm, pmd, va)
    assert r is not None
    pte, ptl = r
    k.set_pte_at(mm, va, pte, k.pte_mkspecial(k.pfn_pte(pfn, prot)))
    k.pte_unmap_unlock(pte, ptl)
    return pte


BOOTED = boot()


def hw(k: GenericKernel, mm: mm_struct) -> dict[str, int]:
    return k.config.make_registers(mm.pgd.pa, k.init_mm.pgd.pa)


def test_geometry() -> None:
    k = boot()
    assert (k.PGDIR_SHIFT, k.P4D_SHIFT, k.PUD_SHIFT, k.PMD_SHIFT, k.PAGE_SHIFT) == (
        39, 39, 30, 21, 12)
    assert (k.PTRS_PER_PGD, k.PTRS_PER_P4D, k.PTRS_PER_PUD, k.PTRS_PER_PMD) == (512, 1, 512, 512)
    assert k.PAGETABLE_P4D_FOLDED and not k.PAGETABLE_PUD_FOLDED
    assert k.PAGE_OFFSET == 0xFFFF_0000_0000_0000 and k.TASK_SIZE == 1 << 48
    mm = k.mm_alloc()
    assert mm is not None
    assert k.mm_p4d_folded(mm) and not k.mm_pud_folded(mm) and not k.mm_pmd_folded(mm)
    assert k.ARCH_PAGE_TABLE_SYNC_MASK == 0


def test_protection_map() -> None:
    k = boot()
    pm = k.protection_map
    assert pm[VM_READ] == PAGE_READONLY
    assert pm[VM_READ | VM_WRITE] == PAGE_READONLY  # private writable: COW
    assert pm[VM_EXEC] == PAGE_READONLY_EXEC  # no Enhanced PAN
    assert pm[VM_SHARED | VM_READ | VM_WRITE] == PAGE_SHARED
    assert pm[VM_SHARED | VM_READ | VM_WRITE | VM_EXEC] == PAGE_SHARED & ~UXN
    assert pm[0] == pm[VM_SHARED] == PAGE_NONE
    assert k.PAGE_KERNEL == PAGE_KERNEL
    assert k.PAGE_KERNEL_ROX == PAGE_KERNEL_ROX
    assert k.PAGE_KERNEL_RO == PAGE_KERNEL_ROX | PXN
    assert k.PAGE_KERNEL_EXEC == PAGE_KERNEL & ~PXN


@pytest.mark.parametrize(
    ("vm_flags", "prot"),
    [
        (VM_READ, "r"),
        (VM_READ | VM_WRITE | VM_SHARED, "rw"),
        (VM_READ | VM_EXEC, "rx"),
        (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED, "rwx"),
    ],
)
def test_user_pages_through_ttbr0(vm_flags: int, prot: str) -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    va, pfn = 0x0000_7FFF_DEAD_B000, 0x4_2424
    map_page(k, mm, va, pfn, k.vm_get_page_prot(vm_flags))
    t = ok(k.config.walker.translate(k.mem, hw(k, mm), va + 0x123))
    assert (t.pa, t.size, t.user, t.prot) == (pfn << 12 | 0x123, K4, True, prot)
    # User tables carry PXNTable (asm/pgalloc.h), read back raw: L0, L1 and L2 descriptors.
    desc = k.mem.read(mm.pgd.pa + 8 * idx(va, 0), 8)
    assert desc & 3 == TABLE and desc & PXN_TABLE and not desc & UXN_TABLE


def test_dbm_is_what_makes_shared_pages_writable() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    va = 0x1000_0000
    map_page(k, mm, va, 0x777, k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED))
    r = hw(k, mm)
    assert ok(k.config.walker.translate(k.mem, r, va)).writable
    r["tcr_el1"] &= ~(HA | HD)  # a CPU without hardware dirty state: write faults first
    assert not ok(k.config.walker.translate(k.mem, r, va)).writable


def test_kernel_page_only_through_ttbr1() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    map_page(k, k.init_mm, KVA, 0x1_0000, k.PAGE_KERNEL_ROX)
    map_page(k, mm, 0x40_0000, 0x2_0000, k.vm_get_page_prot(VM_READ))
    late = k.mm_alloc()  # allocated after the kernel mapping exists
    assert late is not None
    w = k.config.walker
    t = ok(w.translate(k.mem, hw(k, mm), KVA))
    assert (t.pa, t.user, t.prot) == (0x1_0000 << 12, False, "rx")
    # Kernel tables carry UXNTable.
    desc = k.mem.read(k.init_mm.pgd.pa + 8 * idx(KVA, 0), 8)
    assert desc & 3 == TABLE and desc & UXN_TABLE and not desc & PXN_TABLE
    # No kernel-half cloning: the process pgds hold no entry for the kernel VA ...
    for p in (mm.pgd.pa, late.pgd.pa):
        assert k.mem.read(p + 8 * idx(KVA, 0), 8) == 0
    assert k.mem.read_bytes(late.pgd.pa, 4096) == bytes(4096)
    used = [i for i in range(512) if k.mem.read(mm.pgd.pa + 8 * i, 8)]
    assert used == [idx(0x40_0000, 0)]
    # ... so a CPU whose TTBR1 pointed at the process pgd would find nothing there.
    bogus = k.config.make_registers(mm.pgd.pa, mm.pgd.pa)
    assert isinstance(w.translate(k.mem, bogus, KVA), Fault)
    # Every leaf, in VA order: the user page first, then the kernel page (sign-extended VA).
    assert [(x.va, x.user) for x in w.leaves(k.mem, hw(k, mm))] == [
        (0x40_0000, True), (KVA, False)]
    before = k.mem.read_bytes(mm.pgd.pa, 4096)
    k.arch_sync_kernel_mappings(KVA, KVA + K4)
    assert k.mem.read_bytes(mm.pgd.pa, 4096) == before


@given(pfn=st.integers(0, (1 << 36) - 1), i=st.integers(0, 15))
@settings(max_examples=200, deadline=None)
def test_pfn_pte_round_trip(pfn: int, i: int) -> None:
    k = BOOTED
    prot = k.protection_map[i]
    pte = k.pfn_pte(pfn, prot)
    assert k.pte_pfn(pte) == pfn
    assert pte == pfn << 12 | prot  # __phys_to_pte_val(phys) is phys with 48-bit PAs
    assert k.pte_pgprot(pte) == prot
    pmd = k.pfn_pmd(pfn & ~511, prot)
    assert k.pmd_pfn(pmd) == pfn & ~511
    pud = k.pfn_pud(pfn & ~0x3FFFF, prot)
    assert k.pud_pfn(pud) == pfn & ~0x3FFFF


def test_pfn_beyond_phys_mask_refused() -> None:
    with pytest.raises(BadInput):
        BOOTED.pfn_pte(1 << 36, BOOTED.PAGE_KERNEL)


def test_dirty_and_write_dance() -> None:
    k = BOOTED
    clean = k.pfn_pte(0x99, pgprot_t(PAGE_SHARED))
    assert k.pte_write(clean) and not k.pte_dirty(clean) and clean & AP2
    # The MMU's DBM update: AP[2] (PTE_RDONLY) cleared on the first write.
    hw_dirty = pte_t(clean & ~AP2)
    assert k.pte_dirty(hw_dirty) and not hw_dirty & PTE_DIRTY
    wp = k.pte_wrprotect(hw_dirty)
    assert wp & PTE_DIRTY and wp & AP2 and not wp & DBM  # dirtiness moved to PTE_DIRTY
    assert k.pte_dirty(wp) and not k.pte_write(wp)
    assert not k.pte_wrprotect(clean) & PTE_DIRTY  # a clean page stays clean
    mc = k.pte_mkclean(k.pte_mkdirty(clean))
    assert mc & AP2 and not mc & PTE_DIRTY and not k.pte_dirty(mc) and k.pte_write(mc)
    md = k.pte_mkdirty(clean)
    assert not md & AP2 and md & PTE_DIRTY  # writable: the hardware view becomes dirty too
    ro = k.pfn_pte(0x99, pgprot_t(PAGE_READONLY))
    assert k.pte_mkdirty(ro) & AP2  # not writable: only the software bit
    mw = k.pte_mkwrite(ro)
    assert mw & DBM and mw & AP2 and not k.pte_dirty(mw)  # clean-writable, not hw-dirty
    mdw = k.pte_mkwrite(k.pte_mkdirty(ro))
    assert mdw & DBM and not mdw & AP2 and k.pte_dirty(mdw)
    # pte_modify keeps hardware dirtiness across a protection change.
    mod = k.pte_modify(hw_dirty, pgprot_t(PAGE_READONLY))
    assert mod & PTE_DIRTY and mod & AP2 and not mod & DBM and k.pte_pfn(mod) == 0x99
    back = k.pte_modify(mod, pgprot_t(PAGE_SHARED))
    assert k.pte_dirty(back) and not back & AP2  # sw-dirty + writable: hw-dirty again
    assert k.pte_young(clean) and not k.pte_young(k.pte_mkold(clean))
    assert k.pte_special(k.pte_mkspecial(clean)) and k.pte_mkspecial(clean) & PTE_SPECIAL


def test_wrprotect_and_young_in_memory() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    va = 0x2000_0000
    pte = map_page(k, mm, va, 0x55, k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED))
    w = k.config.walker
    assert ok(w.translate(k.mem, hw(k, mm), va)).writable
    spin_lock(k.ptep_lockptr(mm, pte))  # the raw pte operations below run under the ptl
    k.ptep_set_wrprotect(mm, va, pte)
    assert not ok(w.translate(k.mem, hw(k, mm), va)).writable
    assert k.ptep_test_and_clear_young(None, va, pte) == 1
    assert k.ptep_test_and_clear_young(None, va, pte) == 0
    assert isinstance(w.translate(k.mem, hw(k, mm), va), Translation)  # HA set: no AF fault
    r = hw(k, mm)
    r["tcr_el1"] &= ~HA
    assert "access flag" in fault(w.translate(k.mem, r, va)).reason
    # ptep_set_access_flags: AF back, and PTE_RDONLY the more permissive of old and new.
    entry = k.pte_mkyoung(k.pte_mkwrite(k.pte_mkdirty(k.ptep_get(pte))))  # a write fault
    vma = vm_area_struct(mm, va, va + k.PAGE_SIZE, VM_READ | VM_WRITE | VM_SHARED, 0)
    k.hw_tlb.flushes.clear()
    assert k.ptep_set_access_flags(vma, va, pte, entry, 1) == 1
    now = k.ptep_get(pte)
    assert now & AF and now & DBM and not now & AP2
    # arch/arm64/mm/fault.c: "Invalidate a stale read-only entry": if (dirty) flush_tlb_page
    assert k.hw_tlb.flushes == [(mm.asid, va, va + k.PAGE_SIZE, False)]
    assert k.ptep_set_access_flags(vma, va, pte, now, 1) == 0
    assert len(k.hw_tlb.flushes) == 1  # unchanged: no flush
    assert k.ptep_get_and_clear(mm, va, pte) == now and k.ptep_get(pte) == 0
    spin_unlock(k.ptep_lockptr(mm, pte))


def test_prot_none_is_present_but_invalid() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    va = 0x3000_0000
    pte = map_page(k, mm, va, 0x66, k.vm_get_page_prot(0))
    v = k.ptep_get(pte)
    assert not v & VALID and v & NG  # PTE_PRESENT_INVALID is nG when invalid
    assert k.pte_present(v) and k.pte_protnone(v) and not k.pte_none(v)
    assert fault(k.config.walker.translate(k.mem, hw(k, mm), va)).level == 3
    # mprotect back to PROT_READ: pte_modify makes it valid again, the pfn untouched.
    back = k.pte_modify(v, k.vm_get_page_prot(VM_READ))
    assert back & VALID and not k.pte_protnone(back) and k.pte_pfn(back) == 0x66
    spin_lock(k.ptep_lockptr(mm, pte))
    k.set_pte_at(mm, va, pte, back)
    spin_unlock(k.ptep_lockptr(mm, pte))
    t = ok(k.config.walker.translate(k.mem, hw(k, mm), va))
    assert (t.pa, t.prot, t.user) == (0x66 << 12, "r", True)


def test_pmd_mkhuge_and_blocks_through_ttbr1() -> None:
    k = boot()
    mm = k.init_mm
    va = 0xFFFF_8000_4000_0000  # 1G-aligned kernel VA
    pgd = k.pgd_offset_k(va)
    p4d = k.p4d_alloc(mm, pgd, va)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, va)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, va)
    assert pmd is not None
    a = k  # the arm64-only names below
    huge = a.pmd_mkhuge(a.pfn_pmd(0x8_0000, k.PAGE_KERNEL))
    assert huge & 3 == BLOCK  # table bit cleared, VALID kept
    assert k.pmd_leaf(huge) and k.pmd_bad(huge) and k.pmd_present(huge)
    invalid = pmd_t(0x8000_0000 | 0x2 | NG)  # present-invalid table-type entry
    assert a.pmd_mkhuge(invalid) & 3 == 0 and k.pmd_present(a.pmd_mkhuge(invalid))
    assert a.pmd_set_huge(pmd, 0x8000_0000, k.PAGE_KERNEL) == 1
    t = ok(k.config.walker.translate(k.mem, hw(k, mm), va + 0x1234))
    assert (t.pa, t.size, t.level, t.prot) == (0x8000_1234, M2, 2, "rw")
    assert a.pmd_clear_huge(pmd) == 1 and k.pmdp_get(pmd) == 0
    # pud_set_huge over a live table is refused (pgattr_change_is_safe: pfn changes).
    assert a.pud_set_huge(pud, 0xC000_0000, k.PAGE_KERNEL) == 0
    pud2 = k.pud_offset(p4d, va + G1)
    assert a.pud_set_huge(pud2, 0xC000_0000, k.PAGE_KERNEL_ROX) == 1
    assert k.pud_leaf(k.pudp_get(pud2))
    t = ok(k.config.walker.translate(k.mem, hw(k, mm), va + G1 + 0x5678))
    assert (t.pa, t.size, t.level, t.prot) == (0xC000_5678, G1, 1, "rx")


def test_populate_vm_bug_on() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    table = k.pte_alloc_one_kernel(k.init_mm)
    assert table is not None
    slot = PmdPtr(table.pa, 8)  # any writable 8-byte slot
    with pytest.raises(AssertionError, match="VM_BUG_ON"):
        k.pmd_populate(k.init_mm, slot, table)
    with pytest.raises(AssertionError, match="VM_BUG_ON"):
        k.pmd_populate_kernel(mm, slot, table)


def test_pgtables_bytes() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None and mm.pgtables_bytes == 0  # the pgd itself is not counted
    frames = len(k.mem)
    prot = k.vm_get_page_prot(VM_READ)
    map_page(k, mm, 0x40_0000, 1, prot)
    assert mm.pgtables_bytes == 3 * 4096  # pud (p4d folded, pud not) + pmd + pte
    map_page(k, mm, 0x40_1000, 2, prot)
    assert mm.pgtables_bytes == 3 * 4096
    map_page(k, mm, 0x40_0000 + G1, 3, prot)  # new L1 slot: pmd + pte
    assert mm.pgtables_bytes == 5 * 4096
    map_page(k, mm, 0x40_0000 + (1 << 39), 4, prot)  # new L0 slot: pud + pmd + pte
    assert mm.pgtables_bytes == 8 * 4096
    assert len(k.mem) == frames + 8


def test_pgd_alloc_free() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    pa = mm.pgd.pa
    assert k.mem.is_allocated(pa) and k.mem.read_bytes(pa, 4096) == bytes(4096)
    k.mmdrop(mm)  # pgd_free + check_mm
    assert not k.mem.is_allocated(pa)


@given(
    pages=st.dictionaries(
        st.integers(0, (1 << 36) - 1).map(lambda i: i << 12),
        st.tuples(st.integers(0, (1 << 36) - 1), st.sampled_from(["r", "rw", "rx"])),
        min_size=1, max_size=12,
    )
)
@settings(max_examples=40, deadline=None)
def test_walker_sees_exactly_what_the_legacy_api_mapped(
    pages: dict[int, tuple[int, str]]
) -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    flags = {"r": VM_READ, "rw": VM_READ | VM_WRITE | VM_SHARED, "rx": VM_READ | VM_EXEC}
    for va, (pfn, prot) in pages.items():
        map_page(k, mm, va, pfn, k.vm_get_page_prot(flags[prot]))
    r = hw(k, mm)
    got = {t.va: (t.pa >> 12, t.prot) for t in k.config.walker.leaves(k.mem, r)}
    assert got == dict(sorted(pages.items()))
    assert list(got) == sorted(got)
    for va, (pfn, prot) in pages.items():
        t = ok(k.config.walker.translate(k.mem, r, va | 0xABC))
        assert (t.pa, t.prot, t.user) == (pfn << 12 | 0xABC, prot, True)


@given(type_=st.integers(0, 31), offset=st.integers(0, (1 << 50) - 1),
       excl=st.booleans(), uffd=st.booleans())
@settings(max_examples=100, deadline=None)
def test_swap_entries(type_: int, offset: int, excl: bool, uffd: bool) -> None:
    """asm/pgtable.h layout: type in bits 10:6, offset in 61:12, exclusive bit 2, uffd-wp
    bit 3; bits 1:0 and 11 clear, so the entry is neither valid nor present-invalid."""
    k = BOOTED
    entry = k.swp_entry(type_, offset)
    pte = k.swp_entry_to_pte(entry)
    assert pte == type_ << 6 | offset << 12
    if excl:
        pte = k.pte_swp_mkexclusive(pte)
    if uffd:
        pte = k.pte_swp_mkuffd_wp(pte)
    assert pte & 0b100 == (0b100 if excl else 0) and pte & 0b1000 == (0b1000 if uffd else 0)
    assert not k.pte_present(pte) and (k.is_swap_pte(pte) or pte == 0)
    assert k.pte_swp_exclusive(pte) == excl and k.pte_swp_uffd_wp(pte) == uffd
    assert k.pte_to_swp_entry(pte) == entry


def test_pgprot_large_2_4k_is_pmd_mkhuge_undone() -> None:
    k = BOOTED
    for prot in (k.PAGE_KERNEL, k.PAGE_KERNEL_ROX, k.protection_map[VM_READ], k.PAGE_NONE):
        block = k.pmd_mkhuge(k.pfn_pmd(0x200, prot))
        assert k.pgprot_large_2_4k(k.pmd_pgprot(block)) == prot


ARM64_CONFIGS = [n for n, c in CONFIGS.items() if isinstance(c.walker, Arm64Walker)]


@pytest.mark.parametrize("name", [*ARM64_CONFIGS, "40-bit PA"])
def test_tlb_view_remembers_only_what_the_address_does_not_change(name: str) -> None:
    """The TLB's decoding (``structure``) remembers, per level, what a descriptor's bits
    other than its output address decode to.  Every descriptor must still decode as
    ``descriptor_view`` (which remembers nothing) decodes it: tables, pages and blocks,
    address bits above the PA size (Address size fault), a block's low address bits,
    AF, the permission bits."""
    import random

    c = CONFIGS["arm64-4k-48" if name == "40-bit PA" else name]
    w = Arm64Walker(12, 48, 40) if name == "40-bit PA" else c.walker
    assert isinstance(w, Arm64Walker)
    r = c.make_registers(0x10_0000, 0x20_0000)
    wp = w.setup(r)
    regions = [g for g in wp.regions if not g.disabled]
    rng = random.Random(name)
    for walk, region in zip(w.structure(r), regions, strict=True):
        for i in range(len(walk.levels)):
            level = region.start_level + i
            flags = ((1 << 12) - 1) | (((1 << 64) - 1) & ~((1 << 48) - 1))
            pool = [rng.getrandbits(64) & flags | 1 for _ in range(8)]
            middle = [0] + [rng.getrandbits(18) << region.granule for _ in range(3)]
            for _ in range(300):
                desc = (rng.getrandbits(48) & ~flags & ~((1 << 30) - 1)
                        | rng.choice(middle) & ((1 << 30) - 1) | rng.choice(pool))
                if rng.random() < 0.7:
                    desc &= ~(((1 << 48) - 1) & ~((1 << wp.pa_bits) - 1))  # below the PA size
                assert walk.decode(i, desc) == w.descriptor_view(region, wp, level, desc), (
                    f"{name} {walk.register} level {level}: {desc:#x}")
