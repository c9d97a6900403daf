"""The architectures' TLB flush semantics (legacy/x86/tlbflush.py, legacy/arm64/tlbflush.py,
legacy/riscv/tlbflush.py) and planted bugs in copies of legacy call sites, each caught by the
emulated TLB (:mod:`arches.tlb`) or lockdep with a message naming the cause.

Flush semantics, on every configuration:

- arm64 ``flush_tlb_page`` (``TLBI VALE1IS``) and ``flush_tlb_kernel_range`` (``VAALE1IS``)
  leave walk-cache entries, and so does every by-address ``sfence.vma`` of riscv; x86's
  INVLPG drops them (``ArchConfig.range_flush_clears_walk_caches``,
  ``addr_flush_reaches_walk_caches``);
- arm64 ``tlb_flush`` of a ``fullmm`` gather that freed no table flushes nothing (the ASID is
  retired); x86 flushes the whole mm;
- a range of the kernel's flush ceiling (:func:`full_flush_pages`) is flushed as a whole;
- s390 invalidates at the store (IPTE/IDTE: ``FLUSH_TLB_PAGE_EMPTY``,
  ``HUGE_CLEAR_INVALIDATES``) or remembers the flush per mm (``FLUSH_PENDING_PER_MM``:
  ``flush_tlb_range``/``flush_tlb_mm``/``tlb_flush`` purge the whole space when a lazy
  clear or ``pte_free_tlb`` left ``flush_mm`` set, nothing otherwise).

Planted bugs (each next to its correct control, which passes): a missing flush in mprotect,
a wrong flush range, a PTE table freed before the flush (``free_pgd_range`` with a
``free_pte_range`` that frees at once), a pte store without the lock and one under the wrong
lock, a split that populates over a live huge pmd without ``pmdp_invalidate`` + flush
(break-before-make on arm64, a stale translation at the end of the call on x86), a missing
vunmap flush, and a kernel table freed after a last-level-only flush (caught wherever a
by-address flush keeps the walk caches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest

import legacy
import legacy.mm.memory as memory
from arches.errors import LockError, TlbError
from arches.tlb import KERNEL_SPACE
from legacy import GenericKernel, mm_struct, vm_area_struct
from legacy.mm.huge_memory import HPAGE_PMD_NR, insert_pfn_pmd, split_huge_pmd
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import do_munmap, mmap_region
from legacy.mm.mmu_gather import (
    mmu_gather,
    tlb_change_page_size,
    tlb_finish_mmu,
    tlb_flush_pte_range,
    tlb_gather_mmu,
    tlb_gather_mmu_fullmm,
    tlb_remove_tlb_entry,
)
from legacy.mm.mprotect import change_protection
from legacy.mm.vm_flags import (
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_PFNMAP,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)
from legacy.mm.vma import find_vma
from legacy.mm.vmalloc import vmap_range, vunmap_range, vunmap_range_noflush
from legacy.mm_types import mmap_write_locked, spin_lock, spin_unlock, spinlock_t
from legacy.types import PmdPtr, PtePtr, pgprot_t, pgtable_t
from tests.conftest import pmd_hw_addrs

ARCHES = legacy.arch_names()
SHARED = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE | VM_PFNMAP
VA = 0x4000_0000  # PUD aligned, user on every configuration
PA = 0x4000_0000
PAGES = 4


def is_arm64(k: GenericKernel) -> bool:
    return k.config.family == "arm64"


@contextmanager
def syscall(k: GenericKernel, mm: mm_struct, what: str) -> Iterator[None]:
    """Run the block as one syscall: ``mmap_write_lock``, then ``k.syscall_exit``."""
    with mmap_write_locked(mm):
        yield
    k.syscall_exit(what)


def map_pages(name: str, pages: int = PAGES) -> tuple[GenericKernel, mm_struct, vm_area_struct]:
    """A shared writable pfn map of ``pages`` 4K pages at ``VA`` (one PTE table)."""
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    with syscall(k, mm, "mmap + remap_pfn_range"):
        assert mmap_region(k, mm, VA, pages * k.PAGE_SIZE, SHARED, PA >> k.PAGE_SHIFT) == VA
        vma = find_vma(k, mm, VA)
        assert vma is not None
        assert remap_pfn_range(k, vma, VA, PA >> k.PAGE_SHIFT, pages * k.PAGE_SIZE,
                               pgprot_t(vma.vm_page_prot)) == 0
    if k.SOFTWARE_YOUNG_DIRTY:  # s390: clean ptes are DAT-protected until a write fault
        with syscall(k, mm, "write faults"):
            for i in range(pages):
                va = VA + i * k.PAGE_SIZE
                r = k.pte_offset_map_lock(mm, k.pmd_off(mm, va), va)
                assert r is not None
                pte, ptl = r
                young = cast(Any, k).pte_mkyoung(k.ptep_get(pte))
                entry = k.pte_mkdirty(young)  # handle_pte_fault
                k.ptep_set_access_flags(vma, va, pte, entry, 1)
                k.pte_unmap_unlock(pte, ptl)
    return k, mm, vma


def read_only(k: GenericKernel) -> pgprot_t:
    return k.vm_get_page_prot(VM_READ | VM_SHARED)


def keeps_walk_caches(k: GenericKernel, last_level: bool = True) -> bool:
    """Whether a one-page flush by address leaves walk-cache entries: not where any
    invalidation by address drops them all (x86 INVLPG); yes where it is last level
    (``last_level``: arm64 ``VALE1``) or none reaches them (riscv, ppc64 radix ``RIC 0``)."""
    return not k.config.range_flush_clears_walk_caches and (
        last_level or not k.config.addr_flush_reaches_walk_caches)


def page_flush_keeps_walk_caches(k: GenericKernel) -> bool:
    """Whether ``flush_tlb_page`` leaves walk-cache entries: also where it flushes nothing
    at all (s390, ``FLUSH_TLB_PAGE_EMPTY``)."""
    return k.FLUSH_TLB_PAGE_EMPTY or keeps_walk_caches(k, k.FLUSH_TLB_PAGE_LAST_LEVEL)


def kernel_flush_keeps_walk_caches(k: GenericKernel) -> bool:
    """As :func:`keeps_walk_caches` for a one-page ``flush_tlb_kernel_range``, which is a
    flush of everything on some kernels (ppc64 radix)."""
    return not k.FLUSH_TLB_KERNEL_RANGE_ALL and keeps_walk_caches(
        k, k.FLUSH_TLB_KERNEL_RANGE_LAST_LEVEL)


def full_flush_pages(k: GenericKernel) -> int | None:
    """The fewest pages ``flush_tlb_range`` flushes as the whole address space, from the
    kernel's own ceiling: x86 and ppc64 radix more than ``tlb_single_page_flush_ceiling``
    (33), arm64 ``MAX_DVM_OPS`` (``PTRS_PER_PTE``) strides or more, riscv more than
    ``tlb_flush_all_threshold`` (64); None where there is no ceiling (32-bit arm
    ``v7wbi_flush_user_tlb_range``: one ``TLBIMVAIS`` per page, however many)."""
    ceiling = getattr(k, "tlb_single_page_flush_ceiling", None)
    if ceiling is not None:
        return int(ceiling) + 1
    dvm = getattr(k, "MAX_DVM_OPS", None)
    if dvm is not None:
        return int(dvm)
    threshold = getattr(k, "tlb_flush_all_threshold", None)
    return None if threshold is None else int(threshold) + 1


def walk_marks(k: GenericKernel, space: int) -> list[str]:
    return [m.describe() for m in k.hw_tlb.stale(space) if m.walk]


def kernel_base(k: GenericKernel, align: int) -> int:
    lo = k.config.kernel_range[0]
    return (lo + align - 1) // align * align


def huge_pmd_ok(k: GenericKernel) -> bool:
    return k.PMD_SIZE != k.PAGE_SIZE and k.PMD_SIZE in k.config.leaf_sizes


# -- the architectures' flush semantics -----------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_flush_tlb_page_keeps_walk_caches_unless_invlpg(name: str) -> None:
    """A PTE table unhooked (``pmd_clear``) leaves a walk-cache entry; ``flush_tlb_page`` is
    ``TLBI VALE1IS`` on arm64 and ``sfence.vma addr`` on riscv (last level: it stays) and
    INVLPG on x86 (it goes).  A one-page ``flush_tlb_range`` is not last level on arm64
    (``TLBI VAE1IS``: it goes) and still ``sfence.vma addr`` on riscv (it stays until an
    ``sfence.vma`` without address, e.g. ``flush_tlb_mm``).  Where one Linux pmd is several
    hardware entries (:func:`pmd_hw_addrs`: classic arm's two 1M descriptors), each keeps
    walk-cache entries of its own: one page of each is flushed, as arm's ``__pte_free_tlb``
    range does.  Where the flush owed is remembered per mm (s390 ``flush_mm``), a plain
    ``pmd_clear`` leaves none pending: ``flush_tlb_page`` (empty), ``flush_tlb_range`` and
    ``flush_tlb_mm`` purge nothing; ``pte_free_tlb``'s ``flush_mm = 1`` makes the gather's
    ``tlb_flush`` purge the space."""
    k, mm, vma = map_pages(name)
    pmd = k.pmd_off(mm, VA)
    ptl = k.pmd_lock(mm, pmd)
    k.pmd_clear(pmd)
    spin_unlock(ptl)
    space = k._space(mm)
    assert walk_marks(k, space)
    for va in pmd_hw_addrs(k, VA):
        k.flush_tlb_page(vma, va)
    assert bool(walk_marks(k, space)) == page_flush_keeps_walk_caches(k)
    for va in pmd_hw_addrs(k, VA):  # not last level where the ISA can
        k.flush_tlb_range(vma, va, va + k.PAGE_SIZE)
    pending = k.FLUSH_PENDING_PER_MM  # s390: nothing pending, nothing purged
    assert bool(walk_marks(k, space)) == (
        pending or not k.config.addr_flush_reaches_walk_caches)
    k.flush_tlb_mm(mm)  # ppc64 radix: RIC_FLUSH_TLB, the page walk cache stays
    assert bool(walk_marks(k, space)) == (pending or k.FLUSH_TLB_MM_KEEPS_WALK_CACHES)
    assert not [m for m in k.hw_tlb.stale(space) if not m.walk]
    if pending:  # the gather of free_pgtables: pte_free_tlb sets flush_mm
        tlb = tlb_gather_mmu(k, mm)
        tlb.freed_tables = True
        k.tlb_flush(tlb)
        assert not walk_marks(k, space)


@pytest.mark.parametrize("name", ARCHES)
def test_flush_tlb_kernel_range_is_last_level(name: str) -> None:
    """Likewise for a kernel PTE table: a one-page ``flush_tlb_kernel_range`` (arm64
    ``VAALE1IS``, riscv ``sfence.vma addr``) keeps the walk-cache entry; arm64's
    ``__flush_tlb_kernel_pgtable`` (``VAAE1IS``) drops it, and so does a range past the
    kernel's flush ceiling (a flush of everything).  One page of each hardware entry of the
    pmd (:func:`pmd_hw_addrs`)."""
    k = legacy.boot(name)
    kva = kernel_base(k, k.PMD_SIZE)
    assert vmap_range(k, kva, kva + PAGES * k.PAGE_SIZE, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    vunmap_range(k, kva, kva + PAGES * k.PAGE_SIZE)
    k.syscall_exit("vmap + vunmap")
    k.pmd_clear(k.pmd_off_k(kva))
    assert walk_marks(k, KERNEL_SPACE)
    for va in pmd_hw_addrs(k, kva):
        k.flush_tlb_kernel_range(va, va + k.PAGE_SIZE)
    assert bool(walk_marks(k, KERNEL_SPACE)) == kernel_flush_keeps_walk_caches(k)
    pgtable_flush = getattr(k, "_flush_tlb_kernel_pgtable", None)
    if pgtable_flush is not None:
        pgtable_flush(kva)
        assert not walk_marks(k, KERNEL_SPACE)
    pages = full_flush_pages(k)
    k.flush_tlb_kernel_range(kva, kva + (pages or PAGES) * k.PAGE_SIZE)
    assert not walk_marks(k, KERNEL_SPACE)


def _clear_first_pte(k: GenericKernel, mm: mm_struct, tlb: mmu_gather) -> None:
    r = k.pte_offset_map_lock(mm, k.pmd_off(mm, VA), VA)
    assert r is not None
    pte, ptl = r
    tlb_change_page_size(k, tlb, k.PAGE_SIZE)  # as zap_pte_range does (ppc64 reads it)
    k.ptep_get_and_clear(mm, VA, pte)
    tlb_remove_tlb_entry(k, tlb, pte, VA)
    k.pte_unmap_unlock(pte, ptl)


@pytest.mark.parametrize("name", ARCHES)
@pytest.mark.parametrize("freed_tables", [False, True])
def test_fullmm_tlb_flush(name: str, freed_tables: bool) -> None:
    """arm64 asm/tlb.h: a ``fullmm`` gather flushes only when tables were freed ("the ASID
    allocator won't reallocate our ASID without invalidating the entire TLB"); x86 flushes
    the mm (``TLB_FLUSH_ALL``)."""
    k, mm, _ = map_pages(name)
    tlb = tlb_gather_mmu_fullmm(k, mm)
    _clear_first_pte(k, mm, tlb)
    tlb.freed_tables = freed_tables
    space = k._space(mm)
    assert k.hw_tlb.stale(space)
    k.tlb_flush(tlb)
    assert bool(k.hw_tlb.stale(space)) == (is_arm64(k) and not freed_tables)
    k.mm_tlb_retire(mm)  # exit_mmap ... __mmdrop: the ASID is gone with its stale entries
    assert not k.hw_tlb.stale(space)


@pytest.mark.parametrize("name", ARCHES)
def test_tlb_flush_range_and_ceiling(name: str) -> None:
    """A range gather flushes its range (arm64 ``__flush_tlb_range`` with the pte stride);
    :func:`full_flush_pages` pages are a flush of the whole mm, one page fewer is not."""
    k, mm, vma = map_pages(name)
    space = k._space(mm)
    tlb = tlb_gather_mmu(k, mm)
    _clear_first_pte(k, mm, tlb)
    k.hw_tlb.flushes.clear()
    k.tlb_flush(tlb)
    assert not k.hw_tlb.stale(space)
    if k.FLUSH_PENDING_PER_MM:
        # s390 __tlb_flush_mm_lazy: the lazy clear left flush_mm set: the whole space goes
        # (IDTE of the ASCE), whatever the range; with nothing pending a range flushes
        # nothing, with a lazy clear pending any range purges the whole space again
        assert k.hw_tlb.flushes == [(space, 0, 0, True)]
        k.hw_tlb.flushes.clear()
        k.flush_tlb_range(vma, VA, VA + k.PAGE_SIZE)
        assert k.hw_tlb.flushes == []
        tlb = tlb_gather_mmu(k, mm)
        _clear_first_pte(k, mm, tlb)  # already invalid: nothing to clear, nothing owed
        assert not mm.context.get("flush_mm")
        r = k.pte_offset_map_lock(mm, k.pmd_off(mm, VA), VA + k.PAGE_SIZE)
        assert r is not None
        k.ptep_get_and_clear(mm, VA + k.PAGE_SIZE, r[0])
        k.pte_unmap_unlock(r[0], r[1])
        assert k.hw_tlb.stale(space)
        k.flush_tlb_range(vma, VA + 2 * k.PAGE_SIZE, VA + 3 * k.PAGE_SIZE)  # another page
        assert k.hw_tlb.flushes == [(space, 0, 0, True)] and not k.hw_tlb.stale(space)
        return
    assert [(s, a, b) for s, a, b, _ in k.hw_tlb.flushes] == [(space, VA, VA + k.PAGE_SIZE)]
    k.hw_tlb.flushes.clear()
    pages = full_flush_pages(k)
    many = (pages or k.PTRS_PER_PTE) * k.PAGE_SIZE  # no ceiling: a whole table by address
    by_address = (space, VA, VA + many - k.PAGE_SIZE)  # (ppc64: after a PWC flush by PID)
    k.flush_tlb_range(vma, VA, VA + many - k.PAGE_SIZE)
    assert by_address in [(s, a, b) for s, a, b, _ in k.hw_tlb.flushes]
    k.hw_tlb.flushes.clear()
    k.flush_tlb_range(vma, VA, VA + many)
    if pages is None:
        assert (space, VA, VA + many) in [(s, a, b) for s, a, b, _ in k.hw_tlb.flushes]
    else:
        assert k.hw_tlb.flushes == [(space, 0, 0, True)]  # the whole ASID/PCID


@pytest.mark.parametrize("name", ARCHES)
def test_gather_flushes_at_a_page_size_change(name: str) -> None:
    """include/asm-generic/tlb.h ``tlb_change_page_size``: with
    ``CONFIG_HAVE_MMU_GATHER_PAGE_SIZE`` (powerpc, whose gather flushes with one stride) the
    ptes gathered at ``PAGE_SIZE`` are flushed before the gather takes ``PMD_SIZE`` leaves
    (a zap meeting a huge pmd); elsewhere the size is only noted."""
    k, mm, _ = map_pages(name)
    space = k._space(mm)
    tlb = tlb_gather_mmu(k, mm)
    _clear_first_pte(k, mm, tlb)
    k.hw_tlb.flushes.clear()
    tlb_change_page_size(k, tlb, k.PMD_SIZE)
    assert bool(k.hw_tlb.flushes) == k.HAVE_MMU_GATHER_PAGE_SIZE
    assert bool(k.hw_tlb.stale(space)) == (not k.HAVE_MMU_GATHER_PAGE_SIZE)
    tlb_finish_mmu(k, tlb)
    assert not k.hw_tlb.stale(space)


# -- planted bugs: mprotect --------------------------------------------------------------------


def mprotect_ptes(k: GenericKernel, vma: vm_area_struct, start: int, end: int,
                  newprot: pgprot_t, *, lock: str = "split", flush: str = "gather") -> None:
    """A copy of ``change_protection`` -> ``change_pte_range`` for a range inside one PTE
    table, with a bug planted by the flags:

    - ``lock``: ``"split"`` (``pte_offset_map_lock``, correct), ``"none"`` (``pte_offset_map``
      only), ``"page_table_lock"`` (``mm->page_table_lock`` instead of the PTE table's lock);
    - ``flush``: ``"gather"`` (``tlb_flush_pte_range`` per pte, ``tlb_finish_mmu``: correct),
      ``"none"`` (the ``tlb_flush_pte_range`` forgotten), ``"first-page"`` (the pre-6.2
      ``flush_tlb_range`` with a wrong end: ``start + PAGE_SIZE``)."""
    mm = vma.vm_mm
    tlb = tlb_gather_mmu(k, mm)
    pmd = k.pmd_off(mm, start)
    ptl: spinlock_t | None = None
    if lock == "split":
        r = k.pte_offset_map_lock(mm, pmd, start)
        assert r is not None
        pte, ptl = r
    else:
        p = k.pte_offset_map(pmd, start)
        assert p is not None
        pte = p
        if lock == "page_table_lock":
            ptl = mm.page_table_lock
            spin_lock(ptl)
    addr = start
    while addr != end:
        oldpte = k.ptep_get_and_clear(mm, addr, pte)
        k.set_pte_at(mm, addr, pte, k.pte_modify(oldpte, newprot))
        if flush == "gather":
            tlb_flush_pte_range(k, tlb, addr, k.PAGE_SIZE)
        pte, addr = pte + 1, addr + k.PAGE_SIZE
    if ptl is not None:
        spin_unlock(ptl)
    k.pte_unmap(pte)
    if flush == "first-page":
        k.flush_tlb_range(vma, start, start + k.PAGE_SIZE)
    tlb_finish_mmu(k, tlb)


MPROTECT_BUGS: list[tuple[dict[str, str], type[Exception], str]] = [
    ({"flush": "none"}, TlbError, r"TLB not flushed at the end of mprotect: \[0x40000000, "
                                  r".* translation .* by mprotect_ptes"),
    # the first page was flushed, the next ones were not
    ({"flush": "first-page"}, TlbError, r"TLB not flushed at the end of mprotect: "
                                        r"\[0x(?!40000000,)[0-9a-f]+, .* by mprotect_ptes"),
    ({"lock": "none"}, LockError, r"lockdep: mprotect_ptes .* writes the pte table entry .* "
                                  r"without ptl@"),
    ({"lock": "page_table_lock"}, LockError, r"without ptl@.*; held: mm\d+\.page_table_lock"),
]


@pytest.mark.parametrize("name", ARCHES)
def test_mprotect_control_passes(name: str) -> None:
    k, mm, vma = map_pages(name)
    with syscall(k, mm, "mprotect"):
        mprotect_ptes(k, vma, VA, VA + PAGES * k.PAGE_SIZE, read_only(k))
    with syscall(k, mm, "mprotect (the legacy call site)"):
        change_protection(k, vma, VA, VA + PAGES * k.PAGE_SIZE, k.vm_get_page_prot(SHARED))


@pytest.mark.parametrize("name", ARCHES)
@pytest.mark.parametrize(("bug", "error", "message"), MPROTECT_BUGS,
                         ids=["missing-flush", "wrong-range", "no-lock", "wrong-lock"])
def test_mprotect_planted_bug_is_caught(name: str, bug: dict[str, str],
                                        error: type[Exception], message: str) -> None:
    k, mm, vma = map_pages(name)
    if bug.get("flush") == "first-page" and k.FLUSH_PENDING_PER_MM:
        # s390: flush_tlb_range purges the whole space the lazy clears left pending
        # (flush_mm), so the wrong range does no harm there: nothing is left stale
        with syscall(k, mm, "mprotect"):
            mprotect_ptes(k, vma, VA, VA + PAGES * k.PAGE_SIZE, read_only(k), **bug)
        assert not mm.context.get("flush_mm")
        return
    with pytest.raises(error, match=message):
        with syscall(k, mm, "mprotect"):
            mprotect_ptes(k, vma, VA, VA + PAGES * k.PAGE_SIZE, read_only(k), **bug)


# -- lockdep keeps its answer per table (legacy.tlbflush._memo_lock) -------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_lockdep_asks_again_once_a_root_reaches_the_table(name: str) -> None:
    """A PTE table being prepared needs no lock; once ``pmd_populate`` links it, a store
    without its lock is a lockdep error (the kept answer follows the TLB's tables)."""
    k, mm, _ = map_pages(name)
    table = k.pte_alloc_one(mm)
    assert table is not None
    entry = k.pfn_pte(PA >> k.PAGE_SHIFT, read_only(k))
    va = VA + k.PMD_SIZE  # the next PMD slot of the same PMD table
    k.set_pte_at(mm, va, PtePtr(table.pa, k.SIZEOF_PTE), entry)  # no root reaches it yet
    k.pte_clear(mm, va, PtePtr(table.pa, k.SIZEOF_PTE))
    pmd = k.pmd_off(mm, va)
    ptl = k.pmd_lock(mm, pmd)
    k.mm_inc_nr_ptes(mm)
    k.pmd_populate(mm, pmd, table)
    spin_unlock(ptl)
    with pytest.raises(LockError, match="writes the pte table entry"):
        k.set_pte_at(mm, va + k.PAGE_SIZE, PtePtr(table.pa + k.SIZEOF_PTE, k.SIZEOF_PTE),
                     entry)


@pytest.mark.parametrize("name", ARCHES)
def test_lockdep_kernel_tables_need_a_lock_only_to_populate(name: str) -> None:
    """A store into a live kernel PTE table needs no lock (its caller serialises it); the
    populate of a kernel table takes ``init_mm.page_table_lock`` (``__pte_alloc_kernel``),
    also after stores into PTE tables were checked."""
    k = legacy.boot(name)
    kva = kernel_base(k, k.PMD_SIZE)
    assert vmap_range(k, kva, kva + k.PAGE_SIZE, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    pte = k.pte_offset_kernel(k.pmd_off_k(kva), kva)
    k.set_pte(pte, k.ptep_get(pte))  # no lock
    vunmap_range(k, kva, kva + k.PAGE_SIZE)
    k.set_pte(pte + 1, k.ptep_get(pte + 1))
    pmd = k.pmd_off_k(kva)
    k.pmd_clear(pmd)
    k.flush_tlb_all()  # break before make (arm64, s390)
    table = k.pte_alloc_one_kernel(k.init_mm)
    assert table is not None
    with pytest.raises(LockError, match="without init_mm.page_table_lock"):
        k.pmd_populate_kernel(k.init_mm, pmd, table)
    spin_lock(k.init_mm.page_table_lock)
    k.pmd_populate_kernel(k.init_mm, pmd, table)
    spin_unlock(k.init_mm.page_table_lock)


@pytest.mark.parametrize("name", ARCHES)
def test_lockdep_follows_a_table_given_a_new_lock(name: str) -> None:
    """The lock a live PTE table needs is its ``ptdesc``'s: after ``ptlock_free`` and
    ``ptlock_init`` the old lock no longer covers a store (the kept answer follows the
    descriptors)."""
    k, mm, _ = map_pages(name)
    r = k.pte_offset_map_lock(mm, k.pmd_off(mm, VA), VA)
    assert r is not None
    pte, ptl = r
    k.set_pte_at(mm, VA, pte, k.ptep_get(pte))
    desc = k.table_desc(pte.pa)
    assert desc is not None
    if desc.ptl is not ptl or desc.pa != k.frame_of(pte.pa):
        k.pte_unmap_unlock(pte, ptl)
        pytest.skip("no split PTE lock of its own (mm->page_table_lock, a shared fragment)")
    spin_unlock(ptl)
    k.ptlock_free(desc.pa)
    k.ptlock_init(desc.pa)
    spin_lock(ptl)  # the old lock, no longer the table's
    with pytest.raises(LockError, match=f"writes the pte table entry .* without {desc.ptl.name}"):
        k.set_pte_at(mm, VA, pte, k.ptep_get(pte))


# -- planted bug: a page table freed before the flush --------------------------------------


def free_pte_range_frees_at_once(k: GenericKernel, tlb: mmu_gather, pmd: PmdPtr,
                                 addr: int) -> None:
    """``free_pte_range`` with ``pte_free`` instead of ``pte_free_tlb``: the table goes back
    to the allocator before ``tlb_finish_mmu`` flushes the walk caches that reach it."""
    token = k.pmd_pgtable(k.pmdp_get(pmd))
    k.pmd_clear(pmd)
    k.pte_free(tlb.mm, token)
    k.mm_dec_nr_ptes(tlb.mm)


@pytest.mark.parametrize("name", ARCHES)
@pytest.mark.parametrize("buggy", [False, True], ids=["control", "freed-before-flush"])
def test_free_pgd_range_freeing_before_the_flush_is_caught(
    name: str, buggy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    k, mm, _ = map_pages(name)
    if buggy:
        monkeypatch.setattr(memory, "free_pte_range", free_pte_range_frees_at_once)
        with pytest.raises(TlbError, match=r"page-table frame 0x[0-9a-f]+ freed while a walk "
                                           r"cache may still reference it: .* walk-cache entry "
                                           r"cleared by free_pte_range_frees_at_once"):
            with syscall(k, mm, "munmap"):
                do_munmap(k, mm, VA, PAGES * k.PAGE_SIZE)
    else:
        with syscall(k, mm, "munmap"):
            assert do_munmap(k, mm, VA, PAGES * k.PAGE_SIZE) == 0


# -- planted bug: break-before-make in a huge pmd split --------------------------------------


def split_huge_pmd_without_invalidate(k: GenericKernel, vma: vm_area_struct, pmd: PmdPtr,
                                      address: int) -> None:
    """``__split_huge_pmd`` whose ``__split_huge_pmd_locked`` reads the pmd instead of
    ``pmdp_invalidate`` (no invalid entry, no flush) and populates the deposited table over
    the live huge pmd."""
    mm = vma.vm_mm
    haddr = address & k.PMD_MASK
    ptl = k.pmd_lock(mm, pmd)
    old_pmd = k.pmdp_get(pmd)  # BUG: should be pmdp_invalidate(vma, haddr, pmd)
    pfn = k.pmd_pfn(old_pmd)
    prot = k.pgprot_large_2_4k(k.pmd_pgprot(old_pmd))
    pgtable: pgtable_t = k.pgtable_trans_huge_withdraw(mm, pmd)
    for i in range(HPAGE_PMD_NR(k)):
        k.set_pte_at(mm, haddr + i * k.PAGE_SIZE, pgtable + i, k.pfn_pte(pfn + i, prot))
    k.pmd_populate(mm, pmd, pgtable)
    spin_unlock(ptl)


@pytest.mark.parametrize("name", ARCHES)
@pytest.mark.parametrize("buggy", [False, True], ids=["control", "no-invalidate"])
def test_split_without_break_before_make_is_caught(name: str, buggy: bool) -> None:
    """arm64: the populate itself is a break-before-make violation.  x86 has no such rule,
    but the old 2M translation is left in the TLB: the end of the call site catches it."""
    k = legacy.boot(name)
    if not huge_pmd_ok(k):
        pytest.skip("no huge pmd leaves")
    mm = k.mm_alloc()
    assert mm is not None
    with syscall(k, mm, "mmap + huge fault"):
        assert mmap_region(k, mm, VA, k.PMD_SIZE, SHARED, PA >> k.PAGE_SHIFT) == VA
        vma = find_vma(k, mm, VA)
        assert vma is not None
        assert insert_pfn_pmd(k, vma, VA, PA >> k.PAGE_SHIFT, pgprot_t(vma.vm_page_prot)) == 0
    pmd = k.pmd_off(mm, VA)
    split: Callable[[GenericKernel, vm_area_struct, PmdPtr, int], None] = (
        split_huge_pmd_without_invalidate if buggy else split_huge_pmd)
    if not buggy:
        with syscall(k, mm, "split"):
            split(k, vma, pmd, VA)
        return
    if k.config.break_before_make:
        with pytest.raises(TlbError, match=r"break-before-make: .* changed from a valid leaf "
                                           r".* to a valid table .* by "
                                           r"split_huge_pmd_without_invalidate"):
            with syscall(k, mm, "split"):
                split(k, vma, pmd, VA)
    else:
        with pytest.raises(TlbError, match=r"TLB not flushed at the end of split: .* "
                                           r"changed from a leaf to a table by "
                                           r"split_huge_pmd_without_invalidate"):
            with syscall(k, mm, "split"):
                split(k, vma, pmd, VA)


# -- planted bugs: kernel mappings -------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
@pytest.mark.parametrize("buggy", [False, True], ids=["control", "noflush"])
def test_vunmap_without_flush_is_caught(name: str, buggy: bool) -> None:
    k = legacy.boot(name)
    kva = kernel_base(k, k.PMD_SIZE)
    end = kva + PAGES * k.PAGE_SIZE
    assert vmap_range(k, kva, end, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    k.syscall_exit("vmap")
    if not buggy:
        vunmap_range(k, kva, end)
        k.syscall_exit("vunmap")
        return
    vunmap_range_noflush(k, kva, end)  # vunmap_range without its flush_tlb_kernel_range
    with pytest.raises(TlbError, match=r"TLB not flushed at the end of vunmap: .* kernel: .* "
                                       r"translation cleared by vunmap_pte_range"):
        k.syscall_exit("vunmap")


def pmd_free_pte_page_last_level(k: GenericKernel, pmdp: PmdPtr, addr: int) -> int:
    """arm64 ``pmd_free_pte_page`` with ``flush_tlb_kernel_range`` (last level only on arm64)
    instead of ``__flush_tlb_kernel_pgtable``: x86's pmd_free_pte_page does exactly this,
    and there INVLPG also drops the paging-structure caches."""
    table = k.pte_offset_kernel(pmdp, addr)
    k.pmd_clear(pmdp)
    k.flush_tlb_kernel_range(addr, addr + k.PAGE_SIZE - 1)
    k.pte_free_kernel(k.init_mm, PtePtr(k.frame_of(table.pa), k.SIZEOF_PTE))
    return 1


@pytest.mark.parametrize("name", ARCHES)
def test_freeing_a_kernel_table_after_a_last_level_flush(name: str) -> None:
    """Caught where the one-page flush keeps walk caches (arm64, riscv), or where the pmd is
    several hardware entries (:func:`pmd_hw_addrs`: classic arm's other megabyte): the walk
    cache still references the PTE table.  (riscv's real ``pmd_free_pte_page`` flushes
    ``PMD_SIZE``, past its ceiling: everything.)"""
    k = legacy.boot(name)
    kva = kernel_base(k, k.PMD_SIZE)
    end = kva + PAGES * k.PAGE_SIZE
    assert vmap_range(k, kva, end, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    vunmap_range(k, kva, end)
    k.syscall_exit("vmap + vunmap")
    pmd = k.pmd_off_k(kva)
    if kernel_flush_keeps_walk_caches(k) or len(pmd_hw_addrs(k, kva)) > 1:
        with pytest.raises(TlbError, match=r"freed while a walk cache may still reference it: "
                                           r".* kernel: .* walk-cache entry cleared by "
                                           r"pmd_free_pte_page_last_level"):
            pmd_free_pte_page_last_level(k, pmd, kva)
    else:
        assert pmd_free_pte_page_last_level(k, pmd, kva) == 1
        k.syscall_exit("pmd_free_pte_page")


# -- the other flush helpers -------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_flush_pmd_and_pud_tlb_range(name: str) -> None:
    """A cleared huge pmd is flushed by ``flush_pmd_tlb_range`` (arm64: ``PMD_SIZE`` stride,
    not last level; riscv: ``PMD_SIZE`` stride, leaf only); ``flush_pud_tlb_range`` likewise
    covers its block.  Where ``pmdp_huge_get_and_clear`` invalidates as it clears (s390
    IDTE, ``HUGE_CLEAR_INVALIDATES``) nothing is left for them: the clear made the flush."""
    k = legacy.boot(name)
    if not huge_pmd_ok(k):
        pytest.skip("no huge pmd leaves")
    mm = k.mm_alloc()
    assert mm is not None
    with syscall(k, mm, "mmap + huge fault"):
        assert mmap_region(k, mm, VA, k.PUD_SIZE, SHARED, PA >> k.PAGE_SHIFT) == VA
        vma = find_vma(k, mm, VA)
        assert vma is not None
        assert insert_pfn_pmd(k, vma, VA, PA >> k.PAGE_SHIFT, pgprot_t(vma.vm_page_prot)) == 0
    space = k._space(mm)
    pmd = k.pmd_off(mm, VA)
    ptl = k.pmd_lock(mm, pmd)
    k.hw_tlb.flushes.clear()
    k.pmdp_huge_get_and_clear(mm, VA, pmd)
    spin_unlock(ptl)
    if k.HUGE_CLEAR_INVALIDATES:
        assert not k.hw_tlb.stale(space)
        assert [f[:3] for f in k.hw_tlb.flushes] == [(space, VA, VA + k.PMD_SIZE)]
        k.hw_tlb.flushes.clear()
        k.flush_pmd_tlb_range(vma, VA, VA + k.PMD_SIZE)
        k.flush_pud_tlb_range(vma, VA, VA + k.PUD_SIZE)
        assert bool(k.hw_tlb.flushes) == (not k.FLUSH_PENDING_PER_MM)  # none pending
        return
    assert k.hw_tlb.stale(space)
    k.hw_tlb.flushes.clear()
    k.flush_pmd_tlb_range(vma, VA, VA + k.PMD_SIZE)
    assert not k.hw_tlb.stale(space)
    walk = k.config.addr_flush_reaches_walk_caches
    assert k.hw_tlb.flushes and all(w == walk for _, _, _, w in k.hw_tlb.flushes)
    k.hw_tlb.flushes.clear()
    k.flush_pud_tlb_range(vma, VA, VA + k.PUD_SIZE)
    assert k.hw_tlb.flushes and all(w == walk for _, _, _, w in k.hw_tlb.flushes)


@pytest.mark.parametrize("name", ARCHES)
def test_flush_tlb_fix_spurious_fault(name: str) -> None:
    """arm64 asm/pgtable.h: empty (broadcast TLBIs); x86 the generic ``flush_tlb_page``."""
    k, mm, vma = map_pages(name)
    pte = k.pte_offset_kernel(k.pmd_off(mm, VA), VA)
    k.hw_tlb.flushes.clear()
    k.flush_tlb_fix_spurious_fault(vma, VA, pte)
    assert bool(k.hw_tlb.flushes) == (not k.SPURIOUS_FAULT_FLUSH_EMPTY)


X86 = [a for a in ARCHES if legacy.boot(a).config.family == "x86"]


@pytest.mark.parametrize("name", X86)
def test_x86_flush_tlb_mm_range_ceiling(name: str) -> None:
    """``tlb_single_page_flush_ceiling``: 33 strides are INVLPGs, 34 a full flush."""
    k, mm, _ = map_pages(name)
    x86: Any = k
    space = k._space(mm)
    k.hw_tlb.flushes.clear()
    x86.flush_tlb_mm_range(mm, VA, VA + 33 * k.PAGE_SIZE, k.PAGE_SHIFT, False)
    x86.flush_tlb_mm_range(mm, VA, VA + 34 * k.PAGE_SIZE, k.PAGE_SHIFT, False)
    x86.flush_tlb_mm_range(mm, VA, VA + 34 * k.PMD_SIZE, k.PMD_SHIFT, False)
    assert k.hw_tlb.flushes == [(space, VA, VA + 33 * k.PAGE_SIZE, True), (space, 0, 0, True),
                                (space, 0, 0, True)]


@pytest.mark.parametrize("name", X86)
def test_x86_pte_needs_flush(name: str) -> None:
    """asm/tlbflush.h: a demotion or any RW/NX/USER change flushes; setting the dirty or
    accessed bit does not, nor does a change from a non-present pte; a pte ignores the
    accessed bit, a huge pmd does not."""
    k = legacy.boot(name)
    x86: Any = k
    rw = k.pfn_pte(0x1234, k.vm_get_page_prot(SHARED))
    ro = k.pte_wrprotect(rw)
    assert x86.pte_needs_flush(rw, ro) and x86.pte_needs_flush(ro, rw)
    assert not x86.pte_needs_flush(rw, rw)
    assert not x86.pte_needs_flush(k.pte_mkclean(rw), k.pte_mkdirty(rw))
    assert x86.pte_needs_flush(k.pte_mkdirty(rw), k.pte_mkclean(rw))
    assert not x86.pte_needs_flush(x86.pte_mkyoung(rw), k.pte_mkold(rw))
    assert x86.pte_needs_flush(rw, k.pfn_pte(0x1235, k.vm_get_page_prot(SHARED)))
    assert not x86.pte_needs_flush(k.pfn_pte(0x1234, k.PAGE_NONE), rw)
    assert not x86.pte_flags_need_flush(0, 1 << 9, False)  # a software bit
    huge = k.pmd_mkhuge(k.pfn_pmd(0x200, k.vm_get_page_prot(SHARED)))
    assert x86.huge_pmd_needs_flush(x86.pmd_mkyoung(huge), k.pmd_mkold(huge))
    assert not x86.huge_pmd_needs_flush(huge, huge)
