"""``ptshim diff``: the differential campaign legacy vs unified.

- on every registered configuration a small campaign finds no divergence (exit 0);
- a deliberately broken unified backend (monkeypatched into the registry) is caught: exit 1,
  and the reproducer file it writes is a valid, small scenario that reproduces the
  divergence -- and no longer diverges once the real backend is back;
- the harness's own pieces: the generator makes valid scenarios deterministically from the
  seed, the shrinker keeps a divergence while removing ops.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import legacy
from legacy import GenericKernel, mm_struct
from ptshim import diff
from ptshim.backends import BACKENDS
from ptshim.backends_unified import UnifiedBackend
from ptshim.cli import main
from ptshim.model import Prot
from ptshim.scenario import Scenario, load_scenario, op_to_json
from ptshim.scenario_gen import ScenarioGen


def test_diff_all_configurations_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["diff", "--arch", "all", "--examples", "25", "--seed", "7", "--out",
               str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    for arch in legacy.arch_names():
        assert f"{arch}: 25 scenarios" in out
    assert "no divergence" in out
    assert not list(tmp_path.iterdir())


class _ProtectsReadOnly(UnifiedBackend):
    """Broken on purpose: every user protect applies "r", whatever was asked."""

    def protect_user(self, mm: mm_struct, va: int, size: int, prot: Prot) -> None:
        super().protect_user(mm, va, size, "r")


def _broken(k: GenericKernel) -> UnifiedBackend:
    return _ProtectsReadOnly(k)


def test_broken_backend_is_caught_and_reproduced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(BACKENDS, "unified", _broken)
    rc = main(["diff", "--arch", "x86_64", "--examples", "40", "--seed", "3", "--out",
               str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1, err
    path = tmp_path / "diff-x86_64-seed3.json"
    assert path.is_file(), err
    assert str(path) in err
    data = json.loads(path.read_text())
    assert data["arch"] == "x86_64" and data["seed"] == 3
    assert data["divergence"]["step"].startswith("op ")
    # A valid scenario in the contract's format, shrunk to the essentials: a map and the
    # protect that goes wrong.
    sc = load_scenario(path)
    assert [op.kind for op in sc.ops][-1] == "protect"
    assert len(sc.ops) <= 3
    # It reproduces with the broken backend ...
    d = diff.reproduces(path)
    assert d is not None and d.step == data["divergence"]["step"]
    # ... and not with the real one.
    monkeypatch.setitem(BACKENDS, "unified", UnifiedBackend)
    assert diff.reproduces(path) is None


def test_bad_arch_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--arch", "nosuch", "--examples", "1"]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_generator_is_seeded_and_valid() -> None:
    for arch in legacy.arch_names():
        a = ScenarioGen(arch, random.Random("s")).scenario(8, "a")
        b = ScenarioGen(arch, random.Random("s")).scenario(8, "b")
        assert [op_to_json(o) for o in a.ops] == [op_to_json(o) for o in b.ops]
        assert a.ops, arch


def test_shrink_removes_ops_and_keeps_the_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "unified", _broken)
    k = legacy.boot("x86_64")
    page, pmd = k.PAGE_SIZE, k.PMD_SIZE
    base = 0x4000_0000
    raw = {"ops": [
        {"op": "map", "va": base, "pa": 0, "size": 4 * page, "prot": "rw"},
        {"op": "map", "va": base + pmd, "pa": 0, "size": page, "prot": "r"},
        {"op": "unmap", "va": base + pmd, "size": page},
        {"op": "protect", "va": base + page, "size": page, "prot": "rx"},
        {"op": "map", "va": base + 4 * pmd, "pa": 0, "size": page, "prot": "rw"},
    ]}
    from ptshim.scenario import parse_scenario

    sc: Scenario = parse_scenario(raw)
    assert diff.run_pair("x86_64", sc) is not None
    small, d = diff.shrink("x86_64", sc)
    assert [op.kind for op in small.ops] == ["map", "protect"]
    assert small.ops[1].size == page
    assert d.step == "op 1 (protect)"


def test_equal_memory_with_other_roots_is_a_difference() -> None:
    """The unified machine's walker view is taken as the legacy one's when the snapshots
    agree (``run_pair`` verifies the hardware once), so a snapshot must fix the roots too:
    the same frames with another pgd translate differently."""
    from ptshim.compare import compare, snapshot
    from ptshim.session import Session

    a, b = Session("x86_64", "legacy"), Session("x86_64", "legacy")
    sa, sb = snapshot(a), snapshot(b)
    assert compare(sa, sb, 8) is None
    moved = sb._replace(roots=(sb.roots[0] + 0x1000,) + sb.roots[1:])
    what = compare(sa, moved, 8)
    assert what is not None and "roots" in what


def test_split_of_a_prot_none_pud_leaf_flushes_like_pudp_huge_clear_flush() -> None:
    """x86's ``pud_present`` is ``_PAGE_PRESENT`` alone, so a PROT_NONE 1G leaf is not
    present; ``pudp_huge_clear_flush`` (mm/pgtable-generic.c) flushes it all the same, and
    so must the unified split's break step (found by the campaign, seed 4)."""
    from ptshim.scenario import parse_scenario

    raw = {"ops": [
        {"op": "map", "va": "0x1140000000", "pa": "0xf400000000", "size": "0x80000000",
         "prot": "rw", "page_size": "0x40000000"},
        {"op": "protect", "va": "0x11569e8000", "size": "0x69618000", "prot": "none"},
        {"op": "protect", "va": "0x1180000000", "size": "0x35e00000", "prot": "rx"},
    ]}
    assert diff.run_pair("x86_64", parse_scenario(raw, "pud-protnone-split")) is None


def test_mremap_above_asce_limit_upgrades_first_on_both_sides() -> None:
    """mm/mremap.c ``vrm_set_new_addr`` asks ``get_unmapped_area(..., MAP_FIXED)`` for the
    destination before ``move_vma``; on s390 that is where ``check_asce_limit`` adds the
    levels a move above 4 TiB needs (without it ``pgd_offset`` wraps the new address onto
    the old range).  Both APIs upgrade, move and verify alike."""
    from ptshim.scenario import parse_scenario
    from ptshim.session import Session

    raw = {"ops": [
        {"op": "map", "va": "0x10000000", "anon": True, "size": "0x3000", "prot": "rw"},
        {"op": "mremap", "va": "0x10000000", "size": "0x3000", "new_va": "0x50000000000"},
    ]}
    sc = parse_scenario(raw, "s390-mremap-upgrade")
    assert diff.run_pair("s390x", sc) is None
    s = Session("s390x")
    s.run(sc)
    s.verify()
    assert s.mm.context["asce_limit"] > 0x50000000000
    s.teardown()
