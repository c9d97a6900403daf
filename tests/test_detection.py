"""The coverage tags ``table-free`` and ``move-table`` of the built-in campaign say what the
legacy machine really did, and the time-to-detection bench (bench/detection.py) finds a
planted bug and leaves the port as it found it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import legacy.mm.memory as lmemory
import legacy.mm.mremap as lmremap
import ptshim.session as psession
from bench.detection import time_to_detection
from legacy import boot
from ptshim.diff import BackendsSubject, _scenario, run_pair, scenario_tags
from ptshim.pairs import scenario_gen
from ptshim.scenario import Scenario, parse_scenario

ARCHES = ["x86_64", "arm64-64k-42"]


@pytest.fixture
def machine_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """What the legacy kernel did: PTE tables freed during an ``unmap`` op
    (``free_pte_range``), whole PTE tables moved (``move_normal_pmd`` returning true)."""
    seen: Counter[str] = Counter()
    current: list[str | None] = [None]
    apply, free_pte_range, move_normal_pmd = (psession.Session.apply, lmemory.free_pte_range,
                                              lmremap.move_normal_pmd)

    def counted_apply(self: Any, op: Any) -> Any:
        current[0] = op.kind
        try:
            return apply(self, op)
        finally:
            current[0] = None

    def counted_free(*a: Any) -> None:
        if current[0] == "unmap":
            seen["table-free"] += 1
        free_pte_range(*a)

    def counted_move(*a: Any) -> bool:
        moved = bool(move_normal_pmd(*a))
        seen["move-table"] += moved
        return moved

    monkeypatch.setattr(psession.Session, "apply", counted_apply)
    monkeypatch.setattr(lmemory, "free_pte_range", counted_free)
    monkeypatch.setattr(lmremap, "move_normal_pmd", counted_move)
    yield seen


def _ops(arch: str, case: str) -> list[dict[str, Any]]:
    """Hand-made scenarios around one PMD boundary ``b`` (``p``: a page)."""
    k = boot(arch)
    p, pmd = k.PAGE_SIZE, k.PMD_SIZE
    b = 0x40 * pmd
    anon = {"op": "map", "prot": "rw", "anon": True}
    pfn = {"op": "map", "pa": 0x100_0000, "prot": "rw"}
    return {
        # a vma ending at b moved whole to the same offset: the table moves
        "move": [{**anon, "va": b - 3 * p, "size": 3 * p},
                 {"op": "mremap", "va": b - 3 * p, "size": 3 * p, "new_va": b + 8 * pmd - 3 * p}],
        # the same, to another offset: pte by pte
        "move-unaligned": [{**anon, "va": b - 3 * p, "size": 3 * p},
                           {"op": "mremap", "va": b - 3 * p, "size": 3 * p,
                            "new_va": b + 8 * pmd - 4 * p}],
        # another vma below it in the span: no realignment
        "move-below": [{**pfn, "va": b - 8 * p, "size": p},
                       {**anon, "va": b - 3 * p, "size": 3 * p},
                       {"op": "mremap", "va": b - 3 * p, "size": 3 * p,
                        "new_va": b + 8 * pmd - 3 * p}],
        # the destination span holds another vma (a PTE table): pte by pte
        "move-occupied": [{**anon, "va": b - 3 * p, "size": 3 * p},
                          {**pfn, "va": b + 7 * pmd, "size": p},
                          {"op": "mremap", "va": b - 3 * p, "size": 3 * p,
                           "new_va": b + 8 * pmd - 3 * p}],
        "free": [{**pfn, "va": b - 3 * p, "size": 3 * p},
                 {"op": "unmap", "va": b - 3 * p, "size": 3 * p}],
        # a neighbour in the span keeps the table
        "free-neighbour": [{**pfn, "va": b - 8 * p, "size": p},
                           {**pfn, "va": b - 3 * p, "size": 3 * p},
                           {"op": "unmap", "va": b - 3 * p, "size": 3 * p}],
        # the part of a vma beyond b goes: its span's table is freed
        "free-tail": [{**anon, "va": b - 2 * p, "size": 4 * p},
                      {"op": "unmap", "va": b, "size": 2 * p}],
        # the part before b goes, the rest keeps b's table: the table below b is freed
        "free-head": [{**anon, "va": b - 2 * p, "size": 4 * p},
                      {"op": "unmap", "va": b - 2 * p, "size": 2 * p}],
        # a hole next to the vma: nothing freed
        "free-hole": [{**pfn, "va": b - 3 * p, "size": 3 * p},
                      {"op": "unmap", "va": b + p, "size": 2 * p}],
    }[case]


CASES = {"move": {"move-table"}, "move-unaligned": set(), "move-below": set(),
         "move-occupied": set(), "free": {"table-free"}, "free-neighbour": set(),
         "free-tail": {"table-free"}, "free-head": {"table-free"}, "free-hole": set()}


def _check(arch: str, sc: Scenario, seen: Counter[str]) -> frozenset[str]:
    """The scenario's two tags, after asserting the machine agrees with them."""
    import random

    gen = scenario_gen(arch, random.Random(0))
    tags = scenario_tags(gen, sc) & {"table-free", "move-table"}
    seen.clear()
    assert run_pair(arch, sc) is None
    assert tags == {t for t in ("table-free", "move-table") if seen[t]}, (sc.name, seen)
    return tags


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("case", list(CASES))
def test_tag_is_what_the_machine_did(arch: str, case: str,
                                     machine_events: Counter[str]) -> None:
    sc = parse_scenario({"ops": _ops(arch, case)}, case)
    assert _check(arch, sc, machine_events) == CASES[case]


@pytest.mark.parametrize("arch", ARCHES)
def test_tags_of_generated_scenarios_agree_with_the_machine(
        arch: str, machine_events: Counter[str]) -> None:
    """The first examples of ``ptshim diff``'s default seed, whatever they hold."""
    hit: Counter[str] = Counter()
    for i in range(12):
        _, sc = _scenario(arch, 0, i)
        hit.update(_check(arch, sc, machine_events))
    assert hit["table-free"], hit  # some of them free a table


def test_detection_finds_a_plant_and_restores_the_port() -> None:
    d = time_to_detection("table-freed-early", "x86_64", 0, 5)
    assert d.examples is not None and d.seconds > 0, d
    assert "freed while a walk cache may still reference it" in d.what
    assert BackendsSubject().example("x86_64", 0, d.examples - 1).divergence is None
