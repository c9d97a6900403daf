"""docs/legacy-api.md is what ``ptshim.apiref`` generates, and what it says is right for facts
read from the kernel classes by hand (legacy/folding.py, legacy/x86, legacy/arm64)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from legacy.folding import Nop4d
from ptshim import apiref
from ptshim.apiref import ABSENT, ARCH, DOC_PATH, FOLDED, GENERIC, REGENERATE, classify, render

STALE = f"docs/legacy-api.md is stale: run `{REGENERATE}`"


@functools.cache
def generated() -> str:
    return render()


def test_doc_is_up_to_date() -> None:
    current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
    assert current == generated(), STALE


def test_check_mode_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert apiref.main(["--check"]) == 0, STALE
    assert apiref.main([]) == 0
    assert capsys.readouterr().out == generated()


@functools.cache
def doc_rows() -> dict[str, dict[str, str]]:
    """Every table row of docs/legacy-api.md whose first cell is a backquoted name, keyed by
    the name, as {configuration: cell}.  A name must be in one table only."""
    lines = DOC_PATH.read_text(encoding="utf-8").splitlines()
    rows: dict[str, dict[str, str]] = {}
    head: list[str] = []
    for line in lines:
        if not line.startswith("|"):
            head = []
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not head:
            head = [c.strip("`") for c in cells]
            continue
        if cells[0] == "---":
            continue
        if head[0] in ("constant", "switch") or (
                head[0] == "function" and cells[0].startswith("`")):
            key = cells[0].strip("`")
            assert key not in rows, f"{key} listed twice"
            rows[key] = dict(zip(head[1:], cells[1:], strict=True))
    return rows


def doc_cell(name: str, config: str) -> str:
    return doc_rows()[name][config]


# -- facts read from the code -------------------------------------------------------------


def test_folding_mixins_are_f() -> None:
    # i386 is Nopmd: pgtable-nopmd.h makes the *parent* (pud) predicates constants and
    # pmd_offset return the pud pointer; pmd_none itself stays x86's.
    assert doc_cell("pud_none", "i386") == FOLDED
    assert doc_cell("pmd_offset", "i386") == FOLDED
    assert doc_cell("pmd_none", "i386") == ARCH
    # i386-pae and arm64-4k-39 are Nopud: p4d predicates folded, pud ones the arch's.
    for cfg in ("i386-pae", "arm64-4k-39"):
        assert doc_cell("p4d_none", cfg) == FOLDED
        assert doc_cell("pud_offset", cfg) == FOLDED
        assert doc_cell("pud_none", cfg) == ARCH
    # arm64-4k-48 is Nop4d: pgd predicates folded.
    assert doc_cell("pgd_none", "arm64-4k-48") == FOLDED
    assert doc_cell("p4d_offset", "arm64-4k-48") == FOLDED
    assert doc_cell("pud_leaf", "arm64-4k-48") == ARCH


def test_x86_64_folds_p4d_at_run_time_not_with_the_mixin() -> None:
    # legacy/x86/pgtable_64.py defines pgd_none/p4d_none/p4d_offset itself (la57 or not).
    for cfg in ("x86_64", "x86_64-la57"):
        for name in ("pgd_none", "p4d_none", "p4d_offset"):
            assert doc_cell(name, cfg) == ARCH, (name, cfg)
    assert doc_cell("PTRS_PER_P4D", "x86_64") == "1"
    assert doc_cell("PTRS_PER_P4D", "x86_64-la57") == "512"
    assert doc_rows()["p4d folded"]["x86_64"] == "run time"
    assert doc_rows()["pmd folded"]["i386"] == FOLDED


def test_absent_by_not_implemented_body() -> None:
    # PgtableGeneric.pgd_page_vaddr only raises NotImplementedError; arm64 never defines it.
    assert doc_cell("pgd_page_vaddr", "arm64-4k-48") == ABSENT
    assert doc_cell("pgd_page_vaddr", "x86_64") == ARCH
    # Not defined at all: the swap-exclusive bit lives in X86SwpFlags (x86-64 only).
    assert doc_cell("pte_swp_exclusive", "i386") == ABSENT
    assert doc_cell("pte_swp_exclusive", "x86_64") == ARCH


def test_kconfig_gates() -> None:
    # include/linux/pgtable.h: BUILD_BUG() without HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD, even
    # though legacy/arm64/pgtable.py defines a pudp_set_wrprotect (a ptshim extension).
    assert doc_cell("pudp_set_wrprotect", "x86_64") == GENERIC
    for cfg in ("i386", "i386-pae", "arm64-4k-48", "arm64-64k-42"):
        assert doc_cell("pudp_set_wrprotect", cfg) == ABSENT
    assert doc_cell("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD", "x86_64") == "y"
    assert doc_cell("HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD", "arm64-4k-48") == "n"
    # No swap-entry format emulated on 32-bit x86: the conversions that use it are absent.
    assert doc_cell("swp_entry_to_pte", "i386") == ABSENT
    assert doc_cell("swp_entry_to_pte", "arm64-4k-48") == GENERIC
    # HAVE_ARCH_HUGE_VMAP off on i386 gives stubs: I386Kernel defines them (legacy/x86).
    assert doc_cell("pmd_set_huge", "i386") == ARCH
    text = DOC_PATH.read_text(encoding="utf-8")
    for gate in apiref.GATES:
        assert f"\n### {gate.switch}\n" in text


def test_call_sites_listed_once() -> None:
    text = DOC_PATH.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `legacy/mm/memory.py`"))
    assert "`mm/memory.c`" in row and "`free_pgd_range`" in row
    assert text.count("`free_pgd_range`") == 1


# -- the classifier, on a deliberately made class --------------------------------------------


class FakeArch(Nop4d):
    """An "architecture" class: pte_none and pte_present are left unimplemented."""

    def pte_none(self, pte: int) -> bool:
        raise NotImplementedError

    def pte_present(self, pte: int) -> bool:
        """Documented, still unimplemented."""
        raise NotImplementedError("not emulated")

    def pte_young(self, pte: int) -> bool:
        if pte:
            raise NotImplementedError
        return False


FakeArch.__module__ = "legacy.x86.fake"  # what makes a class "arch" to the classifier

EXPECTED = {
    "pte_none": ABSENT,  # body only raises
    "pte_present": ABSENT,  # docstring + raise NotImplementedError(...)
    "pte_young": ARCH,  # raises only sometimes
    "pgd_none": FOLDED,  # Nop4d
    "pmd_none": ABSENT,  # PgtableGeneric: raise NotImplementedError
    "pgd_offset": GENERIC,  # PgtableGeneric
    "no_such_function": ABSENT,
}


def mismatches(classifier: Callable[[type, str], str]) -> list[str]:
    return [n for n, want in EXPECTED.items() if classifier(FakeArch, n) != want]


def buggy_classify(cls: type, name: str) -> str:
    """A planted bug: ``classify`` without the NotImplementedError test."""
    owner = apiref.defining_class(cls, name)
    return ABSENT if owner is None else apiref.layer(owner)


def test_classifier_on_a_made_class() -> None:
    assert mismatches(classify) == []


def test_planted_bug_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(mismatches(buggy_classify)) == {"pte_none", "pte_present", "pmd_none"}
    # The same bug inside the generator makes the page stale (arm64 pgd_page_vaddr -> G).
    monkeypatch.setattr(apiref, "only_raises_not_implemented", lambda fn: False)
    assert render() != DOC_PATH.read_text(encoding="utf-8")
