"""``HardwareWalker.leaf_runs``: the leaves of a walk merged into runs, which the verifier
reads instead of one tuple per page, and the check it feeds (kernel leaves larger than their
mapping's page size).

A run must stand for exactly the leaves it merges: expanded page by page it gives back
:meth:`~arches.config.HardwareWalker.leaves`, in order, on every configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import pytest

from arches import CONFIGS
from arches.config import LeafRun, Translation, merge_leaves
from arches.errors import CheckFailed
from arches.memory import PhysMem
from arches.x86.walker import Ia32eWalker
from ptshim.pairs import example_rng, scenario_gen
from ptshim.scenario import MapOp
from ptshim.session import Session

P, RW, US, PS = 1 << 0, 1 << 1, 1 << 2, 1 << 7
TBL = P | RW | US
K4, M2 = 1 << 12, 1 << 21
REGS_4L = {"cr0": 0x8001_0001, "cr4": 0x0A0, "efer": 0xD00}


def expand(runs: Iterable[LeafRun]) -> list[tuple[int, int, int, bool, bool, bool]]:
    return [(r.va + off, r.pa + off, r.leaf_size, r.writable, r.executable, r.user)
            for r in runs for off in range(0, r.size, r.leaf_size)]


def flat(leaves: Iterable[Translation]) -> list[tuple[int, int, int, bool, bool, bool]]:
    return [(t.va, t.pa, t.size, t.writable, t.executable, t.user) for t in leaves]


@pytest.mark.parametrize("arch", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [0, 1])
def test_runs_are_exactly_the_leaves(arch: str, seed: int) -> None:
    """Machines built by the campaign's generator (huge leaves, splits, PROT_NONE, forks,
    anonymous memory): for every root, the runs expanded are the leaves, and a run never
    stops where the next leaf continues it inside one table it could have merged."""
    checked = 0
    for index in range(6):
        s = Session(arch, "legacy")
        rng = example_rng("leaf-runs", seed, arch, index)
        scenario = scenario_gen(arch, rng).scenario(rng.randint(1, 8), f"e{index}")
        for op in scenario.ops:
            try:
                s.apply(op)
            except Exception:  # an -ENOMEM or refusal: the machine is what it is
                break
        walker = s.config.walker
        for i in range(len(s.mms)):
            regs = s.registers(i)
            leaves = list(walker.leaves(s.k.mem, regs))
            runs = list(walker.leaf_runs(s.k.mem, regs))
            assert expand(runs) == flat(leaves)
            assert expand(merge_leaves(leaves)) == flat(leaves)
            checked += len(leaves)
    assert checked


def test_x86_runs_stop_where_the_output_address_would_carry() -> None:
    """An entry equal to the previous one plus 4 KiB continues a run only while the output
    address stays in its field: past MAXPHYADDR the same arithmetic sets a reserved bit,
    and the walker must decode it (SDM 4.5.4: an entry with a reserved bit maps nothing)."""
    mem = PhysMem(4096, "little", 40)
    walker = Ia32eWalker(phys_bits=40)
    tables = [mem.alloc_frame() for _ in range(4)]
    for lv in range(3):
        mem.write(tables[lv], 8, tables[lv + 1] | TBL)
    top = (1 << 40) - 2 * K4  # the last two pages below MAXPHYADDR
    for i in range(4):
        mem.write(tables[3] + 8 * i, 8, (top + i * K4) | P | RW)  # 2 and 3 set bit 40
    regs = {**REGS_4L, "cr3": tables[0]}
    leaves = list(walker.leaves(mem, regs))
    assert [t.pa for t in leaves] == [top, top + K4]
    runs = list(walker.leaf_runs(mem, regs))
    assert runs == [LeafRun(0, top, 2 * K4, K4, True, True, False)]


def test_x86_runs_merge_only_what_continues() -> None:
    """Same flags and contiguous output merge; a gap in VA, in PA or a different flag
    starts a new run (decoded)."""
    mem = PhysMem(4096, "little", 46)
    walker = Ia32eWalker(phys_bits=46)
    tables = [mem.alloc_frame() for _ in range(4)]
    for lv in range(3):
        mem.write(tables[lv], 8, tables[lv + 1] | TBL)
    base = 0x100000
    layout = {0: base, 1: base + K4, 2: base + 2 * K4,  # one run
              3: base + 4 * K4,  # PA gap
              4: base + 5 * K4 | US,  # another flag (U/S)
              6: base + 7 * K4}  # VA gap (entry 5 empty)
    for i, v in layout.items():
        mem.write(tables[3] + 8 * i, 8, v | P | RW)
    regs = {**REGS_4L, "cr3": tables[0]}
    runs = list(walker.leaf_runs(mem, regs))
    assert [(r.va, r.pa, r.size, r.user) for r in runs] == [
        (0, base, 3 * K4, False), (3 * K4, base + 4 * K4, K4, False),
        (4 * K4, base + 5 * K4, K4, True), (6 * K4, base + 7 * K4, K4, False)]
    assert expand(runs) == flat(walker.leaves(mem, regs))


def _kernel_map_with_pmd_leaves(n: int) -> Session:
    """A kernel mapping of ``n`` x 2 MiB in 4 KiB pages whose PTE tables are then replaced
    behind vmap's back by huge pmds of the same pfns and protection: the bug
    vmap's ``max_page_shift`` exists to prevent."""
    s = Session("x86_64", "legacy")
    k = cast(Any, s.k)
    va = s.limits.kernel_range[0] + (1 << 30)
    s.apply(MapOp(0, va, 1 << 32, n * M2, "rw", False, K4))
    for i in range(n):
        a = va + i * M2
        pmd = k.pmd_offset(k.pud_offset(k.p4d_offset(k.pgd_offset(k.init_mm, a), a), a), a)
        pte = k.pte_offset_kernel(pmd, a)
        prot = k.pte_pgprot(k.ptep_get(pte))
        k.lockdep_enabled = False  # the planted store itself is not what is under test
        k.set_pmd(pmd, k.pmd_mkhuge(k.pfn_pmd(((1 << 32) + i * M2) >> 12, prot)))
        k.lockdep_enabled = True
        k.flush_tlb_all()
    return s


@pytest.mark.parametrize("n", [1, 3])
def test_a_kernel_leaf_larger_than_its_mapping_is_reported_per_leaf(n: int) -> None:
    """The leaves of one run (``n`` contiguous huge pmds) are each named."""
    s = _kernel_map_with_pmd_leaves(n)
    with pytest.raises(CheckFailed) as e:
        s.verify()
    msg = str(e.value)
    assert msg.count("of size 0x200000 is larger than the mapping's page size 0x1000") == n
    va = s.limits.kernel_range[0] + (1 << 30)
    assert f"kernel leaf at {va:#x} " in msg and f"kernel leaf at {va + (n - 1) * M2:#x} " in msg
