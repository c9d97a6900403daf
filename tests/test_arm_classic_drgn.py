"""The ``arm`` tables read by drgn (0.3: ``libdrgn``'s 32-bit arm page-table iterator, what
``follow_phys`` uses on a classic-MMU vmcore), a second reader nobody on this project wrote.

drgn is given the emulated physical memory, ``SYMBOL(swapper_pg_dir)`` and a virtual segment
over the pgd (the emulated direct map is the identity), then asked for the physical address
of addresses the ``arm`` kernel mapped -- user pages in every young/dirty state, PROT_NONE,
vmalloc pages, sections -- and of the hand-built tables of
``tests/test_arm_classic_walker.py`` (supersections, large pages).  It must agree with the
Short-descriptor walker (:mod:`arches.arm.short`) on every one: the physical address where
the walker translates, a fault where it does not (drgn reads the *hardware* half: an old or
PROT_NONE page, whose hardware pte is zero, faults for it too).  drgn ignores permissions
and domains, so those are not compared.

The shared reader (``tests/drgn_reader.py``) maps classic ``arm`` too, so ``tests/test_drgn.py``
cross-checks random scenarios and the examples; this module keeps the hand-built tables
(supersections, large pages, sections) the kernel emulation never writes to user space.
"""

from __future__ import annotations

from typing import Any

import pytest

from arches.arm import ARM
from arches.config import Translation
from arches.memory import PhysMem
from legacy import VM_READ, VM_SHARED, VM_WRITE
from legacy.arm.pgtable_2level import ArmKernel
from legacy.mm.vmalloc import vmap_range
from tests.test_arm_classic_walker import LARGE, SECT, SMALL, Tables, ap_page, ap_sect

drgn: Any
try:  # optional dependency
    import drgn as _drgn
    import drgn.helpers.linux.mm  # noqa: F401 (loads follow_phys's module)

    drgn = _drgn
except ImportError:  # pragma: no cover - depends on the environment
    drgn = None


def follow_phys(prog: Any, pgd: int, va: int) -> int:
    """drgn's ``follow_phys`` helper (libdrgn's page-table iterator)."""
    return int(drgn.helpers.linux.mm._linux_helper_follow_phys(prog, pgd, va))

pytestmark = pytest.mark.skipif(drgn is None, reason="the optional 'drgn' package is missing")


def program(mem: PhysMem, pgds: list[int]) -> Any:
    def read(addr: int, n: int, _off: int, _phys: bool) -> bytes:
        out = b""
        while n:
            frame = addr & ~0xFFF
            c = min(n, 0x1000 - (addr - frame))
            out += mem.read_bytes(addr, c) if mem.is_allocated(frame) else bytes(c)
            addr, n = addr + c, n - c
        return out

    prog = drgn.Program(drgn.Platform(drgn.Architecture.ARM,
                                      drgn.PlatformFlags.IS_LITTLE_ENDIAN))
    prog.add_memory_segment(0, 1 << 32, read, physical=True)
    prog.set_linux_kernel_custom(
        f"OSRELEASE=6.18.0\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)={pgds[0]:x}\n", False)
    for pgd in pgds:  # the identity direct map: each pgd's VA is its PA
        prog.add_memory_segment(pgd, 0x4000, read, physical=False)
    return prog


def disagreements(mem: PhysMem, pgd: int, prog: Any, vas: list[int]) -> list[str]:
    regs = ARM.make_registers(pgd, pgd)
    out = []
    for va in vas:
        t = ARM.walker.translate(mem, regs, va)
        want = t.pa if isinstance(t, Translation) else None
        try:
            got: int | None = follow_phys(prog, pgd, va)
        except drgn.FaultError:
            got = None
        if got != want:
            out.append(f"{va:#x}: walker {want}, drgn {got}")
    return out


def test_drgn_reads_what_the_kernel_built() -> None:
    k = ArmKernel(ARM)
    kva = k.VMALLOC_START + 0x40_0000
    assert vmap_range(k, kva, kva + 3 * 4096, 0x5000_0000, k.PAGE_KERNEL, 12) == 0
    mm = k.mm_alloc()
    assert mm is not None
    k.lockdep_enabled = False
    k.hw_tlb.enabled = False
    va = 0x0040_0000
    pmd = k.pmd_off(mm, va + 0x10_0000)
    assert k._pte_alloc(mm, pmd) == 0
    pte = k.pte_offset_kernel(pmd, va)
    rw = k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED)
    entries = [k.pte_mkdirty(k.pfn_pte(0x40000, rw)), k.pfn_pte(0x40001, rw),
               k.pte_mkold(k.pfn_pte(0x40002, rw)), k.pfn_pte(0x40003, k.PAGE_NONE)]
    for i, e in enumerate(entries):
        k.set_pte_at(mm, va + i * 4096, pte + i, e)
    hi = va + 0x10_0000 + 0x7000  # in the second megabyte: the second hardware table
    k.set_pte_at(mm, hi, k.pte_offset_kernel(pmd, hi), k.pfn_pte(0x40010, rw))
    k.create_mapping_sections(k.PAGE_OFFSET + 0x10_0000, 0x20_0000, 0x20_0000,
                              k.MT_MEMORY_RW_SECT)
    prog = program(k.mem, [k.init_mm.pgd.pa, mm.pgd.pa])
    vas = [va + i * 4096 + 0x9A for i in range(5)] + [hi + 1, kva, kva + 0x2FFF, kva + 0x3000,
                                                      k.PAGE_OFFSET + 0x1F_FFFF, 0]
    assert disagreements(k.mem, mm.pgd.pa, prog, vas) == []
    kvas = [k.PAGE_OFFSET + 0x10_0000, k.PAGE_OFFSET + 0x2F_FFFF, k.PAGE_OFFSET, kva + 5]
    assert disagreements(k.mem, k.init_mm.pgd.pa, prog, kvas) == []


def test_drgn_reads_supersections_and_large_pages() -> None:
    t = Tables()
    t.l1_entry(0x0060_0000, 0x4560_0000 | SECT | ap_sect(0b011))
    for i in range(16):
        t.l1_entry(0x0100_0000 + (i << 20), 0x7F00_0000 | SECT | 1 << 18 | ap_sect(0b001))
    tab = t.table(0x0200_0000, 2)
    for i in range(16):
        t.l2_entry(tab, 0x0201_0000 + (i << 12), 0x5550_0000 | LARGE | ap_page(0b011))
    t.l2_entry(tab, 0x0200_0000, 0x5560_0000 | SMALL | ap_page(0b011))
    prog = program(t.mem, [t.l1])
    vas = [0x0065_4321, 0x0100_0000, 0x01AB_CDEF, 0x0201_0000, 0x0201_ABCD, 0x0200_0FFF,
           0x0202_0000, 0x0300_0000]
    assert disagreements(t.mem, t.l1, prog, vas) == []
