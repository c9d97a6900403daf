"""``ptshim diff --pair`` and :mod:`ptshim.pairs`: side-by-side testing of user call sites.

- the worked pair (examples/pairs/readonly.py) is identical on the configurations tried,
  and the coverage line says what the examples hit;
- four bugs planted in copies of its unified side are each caught where they are
  observable (and a bug that cannot show on a configuration is not reported there);
- the CLI: exit 1 with a shrunk reproducer and a replay command that reproduces it, exit 2
  with one line for bad input, the same result whatever ``--jobs``;
- the decoded report, the Hypothesis strategies and the pytest plugin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from legacy import mm_struct
from ptshim.cli import main
from ptshim.pairs import Pair, compare_pair, replay
from unified import Entry, Level, PageTables, Value
from unified.walk import Action, walk_range

ROOT = Path(__file__).absolute().parent.parent
READONLY = ROOT / "examples" / "pairs" / "readonly.py"
SPEC = f"{READONLY}:make_range_readonly_legacy,make_range_readonly_unified"
WORKED = Pair.load(SPEC)
_mod = sys.modules[WORKED.legacy.__module__]


def _buggy_unified(bug: str) -> Callable[[PageTables, mm_struct, int, int], int]:
    """A copy of ``make_range_readonly_unified`` with one planted bug."""

    def fn(pt: PageTables, mm: mm_struct, start: int, end: int) -> int:
        st = _mod.wp_state()
        ops = pt.ops(mm)

        def wrprotect(entry: Entry, addr: int) -> None:
            lv = ops[Level(entry.level)]
            raw = lv.get(entry.ptr)
            if lv.present(raw) and lv.write(raw):
                lv.set_wrprotect(mm, addr, entry.ptr)
                st.note(addr, lv.size)

        def visit(entry: Entry, value: Value, addr: int, next: int) -> Action:
            if pt.is_table(value):
                child = pt.descend(entry)
                if not pt.is_bottom(child):
                    return Action.SUBTREE
                last = pt.entries_per_table(child.group) - 1
                if bug == "no-lock":  # writes the PTEs without the table's split lock
                    for e, a, _ in pt.entries(child, addr, next):
                        wrprotect(e, a)
                    return Action.CONTINUE
                with pt.locked(child):
                    for e, a, _ in pt.entries(child, addr, next):
                        if bug == "skip-last-entry" and e.index == last:
                            continue
                        wrprotect(e, a)
                return Action.CONTINUE
            if pt.is_leaf(value):
                g = entry.table.group
                if bug == "folded-root-leaf" and entry.table.is_root and len(g.members) > 1:
                    return Action.CONTINUE
                if bug == "partial-leaf" and (addr != entry.va
                                              or next - addr != pt.level_size(g)):
                    return Action.CONTINUE
                with pt.locked(entry.table):
                    if pt.is_leaf(pt.read(entry)):
                        wrprotect(entry, entry.va)
            return Action.CONTINUE

        walk_range(pt, pt.root_for(mm, start), start, end, visit)
        _mod.flush_tlb_changed(pt.k, mm, st)
        return int(st.changed)

    return fn


def _buggy(bug: str) -> Pair:
    return Pair(WORKED.legacy, _buggy_unified(bug))


def test_worked_pair_is_identical_and_reports_coverage() -> None:
    r = compare_pair(WORKED, arch=["x86_64", "i386"], examples=25, seed=1)
    assert r.ok, r.describe()
    assert [c.arch for c in r.configs] == ["x86_64", "i386"]
    for c in r.configs:
        assert c.examples == 25 and c.ops > 0
        assert c.coverage.get("pte", 0) > 0 and c.coverage.get("pmd-leaf", 0) > 0
        assert "pmd-leaf" in c.coverage_line()
    assert "folded-leaf" in r.configs[1].applicable      # i386's 4M leaves are in the root
    assert "folded-leaf" not in r.configs[0].applicable  # x86-64 has no leaf in its root
    assert "identical" in r.describe()


@pytest.mark.parametrize(("bug", "caught", "not_observable"), [
    ("skip-last-entry", ["x86_64", "arm64-4k-48"], []),
    ("folded-root-leaf", ["i386", "arm64-16k-36"], ["x86_64"]),
    ("partial-leaf", ["x86_64", "i386-pae"], []),
    ("no-lock", ["x86_64", "i386", "arm64-4k-48"], []),
])
def test_planted_bug_is_caught_where_observable(bug: str, caught: list[str],
                                               not_observable: list[str]) -> None:
    r = compare_pair(_buggy(bug), arch=caught + not_observable, examples=60, seed=1,
                     shrink=False)
    by_arch = {c.arch: c for c in r.configs}
    for a in caught:
        d = by_arch[a].divergence
        assert d is not None, f"{bug} not caught on {a}:\n{r.describe()}"
        if bug == "no-lock":  # named: the lock expected, and that none was held
            assert "LockError" in d.describe() and "without ptl@" in d.describe()
    for a in not_observable:
        assert by_arch[a].identical, f"{bug} cannot show on {a}:\n{r.describe()}"


def test_divergence_is_decoded_shrunk_and_replayed(tmp_path: Path) -> None:
    r = compare_pair(_buggy("partial-leaf"), arch="x86_64", examples=40, seed=1,
                     out=tmp_path)
    (c,) = r.configs
    d = c.divergence
    assert d is not None and d.start is not None and d.end is not None
    # shrunk: few ops, and the report names the entry, its level and both decoded values
    assert len(d.scenario.ops) <= 3, d.describe()
    assert d.entries, d.describe()
    e = d.entries[0]
    # (the huge leaf cut first: a 2M or a 1G one, as the generator's mix has it)
    assert ("pmd entry (hardware PD)" in e.where or "pud entry (hardware PDPT)" in e.where)
    assert "index" in e.where and "VA [" in e.where
    assert "huge leaf" in e.legacy and " ro " in f" {e.legacy} " and "RW" in e.unified
    assert "walker" in "\n".join(e.lines())
    assert any("return value" in p for p in d.problems)
    # the reproducer replays the divergence, and the real pair is identical on it
    assert c.reproducer is not None and c.reproducer.is_file()
    data = json.loads(c.reproducer.read_text())
    assert data["arch"] == "x86_64" and data["range"]["start"].startswith("0x")
    assert "variety" in data  # the variety step's seed, or null once shrunk away
    again = replay(_buggy("partial-leaf"), c.reproducer)
    assert again is not None and again.problems == d.problems
    assert replay(WORKED, c.reproducer) is None


_BUGGY_FILE = '''
from readonly import make_range_readonly_legacy as legacy_fn, wp_state, flush_tlb_changed
from unified.walk import Action, walk_range


def unified_fn(pt, mm, start, end):
    """Leaves alone a huge leaf the range covers only partly."""
    st = wp_state()
    ops = pt.ops(mm)

    def wrprotect(entry, addr):
        lv = ops[entry.level]
        raw = lv.get(entry.ptr)
        if lv.present(raw) and lv.write(raw):
            lv.set_wrprotect(mm, addr, entry.ptr)
            st.note(addr, lv.size)

    def visit(entry, value, addr, next):
        if pt.is_table(value):
            child = pt.descend(entry)
            if not pt.is_bottom(child):
                return Action.SUBTREE
            with pt.locked(child):
                for e, a, _ in pt.entries(child, addr, next):
                    wrprotect(e, a)
            return Action.CONTINUE
        if pt.is_leaf(value) and next - addr == pt.level_size(entry.table.group):
            with pt.locked(entry.table):
                wrprotect(entry, entry.va)
        return Action.CONTINUE

    walk_range(pt, pt.root_for(mm, start), start, end, visit)
    flush_tlb_changed(pt.k, mm, st)
    return st.changed


def two_args(pt, mm):
    return 0
'''


def _buggy_file(tmp_path: Path) -> Path:
    (tmp_path / "readonly.py").write_text(READONLY.read_text())
    path = tmp_path / "buggy_pair.py"
    path.write_text(_BUGGY_FILE)
    return path


def test_cli_divergence_writes_reproducer_and_replay_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"{_buggy_file(tmp_path)}:legacy_fn,unified_fn"
    out = tmp_path / "out"
    rc = main(["diff", "--pair", spec, "--arch", "x86_64", "--examples", "40", "--seed",
               "1", "--jobs", "1", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 1, cap.out + cap.err
    path = out / "pair-x86_64-seed1.json"
    assert path.is_file()
    assert "DIVERGED" in cap.out and "walker:" in cap.out
    assert "d entry (hardware PD" in cap.out  # a pmd (PD) or pud (PDPT) leaf
    assert f"--replay {path}" in cap.err and "--pair" in cap.err
    assert main(["diff", "--pair", spec, "--replay", str(path)]) == 1
    assert "d entry (hardware PD" in capsys.readouterr().out
    # the file names its pair: --replay alone works too; the worked pair is identical there
    assert main(["diff", "--replay", str(path)]) == 1
    capsys.readouterr()
    assert main(["diff", "--pair", SPEC, "--replay", str(path)]) == 0
    assert "identical" in capsys.readouterr().out


def test_results_do_not_depend_on_jobs() -> None:
    kw = dict(arch=["x86_64", "i386"], examples=24, seed=5, shrink=False)
    one = compare_pair(_buggy("skip-last-entry"), jobs=1, **kw)  # type: ignore[arg-type]
    two = compare_pair(_buggy("skip-last-entry"), jobs=2, **kw)  # type: ignore[arg-type]
    assert [(c.arch, c.examples, c.ops, c.coverage, c.first_seen) for c in one.configs] == \
        [(c.arch, c.examples, c.ops, c.coverage, c.first_seen) for c in two.configs]
    assert not one.ok
    ok1 = compare_pair(WORKED, jobs=1, **kw)  # type: ignore[arg-type]
    ok2 = compare_pair(WORKED, jobs=2, **kw)  # type: ignore[arg-type]
    assert ok1.ok and ok2.ok
    assert [c.coverage for c in ok1.configs] == [c.coverage for c in ok2.configs]


def test_stops_at_first_divergence_unless_keep_going() -> None:
    kw = dict(arch=["x86_64", "i386", "i386-pae"], examples=30, seed=1, shrink=False)
    first = compare_pair(_buggy("partial-leaf"), keep_going=False, **kw)  # type: ignore[arg-type]
    assert [c.arch for c in first.configs] == ["x86_64"]
    assert first.not_run == ["i386", "i386-pae"]
    every = compare_pair(_buggy("partial-leaf"), keep_going=True, **kw)  # type: ignore[arg-type]
    assert [c.arch for c in every.configs] == ["x86_64", "i386", "i386-pae"]
    assert all(c.divergence is not None for c in every.configs)


@pytest.mark.parametrize(("args", "words"), [
    (["--pair", "no_such_module:f,g"], "no module named"),
    (["--pair", f"{READONLY}:nope,make_range_readonly_unified"], "has no function 'nope'"),
    (["--pair", f"{READONLY}:make_range_readonly_legacy"], "expected MODULE:LEGACY_FN"),
    (["--pair", "missing/file.py:f,g"], "no such file"),
    (["--pair", "SIG", "--arch", "x86_64"], "signature"),
    (["--pair", SPEC, "--arch", "nosuch"], "nosuch"),
    (["--pair", SPEC, "--jobs", "0"], "--jobs"),
    (["--replay", "/nonexistent/repro.json"], "--replay"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], words: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    if "SIG" in args:
        args = [f"{_buggy_file(tmp_path)}:legacy_fn,two_args" if a == "SIG" else a
                for a in args]
    assert main(["diff", *args, "--examples", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptshim: error: ") and err.count("\n") == 1, err
    assert words in err and "Traceback" not in err


def test_hypothesis_strategies_drive_a_property() -> None:
    from hypothesis import HealthCheck, given, settings

    from ptshim import strategies as pst

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ex=pst.examples("i386", max_ops=4))
    def prop(ex: object) -> None:
        from ptshim.pairs import Example

        assert isinstance(ex, Example)
        lo, hi = ex.build().config.user_range
        assert lo <= ex.start < ex.end <= hi
        assert ex.run(WORKED) is None

    prop()


def test_pytest_plugin_fixture_and_marker(tmp_path: Path) -> None:
    test = tmp_path / "test_user_pair.py"
    test.write_text(f'''
import pytest
import sys
sys.path.insert(0, {str(READONLY.parent)!r})
from readonly import make_range_readonly_legacy as L, make_range_readonly_unified as U


def broken(pt, mm, start, end):
    return -1


def test_fixture(ptshim_compare, ptshim_arches):
    assert ptshim_arches == ["i386"]
    report = ptshim_compare(L, U)
    assert report.ok and report.configs[0].examples == 3


@pytest.mark.ptshim_pair(L, U)
def test_marker(ptshim_report):
    assert ptshim_report.ok


@pytest.mark.ptshim_pair(L, broken)
def test_marker_catches():
    pass
''')
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test),
         "--ptshim-arch", "i386", "--ptshim-examples", "3", "-W", "ignore"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert "2 passed" in r.stdout and "1 failed" in r.stdout, r.stdout + r.stderr
    assert "return value: legacy" in r.stdout


def test_variety_gives_swap_old_clean_soft_dirty_and_passes_syscall_exit() -> None:
    from ptshim.pairs import add_variety, applicable_tags, build_machine, make_example

    r = compare_pair(WORKED, arch=["x86_64", "arm64-4k-39", "i386"], examples=30, seed=0)
    assert r.ok, r.describe()
    by = {c.arch: c for c in r.configs}
    for a in ("x86_64", "arm64-4k-39"):  # swap entries emulated
        assert "swap" in by[a].applicable and by[a].coverage.get("swap", 0) > 0, r.describe()
        assert by[a].coverage.get("old-clean", 0) > 0
    assert by["x86_64"].coverage.get("soft-dirty", 0) > 0       # MEM_SOFT_DIRTY
    assert "soft-dirty" not in applicable_tags("arm64-4k-39")
    assert "swap" not in by["i386"].applicable                  # no swap format emulated
    assert by["i386"].coverage.get("old-clean", 0) > 0
    # a machine with variety passes the end-of-call-site checks and tears down cleanly
    # (the zap path clears swap and migration entries), and builds deterministically
    for i in range(6):
        ex, s = make_example("x86_64", 0, i)
        assert ex.variety is not None
        s.k.syscall_exit("test")
        t = ex.build()
        add_variety(t, ex.variety)  # a second step on the same machine is still valid
        s.teardown()
        t.teardown()
    ex, _ = make_example("arm64-4k-48", 0, 3)
    assert (dict(build_machine(ex.arch, ex.scenario, ex.zaps, ex.variety).k.mem.image())
            == dict(ex.build().k.mem.image()))


def _backend_pair(op: str) -> Pair:
    """The built-in backends' ``op`` (``protect``: mprotect read-only, ``unmap``: munmap)
    over the vmas the range meets, as a call-site pair."""
    from ptshim.backends import make_backend

    def run(k: object, mm: mm_struct, start: int, end: int, api: str) -> int:
        b = make_backend(api, k)  # type: ignore[arg-type]
        n = 0
        for vma in list(mm.mmap):
            lo, hi = max(start, vma.vm_start), min(end, vma.vm_end)
            if lo < hi:
                # whole vmas only: a part of one may need a huge leaf split
                if op == "protect":
                    b.protect_user(mm, vma.vm_start, vma.vm_end - vma.vm_start, "r")
                else:
                    b.unmap_user(mm, vma.vm_start, vma.vm_end - vma.vm_start)
                n += 1
        return n

    return Pair(lambda k, mm, s, e: run(k, mm, s, e, "legacy"),
                lambda pt, mm, s, e: run(pt.k, mm, s, e, "unified"))


@pytest.mark.parametrize("op", ["protect", "unmap"])
def test_builtin_backends_agree_on_variety(op: str) -> None:
    r = compare_pair(_backend_pair(op), arch=["x86_64", "arm64-64k-42"], examples=25,
                     seed=2, shrink=False)
    assert r.ok, r.describe()
    assert all(c.coverage.get("swap", 0) > 0 for c in r.configs), r.describe()


@pytest.mark.parametrize("arch", __import__("legacy").arch_names())
def test_the_worked_pair_runs_on_every_configuration(arch: str) -> None:
    """``make run``'s first job, a few examples per configuration: machines are built (the
    variety step rewrites present ptes as kernel code does: clear and flush, then store),
    ranges stay where the process's page tables reach (s390: ``asce_limit``), and the two
    sides agree."""
    report = compare_pair(WORKED, arch=arch, examples=4, seed=0, shrink=False)
    assert report.ok, report
