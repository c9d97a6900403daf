"""Anonymous memory, fork (COW) and mremap through the scenario layer, on both APIs: the
walker's view of every process, refcount/mapcount of the pages, the TLB and lock checks,
and planted bugs (no COW write-protect at fork, an old pte left behind by mremap) caught."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import legacy.mm.memory as legacy_memory
import legacy.mm.mremap as legacy_mremap
import unified.mm.copy as unified_copy
import unified.mm.move as unified_move
from arches.config import Fault, Translation
from arches.errors import BadInput, CheckFailed
from legacy import spin_lock, spin_unlock
from legacy.mm.page import mem_map, page_state
from legacy.mm.vm_flags import is_cow_mapping
from ptshim.scenario import load_json_scenario
from ptshim.session import Session
from unified.levels import Level
from unified.mm._common import ops_of

ARCHES = ["x86_64", "arm64-4k-48"]
APIS = ["legacy", "unified"]
P = 0x10000  # multiples of 64K: every granule


def _run(arch: str, api: str, ops: list[dict[str, object]]) -> Session:
    s = Session(arch, api)
    s.run(load_json_scenario({"ops": ops}))
    return s


def _tr(s: Session, mm: int, va: int) -> Translation | Fault:
    return s.config.walker.translate(s.k.mem, s.registers(mm), va)


@pytest.fixture(params=[(a, api) for a in ARCHES for api in APIS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def arch_api(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    yield request.param


def test_anon_map_pages_and_zero_page(arch_api: tuple[str, str]) -> None:
    arch, api = arch_api
    s = _run(arch, api, [
        {"op": "map", "va": "0x400000", "size": hex(2 * P), "prot": "rw", "anon": True},
        {"op": "map", "va": "0x800000", "size": hex(P), "prot": "r", "anon": True},
    ])
    s.verify()
    t = _tr(s, 0, 0x400000)
    assert isinstance(t, Translation) and "w" in t.prot
    zero = _tr(s, 0, 0x800000)
    assert isinstance(zero, Translation) and "w" not in zero.prot
    assert zero.pa == mem_map(s.k).zero_pfn << s.k.PAGE_SHIFT
    assert set(page_state(s.k).values()) == {(1, 1)}
    assert len(page_state(s.k)) == 2 * P // s.k.PAGE_SIZE
    s.teardown()
    assert not page_state(s.k)


def test_fork_cow_both_readonly_same_page(arch_api: tuple[str, str]) -> None:
    arch, api = arch_api
    s = _run(arch, api, [
        {"op": "map", "va": "0x400000", "size": hex(P), "prot": "rw", "anon": True},
        {"op": "map", "va": "0x800000", "size": hex(P), "prot": "r", "anon": True},
        {"op": "fork"},
    ])
    s.verify()
    assert len(s.mms) == 2
    parent, child = _tr(s, 0, 0x400000), _tr(s, 1, 0x400000)
    assert isinstance(parent, Translation) and isinstance(child, Translation)
    assert parent.pa == child.pa and parent.prot == child.prot and "w" not in parent.prot
    assert set(page_state(s.k).values()) == {(2, 2)}
    # The zero-page vma has no anon_vma: not copied, the child's vma is empty.
    assert isinstance(_tr(s, 1, 0x800000), Fault)
    assert not s.k.hw_tlb.marks
    # The child unmaps half: those pages are mapped once again (still not exclusive).
    s.apply(load_json_scenario({"ops": [
        {"op": "unmap", "mm": 1, "va": "0x400000", "size": hex(P // 2)}]}).ops[0])
    s.verify()
    states = page_state(s.k)
    half = P // 2 // s.k.PAGE_SIZE
    assert sorted(states.values()) == [(1, 1)] * half + [(2, 2)] * half
    s.teardown()
    assert not page_state(s.k)


def test_mremap_moves_translation(arch_api: tuple[str, str]) -> None:
    arch, api = arch_api
    s = _run(arch, api, [
        {"op": "map", "va": "0x400000", "size": hex(4 * P), "prot": "rw", "anon": True},
        {"op": "map", "va": "0x2000000", "pa": "0x3000000", "size": hex(2 * P),
         "prot": "rw"},
    ])
    before = _tr(s, 0, 0x410000)
    assert isinstance(before, Translation)
    for op in load_json_scenario({"ops": [
        {"op": "mremap", "va": "0x410000", "size": hex(P), "new_va": "0x1000000"},
        {"op": "mremap", "va": "0x2000000", "size": hex(2 * P), "new_va": "0x6000000"},
    ]}).ops:
        s.apply(op)
    s.verify()
    after = _tr(s, 0, 0x1000000)
    assert isinstance(after, Translation) and after.pa == before.pa
    assert isinstance(_tr(s, 0, 0x410000), Fault)
    assert s.k.ptep_get(s.k.pte_offset_kernel(
        s.k.pmd_offset(s.k.pud_offset(s.k.p4d_offset(s.k.pgd_offset(s.mm, 0x410000),
                                                     0x410000), 0x410000), 0x410000),
        0x410000)) == 0
    moved = _tr(s, 0, 0x6000000)
    assert isinstance(moved, Translation) and moved.pa == 0x3000000
    assert isinstance(_tr(s, 0, 0x2000000), Fault)
    assert set(page_state(s.k).values()) == {(1, 1)}
    s.teardown()
    assert not page_state(s.k)


@pytest.mark.parametrize("api", APIS)
def test_example_fork_cow_runs(api: str) -> None:
    from ptshim.scenario import load_scenario

    s = Session("x86_64", api)
    scenario = load_scenario("examples/fork-cow.json")
    ops = [op for op in scenario.ops if op.kind != "protect"]  # mprotect: another area
    s.validate(scenario.__class__(tuple(ops)))
    for op in ops:
        s.apply(op)
        s.verify()
    s.teardown()


# -- planted bugs --------------------------------------------------------------------------

COW: list[dict[str, object]] = [
    {"op": "map", "va": "0x400000", "size": hex(P), "prot": "rw", "anon": True},
    {"op": "fork"},
]


def test_legacy_copy_without_cow_wrprotect_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # copy_page_range as if the mapping were not COW: ptes stay writable in both.
    monkeypatch.setattr(legacy_memory, "is_cow_mapping", lambda flags: False)
    s = _run("x86_64", "legacy", COW)
    with pytest.raises(CheckFailed, match="hardware"):
        s.verify()


def test_unified_copy_without_cow_wrprotect_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unified_copy, "is_cow_mapping", lambda flags: False)
    s = _run("arm64-4k-48", "unified", COW)
    with pytest.raises(CheckFailed, match="hardware"):
        s.verify()
    assert is_cow_mapping(0x20)  # the real one is untouched


MOVE: list[dict[str, object]] = [
    {"op": "map", "va": "0x400000", "size": hex(2 * P), "prot": "rw", "anon": True},
    {"op": "mremap", "va": "0x400000", "size": hex(P), "new_va": "0x1000000"},
]


def test_legacy_move_ptes_leaving_old_entry_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_move_ptes(k, pmc, extent, old_pmd, new_pmd):  # type: ignore[no-untyped-def]
        mm = pmc.old.vm_mm
        old = k.pte_offset_map_lock(mm, old_pmd, pmc.old_addr)
        old_ptep, old_ptl = old
        new_ptep = k.pte_offset_map(new_pmd, pmc.new_addr)
        new_ptl = k.ptep_lockptr(mm, new_ptep)
        if new_ptl is not old_ptl:
            spin_lock(new_ptl)
        for i in range(extent // k.PAGE_SIZE):
            pte = k.ptep_get(old_ptep + i)
            if not k.pte_none(pte):  # copied, but the old entry is not cleared
                k.set_pte_at(mm, pmc.new_addr + i * k.PAGE_SIZE, new_ptep + i, pte)
        if new_ptl is not old_ptl:
            spin_unlock(new_ptl)
        k.pte_unmap_unlock(old_ptep, old_ptl)
        return 0

    monkeypatch.setattr(legacy_mremap, "move_ptes", broken_move_ptes)
    with pytest.raises(CheckFailed):
        s = _run("x86_64", "legacy", MOVE)
        s.verify()


def test_unified_move_ptes_leaving_old_entry_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(pt, pmc, extent, old, new):  # type: ignore[no-untyped-def]
        mm = pmc.old.vm_mm
        lv = ops_of(pt, mm, Level.PTE)
        old_t, new_t = pt.descend(old), pt.descend(new)
        with pt.locked(old_t), pt.locked(new_t):  # two tables here: two locks
            new_slots = pt.slots(new_t, pmc.new_addr, pmc.new_addr + extent)
            for old_ptr, _a, _ in pt.slots(old_t, pmc.old_addr, pmc.old_addr + extent):
                new_ptr, na, _n = next(new_slots)
                v = lv.get(old_ptr)
                if not lv.none(v):
                    lv.set_at(mm, na, new_ptr, v)  # the old entry stays
        return 0

    monkeypatch.setattr(unified_move, "_move_ptes", broken)
    with pytest.raises(CheckFailed):
        s = _run("arm64-4k-48", "unified", MOVE)
        s.verify()


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("ops, match", [
    ([{"op": "map", "va": "0x400000", "pa": "0x1000", "size": "0x1000", "prot": "rw",
       "anon": True}], r"op 0 \(map\): pa is not allowed with anon"),
    ([{"op": "map", "va": "0x400000", "size": "0x200000", "prot": "rw", "anon": True,
       "page_size": "0x200000"}], r"op 0 \(map\): page_size 0x200000: anonymous"),
    ([{"op": "map", "va": "0xffff888000000000", "size": "0x1000", "prot": "rw",
       "anon": True}], r"op 0 \(map\): anon"),
    ([{"op": "unmap", "mm": 1, "va": "0x400000", "size": "0x1000"}],
     r"op 0 \(unmap\): mm 1 does not exist"),
    ([{"op": "fork"}, {"op": "map", "mm": 1, "va": "0xffff888000000000", "pa": "0x1000",
                       "size": "0x1000", "prot": "rw"}], r"op 1 \(map\): mm 1 is given"),
    ([{"op": "map", "va": "0x400000", "size": "0x2000", "prot": "rw", "anon": True},
      {"op": "map", "va": "0x800000", "size": "0x2000", "prot": "rw", "anon": True},
      {"op": "mremap", "va": "0x400000", "size": "0x1000", "new_va": "0x801000"}],
     r"op 2 \(mremap\): new_va range"),
    ([{"op": "map", "va": "0x400000", "size": "0x2000", "prot": "rw", "anon": True},
      {"op": "map", "va": "0x402000", "size": "0x2000", "prot": "rw", "anon": True},
      {"op": "mremap", "va": "0x401000", "size": "0x2000", "new_va": "0x900000"}],
     r"op 2 \(mremap\): range .* spans more than one vma"),
    ([{"op": "mremap", "va": "0x400000", "size": "0x1000"}],
     r"op 0 \(mremap\): missing field new_va"),
])
def test_bad_input(ops: list[dict[str, object]], match: str) -> None:
    s = Session("x86_64")
    with pytest.raises(BadInput, match=match):
        s.run(load_json_scenario({"ops": ops}))
    assert not s.model.extents


def test_generator_makes_anon_fork_mremap() -> None:
    import random

    from ptshim.scenario_gen import MAX_FORKS, ScenarioGen

    g = ScenarioGen("x86_64", random.Random(3))
    kinds: set[str] = set()
    for i in range(6):
        sc = g.scenario(20, f"s{i}")
        assert sum(op.kind == "fork" for op in sc.ops) <= MAX_FORKS
        kinds |= {op.kind + ("-anon" if getattr(op, "anon", False) else "") for op in sc.ops}
    assert {"fork", "mremap", "map-anon"} <= kinds
