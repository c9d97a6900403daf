"""The default side-by-side comparison (``ptshim diff``'s :func:`ptshim.diff.run_pair`) sees
the bugs migrations really make.

Each test plants one kind of bug in a copy of a unified port (the copies of bench/plants.py,
which ``python -m bench.detection`` times the generated campaign on), runs a scenario that
reaches it on legacy vs the broken unified backend, and asserts the divergence names the
cause --
on every configuration where the bug is observable (a bug the hardware cannot see on a
configuration is asserted *not* to be reported there, so the check cannot pass by accident).
"""

from __future__ import annotations

from typing import Any

import pytest

import legacy
import unified.mm.protect as uprotect
import unified.mm.split as usplit
import unified.mm.unmap as uunmap
from arches import get_config
from bench.plants import (
    change_leaves_copy,
    free_tables_early,
    move_ptes_keeping_old,
    split_without_bbm,
)
from bench.plants import swapped as planted
from ptshim import diff
from ptshim.scenario import Scenario, parse_scenario
from tests.conftest import ARCH_NAMES

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


def _divergence(arch: str, sc: dict[str, Any]) -> str:
    d = diff.run_pair(arch, _scenario(sc))
    return "" if d is None else d.describe()


def test_the_unplanted_copy_is_clean() -> None:
    """The copy without a planted bug agrees with legacy (the tests below fail for the bug,
    not for the copy)."""
    with planted(uprotect, "_change_leaves", change_leaves_copy()):
        for arch in ARCH_NAMES:
            assert _divergence(arch, protect_scenario(arch)) == "", arch


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_missing_flush(arch: str) -> None:
    with planted(uprotect, "_change_leaves", change_leaves_copy(flush="none")):
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
    with planted(uprotect, "_change_leaves", change_leaves_copy(flush="first")):
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
    with planted(uprotect, "_change_leaves", change_leaves_copy(lock="none")):
        d = _divergence(arch, protect_scenario(arch))
    assert "LockError" in d and "without ptl@" in d and "held: nothing" in d


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_wrong_lock(arch: str) -> None:
    with planted(uprotect, "_change_leaves", change_leaves_copy(lock="mm")):
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

    monkeypatch.setattr(umove, "_move_ptes", move_ptes_keeping_old)
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
    with planted(usplit, "split_leaf", split_without_bbm):
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
    size = 8 * get_config(arch).page_size
    sc = {"ops": [
        {"op": "map", "va": VA, "pa": 0x100_0000, "size": size, "prot": "rw"},
        {"op": "unmap", "va": VA, "size": size},
    ]}
    with planted(uunmap, "_free_tables", free_tables_early):
        d = _divergence(arch, sc)
    assert d.startswith("op 1 (unmap): legacy: ok; unified: TlbError: page-table frame "), d
    assert "freed while a walk cache may still reference it" in d
