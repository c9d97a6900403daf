"""The default side-by-side comparison (``ptshim diff``'s :func:`ptshim.diff.run_pair`) sees
the bugs migrations really make.

Each test plants one kind of bug in a copy of a unified port, runs a scenario that reaches it
on legacy vs the broken unified backend, and asserts the divergence names the cause --
on every configuration where the bug is observable (a bug the hardware cannot see on a
configuration is asserted *not* to be reported there, so the check cannot pass by accident).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import unified.mm.protect as uprotect
import unified.mm.split as usplit
from arches import get_config
from legacy import spin_lock, spin_unlock, vm_area_struct
from ptshim import diff
from ptshim.backends import BACKENDS
from ptshim.scenario import Scenario, parse_scenario
from tests.conftest import ARCH_NAMES
from unified.handles import Table
from unified.mm._common import ops_of
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
    assert "op 1 (protect)" in d and "TLB not flushed" in d
    end = VA + 8 * get_config(arch).page_size
    assert f"[{VA:#x}, {end:#x})" in d and "cleared" in d


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_wrong_flush_range(arch: str) -> None:
    with planted(uprotect, "_change_leaves", _leaves_copy(flush="first")):
        d = _divergence(arch, protect_scenario(arch))
    page = get_config(arch).page_size
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


_ = (BACKENDS, usplit)
