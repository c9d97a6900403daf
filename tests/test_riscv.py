"""RISC-V facts: the kernel's (``arch/riscv``, Linux v6.18; each test names the file) and
the hardware's (the RISC-V privileged specification, "Supervisor-Level ISA": the Sv32/Sv39/
Sv48/Sv57 sections, their "Virtual Address Translation Process", "Svnapot", "Svadu", and
"Supervisor Memory-Management Fence Instruction").

The kernels are built from their classes here (not through the registry), so these tests
run whether or not the configurations are registered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import legacy
from arches.config import Fault, Translation
from arches.errors import BadInput, TlbError
from arches.memory import PhysMem
from arches.riscv import RISCV32_SV32, RISCV64_SV39, RISCV64_SV48, RISCV64_SV57
from arches.riscv.walker import MENVCFG_ADUE, SvWalker
from arches.tlb import KERNEL_SPACE
from legacy import VM_EXEC, VM_READ, VM_SHARED, VM_WRITE, pgprot_t, pmd_t, pud_t
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import mmap_region
from legacy.mm.mmu_gather import tlb_finish_mmu, tlb_gather_mmu
from legacy.mm.vma import find_vma
from legacy.mm.vmalloc import vmap_range
from legacy.mm_types import mm_struct, mmap_write_locked, spin_unlock
from legacy.riscv.pgtable import (
    RiscvKernel,
    RiscvSv32Kernel,
    RiscvSv39Kernel,
    RiscvSv48Kernel,
    RiscvSv57Kernel,
)
from ptshim.cli import main
from ptshim.scenario import Limits

KERNELS = {
    "riscv32-sv32": (RiscvSv32Kernel, RISCV32_SV32),
    "riscv64-sv39": (RiscvSv39Kernel, RISCV64_SV39),
    "riscv64-sv48": (RiscvSv48Kernel, RISCV64_SV48),
    "riscv64-sv57": (RiscvSv57Kernel, RISCV64_SV57),
}
NAMES = list(KERNELS)
RV64 = NAMES[1:]

# PTE bits, from the privileged spec (not the kernel's names).
V, R, W, X, U, G, A, D = (1 << i for i in range(8))
VA = 0x4000_0000
PA = 0x4000_0000


def boot(name: str) -> RiscvKernel:
    cls, config = KERNELS[name]
    return cls(config)


def user_mm(k: RiscvKernel) -> mm_struct:
    mm = k.mm_alloc()
    assert mm is not None
    return mm


# -- kernel: protections and PROT_NONE (asm/pgtable.h, pgtable-bits.h) --------------------------


@pytest.mark.parametrize("name", NAMES)
def test_prot_none_is_global_and_read_without_valid(name: str) -> None:
    """pgtable-bits.h: ``_PAGE_PROT_NONE`` is ``_PAGE_GLOBAL``; asm/pgtable.h: ``PAGE_NONE``
    is ``_PAGE_PROT_NONE | _PAGE_READ``; ``pte_present`` tests V | G, ``pte_protnone`` G
    without V.  The hardware ignores a V = 0 PTE entirely."""
    k = boot(name)
    assert k.PAGE_NONE == G | R
    pte = k.pfn_pte(0x1234, k.PAGE_NONE)
    assert not pte & V
    assert k.pte_present(pte) and k.pte_protnone(pte)
    assert not k.pte_protnone(k.pfn_pte(0x1234, k.PAGE_READ))
    assert k.protection_map[VM_SHARED] == k.PAGE_NONE
    assert k.protection_map[0] == k.PAGE_NONE


@pytest.mark.parametrize("name", NAMES)
def test_user_protections_are_young_not_dirty_and_exec_only_exists(name: str) -> None:
    """asm/pgtable.h ``_PAGE_BASE`` = V | A | U (no D); arch/riscv/mm/init.c
    ``protection_map[VM_EXEC]`` = ``PAGE_EXEC``: execute-only, no R; private writable
    mappings are ``PAGE_COPY`` = ``PAGE_READ`` (COW); ``_PAGE_KERNEL`` has A, D and G."""
    k = boot(name)
    assert k.protection_map[VM_EXEC] == V | A | U | X
    assert k.protection_map[VM_READ | VM_WRITE] == V | A | U | R
    assert k.protection_map[VM_SHARED | VM_READ | VM_WRITE] == V | A | U | R | W
    assert k.PAGE_KERNEL == V | R | W | A | D | G


@pytest.mark.parametrize("name", NAMES)
def test_swap_entry_format(name: str) -> None:
    """asm/pgtable.h "Format of swap PTE": bits 0-3 and 5 zero, bit 6 exclusive, type in
    7-11, offset from 12; a swap PTE is neither none nor present."""
    k = boot(name)
    e = k._swp_entry(0x15, 0x321)
    assert e == 0x15 << 7 | 0x321 << 12
    pte = k._swp_entry_to_pte(e)
    assert not k.pte_present(pte) and not k.pte_none(pte)
    assert not pte & (V | R | W | X | G)
    assert k._swp_type(e) == 0x15 and k._swp_offset(e) == 0x321
    assert k.pte_swp_mkexclusive(pte) == pte | A
    assert k.pte_swp_exclusive(k.pte_swp_mkexclusive(pte))


@pytest.mark.parametrize("name", RV64)
def test_pmd_present_with_thp_but_pud_present_is_valid_only(name: str) -> None:
    """asm/pgtable.h (CONFIG_TRANSPARENT_HUGEPAGE): ``pmd_present`` is V | G | R | W | X, so
    ``pmd_mkinvalid`` (clears V and G) keeps a huge pmd present; pgtable-64.h
    ``pud_present`` is V alone: a PROT_NONE pud is not present (and ``pud_bad``, as is a
    leaf: ``!pud_present(pud) || (pud_val(pud) & _PAGE_LEAF)``)."""
    k = boot(name)
    pmd = k.pfn_pmd(0x200, k.PAGE_READ)
    inval = k.pmd_mkinvalid(pmd)
    assert not inval & (V | G) and k.pmd_present(inval) and k.pmd_trans_huge(inval)
    prot_none = pud_t(k.pfn_pud(0x40000, k.PAGE_NONE))
    assert k.pmd_present(pmd_t(prot_none))
    assert not k.pud_present(prot_none) and k.pud_bad(prot_none)
    leaf = pud_t(k.pfn_pud(0x40000, k.PAGE_READ))
    assert k.pud_leaf(leaf) and k.pud_bad(leaf)  # "riscv: Add support for PUD THP"


def test_sv32_pmd_present_has_no_leaf_term() -> None:
    """asm/pgtable.h: without CONFIG_TRANSPARENT_HUGEPAGE (64BIT-only) ``pmd_present`` is
    V | G: an invalidated leaf is not present."""
    k = boot("riscv32-sv32")
    assert not k.TRANSPARENT_HUGEPAGE
    assert not k.pmd_present(pmd_t(R | W))


# -- scenario rule: the PROT_NONE 1G leaf the kernel loses (docs/cli.md) ------------------------


def test_prot_none_lost_leaf_is_derived_from_the_kernel() -> None:
    """``Limits.prot_none_lost_leaf`` is ``PUD_SIZE`` on RV64 (after ``pud_modify(PAGE_NONE)``
    the leaf is neither ``pud_leaf`` nor ``pud_present``), ``PMD_SIZE`` on arm-lpae (its
    ``set_pmd_at`` stores a PROT_NONE section not ``pmd_present``) and 0 on every other
    configuration (x86 and arm64 keep a PROT_NONE pud a leaf; Sv32 has no pud level)."""
    for name in legacy.arch_names():
        k = legacy.boot(name)
        want = k.PUD_SIZE if name in RV64 else k.PMD_SIZE if name == "arm-lpae" else 0
        assert Limits.from_kernel(k).prot_none_lost_leaf == want, name


def _run(tmp_path: Path, name: str, ops: list[dict[str, object]]) -> int:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"ops": ops}))
    return main(["run", str(path), "--arch", name])


@pytest.mark.parametrize("name", RV64)
def test_prot_none_pud_leaf_is_refused(name: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A user (and, where 1G vmap leaves exist, a kernel) ``PUD_SIZE`` leaf made PROT_NONE by
    a map or a whole-leaf protect is bad input: exit 2, one line naming the reason, nothing
    run; a protect of part of the leaf splits it first and runs."""
    k = legacy.boot(name)
    lim = Limits.from_kernel(k)
    g = k.PUD_SIZE
    user = 4 * g
    kva = -(-lim.kernel_range[0] // g) * g + g
    m: dict[str, object] = {"op": "map", "va": user, "pa": g, "size": g, "prot": "r",
                            "page_size": g}
    bad = [[{**m, "prot": "none"}], [m, {"op": "protect", "va": user, "size": g,
                                          "prot": "none"}]]
    if g in lim.kernel_leaf_sizes:
        bad.append([{**m, "va": kva}, {"op": "protect", "va": kva, "size": g, "prot": "none"}])
    for ops in bad:
        assert _run(tmp_path, name, ops) == 2, ops
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"op {len(ops) - 1} " in err and "prot none on a 0x40000000 leaf is refused" in err
        assert "neither pud_leaf nor pud_present" in err
    part = [m, {"op": "protect", "va": user, "size": g // 2, "prot": "none"}]
    assert _run(tmp_path, name, part) == 0, capsys.readouterr()[1]


# -- kernel: run-time folding (pgtable-64.h, arch/riscv/mm/pgtable.c) -----------------------------


@pytest.mark.parametrize("name,levels", [("riscv64-sv39", 3), ("riscv64-sv48", 4),
                                         ("riscv64-sv57", 5)])
def test_run_time_folding_keeps_ptrs_per_512(name: str, levels: int) -> None:
    """pgtable-64.h: ``PGDIR_SHIFT``/``P4D_SHIFT`` follow ``pgtable_l4/l5_enabled`` but
    ``PTRS_PER_P4D``/``PTRS_PER_PUD`` are ``PAGE_SIZE / sizeof`` = 512 even when folded;
    arch/riscv/mm/pgtable.c ``p4d_offset``/``pud_offset`` return their argument when the
    level is folded; ``mm_p4d_folded``/``mm_pud_folded`` say so."""
    k = boot(name)
    mm = user_mm(k)
    assert k.PTRS_PER_P4D == k.PTRS_PER_PUD == 512
    assert k.PGDIR_SHIFT == {3: 30, 4: 39, 5: 48}[levels]
    assert k.P4D_SHIFT == (30 if levels == 3 else 39)
    assert k.mm_p4d_folded(mm) == (levels < 5)
    assert k.mm_pud_folded(mm) == (levels < 4)
    pgd = k.pgd_offset(mm, VA)
    p4d = k.p4d_alloc(mm, pgd, VA)
    assert p4d is not None and (p4d.pa == pgd.pa) == (levels < 5)
    pud = k.pud_alloc(mm, p4d, VA)
    assert pud is not None and (pud.pa == p4d.pa) == (levels < 4)
    if levels < 5:
        assert not k.pgd_none(pgd_t := k.pgdp_get(pgd)) and k.pgd_present(pgd_t)
    if levels == 3:  # the folded p4d is the pgd entry: its predicates are constants
        assert not k.p4d_none(k.p4dp_get(p4d)) and not k.p4d_bad(k.p4dp_get(p4d))
        assert k.pud_alloc_one(mm, VA) is None


@pytest.mark.parametrize("name", RV64)
def test_vmalloc_area_is_preallocated_and_copied(name: str) -> None:
    """arch/riscv/mm/init.c ``pgtable_cache_init``: every pgd entry of the vmalloc area has
    its second-level table from boot; asm/pgalloc.h ``pgd_alloc`` copies the entries from
    ``USER_PTRS_PER_PGD`` (= 256) on, so a later vmap is visible through every pgd."""
    k = boot(name)
    assert k.USER_PTRS_PER_PGD == 256
    first = k.pgd_index(k.VMALLOC_START)
    last = k.pgd_index(k.VMALLOC_END - 1)
    assert last - first + 1 == 64
    init = [k.mem.read((k.init_mm.pgd + i).pa, 8) for i in range(512)]
    assert all(init[i] == V | init[i] & ~0x3FF for i in range(first, last + 1))  # _PAGE_TABLE
    mm = user_mm(k)
    assert [k.mem.read((mm.pgd + i).pa, 8) for i in range(256, 512)] == init[256:]
    assert vmap_range(k, k.VMALLOC_START, k.VMALLOC_START + 0x1000, PA, k.PAGE_KERNEL,
                      k.PAGE_SHIFT) == 0
    regs = k.config.make_registers(mm.pgd.pa, mm.pgd.pa)
    t = k.config.walker.translate(k.mem, regs, k.VMALLOC_START)
    assert isinstance(t, Translation) and t.pa == PA and not t.user


def test_sv32_kernel_mapping_reaches_an_older_pgd() -> None:
    """RV32 has no preallocation: arch/riscv/mm/fault.c ``vmalloc_fault`` copies the pgd
    entry from ``init_mm`` on first access; the emulation does it at once (the documented
    departure of legacy/riscv/pgtable.py)."""
    k = boot("riscv32-sv32")
    assert k.USER_PTRS_PER_PGD == 0x9D80_0000 >> 22 == 630
    mm = user_mm(k)
    kva = k.VMALLOC_START
    assert vmap_range(k, kva, kva + 0x1000, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    regs = k.config.make_registers(mm.pgd.pa, mm.pgd.pa)
    t = k.config.walker.translate(k.mem, regs, kva)
    assert isinstance(t, Translation) and t.pa == PA


def test_no_1g_vmap_leaves_on_sv39() -> None:
    """asm/vmalloc.h: ``arch_vmap_pud_supported`` is ``pgtable_l4_enabled ||
    pgtable_l5_enabled``."""
    assert not boot("riscv64-sv39").arch_vmap_pud_supported(pgprot_t(0))
    assert boot("riscv64-sv48").arch_vmap_pud_supported(pgprot_t(0))
    assert boot("riscv64-sv57").arch_vmap_pud_supported(pgprot_t(0))
    assert not boot("riscv32-sv32").HAVE_ARCH_HUGE_VMAP


def test_napot_pte() -> None:
    """asm/pgtable.h ``pte_mknapot``: ppn[3:0] = 1000 and N for a 64K (order 4) PTE;
    ``pte_pfn`` drops the marker (``res & (res - 1)``), ``pte_leaf_size`` is 64K."""
    k = boot("riscv64-sv39")
    pte = k.pte_mknapot(k.pfn_pte(0x12340, k.PAGE_READ), 4)
    assert pte >> 63 and (pte >> 10) & 0xF == 0b1000
    assert k.pte_pfn(pte) == 0x12340
    assert k.pte_leaf_size(pte) == 0x10000


# -- kernel: TLB flushing (arch/riscv/mm/tlbflush.c, asm/tlb.h) -----------------------------------

SHARED = VM_READ | VM_WRITE | VM_SHARED


def _mapped(name: str) -> tuple[RiscvKernel, mm_struct, object]:
    from legacy.mm.vm_flags import VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_PFNMAP
    k = boot(name)
    mm = user_mm(k)
    flags = SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE | VM_PFNMAP
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, VA, 4 * k.PAGE_SIZE, flags, PA >> 12) == VA
        vma = find_vma(k, mm, VA)
        assert vma is not None
        assert remap_pfn_range(k, vma, VA, PA >> 12, 4 * k.PAGE_SIZE,
                               pgprot_t(vma.vm_page_prot)) == 0
    k.syscall_exit("mmap")
    return k, mm, vma


@pytest.mark.parametrize("name", NAMES)
def test_by_address_flushes_keep_walk_caches(name: str) -> None:
    """arch/riscv/mm/tlbflush.c: ``flush_tlb_page`` and a short ``flush_tlb_range`` are
    ``sfence.vma addr, asid``, which invalidates leaf entries only (privileged spec,
    SFENCE.VMA with rs1 != x0): an unhooked PTE table's walk-cache entry survives them;
    ``flush_tlb_mm`` (``sfence.vma x0, asid``) drops it."""
    k, mm, vma = _mapped(name)
    pmd = k.pmd_off(mm, VA)
    ptl = k.pmd_lock(mm, pmd)
    k.pmd_clear(pmd)
    spin_unlock(ptl)
    space = k._space(mm)
    assert [m for m in k.hw_tlb.stale(space) if m.walk]
    k.flush_tlb_page(vma, VA)  # type: ignore[arg-type]
    k.flush_tlb_range(vma, VA, VA + 64 * k.PAGE_SIZE)  # type: ignore[arg-type]
    assert [m for m in k.hw_tlb.stale(space) if m.walk]
    k.flush_tlb_range(vma, VA, VA + 65 * k.PAGE_SIZE)  # type: ignore[arg-type]
    assert not k.hw_tlb.stale(space)  # > tlb_flush_all_threshold: the whole ASID


@pytest.mark.parametrize("name", NAMES)
def test_tlb_flush_with_freed_tables_flushes_the_mm(name: str) -> None:
    """asm/tlb.h ``tlb_flush``: ``freed_tables`` means ``flush_tlb_mm`` -- a range flush
    would leave the walk cache pointing at the freed table."""
    k, mm, vma = _mapped(name)
    tlb = tlb_gather_mmu(k, mm)
    tlb.freed_tables = True
    tlb.start, tlb.end = VA, VA + k.PAGE_SIZE
    k.hw_tlb.flushes.clear()
    k.tlb_flush(tlb)
    assert k.hw_tlb.flushes == [(k._space(mm), 0, 0, True)]
    tlb.freed_tables = False
    k.hw_tlb.flushes.clear()
    k.tlb_flush(tlb)
    assert k.hw_tlb.flushes and not any(walk for *_, walk in k.hw_tlb.flushes)
    tlb_finish_mmu(k, tlb)


def test_freeing_a_kernel_table_needs_more_than_a_page_flush() -> None:
    """arch/riscv/mm/pgtable.c ``pmd_free_pte_page`` flushes ``PMD_SIZE`` -- 512 pages, more
    than the 64 of ``tlb_flush_all_threshold``, so a full ``sfence.vma``; a one-page flush
    (leaf only) would leave the walk cache on the freed PTE table."""
    k = boot("riscv64-sv39")
    kva = k.VMALLOC_START
    assert vmap_range(k, kva, kva + 0x4000, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    pmdp = k.pmd_off_k(kva)
    table = k.pmd_page_vaddr(k.pmdp_get(pmdp))
    k.pmd_clear(pmdp)
    k.flush_tlb_kernel_range(kva, kva + k.PAGE_SIZE)
    assert [m for m in k.hw_tlb.stale(KERNEL_SPACE) if m.walk]
    with pytest.raises(TlbError, match="freed while a walk cache may still reference it"):
        k.pte_free_kernel(k.init_mm, table)
    k2 = boot("riscv64-sv39")
    assert vmap_range(k2, kva, kva + 0x4000, PA, k2.PAGE_KERNEL, k2.PAGE_SHIFT) == 0
    assert k2.pmd_free_pte_page(k2.pmd_off_k(kva), kva) == 1
    k2.syscall_exit("pmd_free_pte_page")


# -- hardware: the walker (privileged spec) --------------------------------------------------------


class Tables:
    """Hand-built Sv39 (or Sv32) tables in a fresh physical memory."""

    def __init__(self, rv32: bool = False) -> None:
        self.rv32 = rv32
        self.mem = PhysMem(4096, "little", 34 if rv32 else 56)
        self.root = self.mem.alloc_frame()
        self.walker = SvWalker(1 if rv32 else 8)
        self.size = 4 if rv32 else 8

    def regs(self, adue: bool = True) -> dict[str, int]:
        satp = (1 << 31 if self.rv32 else 8 << 60) | self.root >> 12
        return {"satp": satp, "menvcfg": MENVCFG_ADUE if adue else 0}

    def put(self, table: int, idx: int, pte: int) -> None:
        self.mem.write(table + self.size * idx, self.size, pte)

    def table(self) -> int:
        return self.mem.alloc_frame()

    def translate(self, va: int, adue: bool = True) -> Translation | Fault:
        return self.walker.translate(self.mem, self.regs(adue), va)


def ppn(pa: int) -> int:
    return pa >> 12 << 10


def sv39_page(flags: int, pa: int = 0x8000_0000) -> tuple[Tables, int]:
    """VA 0x4000_1000 -> a 4K leaf with ``flags``: root[1] -> L1 -> L0[1]."""
    t = Tables()
    l1, l0 = t.table(), t.table()
    t.put(t.root, 1, ppn(l1) | V)
    t.put(l1, 0, ppn(l0) | V)
    t.put(l0, 1, ppn(pa) | flags)
    return t, 0x4000_1000


def test_walker_translates_a_page() -> None:
    t, va = sv39_page(V | R | W | A | D | U)
    r = t.translate(va + 0x123)
    assert isinstance(r, Translation)
    assert (r.pa, r.size, r.level, r.writable, r.executable, r.user) == (
        0x8000_0123, 0x1000, 2, True, False, True)


def test_w_without_r_is_reserved() -> None:
    """Translation process step 3: "if pte.r = 0 and pte.w = 1 ... raise a page-fault"."""
    t, va = sv39_page(V | W | A | D)
    r = t.translate(va)
    assert isinstance(r, Fault) and "W = 1 with R = 0" in r.reason


def test_misaligned_superpage_faults() -> None:
    """Step 6: a leaf at level i > 0 with ppn[i-1:0] != 0 is a misaligned superpage."""
    t = Tables()
    l1 = t.table()
    t.put(t.root, 1, ppn(l1) | V)
    t.put(l1, 0, ppn(0x8000_1000) | V | R | A | D)  # a 2M leaf whose PPN[0] is 1
    r = t.translate(0x4000_0000)
    assert isinstance(r, Fault) and "misaligned superpage" in r.reason and r.level == 1
    t.put(l1, 0, ppn(0x8020_0000) | V | R | A | D)
    r = t.translate(0x4000_0000 + 0x12345)
    assert isinstance(r, Translation) and r.pa == 0x8021_2345 and r.size == 0x20_0000


def test_non_leaf_with_u_a_d_is_reserved() -> None:
    """"For non-leaf PTEs, the D, A, and U bits are reserved for future standard use"; step
    3 makes a set reserved bit a page fault.  Linux's ``_PAGE_TABLE`` is V alone."""
    for bit in (U, A, D):
        t, va = sv39_page(V | R | A)
        l1 = t.mem.read(t.root + 8, 8) >> 10 << 12
        t.put(t.root, 1, ppn(l1) | V | bit)
        r = t.translate(va)
        assert isinstance(r, Fault) and "reserved" in r.reason and r.level == 0


def test_non_leaf_at_level_0_and_reserved_high_bits() -> None:
    """Step 4: R = X = 0 at level 0 is a page fault; bits 60:54 are reserved, PBMT = 3 is
    reserved (Svpbmt), N at a level above 0 is reserved (Svnapot)."""
    t, va = sv39_page(V)
    assert isinstance(t.translate(va), Fault)
    for bad in (1 << 54, 1 << 60, 3 << 61):
        t, va = sv39_page(V | R | A | bad)
        r = t.translate(va)
        assert isinstance(r, Fault) and "reserved" in r.reason
    t, va = sv39_page(V | R | A | 1 << 61)  # PBMT = NC: fine
    assert isinstance(t.translate(va), Translation)


def test_napot_leaf() -> None:
    """Svnapot: N = 1 with ppn[3:0] = 1000 at level 0 maps 64 KiB, the VA supplying
    ppn[3:0]; any other ppn[3:0] is reserved."""
    t, va = sv39_page(V | R | A | 1 << 63, 0x8000_8000)
    r = t.translate(0x4000_3000)
    assert isinstance(r, Fault)  # entry 3 is empty
    l0 = (t.mem.read((t.mem.read(t.root + 8, 8) >> 10 << 12), 8) >> 10) << 12
    t.put(l0, 3, ppn(0x8000_8000) | V | R | A | 1 << 63)
    r = t.translate(0x4000_3456)
    assert isinstance(r, Translation) and r.size == 0x10000 and r.pa == 0x8000_3456
    t.put(l0, 3, ppn(0x8000_4000) | V | R | A | 1 << 63)
    assert isinstance(t.translate(0x4000_3000), Fault)


def test_non_canonical_va_faults() -> None:
    """Sv39: bits 63:39 must equal bit 38."""
    t, va = sv39_page(V | R | A)
    assert isinstance(t.translate(va | 1 << 39), Fault)
    assert isinstance(t.translate(va), Translation)


def test_a_and_d_with_and_without_svadu() -> None:
    """Step 7: A = 0 (or a store with D = 0) is a page fault unless menvcfg.ADUE = 1 lets
    the hardware set the bit (Svadu)."""
    t, va = sv39_page(V | R | W)
    assert isinstance(t.translate(va, adue=True), Translation)
    r = t.translate(va, adue=False)
    assert isinstance(r, Fault) and "A = 0" in r.reason
    t, va = sv39_page(V | R | W | A)
    r = t.translate(va, adue=False)
    assert isinstance(r, Translation) and not r.writable
    r = t.translate(va, adue=True)
    assert isinstance(r, Translation) and r.writable


def test_sv32_megapage_and_34_bit_pa() -> None:
    """Sv32: a level-1 leaf maps 4 MiB; PPN[1] is 12 bits wide, so PAs reach 2^34."""
    t = Tables(rv32=True)
    t.put(t.root, 0x101, (0x3_0040_0000 >> 12) << 10 | V | R | X | A)
    r = t.translate(0x4040_1234)
    assert isinstance(r, Translation) and r.pa == 0x3_0040_1234 and r.size == 1 << 22
    assert r.executable and not r.writable


def test_satp_selects_the_mode() -> None:
    t = Tables()
    with pytest.raises(BadInput, match="selects Sv48"):
        t.walker.translate(t.mem, {"satp": 9 << 60 | t.root >> 12}, 0)
    with pytest.raises(BadInput, match="Bare"):
        t.walker.translate(t.mem, {"satp": t.root >> 12}, 0)


def test_structure_and_leaves_agree_with_translate() -> None:
    """The TLB model's decoding (``structure``) and ``leaves`` see what ``translate`` sees,
    faults included (a W-only PTE translates nothing)."""
    t, va = sv39_page(V | R | X | A | G)
    (walk,) = t.walker.structure(t.regs())
    assert walk.register == "satp" and walk.table == t.root
    assert [lv.shift for lv in walk.levels] == [30, 21, 12]
    assert walk.decode(2, ppn(0x1000) | V | W).kind == "none"
    assert walk.decode(0, ppn(0x1000) | V | U).kind == "none"
    leaves = list(t.walker.leaves(t.mem, t.regs()))
    assert [(lf.va, lf.pa, lf.size) for lf in leaves] == [(va, 0x8000_0000, 0x1000)]


def test_make_registers() -> None:
    regs = RISCV64_SV39.make_registers(0x10_0000, 0x10_0000)
    assert regs == {"satp": 8 << 60 | 0x100, "menvcfg": MENVCFG_ADUE}
    assert RISCV32_SV32.make_registers(0x10_0000, 0x10_0000)["satp"] == 1 << 31 | 0x100
    with pytest.raises(BadInput, match="one root"):
        RISCV64_SV48.make_registers(0x10_0000, 0x20_0000)
    with pytest.raises(BadInput, match="aligned"):
        RISCV64_SV57.make_registers(0x10_0800, 0x10_0800)


@pytest.mark.parametrize("name", NAMES)
def test_kernel_entries_walk_as_the_kernel_means(name: str) -> None:
    """End to end: a user page as the emulated kernel writes it (``_PAGE_BASE`` = V | A | U,
    shared writable: R | W; little-endian 8-byte PTEs on RV64, 4-byte on RV32), read by
    the walker."""
    k, mm, vma = _mapped(name)
    regs = k.config.make_registers(mm.pgd.pa, mm.pgd.pa)
    r = k.config.walker.translate(k.mem, regs, VA)
    assert isinstance(r, Translation) and r.user and r.writable and not r.executable
    pte = k.pte_offset_kernel(k.pmd_off(mm, VA), VA)
    raw = k.ptep_get(pte)
    assert raw & (V | A | U) == V | A | U
    n = k.SIZEOF_PTE
    assert k.mem.read_bytes(pte.pa, n) == raw.to_bytes(n, "little")  # little-endian PTEs
    r2 = k.config.walker.translate(k.mem, regs, VA + 0x1000)
    assert isinstance(r2, Translation) and r2.pa == PA + 0x1000
