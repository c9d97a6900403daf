"""The ``arm-lpae`` walker's corner cases against Unicorn's Cortex-A15 (QEMU's own
Long-descriptor walker, :mod:`tests.independent_mmu_arm_lpae`): hand-built descriptors,
each probed by both, so that a fact the walker took from the Arm ARM (B3.6) is also what an
implementation nobody on this project wrote does.  Skipped without ``unicorn``.
"""

from __future__ import annotations

from typing import Any

import pytest

from arches.arm.lpae import ARM_LPAE
from arches.config import Translation
from arches.memory import PhysMem
from tests import independent_mmu as imm
from tests.independent_mmu_arm_lpae import UnicornArmLpaeMmu

pytestmark = pytest.mark.skipif(imm.available() is not None, reason=imm.available() or "")

VALID, TABLE, AP1, AP2, AF = 1 << 0, 1 << 1, 1 << 6, 1 << 7, 1 << 10
PXN, XN, PXN_TABLE, XN_TABLE = 1 << 53, 1 << 54, 1 << 59, 1 << 60
AP_TABLE_NO_PL0, AP_TABLE_RO = 1 << 61, 1 << 62
PAGE = VALID | TABLE | AF
T = 0x5000_0000  # target PAs: no frame there


def machine() -> tuple[PhysMem, dict[str, Any], int, int]:
    """A pgd (32 bytes into a frame) and a TTBR1 pmd, with the registers Linux loads."""
    mem = PhysMem(4096, "little", 40)
    pgd_frame = mem.alloc_frame()
    swapper = mem.alloc_frame()
    for _ in range(4):
        mem.alloc_frame()  # swapper_pg_dir's pmds: TTBR1 = swapper + 4 pages
    pgd = pgd_frame + 64
    return mem, ARM_LPAE.make_registers(pgd, swapper), pgd, swapper + 4 * 4096


def table(mem: PhysMem, at: int, desc_bits: int = 0) -> int:
    t = mem.alloc_frame()
    mem.write(at, 8, t | VALID | TABLE | desc_bits)
    return t


CASES: list[tuple[str, int, int, int]] = [
    # name, L1 table attributes, L3 page descriptor bits, L2 table attributes
    ("user rw", 0, PAGE | AP1, 0),
    ("user ro", 0, PAGE | AP1 | AP2, 0),
    ("user pxn is still user-executable", 0, PAGE | AP1 | PXN, 0),
    ("user xn", 0, PAGE | AP1 | XN, 0),
    ("kernel pxn", 0, PAGE | PXN, 0),
    ("access flag clear", 0, VALID | TABLE | AP1, 0),
    ("reserved level-3 encoding", 0, VALID | AF | AP1, 0),
    ("APTable no PL0", AP_TABLE_NO_PL0, PAGE | AP1, 0),
    ("APTable read-only", 0, PAGE | AP1, AP_TABLE_RO),
    ("XNTable", XN_TABLE, PAGE | AP1, 0),
    ("PXNTable on a kernel page", 0, PAGE, PXN_TABLE),
    ("40-bit output address", 0, PAGE | AP1 | 0xAB_0000_0000, 0),
]


@pytest.mark.parametrize(("name", "l1_attr", "leaf", "l2_attr"), CASES,
                         ids=[c[0] for c in CASES])
def test_walker_and_cortex_a15_agree(name: str, l1_attr: int, leaf: int, l2_attr: int) -> None:
    mem, regs, pgd, _ = machine()
    va = 0x4020_3000
    l2 = table(mem, pgd + 8 * 1, l1_attr)
    l3 = table(mem, l2 + 8 * 1, l2_attr)
    out = leaf & 0xFF_FFFF_F000 or T
    mem.write(l3 + 8 * 3, 8, out | leaf & ~0xFF_FFFF_F000)
    frames = mem.allocated_frames()
    phys = b"".join(mem.read_bytes(f, 4096) for f in frames)
    mmu = UnicornArmLpaeMmu({"arch": "arm-lpae", "registers": regs, "frames": frames,
                             "frame_size": 4096, "mappings": []}, phys)
    for probe_va in (va, va + 0xABC):
        t = ARM_LPAE.walker.translate(mem, regs, probe_va)
        p = mmu.probe(probe_va)
        if isinstance(t, Translation):
            assert (p.pa, p.writable, p.executable, p.user) == (
                t.pa, t.writable, t.executable, t.user), name
        else:
            assert p.pa is None, f"{name}: walker faults ({t.reason}), the CPU reaches {p.pa}"


def test_kernel_block_through_ttbr1_and_the_top_gib_split() -> None:
    """TTBR1 (T1SZ = 2) starts at level 2: a 2M block in its table maps 0xC0000000; the
    pgd's slot 3 (what Linux copies from swapper_pg_dir) is not used by either."""
    mem, regs, pgd, kpmd = machine()
    mem.write(kpmd + 8 * 2, 8, 0x6000_0000 | VALID | AF)  # VA 0xC0400000, PL1 RW
    mem.write(pgd + 8 * 3, 8, 0x7000_0000 | VALID | AF | AP1)  # a 1G block, ignored
    mem.write(pgd + 8 * 0, 8, 0x1_0000_0000 | VALID | AF | AP1 | AP2)  # a 1G user block
    frames = mem.allocated_frames()
    phys = b"".join(mem.read_bytes(f, 4096) for f in frames)
    mmu = UnicornArmLpaeMmu({"arch": "arm-lpae", "registers": regs, "frames": frames,
                             "frame_size": 4096, "mappings": []}, phys)
    lo, hi = mmu.harness_span
    for va in (0xC040_1234, 0xC000_0000, 0x0012_3454, 0x3FFF_FFF0):
        if lo <= va < hi:
            continue
        t = ARM_LPAE.walker.translate(mem, regs, va)
        p = mmu.probe(va)
        got = None if p.pa is None else (p.pa, p.writable, p.executable, p.user)
        want = (t.pa, t.writable, t.executable, t.user) if isinstance(t, Translation) else None
        assert got == want, hex(va)
    assert mmu.probe(0xC040_1234).pa == 0x6000_1234
    assert mmu.probe(0x0012_3454).pa == 0x1_0012_3454
