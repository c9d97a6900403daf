"""Cross-check the radix walker with an MMU nobody on this project wrote: Unicorn 2.1.4's
POWER10 (QEMU's ``ppc_radix64_xlate``), through ``tests/independent_mmu_ppc64.py``.

Machines are built by the emulated kernel (a session with user pages, a 2M THP-sized leaf,
a read-only and a PROT_NONE range, kernel vmalloc pages), exported as ``ptshim run
--export`` writes them, and every probed address must translate alike: physical address,
write, execute and user access -- or fault in both."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import legacy
from arches.config import Fault
from ptshim.export import export
from ptshim.scenario import MapOp
from ptshim.session import Session
from tests import independent_mmu as imm

ARCHES = ["ppc64-radix-4k", "ppc64-radix-64k"]
pytestmark = [
    pytest.mark.skipif(imm.available() is not None, reason=imm.available() or ""),
    pytest.mark.skipif(not set(ARCHES) <= set(legacy.arch_names()),
                       reason="staged: run with PTSHIM_STAGED=ppc64-radix-4k,ppc64-radix-64k"),
]


def machine(arch: str) -> Session:
    s = Session(arch)
    p = s.limits.page_size
    ops = [
        MapOp(0, 0x1000_0000, 0x2000_0000, 4 * p, "rw", None, None),
        MapOp(1, 0x1100_0000, 0x2100_0000, 2 * p, "r", None, None),
        MapOp(2, 0x1200_0000, 0x2200_0000, 2 * p, "none", None, None),
        MapOp(3, 0x4000_0000, 0x2400_0000, 1 << 21, "rwx", None, 1 << 21),
        MapOp(4, 0xC008_0000_0010_0000, 0x2300_0000, 2 * p, "rw", None, None),
        MapOp(5, 0xC008_0000_0100_0000, 0x2500_0000, 2 * p, "rx", None, None),
    ]
    for op in ops:
        s.apply(op)
    return s


@pytest.mark.parametrize("arch", ARCHES)
def test_walker_and_unicorn_agree(arch: str, tmp_path: Path) -> None:
    s = machine(arch)
    m = export(s, tmp_path)
    mmu = imm.load(m, (tmp_path / "phys.bin").read_bytes())
    regs = s.registers()
    rng = random.Random(arch)
    vas = [0x1000_0000, 0x1000_0123, 0x1100_0000, 0x1200_0000, 0x1300_0000, 0x4000_0000,
           0x401F_FFFF, 0x4020_0000, 0xC008_0000_0010_0000, 0xC008_0000_0100_0008,
           0xC008_0000_0200_0000, 0x0010_0000_0000_0000, 0x4000_0000_0000_0000]
    vas += [rng.randrange(0x1000_0000, 0x1000_0000 + 4 * s.limits.page_size) for _ in range(8)]
    checked = 0
    for va in vas:
        t = s.config.walker.translate(s.k.mem, regs, va)
        p = mmu.probe(va)
        if isinstance(t, Fault):
            assert p.pa is None, f"{va:#x}: walker {t.reason}, Unicorn {p}"
            continue
        assert (p.pa, p.writable, p.executable, p.user) == (t.pa, t.writable, t.executable,
                                                             t.user), f"{va:#x}: {t} vs {p}"
        checked += 1
    assert checked >= 8


def test_unicorn_sees_a_broken_root(tmp_path: Path) -> None:
    """The harness has teeth: a process-table entry with the wrong RPDS (Unicorn then
    indexes the root with other EA bits) no longer translates the user page."""
    s = machine("ppc64-radix-4k")
    m = export(s, tmp_path)
    m["registers"]["prte_pidr"] = int(m["registers"]["prte_pidr"]) - 1  # RPDS 13 -> 12
    mmu = imm.load(m, (tmp_path / "phys.bin").read_bytes())
    assert mmu.probe(0x1000_0000).pa != 0x2000_0000
