"""``ptshim run DIR --arch all``: n/a cells carry their reason (``--why``), and a scenario
that is valid input for no configuration is bad input (exit 2), not a column of n/a."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptshim.cli import main


def _write(d: Path, name: str, ops: list[dict[str, object]]) -> None:
    (d / f"{name}.json").write_text(json.dumps({"ops": ops}), encoding="utf-8")


def test_na_reasons_with_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "a-user", [{"op": "map", "va": "0x400000", "pa": "0x1000000",
                                 "size": "0x2000", "prot": "r"}])
    # A kernel address of x86-64's direct map: outside every 32-bit configuration.
    _write(tmp_path, "b-kernel64", [{"op": "map", "va": "0xffff888000000000",
                                     "pa": "0x1000000", "size": "0x1000", "prot": "rw"}])
    rc = main(["run", str(tmp_path), "--arch", "all", "--why"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "n/a i386: b-kernel64: op 0 (map):" in out
    assert "n/a x86_64:" not in out  # valid there: no reason line
    rc = main(["run", str(tmp_path), "--arch", "all"])
    assert "(--why lists the reasons)" in capsys.readouterr().out


def test_scenario_valid_nowhere_is_bad_input(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "a-user", [{"op": "map", "va": "0x400000", "pa": "0x1000000",
                                 "size": "0x2000", "prot": "r"}])
    _write(tmp_path, "z-broken", [{"op": "map", "va": "0x400800", "pa": "0x1000000",
                                   "size": "0x2000", "prot": "r"}])
    rc = main(["run", str(tmp_path), "--arch", "all"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "scenario z-broken is not valid input for any configuration" in err
    assert "not a multiple of" in err


def test_version_names_the_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("ptshim 0.2.0 ") and out.endswith("(Linux v6.18.y page-table semantics)")
