"""The repository is self-contained: no file points at reference material outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = "sha" + "red"  # names spelled apart so this file does not match itself
NOTES = ("poc" + "-and-review", "design", "kernel-legacy-api", "arch-formats",
         "locking-and-tlb")
OUTSIDE = re.compile(
    "|".join([f"/work/{SHARED}", rf"\.\./{SHARED}/", "/work/" + "main"]
             + [re.escape(n + "." + "md") for n in NOTES])
)
SKIP = {".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
        "__pycache__", "out"}


def _files() -> list[Path]:
    out = []
    for p in ROOT.rglob("*"):
        if any(part in SKIP or part.endswith(".egg-info") for part in p.relative_to(ROOT).parts):
            continue
        if p.is_file() and p.suffix in {".py", ".md", ".toml", ".json", ".txt", ""}:
            out.append(p)
    return out


def test_nothing_points_outside_the_repository() -> None:
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _files()
            for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace")
                                     .splitlines(), 1)
            if OUTSIDE.search(line)]
    assert hits == []


def test_the_check_sees_a_planted_reference(tmp_path: Path) -> None:
    assert OUTSIDE.search(f"see /work/{SHARED}/notes.txt")
    assert OUTSIDE.search(f"as ../{SHARED}/reference/x.txt says")
    assert OUTSIDE.search("the review (" + NOTES[0] + ".md section 10)")
    assert not OUTSIDE.search("docs/cli.md")
