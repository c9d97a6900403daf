"""docs/fidelity.md is what ``ptshim.fidelity`` generates; every emulated helper has a row;
the unpinned helpers do not grow; and the completeness check catches a helper without a row.

(``ptshim.fidelity`` does not scan this file for pinning tests, so the planted helper below
pins nothing.)"""

from __future__ import annotations

import functools

import pytest

from legacy import arch_names, boot
from legacy.types import pte_t
from legacy.x86.pgtable_64 import X86_64Kernel
from ptshim import fidelity
from ptshim.fidelity import (
    DOC_PATH,
    DOC_SECTIONS,
    REGENERATE,
    emulated_helpers,
    missing_rows,
    render,
    unpinned_listed,
)
from ptshim.version import KERNEL_VERSION, KERNEL_VERSION_TEXT

STALE = f"docs/fidelity.md is stale: run `{REGENERATE}`"

MAX_UNPINNED = 147
"""Ratchet: emulated helpers that no test calls (docs/fidelity.md "Unpinned").  Lower it
when tests pin more; never raise it -- a new helper comes with a test that calls it."""


@functools.cache
def generated() -> str:
    return render()


@functools.cache
def doc() -> str:
    return DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""


@functools.cache
def kernel_classes() -> tuple[type, ...]:
    return tuple(type(boot(name)) for name in arch_names())


# -- (a) fresh --------------------------------------------------------------------------------


def test_doc_is_up_to_date() -> None:
    assert doc() == generated(), STALE


def test_check_mode_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert fidelity.main(["--check"]) == 0, STALE
    assert fidelity.main([]) == 0
    assert capsys.readouterr().out == generated()


def test_version_is_stated() -> None:
    assert KERNEL_VERSION == "v6.18"
    assert KERNEL_VERSION_TEXT == "Linux v6.18.y page-table semantics"
    assert doc().startswith(f"# Fidelity to Linux {KERNEL_VERSION}\n")


# -- (b) every emulated helper has a row ------------------------------------------------------


def test_every_emulated_helper_has_a_row() -> None:
    missing = missing_rows(emulated_helpers(kernel_classes()), doc())
    assert missing == [], f"helpers without a row in docs/fidelity.md: {missing}; {STALE}"


def test_every_documented_helper_has_a_row() -> None:
    names = [h.name for _title, helpers in DOC_SECTIONS for h in helpers]
    assert len(names) == len(set(names))
    assert missing_rows(names, doc()) == []
    for title, _helpers in DOC_SECTIONS:
        assert f"\n### {title}\n" in doc()


def test_rows_name_kernel_files_per_family() -> None:
    rows = {r.name: r for r in fidelity.collect().rows()}
    x86, arm64 = rows["pmd_mkinvalid"].cells
    assert x86 == "`arch/x86/include/asm/pgtable.h`"
    assert arm64 == "`arch/arm64/include/asm/pgtable.h`"
    # The method's own docstring wins (x86 pte_mkwrite is in arch/x86/mm/pgtable.c).
    assert rows["pte_mkwrite"].cells[0] == "`arch/x86/mm/pgtable.c`"
    # Folded stubs are the asm-generic headers, per configuration.
    assert "`include/asm-generic/pgtable-nopmd.h` (folded) (i386)" in rows["pud_populate"].cells[0]
    # Kconfig-gated: no PUD THP on 32-bit x86.
    assert "Kconfig `HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD` off (i386, i386-pae)" in \
        rows["pudp_invalidate"].cells[0]
    # The document's names that are no v6.18 helper stay listed, absent, with the reason.
    assert rows["pmd_huge"].status == "absent" and "v6.10" in rows["pmd_huge"].note
    assert rows["pmdp_get_and_clear"].method == "pmdp_huge_get_and_clear"
    assert "`pmdp_get_and_clear` → `pmdp_huge_get_and_clear`" in doc()


def test_pinning_tests_are_found_through_helpers() -> None:
    # test_debug_vm_pgtable.py parametrizes test_basic over pte_basic_tests & co., which call
    # the helpers: the scan follows the decorator's references.
    assert "tests/test_debug_vm_pgtable.py::test_basic" in fidelity.pinning_tests("pte_same")
    assert fidelity.pinning_tests("no_such_helper_anywhere") == []


# -- (c) the unpinned ratchet -----------------------------------------------------------------


def test_unpinned_do_not_grow() -> None:
    listed = unpinned_listed(doc())
    rows = [r for r in fidelity.collect().rows() if r.unpinned]
    assert listed == [r.name for r in rows]
    assert len(listed) <= MAX_UNPINNED, (
        f"{len(listed)} unpinned helpers (> {MAX_UNPINNED}): add tests calling the new ones: "
        f"{listed[-(len(listed) - MAX_UNPINNED):]}")


# -- (d) a planted bug: a helper without a row ------------------------------------------------


class FakeX86(X86_64Kernel):
    """An "architecture" class with one more helper and no row for it."""

    def pte_mkfancy(self, pte: pte_t) -> pte_t:
        return pte


FakeX86.__module__ = "legacy.x86.fake"  # what makes a class one of legacy/x86's


def test_planted_helper_without_a_row_is_reported() -> None:
    helpers = emulated_helpers([*kernel_classes(), FakeX86])
    assert "pte_mkfancy" in helpers
    assert missing_rows(helpers, doc()) == ["pte_mkfancy"]
    # ...and the generator would add its row (so the freshness test fails until regenerated).
    assert emulated_helpers(kernel_classes()) < helpers


def test_planted_helper_outside_legacy_arch_is_not_required() -> None:
    class NotArch(X86_64Kernel):
        def pte_mkfancy(self, pte: pte_t) -> pte_t:
            return pte

    NotArch.__module__ = "somewhere.else"
    assert missing_rows(emulated_helpers([*kernel_classes(), NotArch]), doc()) == []


# -- the divergences are probed ---------------------------------------------------------------


def test_divergences_are_listed_with_their_state() -> None:
    """Open divergences to fix, deliberate departures (with their reason) and closed ones
    each in their section."""
    text = doc()
    head = text.index("## Known divergences (open)")
    kept = text.index("## Deliberate departures")
    closed = text.index("## Checked and not (or no longer) divergent")
    for d, is_open, _note in fidelity.collect().divergences:
        at = text.index(f"**{d.title}**")
        assert (head < at < kept) == (is_open and not d.departure), d.title
        assert (kept < at < closed) == (is_open and bool(d.departure)), d.title
        if kept < at < closed:
            assert "Why: " in text[at:text.index("\n", at)], d.title
