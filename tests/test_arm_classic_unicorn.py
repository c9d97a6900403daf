"""The ``arm`` walker against an MMU nobody on this project wrote: the hand-built tables of
``tests/test_arm_classic_walker.py`` (every descriptor kind, every AP encoding, XN, PXN,
PXNTable, domains in every DACR state) loaded into Unicorn's Cortex-A15
(``tests/independent_mmu_arm.py``), which must agree with :mod:`arches.arm.short` address by
address on the physical address, writability, executability and user access -- including
what Linux never builds (supersections, large pages, manager domains).  Exports of real
sessions are cross-checked by ``tests/test_independent_mmu.py`` under
``PTSHIM_STAGED=arm``; one is repeated here so that it runs unstaged.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from arches.arm import ARM
from arches.arm.short import ShortWalker
from arches.config import Translation
from legacy import VM_READ, VM_SHARED, VM_WRITE
from legacy.arm.pgtable_2level import ArmKernel
from legacy.mm.vmalloc import vmap_range
from tests import independent_mmu as imm
from tests.independent_mmu_arm import UnicornArmShortMmu
from tests.test_arm_classic_walker import (
    LARGE,
    SECT,
    SMALL,
    Tables,
    ap_page,
    ap_sect,
    domain,
)

pytestmark = pytest.mark.skipif(imm.available() is not None, reason=imm.available() or "")


def machine_of(t: Tables) -> tuple[dict[str, Any], bytes]:
    frames, data = [], b""
    for pa, raw in t.mem.image():
        frames.append(pa)
        data += raw
    return {"arch": "arm", "registers": t.regs, "frame_size": 4096, "frames": frames,
            "mappings": []}, data


def agree(t: Tables, vas: list[int]) -> list[str]:
    """Walker vs Unicorn on every VA; the disagreements."""
    machine, phys = machine_of(t)
    mmu = UnicornArmShortMmu(machine, phys)
    out = []
    for va in vas:
        r = ShortWalker().translate(t.mem, t.regs, va)
        p = mmu.probe(va)
        want = ((r.pa, r.writable, r.executable, r.user) if isinstance(r, Translation)
                else (None, None, None, None))
        got = (p.pa, p.writable, p.executable, p.user)
        if got != want:
            out.append(f"{va:#x}: walker {want}, Unicorn {got}")
    return out


def build() -> tuple[Tables, list[int]]:
    t = Tables()
    vas = []
    # every AP encoding, in a client domain, on small pages; with and without XN
    tab = t.table(0x0040_0000, 0, domain(1))
    for ap in range(8):
        for xn in (0, 1):
            va = 0x0040_0000 + (2 * ap + xn) * 0x1000
            t.l2_entry(tab, va, 0x1000_0000 + (2 * ap + xn) * 0x1000 | SMALL | ap_page(ap) | xn)
            vas.append(va + 0x234)
    # PXNTable over kernel and user pages
    pxnt = t.table(0x0050_0000, 1, domain(0) | 1 << 2)
    t.l2_entry(pxnt, 0x0050_0000, 0x1100_0000 | SMALL | ap_page(0b001))
    t.l2_entry(pxnt, 0x0050_1000, 0x1100_1000 | SMALL | ap_page(0b011))
    vas += [0x0050_0000, 0x0050_1FFF]
    # sections: plain, PXN (type 0b11), XN, read-only user
    t.l1_entry(0x0060_0000, 0x2000_0000 | SECT | ap_sect(0b001))
    t.l1_entry(0x0070_0000, 0x2010_0000 | 0b11 | ap_sect(0b001))
    t.l1_entry(0x0080_0000, 0x2020_0000 | SECT | ap_sect(0b011) | 1 << 4)
    t.l1_entry(0x0090_0000, 0x2030_0000 | SECT | ap_sect(0b111))
    vas += [0x0060_0000, 0x0065_4321, 0x0070_0004, 0x0080_0008, 0x009F_FFFF]
    # a supersection and a large page
    for i in range(16):
        t.l1_entry(0x0100_0000 + (i << 20), 0x7F00_0000 | SECT | 1 << 18 | ap_sect(0b011))
    big = t.table(0x0200_0000, 2)
    for i in range(16):
        t.l2_entry(big, 0x0201_0000 + (i << 12), 0x5550_0000 | LARGE | ap_page(0b001))
    vas += [0x0100_0000, 0x01AB_CDEF, 0x0201_0000, 0x0201_ABCD, 0x0202_0000]
    # domains: 5 manager (AP 000 ignored), 6 no access
    t.l1_entry(0x0300_0000, 0x3000_0000 | SECT | ap_sect(0b000) | domain(5))
    t.l1_entry(0x0310_0000, 0x3010_0000 | SECT | ap_sect(0b011) | domain(6))
    t.regs["dacr"] = 0x55 | 3 << 10
    vas += [0x0300_0000, 0x0310_0000]
    # holes
    vas += [0x0000_0000, 0x0040_F000, 0xC000_0000]
    return t, vas


def test_hand_built_tables_translate_alike() -> None:
    t, vas = build()
    assert agree(t, vas) == []


def test_the_check_can_fail() -> None:
    """A walker bug planted in the tables' interpretation is seen: the same tables with a
    register the walker reads differently (DACR domain 6 made client behind Unicorn's
    back) disagree."""
    t, vas = build()
    machine, phys = machine_of(t)
    mmu = UnicornArmShortMmu(machine, phys)
    t.regs["dacr"] |= 1 << 12  # only the walker sees domain 6 as client
    r = ShortWalker().translate(t.mem, t.regs, 0x0310_0000)
    assert isinstance(r, Translation) and mmu.probe(0x0310_0000).pa is None


def test_a_kernel_session_translates_alike() -> None:
    """Tables the ``arm`` kernel built (user pages young/old, clean/dirty, read-only,
    PROT_NONE; a vmalloc mapping), exported as registers + frames, agree."""
    k = ArmKernel(ARM)
    mm = k.mm_alloc()
    assert mm is not None
    k.lockdep_enabled = False
    k.hw_tlb.enabled = False
    va, pfn = 0x0040_0000, 0x40000
    pmd = k.pmd_off(mm, va)
    assert k._pte_alloc(mm, pmd) == 0
    pte = k.pte_offset_kernel(pmd, va)
    rw = k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED)
    entries = [k.pte_mkdirty(k.pfn_pte(pfn, rw)), k.pfn_pte(pfn + 1, rw),
               k.pte_mkold(k.pfn_pte(pfn + 2, rw)), k.pfn_pte(pfn + 3, k.PAGE_NONE),
               k.pfn_pte(pfn + 4, k.vm_get_page_prot(VM_READ))]
    for i, e in enumerate(entries):
        k.set_pte_at(mm, va + i * 4096, pte + i, e)
    kva = k.VMALLOC_START
    assert vmap_range(k, kva, kva + 2 * 4096, 0x5000_0000, k.PAGE_KERNEL_ROX, 12) == 0
    t = Tables()
    t.mem, t.regs = k.mem, ARM.make_registers(mm.pgd.pa, mm.pgd.pa)
    probes = [va + i * 4096 + random.Random(i).randrange(4096) for i in range(6)]
    assert agree(t, probes + [kva, kva + 4096 + 17]) == []
