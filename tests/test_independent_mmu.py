"""Cross-check exports with an MMU nobody on this project wrote (``tests/independent_mmu.py``:
Unicorn's x86, AArch64 and RISC-V CPUs, i.e. QEMU's page walkers; POWER, 32-bit Arm and
s390x in ``tests/independent_mmu_*.py``).  Optional: skipped when ``unicorn`` is not
installed, and for configurations it cannot run.  s390x: Unicorn has no EDAT (1 MiB
segment frames are handed to it as page tables, see ``tests/independent_mmu_s390.py``) and
no instruction-execution protection, so executability is not checked there.

For seeded random scenarios (maps of every leaf size the kernel allows, in both halves;
unmaps and protects of random sub-ranges, which split huge leaves) and for the scenarios
of ``examples/``, the session's machine is exported exactly as ``ptshim run --export``
writes it, loaded into the emulated CPU, and:

- every exported mapping row (first byte, last byte, one random byte) translates to the
  row's PA with the row's writability, executability and user bit (arm64: the writability
  of DBM-clean pages is not checked, Unicorn has no hardware dirty state -- such a page
  must be one the model calls writable);
- every run of the scenario *model* (bookkeeping, not read from the tables; anonymous pages
  where the session finds them, COW-shared ones read-only) translates the same way at its
  first, last and random pages; PROT_NONE extents and empty fork copies fault;
- addresses the model does not map fault: random ones over the whole address space and the
  bytes just before/after each extent.

``INDEPENDENT_MMU_SCENARIOS`` (default 12) sets the number of random scenarios per
configuration.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from arches.errors import BadInput
from legacy import arch_names
from ptshim.export import export
from ptshim.model import PROTS
from ptshim.scenario import MapOp, ProtectOp, UnmapOp, load_scenario, scenario_paths
from ptshim.session import Session
from tests import independent_mmu as imm

pytestmark = pytest.mark.skipif(imm.available() is not None,
                                reason=imm.available() or "")

ARCHES = arch_names()
SCENARIOS = int(os.environ.get("INDEPENDENT_MMU_SCENARIOS", "12"))
MAX_OPS = 12
PA_LO = 0x1000_0000
"""Target PAs start at 256 MiB: clear of the page-table frames (allocated from 16 MiB)."""
EMULATOR_PA_BITS = 39
"""Below QEMU TCG's 40 physical address bits (a PA beyond them is a reserved-bit fault)."""
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# -- scenarios -------------------------------------------------------------------------------


def anchors(lo: int, hi: int, align: int) -> list[int]:
    """Places to map near: the bottom, the middle and the top of ``[lo, hi)``."""
    out = [lo, lo + (hi - lo) // 2, hi - 8 * align]
    return [a - a % align for a in out if lo <= a - a % align < hi]


def random_session(arch: str, seed: int) -> Session:
    rng = random.Random(f"{arch}/{seed}")
    s = Session(arch)
    lim = s.limits
    base = lim.page_size
    pa_hi = 1 << min(EMULATOR_PA_BITS, lim.phys_bits, imm.pa_bits(arch) or EMULATOR_PA_BITS)
    for i in range(rng.randint(3, MAX_OPS)):
        extents = list(s.model)
        kind = rng.choice(("map",) * 3 + (("unmap", "protect") if extents else ()))
        op: MapOp | UnmapOp | ProtectOp
        if kind == "map":
            user = rng.random() < 0.6
            lo, hi = lim.user_range if user else lim.kernel_range
            sizes = lim.user_leaf_sizes if user else lim.kernel_leaf_sizes
            ps = rng.choice(sizes)
            n = rng.randint(1, 6) if ps == base else rng.randint(1, 2)
            va = rng.choice(anchors(lo, hi, ps)) + rng.randrange(4) * ps
            if va + n * ps > hi or pa_hi - PA_LO < (n + 1) * ps:
                continue
            pa = rng.randrange(PA_LO, pa_hi - n * ps) // ps * ps
            prot = rng.choice(PROTS if ps == base else PROTS[1:])
            op = MapOp(i, va, pa, n * ps, prot, None, ps)
        else:
            e = rng.choice(extents)
            pages = e.size // base
            first = rng.randrange(pages) if rng.random() < 0.7 else 0
            count = rng.randint(1, min(8, pages - first)) if first else pages
            va, size = e.va + first * base, count * base
            op = (UnmapOp(i, va, size) if kind == "unmap"
                  else ProtectOp(i, va, size, rng.choice(PROTS)))
        try:
            s.apply(op)
        except BadInput:
            continue  # overlaps, or a combination the kernel refuses: draw again
    s.verify()  # the in-house oracle agrees first
    return s


def export_and_load(s: Session, outdir: Path) -> tuple[dict[str, Any], imm.Mmu]:
    machine = export(s, outdir)
    try:
        mmu = imm.load(machine, (outdir / "phys.bin").read_bytes())
    except imm.Unsupported as e:
        pytest.skip(str(e))
    return machine, mmu


# -- checks ----------------------------------------------------------------------------------


class Checker:
    def __init__(self, s: Session, machine: dict[str, Any], mmu: imm.Mmu,
                 rng: random.Random) -> None:
        self.s, self.machine, self.mmu, self.rng = s, machine, mmu, rng
        self.problems: list[str] = []
        self.probes = 0
        self.ambiguous = 0
        self.write_unchecked = 0
        """Probes of DBM-clean pages, whose writability Unicorn cannot show (no HD)."""
        self.exec_unchecked = 0
        """Probes whose executability the CPU cannot show (s390x: no IEP in Unicorn)."""
        fs = machine["frame_size"]
        self.frames = [(pa, pa + fs) for pa in machine["frames"]]

    def _in_frames(self, pa: int, size: int) -> bool:
        return any(pa < hi and lo < pa + size for lo, hi in self.frames)

    def _in_harness(self, va: int) -> bool:
        lo, hi = self.mmu.harness_span
        return lo <= va < hi

    def expect(self, what: str, va: int, pa: int | None, prot: str = "", user: bool = False
               ) -> None:
        if self._in_harness(va):
            return
        try:
            p = self.mmu.probe(va)
        except imm.Ambiguous:
            self.ambiguous += 1
            return
        self.probes += 1
        if pa is None:
            if p.pa is not None:
                self.problems.append(f"{what}: {va:#x} should fault, the CPU reaches "
                                     f"{p.pa:#x}")
            return
        writable = p.writable
        if writable is None:  # arm64 DBM-clean page: writable to the hardware with TCR.HD
            self.write_unchecked += 1
            writable = True  # ... and only a mapping the model calls writable may be one
        executable = p.executable
        if executable is None:  # s390x: the harness cannot ask (tests/independent_mmu_s390)
            self.exec_unchecked += 1
            executable = "x" in prot
        got = (p.pa, writable, executable, p.user)
        want = (pa, "w" in prot, "x" in prot, user)
        if got != want:
            def show(t: tuple[Any, ...]) -> str:
                pa_, w, x, u = t
                return (f"pa {pa_:#x} w={w} x={x} user={u}" if pa_ is not None
                        else f"fault (vector {p.fault})")
            self.problems.append(f"{what}: {va:#x}: CPU {show(got)}, expected {show(want)}")

    def rows(self) -> None:
        for r in self.machine["mappings"]:
            if self._in_frames(r["pa"], r["size"]):
                self.ambiguous += 1
                continue
            for off in {0, r["size"] - 1, self.rng.randrange(r["size"])}:
                self.expect("exported row", r["va"] + off, r["pa"] + off, r["prot"], r["user"])

    def model(self) -> None:
        """The exported process's model, as the session expects the hardware to show it
        (``expected_runs``: anonymous pages where their ptes put them, COW-shared ones
        write-protected); PROT_NONE extents and empty fork copies fault."""
        base = self.s.limits.page_size
        anon_pa, _ = self.s.anon_pages()
        for e in self.s.model:
            if e.has_leaves():
                continue
            pages = e.size // base
            for page in sorted({0, pages - 1, self.rng.randrange(pages)}):
                self.expect("PROT_NONE extent" if e.prot == "none" else "empty extent",
                            e.va + page * base + self.rng.randrange(base), None)
        for r in self.s.expected_runs(anon_pa=anon_pa):
            pages = r.size // base
            picks = {0, pages - 1} | {self.rng.randrange(pages) for _ in range(3)}
            for page in sorted(picks):
                off = page * base + self.rng.randrange(base)
                if not self._in_frames(r.pa + off, 1):
                    self.expect("model extent", r.va + off, r.pa + off, r.prot, r.user)

    def unmapped(self, n: int = 200) -> None:
        bits = self.s.limits.word_bits
        model = self.s.model
        vas = [self.rng.getrandbits(bits) for _ in range(n)]
        for e in model:
            vas += [e.va - 1, e.end]
        for va in vas:
            va &= (1 << bits) - 1
            if not model.overlapping(va, va + 1):
                self.expect("unmapped address", va, None)

    def report(self) -> None:
        assert not self.problems, (
            f"{self.s.config.name}: the independent MMU disagrees ({len(self.problems)}): "
            + "; ".join(self.problems[:8]))


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_random_scenarios_translate_alike(arch: str, tmp_path: Path) -> None:
    probes = 0
    for seed in range(SCENARIOS):
        s = random_session(arch, seed)
        machine, mmu = export_and_load(s, tmp_path / str(seed))
        c = Checker(s, machine, mmu, random.Random(seed))
        c.rows()
        c.model()
        c.unmapped()
        c.report()
        assert c.ambiguous == 0, "random scenarios keep target PAs clear of the frames"
        probes += c.probes
        s.teardown()
    assert probes > 100 * SCENARIOS


@pytest.mark.parametrize("arch", ARCHES)
def test_examples_translate_alike(arch: str, tmp_path: Path) -> None:
    ran = 0
    for path in scenario_paths(EXAMPLES):
        s = Session(arch)
        try:
            s.run(load_scenario(path))
        except BadInput:
            continue  # not valid on this configuration (e.g. 64-bit kernel addresses)
        machine, mmu = export_and_load(s, tmp_path / path.stem)
        c = Checker(s, machine, mmu, random.Random(path.stem))
        c.rows()
        c.model()
        c.unmapped(50)
        c.report()
        ran += 1
    assert ran


@pytest.mark.parametrize("corrupt", ["none", "pte-frame", "pte-unprotect", "segment-frame",
                                     "segment-unprotect"])
def test_s390x_cpu_sees_a_corrupted_entry(corrupt: str, tmp_path: Path) -> None:
    """The s390x harness (tests/independent_mmu_s390.py) has teeth: a 4 KiB and a 1 MiB
    read-only user mapping agree as exported (the segment frame through the harness's
    EDAT-less page table), and one bit changed in the exported page-table entry or
    segment-table entry (Unicorn's copy only: the session's own checks cannot see it) makes
    the CPU disagree."""
    s = Session("s390x")
    small, huge = 0x10_0000_0000, 0x20_0000_0000
    s.apply(MapOp(0, small, PA_LO, 4 * 4096, "r", None, 4096))
    s.apply(MapOp(1, huge, PA_LO + (1 << 20), 1 << 20, "r", None, 1 << 20))
    machine = export(s, tmp_path)
    phys = bytearray((tmp_path / "phys.bin").read_bytes())
    k, mm = s.k, s.mm
    if corrupt.startswith("pte"):
        entry = k.pte_offset_kernel(k.pmd_off(mm, small), small).pa
    else:
        entry = k.pmd_off(mm, huge).pa
    i = machine["frames"].index(entry & ~0xFFF) * 4096 + (entry & 0xFFF)
    v = int.from_bytes(phys[i:i + 8], "big")
    v = {"none": v, "pte-frame": v + 0x1000, "segment-frame": v + (1 << 20)}.get(
        corrupt, v & ~0x200)  # *-unprotect: clear the DAT-protection bit P (PoP bit 54)
    phys[i:i + 8] = v.to_bytes(8, "big")
    mmu = imm.load(machine, bytes(phys))
    assert getattr(mmu, "expanded", None) == 1  # the segment frame, replaced for Unicorn
    c = Checker(s, machine, mmu, random.Random(corrupt))
    c.rows()
    c.model()
    c.unmapped(50)
    if corrupt == "none":
        c.report()
        assert c.probes > 20 and c.exec_unchecked > 0  # no IEP in Unicorn: never asked
    else:
        assert c.problems, corrupt
    s.teardown()
