"""The emulated TLB (arches/tlb.py) and the lock assertions (legacy/tlbflush.py), on every
configuration, driven through the raw legacy API the way kernel code would.

Each rule is shown both ways: the correct sequence passes ``syscall_exit``; the planted
mistake (no flush, wrong range, free before flush, no lock, wrong lock, arm64
break-before-make) raises an error naming the VA range, the level and the writer.
"""

from __future__ import annotations

import random

import pytest

import legacy
from arches.config import Fault
from arches.errors import LockError, TlbError
from legacy import GenericKernel, PmdPtr, PtePtr, mm_struct, spin_lock, spin_unlock
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import mmap_region
from legacy.mm.mmu_gather import tlb_flush_pmd_range, tlb_gather_mmu
from legacy.mm.vma import find_vma
from legacy.mm_types import mmap_write_locked, vm_area_struct
from ptshim.backends import user_vm_flags
from ptshim.scenario import parse_scenario
from ptshim.scenario_gen import ScenarioGen
from ptshim.session import Session
from tests.conftest import ARCH_NAMES, pmd_hw_addrs

VA = 0x40_0000


def _map(k: GenericKernel, mm: mm_struct, va: int = VA, pages: int = 4) -> vm_area_struct:
    size = pages * k.PAGE_SIZE
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, va, size, user_vm_flags("rw"), 0x1234) == va
        vma = find_vma(k, mm, va)
        assert vma is not None
        assert remap_pfn_range(k, vma, va, 0x1234, size, legacy.pgprot_t(vma.vm_page_prot)) == 0
    k.syscall_exit("map")
    if k.SOFTWARE_YOUNG_DIRTY:  # a clean pte is read-only to the MMU: write-fault them
        with mmap_write_locked(mm):
            for i in range(pages):
                a = va + i * k.PAGE_SIZE
                r = k.pte_offset_map_lock(mm, k.pmd_off(mm, a), a)
                assert r is not None
                pte, ptl = r
                entry = k.pte_mkdirty(k.pte_mkyoung(k.ptep_get(pte)))  # handle_pte_fault
                k.ptep_set_access_flags(vma, a, pte, entry, 1)
                k.pte_unmap_unlock(pte, ptl)
        k.syscall_exit("write faults")
    return vma


def _flush_freed_tables(k: GenericKernel, mm: mm_struct, va: int) -> None:
    """The flush of a gather that freed a table at ``va`` (``pte_free_tlb``): the whole mm
    on riscv (by-address ``sfence.vma`` is leaf-only), the page walk cache by PID on ppc64
    radix (whose ``flush_tlb_mm`` keeps it); widened as the kernel's ``__pte_free_tlb``
    widens it (classic arm: a page on each side of the 1M boundary, asm/tlb.h)."""
    tlb = tlb_gather_mmu(k, mm)
    tlb.freed_tables = True
    tlb_flush_pmd_range(k, tlb, va, k.PAGE_SIZE)
    widen = k.pte_free_tlb_range(va)
    if widen is not None:
        tlb_flush_pmd_range(k, tlb, *widen)
    k.tlb_flush(tlb)


def _flush_page(k: GenericKernel, vma: vm_area_struct, va: int) -> None:
    """The flush a pte cleared by ``ptep_get_and_clear`` owes: ``flush_tlb_page``, or where
    that is empty (s390 ``FLUSH_TLB_PAGE_EMPTY``: the single-page clears invalidate with
    IPTE themselves) ``flush_tlb_range``, which purges the lazy clear's pending flush."""
    if k.FLUSH_TLB_PAGE_EMPTY:
        k.flush_tlb_range(vma, va, va + k.PAGE_SIZE)
    else:
        k.flush_tlb_page(vma, va)


def _pte(k: GenericKernel, mm: mm_struct, va: int) -> tuple[PmdPtr, PtePtr]:
    pmd = k.pmd_off(mm, va)
    pte = k.pte_offset_map(pmd, va)
    assert pte is not None
    return pmd, pte


def _setup(arch: str) -> tuple[GenericKernel, mm_struct, vm_area_struct]:
    k = legacy.boot(arch)
    mm = k.mm_alloc()
    assert mm is not None
    return k, mm, _map(k, mm)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_clear_needs_a_flush_of_that_range(arch: str) -> None:
    k, mm, vma = _setup(arch)
    va = VA + k.PAGE_SIZE
    pmd, pte = _pte(k, mm, va)
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    k.ptep_get_and_clear(mm, va, pte)
    spin_unlock(ptl)
    with pytest.raises(TlbError) as e:
        k.syscall_exit("test")
    msg = str(e.value)
    assert f"[{va:#x}, {va + k.PAGE_SIZE:#x})" in msg and "cleared" in msg
    assert "test_clear_needs_a_flush_of_that_range" in msg
    assert k.config.hw_levels[-1].name in msg  # the level, by its manual name
    k.flush_tlb_range(vma, VA, va)  # the wrong range: the page before
    # (s390, FLUSH_PENDING_PER_MM: any range purges the space when a flush is owed)
    if not k.FLUSH_PENDING_PER_MM:
        with pytest.raises(TlbError):
            k.syscall_exit("test")
    k.flush_tlb_range(vma, va, va + k.PAGE_SIZE)
    k.syscall_exit("test")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_permission_upgrade_needs_no_flush(arch: str) -> None:
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    k.ptep_set_wrprotect(mm, VA, pte)
    spin_unlock(ptl)
    # (s390 ptep_xchg_lazy: the invalid bit first, then the read-only pte)
    change = "cleared" if k.PTE_CHANGE_GOES_THROUGH_INVALID else "write permission removed"
    with pytest.raises(TlbError, match=change):
        k.syscall_exit("wrprotect")
    k.flush_tlb_mm(mm)
    spin_lock(ptl)
    k.set_pte_at(mm, VA, pte, k.pte_mkwrite(k.ptep_get(pte), vma))  # type: ignore[call-arg]
    spin_unlock(ptl)
    k.syscall_exit("mkwrite")  # an upgrade: a stale read-only entry only faults spuriously


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_table_freed_before_the_flush(arch: str) -> None:
    """Unhook a PTE table and free it at once: a walk cache may still point at it."""
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    table = k.pmd_pgtable(k.pmdp_get(pmd))
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    for i in range(4):
        k.ptep_get_and_clear(mm, VA + i * k.PAGE_SIZE, pte + i)
    spin_unlock(ptl)
    k.flush_tlb_range(vma, VA, VA + 4 * k.PAGE_SIZE)
    pl = k.pmd_lock(mm, pmd)
    k.pmd_clear(pmd)
    spin_unlock(pl)
    with pytest.raises(TlbError, match=f"page-table frame {table.pa:#x} freed while a walk "):
        k.pte_free(mm, table)
    assert k.mem.is_allocated(table.pa)  # refused before anything changed
    # One address of the entry's span is enough where a by-address flush reaches the walk
    # caches: the walk-cache entry caches the whole span, and an invalidation by address
    # drops every entry used to translate it (what pte_free_tlb's one-page range in the
    # mmu_gather relies on).  riscv's sfence.vma by address is leaf-only: its tlb_flush
    # flushes the whole mm when tables were freed (asm/tlb.h), and so must this.  Nor is
    # it where the pmd is several hardware entries (classic arm: pmd_hw_addrs), each with
    # its own walk-cache entry: arm's __pte_free_tlb flushes a page of each.
    # s390 (FLUSH_PENDING_PER_MM): flush_tlb_range purges only a flush_mm a lazy clear or
    # pte_free_tlb set, and pmd_clear sets none.
    k.flush_tlb_range(vma, VA, VA + k.PAGE_SIZE)
    if (not k.config.addr_flush_reaches_walk_caches or len(pmd_hw_addrs(k, VA)) > 1
            or k.FLUSH_PENDING_PER_MM):
        with pytest.raises(TlbError, match=f"page-table frame {table.pa:#x} freed while "):
            k.pte_free(mm, table)
        _flush_freed_tables(k, mm, VA)
    k.pte_free(mm, table)
    k.mm_dec_nr_ptes(mm)
    k.syscall_exit("free")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_a_table_no_root_reaches_any_more_translates_nothing(arch: str) -> None:
    """Stores into a PTE table owe a flush while a root reaches it, and nothing once it is
    unhooked (flushed) or its mm's ASID is retired (``__mmdrop``): only its owner sees it.
    The TLB model remembers the table the last store went to; either change must make it
    forget that (retiring stores nothing that would move it elsewhere)."""
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    table = k.pmd_pgtable(k.pmdp_get(pmd))
    ptl = k.pte_lockptr(mm, pmd)

    def clear(i: int) -> None:
        spin_lock(ptl)
        assert k.pte_present(k.ptep_get(pte + i))  # a leaf until now
        k.ptep_get_and_clear(mm, VA + i * k.PAGE_SIZE, pte + i)
        spin_unlock(ptl)

    clear(0)
    with pytest.raises(TlbError, match="cleared"):
        k.syscall_exit("test")
    k.flush_tlb_range(vma, VA, VA + k.PAGE_SIZE)
    pl = k.pmd_lock(mm, pmd)
    k.pmd_clear(pmd)
    spin_unlock(pl)
    _flush_freed_tables(k, mm, VA)
    k.syscall_exit("unhook")
    clear(1)
    assert not k.hw_tlb.marks
    pl = k.pmd_lock(mm, pmd)
    k.pmd_populate(mm, pmd, table)  # hooked again: stores owe flushes again
    spin_unlock(pl)
    clear(2)
    assert k.hw_tlb.marks
    k.flush_tlb_range(vma, VA, VA + 4 * k.PAGE_SIZE)
    k.syscall_exit("rehook")
    k.mm_tlb_retire(mm)
    clear(3)
    assert not k.hw_tlb.marks
    k.syscall_exit("after the ASID is retired")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_break_before_make(arch: str) -> None:
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    ptl = k.pte_lockptr(mm, pmd)
    other = k.pfn_pte(0x9999, legacy.pgprot_t(vma.vm_page_prot))
    bbm = k.config.break_before_make
    spin_lock(ptl)
    try:
        if bbm:  # valid -> valid of another output address
            with pytest.raises(TlbError, match="break-before-make"):
                k.set_pte_at(mm, VA, pte, other)
        k.ptep_get_and_clear(mm, VA, pte)
        if bbm:  # break, then make without the TLBI in between
            with pytest.raises(TlbError, match="invalidation between break and make"):
                k.set_pte_at(mm, VA, pte, other)
            _flush_page(k, vma, VA)
        k.set_pte_at(mm, VA, pte, other)
    finally:
        spin_unlock(ptl)
    k.flush_tlb_range(vma, VA, VA + k.PAGE_SIZE)
    k.syscall_exit("bbm")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_lockdep_pte_store(arch: str) -> None:
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    v = k.ptep_get(pte)
    with pytest.raises(LockError, match="without ptl@") as e:
        k.set_pte_at(mm, VA, pte, k.pte_wrprotect(v))
    assert f"[{VA:#x}, +{k.PAGE_SIZE:#x})" in str(e.value)
    assert k.ptep_get(pte) == v  # refused before the store
    spin_lock(mm.page_table_lock)  # the wrong lock
    with pytest.raises(LockError, match="held: mm1.page_table_lock"):
        k.set_pte_at(mm, VA, pte, k.pte_wrprotect(v))
    spin_unlock(mm.page_table_lock)
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    if k.PTE_CHANGE_GOES_THROUGH_INVALID:
        # s390 never changes a present pte in place: ptep_set_wrprotect (ptep_xchg_lazy)
        # leaves the flush_mm that flush_tlb_mm purges; a plain store would leave none
        k.ptep_set_wrprotect(mm, VA, pte)
    else:
        k.set_pte_at(mm, VA, pte, k.pte_wrprotect(v))
    spin_unlock(ptl)
    k.flush_tlb_mm(mm)
    k.syscall_exit("ok")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_lockdep_pmd_store_and_lockless_teardown(arch: str) -> None:
    k, mm, vma = _setup(arch)
    pmd, _ = _pte(k, mm, VA)
    with pytest.raises(LockError, match="lockdep"):
        k.pmd_clear(pmd)
    with pytest.raises(LockError, match="mmap_lock held for write"):
        with k.pgtable_lockless(mm, "free_pgtables"):
            pass
    with mmap_write_locked(mm), k.pgtable_lockless(mm, "free_pgtables"):
        k.pmd_clear(pmd)  # a detached range under the mmap write lock: no ptl needed
    _flush_freed_tables(k, mm, VA)
    k.syscall_exit("ok")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_private_tables_need_no_lock(arch: str) -> None:
    """A table no root reaches (just allocated, or deposited) is its owner's alone."""
    k = legacy.boot(arch)
    mm = k.mm_alloc()
    assert mm is not None
    table = k.pte_alloc_one(mm)
    assert table is not None
    k.set_pte_at(mm, VA, table, k.pfn_pte(0x1234, k.PAGE_KERNEL))
    assert not k.hw_tlb.is_live(table.pa)
    k.pte_free(mm, table)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_end_of_call_site_refuses_held_locks(arch: str) -> None:
    k, mm, _ = _setup(arch)
    spin_lock(mm.page_table_lock)
    with pytest.raises(LockError, match="locks still held at the end of op 1"):
        k.syscall_exit("op 1")
    spin_unlock(mm.page_table_lock)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_tlb_decoding_agrees_with_the_walker(arch: str) -> None:
    """The TLB's own decoding of every table it tracks finds exactly the walker's leaves:
    it follows every table the MMU would (random machines, both halves)."""
    rng = random.Random(f"tlb-{arch}")
    gen = ScenarioGen(arch, rng)
    for i in range(4):
        s = Session(arch)
        s.k.lockdep_enabled = False  # decoding only: the lock rules are tested above
        s.k.hw_tlb.enabled = False
        s.run(gen.scenario(6, f"t{i}"))
        walker = {(t.va, t.pa, t.size) for t in s.hardware_leaves()}
        mine = set(s.k.hw_tlb.leaves(s.mm.asid))
        if s.k.SEPARATE_KERNEL_ROOT:
            mine |= set(s.k.hw_tlb.leaves(s.k.init_mm.asid))
        assert mine == walker


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_writing_back_the_same_translation_needs_no_flush(arch: str) -> None:
    """``ptep_modify_prot_start``/``_commit`` with nothing to change (x86
    ``pte_needs_flush`` is false): the cached copy is current again.  Writing back less
    than was there still owes the flush."""
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    old = k.ptep_get_and_clear(mm, VA, pte)
    k.set_pte_at(mm, VA, pte, old)
    old2 = k.ptep_get_and_clear(mm, VA + k.PAGE_SIZE, pte + 1)
    k.set_pte_at(mm, VA + k.PAGE_SIZE, pte + 1, k.pte_wrprotect(old2))
    spin_unlock(ptl)
    with pytest.raises(TlbError) as e:
        k.syscall_exit("modify")
    assert f"[{VA + k.PAGE_SIZE:#x}, {VA + 2 * k.PAGE_SIZE:#x})" in str(e.value)
    assert "(and" not in str(e.value)  # the first page is not stale any more
    _flush_page(k, vma, VA + k.PAGE_SIZE)
    k.syscall_exit("modify")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_writing_back_a_page_user_space_may_not_reach_still_owes_the_flush(arch: str) -> None:
    """The same page written back as a kernel page (``PAGE_KERNEL``): the cached copy still
    lets user space reach it, so it is not current again (x86 ``pte_flags_need_flush``
    counts ``_PAGE_USER`` among the bits whose change needs a flush)."""
    if arch == "s390x":
        pytest.skip("s390x: DAT has no user/supervisor bit (user and kernel have their own "
                    "address spaces), so the kernel page grants what the user page did")
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    old = k.ptep_get_and_clear(mm, VA, pte)
    k.set_pte_at(mm, VA, pte, k.pfn_pte(k.pte_pfn(old), k.PAGE_KERNEL))
    spin_unlock(ptl)
    with pytest.raises(TlbError) as e:
        k.syscall_exit("modify")
    assert f"[{VA:#x}, {VA + k.PAGE_SIZE:#x})" in str(e.value)
    _flush_page(k, vma, VA)
    k.syscall_exit("modify")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_pmdp_invalidate_flushes_the_huge_page(arch: str) -> None:
    """mm/pgtable-generic.c ``pmdp_invalidate``: establish ``pmd_mkinvalid``, then
    ``flush_pmd_tlb_range`` of the huge page -- nothing is left stale."""
    k0 = legacy.boot(arch)
    if not k0.TRANSPARENT_HUGEPAGE:
        pytest.skip(f"{arch}: no THP")
    s = Session(arch)
    va = 1 << 30
    s.run(parse_scenario({"ops": [{"op": "map", "va": va, "pa": 1 << 30, "size": k0.PMD_SIZE,
                                   "prot": "rw", "page_size": k0.PMD_SIZE}]}, "thp"))
    k, mm = s.k, s.mm
    vma = find_vma(k, mm, va)
    assert vma is not None
    pmd = k.pmd_off(mm, va)
    ptl = k.pmd_lock(mm, pmd)
    old = k.pmdp_invalidate(vma, va, pmd)
    spin_unlock(ptl)
    assert k.pmd_leaf(old)
    # invalid to the MMU (arm64 keeps pmd_present() true: PTE_PRESENT_INVALID)
    assert isinstance(k.config.walker.translate(k.mem, s.registers(), va), Fault)
    assert k.hw_tlb.marks == []  # and flushed inside


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_a_zap_of_scattered_pages_is_remembered_page_by_page(arch: str) -> None:
    """Clearing pages that mapped unrelated frames (anonymous memory) leaves one stale
    range, but each page's old frame is remembered: writing back page 2's own translation
    makes it current again; writing another page's frame there does not."""
    pfns = [0x2000, 0x2007, 0x2003, 0x2010]
    for wrong in (False, True):
        k, mm, vma = _setup(arch)
        pmd, pte = _pte(k, mm, VA)
        ps = k.PAGE_SIZE
        ptl = k.pte_lockptr(mm, pmd)
        v = k.ptep_get(pte)
        # without the frame: s390's pte_pgprot keeps it (_PAGE_CHG_MASK has PAGE_MASK,
        # asm/pgtable.h), and pfn_pte would OR it into every new frame
        prot = legacy.pgprot_t(k.pte_pgprot(v) & ~(k.pte_pfn(v) << k.PAGE_SHIFT))
        spin_lock(ptl)
        for i in range(4):
            k.ptep_get_and_clear(mm, VA + i * ps, pte + i)
        spin_unlock(ptl)
        k.flush_tlb_range(vma, VA, VA + 4 * ps)
        spin_lock(ptl)
        for i, pfn in enumerate(pfns):
            k.set_pte_at(mm, VA + i * ps, pte + i, k.pfn_pte(pfn, prot))
        spin_unlock(ptl)
        k.syscall_exit("scatter")
        spin_lock(ptl)
        old = [k.ptep_get_and_clear(mm, VA + i * ps, pte + i) for i in range(4)]
        assert len(k.hw_tlb.marks) == 1
        back = old[1] if wrong else old[2]
        try:
            k.set_pte_at(mm, VA + 2 * ps, pte + 2, back)
        except TlbError as e:  # arm64: a make over a conflicting cached translation
            assert wrong and k.config.break_before_make and "break-before-make" in str(e)
            spin_unlock(ptl)
            continue
        spin_unlock(ptl)
        k.flush_tlb_range(vma, VA, VA + 2 * ps)
        k.flush_tlb_range(vma, VA + 3 * ps, VA + 4 * ps)
        if wrong:
            with pytest.raises(TlbError, match=f"{VA + 2 * ps:#x}"):
                k.syscall_exit("scatter")
        else:
            k.syscall_exit("scatter")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_a_zap_is_remembered_as_one_range_per_rights(arch: str) -> None:
    """Clearing consecutive pages leaves one stale range while what they granted is the
    same: a write-protected page in the middle splits it in three."""
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    ps = k.PAGE_SIZE
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    k.ptep_set_wrprotect(mm, VA + ps, pte + 1)
    spin_unlock(ptl)
    k.flush_tlb_range(vma, VA, VA + 4 * ps)
    k.syscall_exit("write-protect")
    spin_lock(ptl)
    for i in range(4):
        k.ptep_get_and_clear(mm, VA + i * ps, pte + i)
    spin_unlock(ptl)
    ranges = [(m.start, m.end) for m in k.hw_tlb.marks]
    assert ranges == [(VA, VA + ps), (VA + ps, VA + 2 * ps), (VA + 2 * ps, VA + 4 * ps)]
    k.flush_tlb_range(vma, VA, VA + 4 * ps)
    k.syscall_exit("zap")


@pytest.mark.parametrize("arch", ["x86_64", "arm64-4k-39", "riscv64-sv39"])
def test_what_a_root_reaches_is_known_at_once(arch: str) -> None:
    """The TLB remembers its last lookup (lockdep asks about an entry just before the
    store does): loading or retiring a root must forget it.  A process's tables are seen
    from the moment ``switch_mm`` loads its root, and not after its ASID is retired."""
    k, mm, _vma = _setup(arch)
    _pmd, pte = _pte(k, mm, VA)
    tlb = k.hw_tlb
    assert tlb.space_at(pte.pa) == mm.asid
    k.mm_tlb_retire(mm)
    assert tlb.space_at(pte.pa) is None and not tlb.is_live(pte.pa)
    k.switch_mm(mm)
    assert tlb.space_at(pte.pa) == mm.asid and tlb.is_live(pte.pa)
