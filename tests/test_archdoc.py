"""docs/arches.md is what ``ptshim.archdoc`` generates from the registry, and what it says is
right for the configurations whose facts we know by heart."""

from __future__ import annotations

import functools

import pytest

from legacy import arch_names
from ptshim import archdoc
from ptshim.archdoc import DOC_PATH, ArchFacts, arch_facts, render

K, M, G = 1 << 10, 1 << 20, 1 << 30


@functools.cache
def facts(name: str) -> ArchFacts:
    return arch_facts(name)


@functools.cache
def generated() -> str:
    return render([facts(n) for n in arch_names()])


def test_doc_is_up_to_date() -> None:
    current = DOC_PATH.read_text(encoding="utf-8")
    assert current == generated(), (
        "docs/arches.md is stale: run `python -m ptshim.archdoc --write`")


def test_check_mode_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert archdoc.main(["--check"]) == 0
    assert archdoc.main([]) == 0
    assert capsys.readouterr().out == generated()


def doc_table(heading: str) -> dict[str, dict[str, str]]:
    """The markdown table under ``heading`` in docs/arches.md, rows keyed by their first
    cell (backquotes and links stripped)."""
    lines = DOC_PATH.read_text(encoding="utf-8").splitlines()
    i = lines.index(heading)
    while not lines[i].startswith("|"):
        i += 1
    rows = []
    while i < len(lines) and lines[i].startswith("|"):
        rows.append([c.strip() for c in lines[i].strip("|").split("|")])
        i += 1
    head, body = rows[0], rows[2:]

    def key(cell: str) -> str:
        return cell.split("]")[0].strip("[`")

    return {key(r[0]): dict(zip(head, r, strict=True)) for r in body}


def test_every_configuration_is_documented() -> None:
    text = DOC_PATH.read_text(encoding="utf-8")
    assert list(doc_table("## Summary")) == arch_names()
    assert list(doc_table("## Tables")) == arch_names()
    for name in arch_names():
        assert f"\n### {name}\n" in text
        for note in facts(name).notes:
            assert note in text
    assert "## What the kernel does that surprises" in text


def test_x86_64() -> None:
    f = facts("x86_64")
    assert [lv.name for lv in f.hw_levels] == ["PML4", "PDPT", "PD", "PT"]
    assert f.levels == 4
    assert f.folded == ("p4d",)
    assert f.level("p4d").folded == "run time"  # pgtable_l5_enabled() is false
    assert f.level("pgd").shift == 39 and f.level("pgd").entries == 512
    assert f.hw_leaf_sizes == f.user_leaf_sizes == f.kernel_leaf_sizes == (4 * K, 2 * M, G)
    assert f.roots == ("cr3",) and not f.separate_kernel_root
    assert all(f.level(lv).table_bytes == 4096 for lv in ("pgd", "pud", "pmd", "pte"))
    assert f.max_swap_offset == (1 << 50) - 1
    row = doc_table("## Summary")["x86_64"]
    assert (row["kernel levels"], row["folded"], row["leaf sizes"], row["VA bits"]) == (
        "4", "p4d", "4K, 2M, 1G", "48")
    assert doc_table("## Tables")["x86_64"]["p4d"] == "folded (run time)"


def test_i386() -> None:
    f = facts("i386")
    assert len(f.hw_levels) == 2 and f.levels == 2
    assert f.folded == ("p4d", "pud", "pmd")
    assert all(f.level(lv).folded == "compile time" for lv in f.folded)  # pgtable-nopmd.h
    assert f.hw_leaf_sizes == f.user_leaf_sizes == (4 * K, 4 * M)
    assert f.kernel_leaf_sizes == (4 * K,)  # no HAVE_ARCH_HUGE_VMAP on 2-level i386
    assert f.level("pgd").entries == 1024 and f.level("pgd").entry_size == 4
    assert f.level("pmd").shift == f.level("pgd").shift == 22  # the 4M PDE is the pmd
    assert not f.has_nx
    row = doc_table("## Summary")["i386"]
    assert (row["kernel levels"], row["folded"], row["leaf sizes"]) == (
        "2", "p4d, pud, pmd", "4K, 4M")


def test_i386_pae() -> None:
    f = facts("i386-pae")
    assert len(f.hw_levels) == 3 and f.levels == 3
    assert f.folded == ("p4d", "pud")
    pgd = f.level("pgd")
    assert (pgd.entries, pgd.entry_size, pgd.table_bytes) == (4, 8, 32)
    assert f.hw_levels[0].table_bytes == 32
    assert f.pgd_alloc_bytes == 4096  # Linux allocates a whole page for the 32-byte PDPT
    assert f.preallocated_pmds == 4
    assert dict(f.fresh_mm_tables) == {"pgd": 1, "pmd": 4}
    assert f.fresh_mm_pgtables_bytes == 4 * 4096  # the preallocated PMDs are accounted
    assert f.hw_leaf_sizes == (4 * K, 2 * M)
    assert f.phys_bits == 52  # __PHYSICAL_MASK_SHIFT (L1TF)
    tables = doc_table("## Tables")["i386-pae"]
    assert tables["pgd"] == "4 × 8 B = 32"
    assert tables["pgd_alloc takes"] == "4K"
    assert tables["fresh mm: tables; pgtables_bytes"] == "1 pgd, 4 pmd; 16384"


def test_arm64_4k_48() -> None:
    f = facts("arm64-4k-48")
    assert f.roots == ("ttbr0_el1", "ttbr1_el1")
    assert f.separate_kernel_root
    assert f.sync_levels == ()
    assert f.levels == 4 and f.folded == ("p4d",)
    assert f.level("p4d").folded == "compile time"
    assert f.user_leaf_sizes == (4 * K, 2 * M)  # no PUD-level THP on arm64
    assert f.kernel_leaf_sizes == (4 * K, 2 * M, G)
    row = doc_table("## Summary")["arm64-4k-48"]
    assert row["roots"] == "`ttbr0_el1`, `ttbr1_el1`"
