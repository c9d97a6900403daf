"""Cross-check the s390x DAT walker with an MMU nobody on this project wrote: Unicorn 2.1.4's
s390x CPU (QEMU's TCG ``mmu_translate``).

Unicorn exposes CR0..CR15 and the PSW, so DAT can run on tables built in our
:class:`~arches.memory.PhysMem`: every frame is mapped into Unicorn at its physical address,
CR7 (the secondary ASCE) is set to the ASCE under test, and a probe runs in the
*secondary-space mode* (PSW DAT on, address-space control 10): instructions are fetched
through the primary space (CR1: a one-page harness space of our own, in memory below the
frames), operands are translated through CR7 -- which is also how Linux reaches user memory
from the kernel.  Two instructions do the work, neither touching the operand:

- LOAD REAL ADDRESS (LRAG) returns the real address with condition code 0, or condition
  code 3 and ``0x80000000 | program-interruption code`` when the translation fails (QEMU's
  ``HELPER(lra)``);
- TEST PROTECTION (TPROT) gives condition code 0 (fetch and store permitted), 1 (store not
  permitted: DAT protection) or 3 (translation not available).

Limits, found by probing (see the strict xfail tests below): Unicorn 2.1.4 does not apply
EDAT-1 or EDAT-2 -- a segment- or region-third-table entry with FC = 1 designates a table
even with CR0 bit 40 set, for every CPU model -- so the cross-check runs DAT without EDAT
(CR0 = 0: 4 KiB pages only, and no DAT protection from region-table entries), and does not
check instruction-execution protection (an instruction fetch in the secondary-space mode goes
through the primary space).
"""

from __future__ import annotations

import random

import pytest

from arches.config import Fault, Translation
from arches.memory import PhysMem
from arches.s390 import KERNEL_START
from arches.s390.walker import PIC, S390Walker
from tests.independent_mmu_s390 import LRAG, TPROT, S390Harness, _uc
from tests.test_s390_walker import crst, new_mem, pt

pytestmark = pytest.mark.skipif(_uc is None, reason="the optional 'unicorn' package is absent")

W = S390Walker(kernel_start=KERNEL_START)
R1, R2, R3, SEG = 0x0C, 0x08, 0x04, 0x00
I_REGION, PTE_I, P_BIT, FC, TL3 = 0x20, 0x400, 0x200, 0x400, 0x3
EDAT = 1 << 23


class UnicornS390Mmu(S390Harness):
    """The frames of ``mem`` (plus ``extra`` pages, e.g. probe targets) in a Unicorn s390x
    CPU, and probes of one ASCE's translations."""

    def __init__(self, mem: PhysMem, extra: frozenset[int] | set[int] = frozenset(),
                 cr0: int = 0) -> None:
        uc = _uc.Uc(_uc.UC_ARCH_S390X, _uc.UC_MODE_BIG_ENDIAN)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        uc.mem_map(0, 0x40000)  # lowcore, code, the harness space
        for pa, data in mem.image():
            uc.mem_map(pa, mem.frame_size)
            uc.mem_write(pa, data)
        for pa in sorted(extra - set(mem.allocated_frames())):
            uc.mem_map(pa, 4096)
        self._harness(uc, cr0)

    def lra(self, asce: int, va: int) -> tuple[str, int]:
        """('pa', real address) or ('pic', program-interruption code)."""
        cc, r1 = self._run(LRAG, asce, va)
        if cc == 0:
            return "pa", r1
        assert cc == 3 and r1 & 0x80000000, (cc, hex(r1))
        return "pic", r1 & 0xFFFF

    def tprot(self, asce: int, va: int) -> int:
        return self._run(TPROT, asce, va)[0]


def regs(asce: int, cr0: int = 0) -> dict[str, int]:
    return {"cr0": cr0, "cr1": asce, "cr7": asce, "cr13": asce}


def pic_of(f: Fault) -> int:
    return PIC[next(name for name in PIC if f.reason.startswith(name))]


TYPES = (R1, R2, R3, SEG)
SHIFTS = (53, 42, 31, 20, 12)


def random_space(rng: random.Random, mem: PhysMem, first: int, n: int
                 ) -> tuple[int, list[int]]:
    """An ASCE designating a ``first`` table with ``n`` random 4 KiB pages (some under
    DAT-protected segment or page entries, some region entries with TF/TL narrower than
    the full table); returns the ASCE and the pages' VAs."""
    root = crst(mem, TYPES[first] | I_REGION)
    top = 63 if first == 0 else SHIFTS[first - 1]
    vas: list[int] = []
    # cluster the pages so that tables are shared: a few random 2 MiB windows
    windows = [rng.randrange(0, 1 << top) >> 21 << 21 for _ in range(4)]
    for _ in range(n):
        va = rng.choice(windows) + (rng.randrange(0, 1 << 21) >> 12 << 12)
        table = root
        for t in range(first, 4):
            e = table + 8 * (va >> SHIFTS[t] & 0x7FF)
            cur = mem.read(e, 8)
            if cur & I_REGION:
                nxt = crst(mem, TYPES[t + 1] | I_REGION) if t + 1 < 4 else pt(mem)
                if t < 3:
                    q = va >> SHIFTS[t + 1] >> 9 & 3
                    tf, tl = rng.choice([(0, 3), (0, 3), (q, q), (0, q), (q, 3)])
                    cur = nxt | TYPES[t] | tf << 6 | tl
                else:
                    cur = nxt | (P_BIT if rng.random() < 0.15 else 0)
                mem.write(e, 8, cur)
            table = cur & (~0xFFF if t < 3 else ~0x7FF)
        e = table + 8 * (va >> 12 & 0xFF)
        if mem.read(e, 8) & PTE_I:
            pa = rng.randrange(0x1000_0000, 1 << 38) >> 12 << 12
            mem.write(e, 8, pa | (P_BIT if rng.random() < 0.2 else 0))
            vas.append(va)
    return root | TYPES[first] | TL3, vas


@pytest.mark.parametrize("first", [0, 1, 2, 3])
def test_random_spaces_agree_with_unicorn(first: int) -> None:
    """Every page translates to the same real address with the same writability in both
    MMUs; addresses around and between them fault with the same program-interruption
    code."""
    rng = random.Random(100 + first)
    mem = new_mem()
    asce, vas = random_space(rng, mem, first, 40)
    r = regs(asce)
    leaves = list(W.leaves(mem, r))
    assert len(leaves) == len(vas) > 20
    mmu = UnicornS390Mmu(mem, extra={t.pa for t in leaves})
    top = 1 << (63 if first == 0 else SHIFTS[first - 1])
    probes = [t.va for t in leaves] + [t.va + 4095 for t in leaves[:10]]
    probes += [(t.va + d) % (1 << 64) for t in leaves[:10] for d in (-4096, 4096, 1 << 20)]
    probes += [rng.randrange(0, top) for _ in range(40)]
    probes += [top + rng.randrange(0, 1 << 20)] if first else []
    agreed = faults = 0
    for va in probes:
        if va >= KERNEL_START:
            continue
        ours = W.translate(mem, r, va)
        theirs = mmu.lra(asce, va)
        if isinstance(ours, Translation):
            assert theirs == ("pa", ours.pa), (hex(va), ours, theirs)
            assert mmu.tprot(asce, va) == (0 if ours.writable else 1), hex(va)
            agreed += 1
        else:
            assert theirs == ("pic", pic_of(ours)), (hex(va), ours.reason, theirs)
            assert mmu.tprot(asce, va) == 3
            faults += 1
    assert agreed > 20 and faults > 20


def _one(mem: PhysMem, va: int, first: int = 3) -> tuple[int, list[int]]:
    """A valid path to ``va`` (page at 0x40000000); returns the ASCE and the entry
    addresses on the path, top first."""
    tables = [crst(mem, TYPES[t] | I_REGION) for t in range(first, 4)] + [pt(mem)]
    entries = []
    for i, t in enumerate(range(first, 5)):
        e = tables[i] + 8 * (va >> SHIFTS[t] & (0x7FF if t < 4 else 0xFF))
        entries.append(e)
        if t < 4:
            mem.write(e, 8, tables[i + 1] | (TYPES[t] | TL3 if t < 3 else 0))
    mem.write(entries[-1], 8, 0x4000_0000)
    return tables[0] | TYPES[first] | TL3, entries


@pytest.mark.parametrize("case", ["pte-bit-52", "ste-tt", "rtte-tt", "cs-private",
                                  "cs-shared", "asce-tl", "rtte-tf", "rtte-tl",
                                  "asce-type"])
def test_exceptions_agree_with_unicorn(case: str) -> None:
    """The program-interruption code of each malformed or out-of-range case (PoP chapter 3
    "Translation Process", chapter 6) is the one QEMU's DAT reports."""
    mem = new_mem()
    va = 0x1_4030_5000
    asce, (rtte, ste, pte) = _one(mem, va, 2)
    if case == "pte-bit-52":
        mem.write(pte, 8, mem.read(pte, 8) | 0x800)
    elif case == "ste-tt":
        mem.write(ste, 8, mem.read(ste, 8) | 0x04)
    elif case == "rtte-tt":
        mem.write(rtte, 8, mem.read(rtte, 8) ^ 0x0C)
    elif case in ("cs-private", "cs-shared"):
        mem.write(ste, 8, mem.read(ste, 8) | 0x10)
        asce |= 0x100 if case == "cs-private" else 0
    elif case == "asce-tl":
        asce &= ~TL3  # RTX 2 has bits 0-1 = 0: in range; move the VA up instead
        va |= 1 << 40
    elif case == "rtte-tf":
        mem.write(rtte, 8, mem.read(rtte, 8) | 3 << 6)
    elif case == "rtte-tl":
        mem.write(rtte, 8, mem.read(rtte, 8) & ~3)
    elif case == "asce-type":
        va |= 1 << 42
    ours = W.translate(mem, regs(asce), va)
    theirs = UnicornS390Mmu(mem, extra={0x4000_0000}).lra(asce, va)
    if isinstance(ours, Translation):
        assert theirs == ("pa", ours.pa)
    else:
        assert theirs == ("pic", pic_of(ours)), (ours.reason, theirs)
    assert isinstance(ours, Translation) is (case == "cs-shared")


@pytest.mark.xfail(strict=True, reason="Unicorn 2.1.4 does not apply EDAT-1: a segment-table "
                   "entry with FC = 1 designates a page table even with CR0 bit 40 set")
def test_unicorn_edat1_segment_frame() -> None:
    mem = new_mem()
    va = 0x0123_4567
    asce, (_, ste, _) = _one(mem, va, 2)
    mem.write(ste, 8, 0x8000_0000 | FC)
    ours = W.translate(mem, regs(asce, EDAT), va)
    assert isinstance(ours, Translation) and ours.size == 1 << 20
    assert UnicornS390Mmu(mem, extra={0x8000_0000 | 0x23000}, cr0=EDAT).lra(asce, va) == (
        "pa", ours.pa)


@pytest.mark.xfail(strict=True, reason="Unicorn 2.1.4 does not apply EDAT-2: a "
                   "region-third-table entry with FC = 1 designates a segment table")
def test_unicorn_edat2_region_frame() -> None:
    mem = new_mem()
    va = 0x2_8765_4321
    asce, (rtte, _, _) = _one(mem, va, 2)
    mem.write(rtte, 8, 0x1_0000_0000 | FC | R3)
    ours = W.translate(mem, regs(asce, EDAT), va)
    assert isinstance(ours, Translation) and ours.size == 1 << 31
    assert UnicornS390Mmu(mem, cr0=EDAT).lra(asce, va) == ("pa", ours.pa)
