"""Cross-check exports with drgn's page-table walker (``tests/drgn_reader.py``), a second reader
nobody on this project wrote, next to Unicorn's MMU (``tests/test_independent_mmu.py``).
Optional: skipped when ``drgn`` is not installed (it is in the ``dev`` extra).

drgn checks addresses only -- the physical address a virtual address translates to, or that
it is not mapped -- never permissions.  For seeded random scenarios (``ScenarioGen``, the
generator behind ``ptshim diff``: every leaf size, splits, anonymous pages, forks, mremaps;
target PAs over every physical address bit the configuration has) and for the scenarios of
``examples/``, the session's machine is exported as ``ptshim run --export`` writes it, drgn
is given ``phys.bin``, and for every root -- each process's ``mm->pgd`` and
``swapper_pg_dir`` (``init_mm.pgd``) -- drgn's ``follow_phys(mm, va)`` must equal the
emulator's own walker (``config.walker.translate`` with the registers selecting that root):

- every leaf the walker finds: a base page at a random byte, a bigger leaf at its first and
  last bytes and :data:`SAMPLE` random ones; the bytes just outside each run of leaves;
- the first, last and a random page of every extent of the scenario model, and the bytes
  just before and after each (the model is bookkeeping: it catches a leaf both walkers miss
  only if they disagree there, and a leaf the walker misses but drgn finds);
- random addresses over the whole address space, most of which must fault.

A root with one translation register (x86 CR3) serves every address; with two (arm64
TTBR0/TTBR1) the process pgd serves everything outside the kernel range and
``swapper_pg_dir`` everything outside the user range (drgn's AArch64 walker picks the VA
range by comparing the pgd with ``swapper_pg_dir``).

Configurations drgn 0.3.0 cannot check, and why (``drgn_reader.unsupported`` says it at run
time; ``test_drgn_has_no_walker_for_the_others`` requires the reason to be drgn's own
refusal, so a configuration this reader merely fails to set up is an error, not a skip):

- ``i386``, ``i386-pae``: drgn has no i386 page-table walker ("virtual address translation is
  not implemented for i386 architecture");
- RISC-V (``riscv32-sv32``, ``riscv64-sv39/48/57``): none for RISC-V 32 or 64 either;
- any arm64 geometry other than the one drgn derives from PAGESIZE and VA_BITS, or output
  addresses above bit 47 with 4K/16K granules (FEAT_LPA2, which drgn does not decode).

Checked: ``x86_64``, ``x86_64-la57`` and every arm64 configuration (``arm64-16k-48``'s 2-entry
and ``arm64-64k-48``'s 512-byte pgds included, which sit 16 or 512 bytes apart in one
frame); s390x as soon as it is registered (the reader sets it up; addresses left of what
the top table translates are not compared, see ``DrgnReader.judges``); classic 32-bit
``arm`` (drgn reads the hardware half of each PTE page, as the MMU does).

``DRGN_SCENARIOS`` (default 6) sets the number of random scenarios per configuration.
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arches import get_config
from arches.config import Translation
from arches.errors import BadInput
from arches.memory import PhysMem
from legacy import arch_names
from ptshim.export import export, rebuild_memory
from ptshim.scenario import load_scenario, scenario_paths
from ptshim.scenario_gen import ScenarioGen
from ptshim.session import Session
from tests import drgn_reader as dr

pytestmark = pytest.mark.skipif(dr.available() is not None, reason=dr.available() or "")

ARCHES = arch_names()
WHY_NOT = {a: dr.unsupported(get_config(a)) for a in ARCHES} if dr.available() is None else {}
READ = [a for a in ARCHES if WHY_NOT.get(a) is None]
"""What drgn reads (every configuration when drgn is missing: they skip with that reason)."""
NOT_READ = [a for a in ARCHES if WHY_NOT.get(a) is not None]
SCENARIOS = int(os.environ.get("DRGN_SCENARIOS", "6"))
OPS = 24
SAMPLE = 4
"""Random addresses checked in a leaf bigger than a page (besides its first and last)."""
RANDOM_VAS = 300
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# -- machines --------------------------------------------------------------------------------


def random_session(arch: str, seed: int) -> Session:
    """A seeded ``ptshim diff`` scenario, target PAs over all the configuration's PA bits."""
    gen = ScenarioGen(arch, random.Random(f"drgn/{arch}/{seed}"))
    gen.max_pa = 1 << gen.lim.phys_bits
    s = Session(arch)
    s.run(gen.scenario(OPS, f"drgn-{arch}-{seed}"))
    s.verify()  # the in-house oracle agrees first
    return s


@dataclass(frozen=True)
class Exported:
    machine: dict[str, Any]
    data: bytes
    mem: PhysMem
    """``phys.bin`` rebuilt, for the emulator's walker."""


def export_machine(s: Session, outdir: Path) -> Exported:
    machine = export(s, outdir)
    data = (outdir / "phys.bin").read_bytes()
    mem = rebuild_memory(machine["frame_size"], machine["endianness"], s.config.phys_bits,
                         machine["frames"], data)
    return Exported(machine, data, mem)


def reader(s: Session, ex: Exported, data: bytes | None = None) -> dr.DrgnReader:
    m = ex.machine
    return dr.DrgnReader(s.config, m["frames"], m["frame_size"],
                         ex.data if data is None else data, s.k.init_mm.pgd.pa)


# -- roots -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Root:
    """One pgd as both readers see it."""

    name: str
    mm: Any
    """drgn's ``struct mm_struct`` for it."""
    regs: dict[str, int]
    """Registers that make the emulator's walker use it."""
    covers: Callable[[int], bool]
    """Addresses the hardware translates through it."""


def roots(s: Session, r: dr.DrgnReader) -> list[Root]:
    """Each process's pgd, then ``swapper_pg_dir``.  The walker's registers are the
    session's for that process; with one root register (x86 CR3), ``swapper_pg_dir`` gets
    registers of its own, with two the process's registers already hold it."""
    c = s.config
    one = len(c.roots) == 1
    out = [Root(f"mm {i} pgd", r.mm(mm.pgd.pa), s.registers(i),
                (lambda va: True) if one else (lambda va: not c.is_kernel(va)))
           for i, mm in enumerate(s.mms)]
    if one:
        root = s.k.mm_root(s.k.init_mm)
        out.append(Root("swapper_pg_dir", r.init_mm, c.make_registers(root, root),
                        lambda va: True))
    else:
        out.append(Root("swapper_pg_dir", r.init_mm, s.registers(0),
                        lambda va: not c.is_user(va)))
    return out


# -- the comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    root: str
    what: str
    va: int
    got: int | None
    """drgn's PA (None: not mapped)."""
    want: int | None
    """The emulator walker's PA (None: fault)."""

    def __str__(self) -> str:
        def show(pa: int | None) -> str:
            return "not mapped" if pa is None else f"{pa:#x}"
        return (f"{self.root}, {self.what} {self.va:#x}: drgn {show(self.got)}, "
                f"walker {show(self.want)}")


class Compare:
    def __init__(self, s: Session, ex: Exported, r: dr.DrgnReader, rng: random.Random
                 ) -> None:
        self.s, self.ex, self.r, self.rng = s, ex, r, rng
        self.config = s.config
        self.problems: list[Problem] = []
        self.mapped = 0
        self.unmapped = 0

    def probe(self, root: Root, va: int, what: str) -> None:
        va &= self.config.addr_mask
        if not root.covers(va) or not self.r.judges(root.mm, va):
            return
        t = self.config.walker.translate(self.ex.mem, root.regs, va)
        want = t.pa if isinstance(t, Translation) else None
        got = self.r.follow_phys(root.mm, va)
        if want is None:
            self.unmapped += 1
        else:
            self.mapped += 1
        if got != want:
            self.problems.append(Problem(root.name, what, va, got, want))

    def leaves(self, root: Root) -> None:
        """Every leaf once (a base page at a random byte; a bigger leaf at its first and
        last bytes and :data:`SAMPLE` random ones), and the bytes around each run of
        contiguous leaves."""
        end = None
        for t in self.config.walker.leaves(self.ex.mem, root.regs):
            if not root.covers(t.va):
                continue
            if t.va != end:
                if end is not None:
                    self.probe(root, end, "byte after leaves")
                self.probe(root, t.va - 1, "byte before leaves")
            end = t.va + t.size
            offsets = {self.rng.randrange(t.size)}
            if t.size > self.config.page_size:
                offsets |= {0, t.size - 1} | {self.rng.randrange(t.size)
                                              for _ in range(SAMPLE)}
            for off in sorted(offsets):
                self.probe(root, t.va + off, "leaf")
        if end is not None:
            self.probe(root, end, "byte after leaves")

    def model(self, root: Root) -> None:
        ps = self.config.page_size
        for e in self.s.model:
            n = e.size // ps
            for i in sorted({0, n - 1, self.rng.randrange(n)}):
                self.probe(root, e.va + i * ps + self.rng.randrange(ps), "model extent")
            self.probe(root, e.va - 1, "byte before an extent")
            self.probe(root, e.va + e.size, "byte after an extent")

    def random(self, root: Root, n: int = RANDOM_VAS) -> None:
        c = self.config
        for _ in range(n):
            self.probe(root, self.rng.getrandbits(c.word_bits), "random address")
        for lo, hi in (c.user_range, c.kernel_range):
            for va in (lo, lo - 1, hi - 1, hi):
                self.probe(root, va, "range edge")

    def run(self, random_vas: int = RANDOM_VAS) -> None:
        for root in roots(self.s, self.r):
            self.leaves(root)
            self.model(root)
            self.random(root, random_vas)

    def report(self) -> None:
        assert not self.problems, (
            f"{self.config.name}: drgn and the emulator's walker disagree "
            f"({len(self.problems)}): " + "; ".join(map(str, self.problems[:8])))


# -- tests -----------------------------------------------------------------------------------


def test_drgn_reads_the_configurations_it_walks() -> None:
    """The selection is not vacuous: drgn reads x86-64 (4- and 5-level) and every arm64
    configuration with 48-bit output addresses."""
    must = {"x86_64", "x86_64-la57"} | {a for a in ARCHES if get_config(a).family == "arm64"
                                        and get_config(a).phys_bits <= 48}
    assert must <= set(READ), f"drgn should read {sorted(must - set(READ))}"


@pytest.mark.parametrize("arch", NOT_READ)
def test_drgn_has_no_walker_for_the_others(arch: str) -> None:
    """A registered configuration goes unchecked only because drgn itself has no page-table
    walker for its architecture (i386, RISC-V), never because of this reader."""
    why = WHY_NOT[arch]
    assert why is not None and "virtual address translation is not implemented" in why, why


@pytest.mark.parametrize("arch", READ)
def test_random_scenarios_read_alike(arch: str, tmp_path: Path) -> None:
    mapped = unmapped = 0
    for seed in range(SCENARIOS):
        s = random_session(arch, seed)
        ex = export_machine(s, tmp_path / str(seed))
        c = Compare(s, ex, reader(s, ex), random.Random(seed))
        c.run()
        c.report()
        mapped += c.mapped
        unmapped += c.unmapped
        s.teardown()
    assert mapped > 50 * SCENARIOS and unmapped > 100 * SCENARIOS, (mapped, unmapped)


@pytest.mark.parametrize("arch", READ)
def test_examples_read_alike(arch: str, tmp_path: Path) -> None:
    ran = 0
    for path in scenario_paths(EXAMPLES):
        s = Session(arch)
        try:
            s.run(load_scenario(path))
        except BadInput:
            continue  # not valid on this configuration (e.g. 64-bit kernel addresses)
        ex = export_machine(s, tmp_path / path.stem)
        c = Compare(s, ex, reader(s, ex), random.Random(path.stem))
        c.run(50)
        c.report()
        assert c.mapped, f"{path.name}: nothing mapped was checked"
        ran += 1
    assert ran


def corrupt_leaf(s: Session, ex: Exported, rng: random.Random) -> tuple[Translation, bytes]:
    """A leaf and ``phys.bin`` with one address bit of its entry flipped (bit log2 of the
    leaf size: it moves the leaf by its own size).  The entry is found as the one valid word
    (of the leaf level's entry size) whose output-address field is the leaf's PA and which
    the walker reads for the leaf: flipping it moves the leaf (a leaf whose PA another entry
    also holds, e.g. a page a fork shares, is not chosen; a word the MMU never reads, e.g.
    classic arm's Linux pte 2048 bytes before the hardware one, is no candidate)."""
    c = s.config
    regs = s.registers()
    frames, fs = ex.machine["frames"], ex.machine["frame_size"]
    leaves = list(c.walker.leaves(ex.mem, regs))
    rng.shuffle(leaves)
    valid = 1 << 63 if c.family == "ppc64" else 1  # radix: V is bit 63 (bit 0 is EAA X)
    unpacked: dict[str, list[int]] = {}

    def moves(leaf: Translation, i: int, size: int) -> bool:
        """Whether flipping word ``i`` moves the walker's ``leaf`` by its size."""
        pa = frames[i * size // fs] + i * size % fs
        old = ex.mem.read(pa, size)
        ex.mem.write(pa, size, old ^ leaf.size)
        t = c.walker.translate(ex.mem, regs, leaf.va)
        ex.mem.write(pa, size, old)
        return isinstance(t, Translation) and t.pa == leaf.pa ^ leaf.size

    for leaf in leaves:
        size = c.hw_levels[leaf.level].entry_size
        fmt = ("<" if c.endianness == "little" else ">") + ("Q" if size == 8 else "I")
        if fmt not in unpacked:
            unpacked[fmt] = [w for (w,) in struct.iter_unpack(fmt, ex.data)]
        words = unpacked[fmt]
        # (32-bit short descriptors: bits 1:0 = 0 is the fault encoding, 1 or 2 are valid)
        v = valid if size == 8 else 3
        field = ((1 << c.phys_bits) - 1) & ~(leaf.size - 1)
        hits = [i for i, w in enumerate(words)
                if w & v and w & field == leaf.pa and moves(leaf, i, size)]
        if len(hits) == 1:
            data = bytearray(ex.data)
            struct.pack_into(fmt, data, size * hits[0], words[hits[0]] ^ leaf.size)
            return leaf, bytes(data)
    raise AssertionError("no leaf with a unique entry")


@pytest.mark.parametrize("arch", READ)
def test_a_corrupted_entry_is_caught(arch: str, tmp_path: Path) -> None:
    """The check can fail: one leaf entry's address bits changed in the bytes drgn reads
    (not in the walker's) is reported, at that leaf only, as the leaf moved by its size."""
    for seed in range(8):  # the first machine with a leaf whose entry is unique
        s = random_session(arch, seed)
        ex = export_machine(s, tmp_path / str(seed))
        rng = random.Random(seed)
        try:
            leaf, data = corrupt_leaf(s, ex, rng)
            break
        except AssertionError:  # (ppc64 4K seed 0: its only leaf's PA is mapped twice)
            s.teardown()
    else:
        pytest.fail("no machine with a leaf whose entry is unique")
    c = Compare(s, ex, reader(s, ex, data), rng)
    c.run(0)
    assert c.problems, "drgn read a corrupted entry and nobody noticed"
    for p in c.problems:
        assert leaf.va <= p.va < leaf.va + leaf.size, p
        assert p.want is not None and p.got == p.want ^ leaf.size, p
