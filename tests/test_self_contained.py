"""The repository is self-contained: no file points at reference material outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(r"(/work/shared|\.\./shared/|/work/main)")
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
            if OUTSIDE.search(line) and p.name != "test_self_contained.py"]
    assert hits == []


def test_the_check_sees_a_planted_reference(tmp_path: Path) -> None:
    assert OUTSIDE.search("see /work/shared/design.md")
    assert OUTSIDE.search("as ../shared/reference/x.md says")
    assert not OUTSIDE.search("docs/cli.md")
