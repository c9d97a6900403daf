"""The default side-by-side comparison (``ptshim diff``'s :func:`ptshim.diff.run_pair`) sees
the bugs migrations really make.

Each test plants one kind of bug in a copy of a unified port, runs a scenario that reaches it
on legacy vs the broken unified backend, and asserts the divergence names the cause --
on every configuration where the bug is observable (a bug the hardware cannot see on a
configuration is asserted *not* to be reported there, so the check cannot pass by accident).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import pytest

import legacy
import unified.mm.protect as uprotect
import unified.mm.split as usplit
import unified.mm.unmap as uunmap
from arches import get_config
from legacy import spin_lock, spin_unlock, vm_area_struct
from legacy.mm.mmu_gather import tlb_change_page_size
from ptshim import diff
from ptshim.scenario import Scenario, parse_scenario
from tests.conftest import ARCH_NAMES
from unified.handles import Entry, Table
from unified.legacy_ops import free_frame_of_level
from unified.levels import Level
from unified.mm._common import deposits_at, ops_of
from unified.pagetables import PageTables

VA = 0x4000_0000


def protect_scenario(arch: str) -> dict[str, Any]:
    """Map 8 base pages rw, then mprotect them read-only."""
    size = 8 * get_config(arch).page_size
    return {"ops": [
        {"op": "map", "va": VA, "pa": 0x100_0000, "size": size, "prot": "rw"},
        {"op": "protect", "va": VA, "size": size, "prot": "r"},
    ]}


def _scenario(d: dict[str, Any]) -> Scenario:
    return parse_scenario(d, "teeth")


@contextmanager
def planted(module: Any, name: str, fn: Callable[..., Any]) -> Iterator[None]:
    """Replace ``module.name`` (a port's helper) by a broken copy for the block."""
    saved = getattr(module, name)
    setattr(module, name, fn)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _divergence(arch: str, sc: dict[str, Any]) -> str:
    d = diff.run_pair(arch, _scenario(sc))
    return "" if d is None else d.describe()


def _leaves_copy(*, lock: str = "split", flush: str = "all") -> Callable[..., int]:
    """A copy of ``unified.mm.protect._change_leaves`` with one planted bug:
    ``lock`` = "split" (right), "none" or "mm" (page_table_lock: the wrong lock);
    ``flush`` = "all" (right), "none" or "first" (only the first page: wrong range)."""
    def change_leaves(pt: PageTables, tlb: Any, vma: vm_area_struct, table: Table,
                      addr: int, end: int, newprot: int) -> int:
        mm = vma.vm_mm
        lv = ops_of(pt, mm, table.level)
        owed = pt.owe(mm, table.level)
        tlb_change_page_size(pt.k, tlb, lv.size)  # as the port does (powerpc reads it)
        ptl = {"split": pt.lockptr(table), "mm": mm.page_table_lock, "none": None}[lock]
        if ptl is not None:
            spin_lock(ptl)
        pages = 0
        try:
            for ptr, a, nxt in pt.slots(table, addr, end):
                if lv.present(lv.get(ptr)):
                    old = lv.get_and_clear(mm, a, ptr)
                    lv.set_at(mm, a, ptr, lv.modify(old, newprot))
                    if flush == "all" or (flush == "first" and not pages):
                        owed.add(a, nxt)
                    pages += 1
            if flush == "none":
                owed.waive("planted bug: no flush")
            else:
                owed.gather(tlb)
        finally:
            if ptl is not None:
                spin_unlock(ptl)
        return pages
    return change_leaves


def test_the_unplanted_copy_is_clean() -> None:
    """The copy without a planted bug agrees with legacy (the tests below fail for the bug,
    not for the copy)."""
    with planted(uprotect, "_change_leaves", _leaves_copy()):
        for arch in ARCH_NAMES:
            assert _divergence(arch, protect_scenario(arch)) == "", arch


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_missing_flush(arch: str) -> None:
    with planted(uprotect, "_change_leaves", _leaves_copy(flush="none")):
        d = _divergence(arch, protect_scenario(arch))
    end = VA + 8 * get_config(arch).page_size
    k = legacy.boot(arch)
    if k.SOFTWARE_YOUNG_DIRTY:
        # the clean pages were read-only to the MMU already: nothing is stale, but the
        # flushes made differ (s390, FLUSH_PENDING_PER_MM: legacy's lazy clears left
        # flush_mm set, which its gather's flush purges as the whole space)
        legacy_flush = "everything" if k.FLUSH_PENDING_PER_MM else f"[{VA:#x}, {end:#x})"
        assert d == f"op 1 (protect): TLB flushes differ: legacy mm 0: {legacy_flush}; " \
                    "unified none", d
        return
    assert "op 1 (protect)" in d and "TLB not flushed" in d
    assert f"[{VA:#x}, {end:#x})" in d and "cleared" in d


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_wrong_flush_range(arch: str) -> None:
    with planted(uprotect, "_change_leaves", _leaves_copy(flush="first")):
        d = _divergence(arch, protect_scenario(arch))
    page = get_config(arch).page_size
    if legacy.boot(arch).FLUSH_PENDING_PER_MM:
        # s390: the first page's range reaches the gather, whose flush purges the whole
        # space the lazy clears left pending (flush_mm), as legacy's does: the wrong range
        # does no harm and is not reported
        assert d == "", d
        return
    if legacy.boot(arch).SOFTWARE_YOUNG_DIRTY:  # as in test_missing_flush
        assert d == f"op 1 (protect): TLB flushes differ: legacy mm 0: [{VA:#x}, " \
                    f"{VA + 8 * page:#x}); unified mm 0: [{VA:#x}, {VA + page:#x})", d
        return
    assert "TLB not flushed" in d and "cleared" in d
    assert f"[{VA + page:#x}, {VA + 8 * page:#x})" in d  # all but the first page


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_unlocked_pte_write(arch: str) -> None:
    with planted(uprotect, "_change_leaves", _leaves_copy(lock="none")):
        d = _divergence(arch, protect_scenario(arch))
    assert "LockError" in d and "without ptl@" in d and "held: nothing" in d


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_wrong_lock(arch: str) -> None:
    with planted(uprotect, "_change_leaves", _leaves_copy(lock="mm")):
        d = _divergence(arch, protect_scenario(arch))
    assert "LockError" in d and "without ptl@" in d and "held: mm1.page_table_lock" in d



COW_SCENARIO = {"ops": [
    {"op": "map", "va": VA, "size": 0x10000 * 4, "prot": "rw", "anon": True},
    {"op": "fork"},
]}


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_fork_without_cow_write_protect(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unified copy treats the private writable mapping as not COW: the parent's
    entries stay writable (the legacy fork write-protects them and flushes)."""
    import unified.mm.copy as ucopy

    monkeypatch.setattr(ucopy, "is_cow_mapping", lambda flags: False)
    d = _divergence(arch, COW_SCENARIO)
    assert d.startswith("op 1 (fork): ") and f"VA [{VA:#x}, " in d, d
    assert "entry (hardware" in d and "of mm 0 differs" in d  # decoded: level and flags


MOVE_SCENARIO = {"ops": [
    {"op": "map", "va": VA, "size": 0x10000 * 2, "prot": "rw", "anon": True},
    {"op": "mremap", "va": VA, "size": 0x10000, "new_va": VA + 0x1000_0000},
]}


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_mremap_leaving_the_old_entry(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import unified.mm.move as umove

    def broken(pt, pmc, extent, old, new):  # type: ignore[no-untyped-def]
        mm = pmc.old.vm_mm
        lv = ops_of(pt, mm, 0)
        old_t, new_t = pt.descend(old), pt.descend(new)
        same = pt.lockptr(old_t) is pt.lockptr(new_t)
        with pt.locked(old_t), (nullcontext() if same else pt.locked(new_t)):
            new_slots = pt.slots(new_t, pmc.new_addr, pmc.new_addr + extent)
            for old_ptr, _a, _ in pt.slots(old_t, pmc.old_addr, pmc.old_addr + extent):
                new_ptr, na, _n = next(new_slots)
                v = lv.get(old_ptr)
                if not lv.none(v):
                    lv.set_at(mm, na, new_ptr, v)  # planted: the old entry stays
        return 0

    monkeypatch.setattr(umove, "_move_ptes", broken)
    d = _divergence(arch, MOVE_SCENARIO)
    # The old range is unmapped after the move (move_vma -> do_munmap): the zap finds the
    # entries left behind and drops their pages -- a page the legacy machine still maps --
    # and flushes them itself (on arm64 without walk caches: no table was freed).
    assert d.startswith("op 1 (mremap): "), d
    assert "legacy (1, 1), unified freed" in d or "TLB flushes differ" in d, d


def _huge_split_scenario(arch: str) -> dict[str, Any] | None:
    """A huge user PMD leaf, half of it mprotected: the leaf is split."""
    k = legacy.boot(arch)
    if not k.TRANSPARENT_HUGEPAGE:
        return None
    pmd = k.PMD_SIZE
    va = -(-VA // pmd) * pmd
    return {"ops": [
        {"op": "map", "va": va, "pa": 0x4000_0000, "size": pmd, "prot": "rw",
         "page_size": pmd},
        {"op": "protect", "va": va, "size": pmd // 2, "prot": "r"},
    ]}


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_split_without_break_before_make(arch: str) -> None:
    """A split that populates the deposited table over the live huge leaf (no
    ``pmdp_invalidate``): arm64 refuses the store itself (break-before-make).  x86 allows
    a page-size change that keeps the frames and attributes (SDM §4.10.2.3), and the
    mprotect's own flush then drops the stale 2M entry: not observable there, and not
    reported -- unless that flush is by address (below the kernel's flush ceiling): then
    the flushes made differ."""
    sc = _huge_split_scenario(arch)
    if sc is None:
        pytest.skip(f"{arch}: no user huge PMD leaves")
    original = usplit.split_leaf

    def split_leaf(pt: PageTables, vma: vm_area_struct, entry: Entry) -> int:
        mm = entry.mm
        if not deposits_at(entry.level, mm):
            return original(pt, vma, entry)
        lv = ops_of(pt, mm, entry.level)
        ptl = lv.lockptr(mm, entry.ptr)
        spin_lock(ptl)
        try:
            old = lv.get(entry.ptr)
            pgtable = lv.withdraw(mm, entry.ptr)
            usplit._fill(pt, entry, pgtable, old, check_none=True)
            lv.populate(mm, entry.ptr, pgtable)  # planted: no break, no invalidation
        finally:
            spin_unlock(ptl)
        return 0

    with planted(usplit, "split_leaf", split_leaf):
        d = _divergence(arch, sc)
    k = legacy.boot(arch)
    ceiling = getattr(k, "tlb_single_page_flush_ceiling", None) or getattr(
        k, "tlb_flush_all_threshold", None)
    if get_config(arch).break_before_make:
        assert d.startswith("op 1 (protect): legacy: ok; unified: TlbError: "), d
        assert "break-before-make" in d and "changed from a valid leaf" in d
    elif ceiling is not None and k.PMD_SIZE // 2 // k.PAGE_SIZE > ceiling:
        assert d == ""  # the mprotect's flush of half the leaf is a flush of everything
    else:
        # (ppc64 radix 64K: 16 pages, flushed by address) the stale 2M entry goes with
        # the first page's invalidation, but legacy's pmdp_invalidate flushed all of it
        va = int(sc["ops"][0]["va"])
        assert d.startswith("op 1 (protect): TLB flushes differ: legacy mm 0"), d
        assert f"[{va:#x}, {va + k.PMD_SIZE:#x}); unified" in d, d


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_table_freed_before_the_flush(arch: str) -> None:
    """munmap frees the PTE table at once instead of through the mmu_gather."""
    original = uunmap._free_tables

    def free_tables(pt: PageTables, tlb: Any, table: Table, addr: int, end: int,
                    floor: int, ceiling: int) -> None:
        mm = tlb.mm
        lv = ops_of(pt, mm, table.level)
        child = pt.lower(table.group, mm)
        if child is None or child.level != 0:
            return original(pt, tlb, table, addr, end, floor, ceiling)
        for entry, a, _ in pt.entries(table, addr, end):
            if lv.none_or_clear_bad(entry.ptr):
                continue
            token = lv.pgtable(lv.get(entry.ptr))
            lv.clear(mm, a, entry.ptr)
            free_frame_of_level(pt.k, mm, Level.PTE, token)  # planted: before the flush
            ops_of(pt, mm, Level.PTE).dec_nr(mm)
        return None

    size = 8 * get_config(arch).page_size
    sc = {"ops": [
        {"op": "map", "va": VA, "pa": 0x100_0000, "size": size, "prot": "rw"},
        {"op": "unmap", "va": VA, "size": size},
    ]}
    with planted(uunmap, "_free_tables", free_tables):
        d = _divergence(arch, sc)
    assert d.startswith("op 1 (unmap): legacy: ok; unified: TlbError: page-table frame "), d
    assert "freed while a walk cache may still reference it" in d
