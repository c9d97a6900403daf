"""The ``ptshim`` command: exit codes, one-line errors, arches, run, export round trip, dump."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arches import get_config
from arches.errors import CheckFailed
from legacy import arch_names
from ptshim import backends
from ptshim.cli import main
from ptshim.export import load_export
from ptshim.scenario import load_scenario
from ptshim.session import Session, runs_of

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SMALL = str(EXAMPLES / "small-pages.json")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptshim", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def one_line_error(err: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("ptshim: "), err


# -- exit codes ------------------------------------------------------------------------------


def test_run_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", SMALL, "--arch", "x86_64"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("x86_64: small-pages: ok (legacy): 6 ops;") and "teardown clean" in out
    assert err == ""


@pytest.mark.parametrize("args", [
    ["run", SMALL, "--arch", "no-such-arch"],
    ["run", str(EXAMPLES / "missing.json"), "--arch", "x86_64"],
    ["run", str(EXAMPLES / "kernel-32.json"), "--arch", "x86_64"],
    ["run", SMALL],
    ["run", SMALL, "--arch", "x86_64", "--api", "nope"],
    ["frobnicate"],
    [],
])
def test_bad_input_exits_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    out, err = capsys.readouterr()
    one_line_error(err)


def test_bad_json_and_bad_op_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{\"ops\": [}")
    assert main(["run", str(bad), "--arch", "x86_64"]) == 2
    one_line_error(capsys.readouterr()[1])
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"ops": [
        {"op": "map", "va": "0x400000", "pa": "0x0", "size": "0x1000", "prot": "r"},
        {"op": "map", "va": "0x400000", "pa": "0x0", "size": "0x1000", "prot": "r"},
    ]}))
    assert main(["run", str(wrong), "--arch", "x86_64"]) == 2
    err = capsys.readouterr()[1]
    one_line_error(err)
    assert "op 1 (map): range [0x400000, 0x401000) overlaps" in err


def test_unified_api_not_available_yet(capsys: pytest.CaptureFixture[str]) -> None:
    if "unified" in backends.BACKENDS:
        pytest.skip("the unified backend is registered")
    assert main(["run", SMALL, "--arch", "x86_64", "--api", "unified"]) == 2
    err = capsys.readouterr()[1]
    one_line_error(err)
    assert "not available yet" in err


def test_failed_check_exits_1(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    # A backend that "forgets" to unprotect: the hardware no longer matches the model.
    monkeypatch.setattr(backends.LegacyBackend, "protect_user",
                        lambda self, mm, va, size, prot: None)
    assert main(["run", SMALL, "--arch", "x86_64"]) == 1
    err = capsys.readouterr()[1]
    one_line_error(err)
    assert err.startswith("ptshim: check failed: x86_64:") and "missing" in err


def test_failed_teardown_exits_1(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def leaky(self: backends.LegacyBackend, mm: object) -> None:
        raise CheckFailed("check_mm(mm1): non-zero pgtables_bytes 4096")

    monkeypatch.setattr(backends.LegacyBackend, "teardown", leaky)
    assert main(["run", SMALL, "--arch", "x86_64"]) == 1
    one_line_error(capsys.readouterr()[1])


def test_subprocess_errors_have_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    for args in (["run", str(bad), "--arch", "x86_64"], ["run", SMALL, "--arch", "vax"],
                 ["dump", SMALL]):
        p = run_cli(*args)
        assert p.returncode == 2, p
        one_line_error(p.stderr)
    p = run_cli("run", SMALL, "--arch", "x86_64")
    assert p.returncode == 0 and p.stderr == ""


# -- arches ----------------------------------------------------------------------------------


def test_arches_json_lists_every_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arches", "--json"]) == 0
    facts = json.loads(capsys.readouterr()[0])
    assert [f["name"] for f in facts] == arch_names()
    for f in facts:
        c = get_config(f["name"])
        assert f["levels"] == len(c.hw_levels) == len(f["hw_levels"])
        assert f["page_size"] == c.page_size and f["leaf_sizes"] == list(c.leaf_sizes)
        assert f["va_bits"] == c.va_bits and f["roots"] == list(c.roots)
        assert f["endianness"] == c.endianness
        assert set(f["folded"]) <= {"p4d", "pud", "pmd"}
        assert set(f["table_bytes"]) == {"pgd", "p4d", "pud", "pmd", "pte"}
        # Linux's levels = the hardware's (the folded ones are not tables of their own).
        assert 5 - len(f["folded"]) == f["levels"], f["name"]
    by_name = {f["name"]: f for f in facts}
    assert by_name["x86_64"]["folded"] == ["p4d"]
    assert by_name["x86_64-la57"]["folded"] == []


def test_arches_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arches"]) == 0
    out = capsys.readouterr()[0].splitlines()
    assert out[0].split()[0] == "name"
    assert [line.split()[0] for line in out[1:]] == arch_names()


# -- run: matrix -----------------------------------------------------------------------------


def test_run_directory_on_all_arches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXAMPLES), "--arch", "all"]) == 0
    out = capsys.readouterr()[0].splitlines()
    names = sorted(p.stem for p in EXAMPLES.glob("*.json"))
    assert out[0].split() == ["arch", *names]
    rows = {line.split()[0]: line for line in out[1:1 + len(arch_names())]}
    assert list(rows) == arch_names()
    assert not any("FAIL" in row for row in rows.values())
    assert "ok" in rows["x86_64"] and "n/a" in rows["x86_64"]  # kernel-32 is i386-only
    assert " 0 FAIL" in out[-1]


def test_run_matrix_reports_fail(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(backends.LegacyBackend, "protect_user",
                        lambda self, mm, va, size, prot: None)
    assert main(["run", str(EXAMPLES), "--arch", "x86_64"]) == 1
    out = capsys.readouterr()[0]
    assert "FAIL" in out and "FAIL x86_64: small-pages:" in out


# -- export round trip -------------------------------------------------------------------------


def export_cases() -> list[tuple[str, str]]:
    """(arch, example) pairs valid for each configuration, a few per configuration."""
    cases = []
    for arch in arch_names():
        for name in ("small-pages", "split-partial", "protnone", "kernel-64", "kernel-32"):
            s = Session(arch)
            try:
                s.validate(load_scenario(EXAMPLES / f"{name}.json"))
            except Exception:
                continue
            cases.append((arch, name))
    return cases


@pytest.mark.parametrize(("arch", "name"), export_cases())
def test_export_round_trip(arch: str, name: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES / f"{name}.json"
    assert main(["run", str(path), "--arch", arch, "--export", str(tmp_path)]) == 0
    machine, mem = load_export(tmp_path)
    c = get_config(arch)
    assert machine["format"] == "ptshim-export/1" and machine["arch"] == arch
    assert machine["endianness"] == c.endianness and machine["frame_size"] == c.page_size
    assert machine["frames"] == sorted(machine["frames"])
    assert (tmp_path / "phys.bin").stat().st_size == len(machine["frames"]) * c.page_size
    assert machine["registers"] == c.make_registers(machine["roots"]["user"],
                                                    machine["roots"]["kernel"])
    # Plain JSON integers everywhere.
    text = (tmp_path / "machine.json").read_text()
    assert "\"0x" not in text
    # Walk the reloaded bytes with the configuration's own walker...
    walked = [{"va": t.va, "pa": t.pa, "size": t.size, "prot": t.prot, "user": t.user}
              for t in c.walker.leaves(mem, machine["registers"])]
    assert walked == machine["mappings"]
    # ...and compare with what the scenario says should be mapped.
    s = Session(arch)
    s.run(load_scenario(path))
    # kernel runs carry leaf size 0: a kernel page size is an upper bound (Session docs)
    got = runs_of((m["va"], m["pa"], m["size"], m["size"] if m["user"] else 0, m["prot"],
                   m["user"]) for m in machine["mappings"])
    assert got == s.expected_runs()
    assert machine["pgtables_bytes"] == s.mm.pgtables_bytes
    assert machine["roots"]["user"] == s.k.mm_root(s.mm)


def test_export_needs_a_single_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXAMPLES), "--arch", "x86_64", "--export", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr()[1])


# -- dump ------------------------------------------------------------------------------------


def test_dump_x86_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dump", str(EXAMPLES / "kernel-64.json"), "--arch", "x86_64"]) == 0
    out = capsys.readouterr()[0]
    lines = out.splitlines()
    assert "---[ User Space ]---" in lines and "---[ Kernel Space ]---" in lines
    assert lines.index("---[ User Space ]---") < lines.index("---[ Kernel Space ]---")
    assert ("0x0000000000400000-0x0000000000404000          16K USR RW"
            "                     NX pte") in lines
    assert ("0xffff888000000000-0xffff888000002000           8K     RW"
            "                 GLB NX pte") in lines
    assert ("0xffff888000002000-0xffff888000004000           8K     ro"
            "                 GLB NX pte") in lines


@pytest.mark.parametrize("arch", arch_names())
def test_dump_every_arch(arch: str, capsys: pytest.CaptureFixture[str]) -> None:
    # granule-64k.json: base pages valid with every page size (4K, 16K, 64K)
    assert main(["dump", str(EXAMPLES / "granule-64k.json"), "--arch", arch]) == 0
    out = capsys.readouterr()[0]
    assert "---[ User Space ]---" in out and "---[ Kernel Space ]---" in out
