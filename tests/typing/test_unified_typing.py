"""``mypy --strict`` tells the unified handles apart (review points R1, R6, R7, R8).

Runs the venv's mypy on ``misuse.py`` (every line marked ``# expect: CODE[, CODE]`` must be
reported with exactly those error codes, and no unmarked line may be) and on ``correct.py``
(the same operations used correctly: no error at all).  Imported modules are followed
silently: their own errors belong to the project's main ``mypy --strict`` run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MYPY = Path(sys.executable).with_name("mypy")
EXPECT = re.compile(r"#\s*expect:\s*([a-z-]+(?:\s*,\s*[a-z-]+)*)\s*$")
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def run_mypy(tmp: Path, *files: str) -> subprocess.CompletedProcess[str]:
    if not MYPY.exists():
        pytest.skip(f"mypy not installed next to {sys.executable}")
    cmd = [
        str(MYPY), "--strict", "--follow-imports=silent", "--no-error-summary",
        "--show-error-codes", "--no-pretty", "--cache-dir", str(tmp / "mypy-cache"), *files,
    ]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def expected_errors(path: Path) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        m = EXPECT.search(line)
        if m:
            out[n] = {c.strip() for c in m.group(1).split(",")}
    return out


def reported_errors(stdout: str, rel: str) -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for line in stdout.splitlines():
        m = ERROR.match(line.strip())
        if m and Path(m["file"]).as_posix() == rel:
            out[int(m["line"])].add(m["code"])
    return dict(out)


def test_misuses_are_type_errors(tmp_path: Path) -> None:
    rel = "tests/typing/misuse.py"
    expected = expected_errors(REPO / rel)
    assert len(expected) >= 20, "the misuse fixture lost its annotations"
    proc = run_mypy(tmp_path, rel)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    reported = reported_errors(proc.stdout, rel)
    missing = {n: c - reported.get(n, set()) for n, c in expected.items()}
    missing = {n: c for n, c in missing.items() if c}
    unexpected = {n: c - expected.get(n, set()) for n, c in reported.items()}
    unexpected = {n: c for n, c in unexpected.items() if c}
    assert not missing, f"mypy accepted misuses on lines {missing}:\n{proc.stdout}"
    assert not unexpected, f"unexpected mypy errors on lines {unexpected}:\n{proc.stdout}"


def test_correct_usage_type_checks(tmp_path: Path) -> None:
    rel = "tests/typing/correct.py"
    proc = run_mypy(tmp_path, rel)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not reported_errors(proc.stdout, rel)
