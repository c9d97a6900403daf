"""Long runs: memory stays proportional to the page tables, progress is shown, and the
documented size limit is enforced (exit 2 beyond it)."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from pathlib import Path

import pytest

import ptshim.progress as progress_mod
from arches.memory import PhysMem
from ptshim.cli import main
from ptshim.progress import ScenarioProgress
from ptshim.scenario import MAX_LEAVES, MapOp, UnmapOp, load_json_scenario, validate
from ptshim.session import Session


def test_verify_holds_less_than_the_page_tables() -> None:
    """Checking 16,384 pages against the walker used to hold every leaf (6 MB for 128 KB of
    PTE tables, 45x at 16 GiB); it streams them now."""
    s = Session("x86_64", "legacy")
    s.apply(MapOp(0, 0x4000_0000, 0x1_0000_0000, 64 << 20, "rw", True, 0x1000))
    tracemalloc.start()
    try:
        stats = s.verify()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stats.leaves == 16384
    assert peak < s.mm.pgtables_bytes, (peak, s.mm.pgtables_bytes)


def _big(pages: int) -> dict[str, object]:
    return {"description": "big", "ops": [
        {"op": "map", "va": "0x40000000", "pa": "0x100000000", "size": hex(pages << 12),
         "prot": "rw", "user": True, "page_size": "0x1000"}]}


def test_the_size_limit_is_exact_and_exits_2(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    s = Session("x86_64", "legacy")
    validate(load_json_scenario(_big(MAX_LEAVES)), s.limits, s.split_size)  # at the limit
    p = tmp_path / "too-big.json"
    p.write_text(json.dumps(_big(MAX_LEAVES + 1)))
    assert main(["run", str(p), "--arch", "x86_64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{MAX_LEAVES + 1:,} leaves" in err and "limit" in err


def test_progress_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_mod, "DELAY_S", 0.0)
    mem = PhysMem(4096, "little", 40)
    out = io.StringIO()
    op = MapOp(0, 0x4000_0000, 0, 1 << 30, "rw", True, 0x1000)
    with ScenarioProgress("x86_64", 3, mem, stream=out, enabled=True, period_s=0.01) as p:
        p.op(1, op, 262144)
        mem.writes += 65536
        time.sleep(0.1)
    text = out.getvalue()
    assert "x86_64: op 2/3 (map): 65,536 of ~262,144 entries written (25%)" in text
    assert text.endswith("\r")  # the line is cleared at the end


def test_no_progress_when_not_a_terminal(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "small.json"
    p.write_text(json.dumps(_big(4)))
    assert main(["run", str(p), "--arch", "x86_64"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("api", ["legacy", "unified"])
def test_a_dropped_machine_is_freed(api: str) -> None:
    """Sweeps and campaigns drop machines by the thousand: nothing global may keep one
    alive (the unified API's book of flush obligations once held its kernel strongly as
    the value of a weak-keyed map, so no unified machine was ever freed)."""
    import gc
    import weakref

    s = Session("x86_64", api)
    s.apply(MapOp(0, 0x4000_0000, 0x1_0000_0000, 64 * 4096, "rw", True, 0x1000))
    s.apply(UnmapOp(1, 0x4000_0000, 4096))
    k = weakref.ref(s.k)
    del s
    gc.collect()
    assert k() is None
