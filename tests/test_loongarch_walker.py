"""The LoongArch64 walker (arches/loongarch/walker.py) against hand-built tables.

Where the facts come from: the LoongArch Reference Manual, Volume 1 (page walk via the
``LDDIR``/``LDPTE`` instructions, ``CSR.PGDL``/``PGDH``/``PWCL``/``PWCH``, the TLB entry
format), read alongside QEMU's ``target/loongarch/cpu_helper.c`` walker, and Linux v6.18's
``arch/loongarch/mm/tlb.c`` (``setup_ptwalker``) and ``tlbex.S`` (``handle_tlb_refill``) for
the register values.  No LoongArch emulator is available here (Unicorn 2.1.4 has no
LoongArch; drgn 0.3 refuses LoongArch address translation -- both proven at the end of this
module), so every expectation below is computed by hand from the manual, not checked by a
second machine.
"""

from __future__ import annotations

from typing import cast

import pytest

from arches.config import Fault, Translation
from arches.errors import BadInput, PhysMemError
from arches.loongarch import LOONGARCH64
from arches.loongarch.registers import pwctl
from arches.loongarch.walker import LoongarchWalker
from arches.memory import PhysMem
from arches.tlb import LEAF, NONE, TABLE

DMW = 0x9000_0000_0000_0000
V, D, G, H, HG = 1, 2, 1 << 6, 1 << 6, 1 << 12
PLV3 = 3 << 2
MAT_CC = 1 << 4
NX = 1 << 62
W = cast(LoongarchWalker, LOONGARCH64.walker)


class Tables:
    """One PGDL tree and one PGDH tree in 16 KiB frames; empty directory entries point at
    an invalid PMD table whose entries point at an all-zero PTE table (as Linux does)."""

    def __init__(self) -> None:
        self.mem = PhysMem(1 << 14, "little", 48)
        self.inv_pte = self.mem.alloc_frame()
        self.inv_pmd = self.mem.alloc_frame()
        self.fill(self.inv_pmd, DMW | self.inv_pte)
        self.pgdl = self.new_dir(self.inv_pmd)
        self.pgdh = self.new_dir(self.inv_pmd)

    def fill(self, table: int, value: int) -> None:
        for i in range(2048):
            self.mem.write(table + 8 * i, 8, value)

    def new_dir(self, empty: int) -> int:
        t = self.mem.alloc_frame()
        self.fill(t, DMW | empty)
        return t

    def regs(self, pgdl_va: bool = True) -> dict[str, int]:
        user = (DMW | self.pgdl) if pgdl_va else self.pgdl
        return LOONGARCH64.make_registers(user, DMW | self.pgdh)

    def map(self, root: int, va: int, pte: int) -> int:
        """Link a PMD and PT table under ``root`` for ``va`` (if missing), store ``pte``;
        return the PTE's address."""
        i3, i1, i0 = va >> 36 & 2047, va >> 25 & 2047, va >> 14 & 2047
        e3 = self.mem.read(root + 8 * i3, 8)
        if e3 & ((1 << 48) - 1) == self.inv_pmd:
            pmd = self.new_dir(self.inv_pte)
            self.mem.write(root + 8 * i3, 8, DMW | pmd)
        else:
            pmd = e3 & ((1 << 48) - 1)
        e1 = self.mem.read(pmd + 8 * i1, 8)
        if e1 & ((1 << 48) - 1) == self.inv_pte:
            pt = self.mem.alloc_frame()
            self.mem.write(pmd + 8 * i1, 8, DMW | pt)
        else:
            pt = e1 & ((1 << 48) - 1)
        self.mem.write(pt + 8 * i0, 8, pte)
        return pt + 8 * i0

    def map_huge(self, root: int, va: int, entry: int) -> None:
        i3, i1 = va >> 36 & 2047, va >> 25 & 2047
        e3 = self.mem.read(root + 8 * i3, 8)
        if e3 & ((1 << 48) - 1) == self.inv_pmd:
            pmd = self.new_dir(self.inv_pte)
            self.mem.write(root + 8 * i3, 8, DMW | pmd)
        else:
            pmd = e3 & ((1 << 48) - 1)
        self.mem.write(pmd + 8 * i1, 8, entry)


def test_geometry_matches_the_pwc_registers() -> None:
    """PWCL/PWCH as setup_ptwalker computes them for 16K pages, 3 levels: PT at 14/11,
    Dir1 (pmd) at 25/11, Dir2 (pud) width 0, Dir3 (pgd) at 36/11 -- and the walker's levels
    are the configuration's hardware levels."""
    pwcl, pwch = pwctl(14, 3)
    assert pwcl == 14 | 11 << 5 | 25 << 10 | 11 << 15
    assert pwch == 36 | 11 << 6
    p = W.setup(LOONGARCH64.make_registers(0x10_0000, 0x20_0000))
    assert p.dirs == (("Dir3", 36, 11), ("Dir1", 25, 11))
    assert (p.pt_base, p.pt_width) == (14, 11)
    assert [(lv.name, lv.shift, lv.entries) for lv in LOONGARCH64.hw_levels] == [
        ("Dir3", 36, 2048), ("Dir1", 25, 2048), ("PT", 14, 2048)]


def test_a_16k_page_and_its_rights() -> None:
    t = Tables()
    pa = 0x1234_5678_c000
    t.map(t.pgdl, 0x40_0000, pa | V | D | PLV3 | MAT_CC)
    r = W.translate(t.mem, t.regs(), 0x40_1abc)
    assert r == Translation(0x40_1abc, pa | 0x1abc, 1 << 14, 2, True, True, True)
    # D = 0: not writable (a store takes the page-modify exception); NX; PLV0: kernel only
    t.map(t.pgdl, 0x40_4000, pa | V | NX)
    r = W.translate(t.mem, t.regs(), 0x40_4000)
    assert isinstance(r, Translation)
    assert (r.writable, r.executable, r.user) == (False, False, False)


def test_v_clear_is_page_invalid() -> None:
    t = Tables()
    t.map(t.pgdl, 0x40_0000, 0x1000_0000 | D | PLV3)  # everything but V
    r = W.translate(t.mem, t.regs(), 0x40_0000)
    assert isinstance(r, Fault) and "page invalid" in r.reason and r.level == 2


def test_empty_entries_are_walked_through_to_an_invalid_pte() -> None:
    """No valid bit in a directory entry: an empty pgd entry is read as the address of the
    invalid PMD table, whose entry is read as the address of the all-zero PTE table."""
    t = Tables()
    r = W.translate(t.mem, t.regs(), 0x7f_1234_4000)
    assert isinstance(r, Fault) and "V = 0" in r.reason and r.level == 2
    # A walker told which tables are the empty ones says where the translation was lost:
    # at the Dir3 (pgd) entry pointing at the invalid PMD table.
    w = LoongarchWalker(48, 48, frozenset({t.inv_pmd, t.inv_pte}))
    r = w.translate(t.mem, t.regs(), 0x7f_1234_4000)
    assert isinstance(r, Fault) and r.level == 0 and "through Dir3" in r.reason
    t.map(t.pgdl, 0x40_0000, 0)
    r = w.translate(t.mem, t.regs(), 0x40_4000)  # a real PT, an empty PTE
    assert isinstance(r, Fault) and r.level == 2


def test_a_zero_directory_entry_is_not_empty_to_the_hardware() -> None:
    """A pgd entry of 0 points at physical address 0: the walk reads memory there (here an
    unallocated frame), it does not stop."""
    t = Tables()
    t.mem.write(t.pgdl, 8, 0)
    with pytest.raises(PhysMemError):
        W.translate(t.mem, t.regs(), 0x4000)


def test_a_huge_dir1_entry_maps_32m() -> None:
    """Bit 6 set in a Dir1 entry: LDDIR returns it as is, LDPTE splits it into two 16M
    halves; HG (bit 12) is the global bit, not an address bit."""
    t = Tables()
    t.map_huge(t.pgdl, 0x2_0000_0000, 0x4_0000_0000 | H | HG | V | D | PLV3)
    r = W.translate(t.mem, t.regs(), 0x2_0123_4567)
    assert r == Translation(0x2_0123_4567, 0x4_0123_4567, 1 << 25, 1, True, True, True)
    t.map_huge(t.pgdl, 0x4_0000_0000, 0x6_0000_0000 | H | D | PLV3)  # V clear
    assert isinstance(W.translate(t.mem, t.regs(), 0x4_0000_0000), Fault)


def test_pgdh_serves_bit_63_and_bit_47_is_not_translated() -> None:
    t = Tables()
    t.map(t.pgdh, 0xffff_0000_1400_0000, 0x2000_0000 | V | D | G)
    r = W.translate(t.mem, t.regs(), 0xffff_0000_1400_0010)
    assert isinstance(r, Translation) and r.pa == 0x2000_0010 and not r.user
    # Through PGDL the same indexes find nothing.
    assert isinstance(W.translate(t.mem, t.regs(), 0x1400_0010), Fault)
    # VA bit 47 is above the top index (bits 46:36): 0xffff8000_14000010 is the same entry.
    r2 = W.translate(t.mem, t.regs(), 0xffff_8000_1400_0010)
    assert isinstance(r2, Translation) and r2.pa == 0x2000_0010
    # Bits 63:48 must agree (VALEN = 48): an address error, whatever the tables say.
    f = W.translate(t.mem, t.regs(), 0x7fff_0000_1400_0010)
    assert isinstance(f, Fault) and "ADE" in f.reason


def test_root_registers_keep_only_palen_bits() -> None:
    """Linux writes kernel virtual addresses (0x9000...) into PGDL/PGDH; only bits
    PALEN-1:12 select the table, so the bare physical address walks the same tables."""
    t = Tables()
    t.map(t.pgdl, 0x40_0000, 0x1000_0000 | V | PLV3)
    a = W.translate(t.mem, t.regs(pgdl_va=True), 0x40_0000)
    b = W.translate(t.mem, t.regs(pgdl_va=False), 0x40_0000)
    assert a == b and isinstance(a, Translation)


def test_leaves_in_va_order_through_shared_invalid_tables() -> None:
    t = Tables()
    t.map(t.pgdl, 0x40_0000, 0x1000_0000 | V | PLV3)
    t.map(t.pgdl, 0x7f_ffff_c000, 0x1000_4000 | V | D | PLV3)
    t.map_huge(t.pgdl, 0x2_0000_0000, 0x4_0000_0000 | H | V | PLV3)
    t.map(t.pgdh, 0xffff_0000_1400_0000, 0x2000_0000 | V | D | G)
    t.map(t.pgdl, 0x40_8000, 0x1000_8000 | D | PLV3)  # V = 0: not a leaf
    got = [(x.va, x.pa, x.size) for x in W.leaves(t.mem, t.regs())]
    assert got == [(0x40_0000, 0x1000_0000, 1 << 14), (0x2_0000_0000, 0x4_0000_0000, 1 << 25),
                   (0x7f_ffff_c000, 0x1000_4000, 1 << 14),
                   (0xffff_0000_1400_0000, 0x2000_0000, 1 << 14)]
    for x in W.leaves(t.mem, t.regs()):
        assert W.translate(t.mem, t.regs(), x.va) == x


def test_structure_for_the_tlb() -> None:
    """Two walks (PGDL, PGDH); an entry pointing at a configured empty table is invalid to
    the TLB model, a real table is a table (its physical address), a V = 1 leaf a leaf."""
    t = Tables()
    w = LoongarchWalker(48, 48, frozenset({t.inv_pmd, t.inv_pte}))
    ul, kh = w.structure(t.regs())
    assert (ul.register, ul.table, ul.va_base) == ("pgdl", t.pgdl, 0)
    assert (kh.register, kh.table, kh.va_base) == ("pgdh", t.pgdh, 0xffff_0000_0000_0000)
    assert ul.decode(0, DMW | t.inv_pmd).kind == NONE
    assert ul.decode(1, DMW | t.inv_pte).kind == NONE
    real = ul.decode(1, DMW | 0x10_0000)
    assert (real.kind, real.target) == (TABLE, 0x10_0000)
    huge = ul.decode(1, 0x4_0000_0000 | H | V | PLV3)
    assert (huge.kind, huge.target) == (LEAF, 0x4_0000_0000)
    assert ul.decode(2, 0x1000_0000 | D | PLV3).kind == NONE
    assert ul.decode(2, 0x1000_0000 | V | PLV3).kind == LEAF
    # Without empty tables every directory entry is a table (what the hardware reads).
    assert W.structure(t.regs())[0].decode(1, DMW | 0x10_0000).kind == TABLE


def test_registers_refuse_what_they_cannot_hold() -> None:
    r = LOONGARCH64.make_registers(DMW | 0x10_0000, DMW | 0x20_0000)
    assert (r["pgdl"], r["pgdh"], r["crmd"]) == (DMW | 0x10_0000, DMW | 0x20_0000, 1 << 4)
    with pytest.raises(BadInput):
        LOONGARCH64.make_registers(0x10_0800, 0x20_0000)
    with pytest.raises(BadInput):
        W.setup({**r, "pwcl": r["pwcl"] | 1 << 30})  # 128-bit PTEs
    with pytest.raises(BadInput):
        W.setup({**r, "crmd": 1 << 3})  # direct address translation


def test_no_independent_mmu_for_loongarch() -> None:
    """Unicorn 2.1.4 has no LoongArch CPU, and drgn 0.3 has the architecture but refuses
    its address translation: the walker cannot be cross-checked by either."""
    uc = pytest.importorskip("unicorn.unicorn_const")
    assert not [n for n in dir(uc) if n.startswith("UC_ARCH_") and "LOONG" in n]
    from tests import drgn_reader
    if drgn_reader.available() is None:
        assert "not implemented for LoongArch64" in (drgn_reader._walks("LOONGARCH64") or "")
