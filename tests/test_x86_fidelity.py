"""x86 helpers against Linux v6.18 facts that the emulation used to get wrong.

Each test names the kernel file it follows.  They run on every x86 configuration:
``x86_64``, ``x86_64-la57``, ``i386`` (2-level) and ``i386-pae``.
"""

from __future__ import annotations

import pytest

import legacy
from arches.x86.bits import (
    _PAGE_BIT_SOFTW2,
    _PAGE_BIT_SOFTW5,
    _PAGE_DIRTY,
    _PAGE_PAT,
    _PAGE_PAT_LARGE,
    _PAGE_PSE,
    _PAGE_RW,
)
from legacy.types import pgprot_t, pmd_t, pte_t, pud_t
from legacy.x86.pgtable import X86Kernel

X86 = ["x86_64", "x86_64-la57", "i386", "i386-pae"]
X86_64 = ["x86_64", "x86_64-la57"]
PFN = 0x12345
PMD_PFN = 0x400  # a 4M-aligned pfn: a pmd leaf on every mode (2M or 4M)
PUD_PFN = 1 << 18  # 1G-aligned


def boot(name: str) -> X86Kernel:
    k = legacy.boot(name)
    assert isinstance(k, X86Kernel)
    return k


def saved_dirty(k: X86Kernel) -> int:
    return k._PAGE_SAVED_DIRTY


# -- 1. _PAGE_SAVED_DIRTY -------------------------------------------------------------------


@pytest.mark.parametrize("name", X86)
def test_saved_dirty_bit(name: str) -> None:
    """arch/x86/include/asm/pgtable_types.h: ``_PAGE_BIT_SAVED_DIRTY`` is
    ``_PAGE_BIT_SOFTW5`` (58) on CONFIG_X86_64, ``_PAGE_BIT_SOFTW2`` (10, shared with the
    64-bit-only UFFD_WP bit) otherwise; ``_PAGE_DIRTY_BITS = _PAGE_DIRTY | _PAGE_SAVED_DIRTY``,
    part of ``_COMMON_PAGE_CHG_MASK``."""
    k = boot(name)
    bit = _PAGE_BIT_SOFTW5 if name in X86_64 else _PAGE_BIT_SOFTW2
    assert k._PAGE_SAVED_DIRTY == 1 << bit
    assert k._PAGE_DIRTY_BITS == _PAGE_DIRTY | 1 << bit
    assert k._PAGE_CHG_MASK & k._PAGE_DIRTY_BITS == k._PAGE_DIRTY_BITS
    assert k._HPAGE_CHG_MASK & k._PAGE_DIRTY_BITS == k._PAGE_DIRTY_BITS


def _leaves(k: X86Kernel) -> list[tuple[str, int]]:
    """A dirty writable leaf at each level (pud only where the pud level is real)."""
    pte = k.pte_mkdirty(k.pfn_pte(PFN, k.PAGE_SHARED))
    pmd = k.pmd_mkdirty(k.pmd_mkhuge(k.pfn_pmd(PMD_PFN, k.PAGE_SHARED)))
    out = [("pte", int(pte)), ("pmd", int(pmd))]
    if k.config.word_bits == 64:
        pud = k.pud_mkdirty(k.pud_mkhuge(k.pfn_pud(PUD_PFN, k.PAGE_SHARED)))
        out.append(("pud", int(pud)))
    return out


def _op(k: X86Kernel, level: str, op: str, val: int, *args: object) -> int:
    typ = {"pte": pte_t, "pmd": pmd_t, "pud": pud_t}[level]
    fn = getattr(k, f"{level}_{op}")
    return int(fn(typ(val), *args))


@pytest.mark.parametrize("name", X86)
def test_wrprotect_moves_dirty_to_saved_dirty(name: str) -> None:
    """arch/x86/include/asm/pgtable.h: ``pte_wrprotect``/``pmd_wrprotect``/``pud_wrprotect``
    clear ``_PAGE_RW`` then ``pXX_mksaveddirty`` (``mksaveddirty_shift``): Dirty=1,Write=0
    becomes SavedDirty=1, and ``pXX_dirty`` (which tests ``_PAGE_DIRTY_BITS``) stays true."""
    k = boot(name)
    sd = saved_dirty(k)
    for level, val in _leaves(k):
        assert val & _PAGE_DIRTY and val & _PAGE_RW and not val & sd, level
        wp = _op(k, level, "wrprotect", val)
        assert not wp & (_PAGE_RW | _PAGE_DIRTY), level
        assert wp & sd, level
        assert wp == (val & ~(_PAGE_RW | _PAGE_DIRTY)) | sd, level
        assert getattr(k, f"{level}_dirty")({"pte": pte_t, "pmd": pmd_t, "pud": pud_t}[level](wp))
        # a clean entry stays clean
        clean = _op(k, level, "mkclean", val)
        assert _op(k, level, "wrprotect", clean) == clean & ~_PAGE_RW, level


@pytest.mark.parametrize("name", X86)
def test_mkclean_clears_both_dirty_bits(name: str) -> None:
    """arch/x86/include/asm/pgtable.h: ``pXX_mkclean`` clears ``_PAGE_DIRTY_BITS``."""
    k = boot(name)
    sd = saved_dirty(k)
    for level, val in _leaves(k):
        wp = _op(k, level, "wrprotect", val)
        for v in (val, wp, val | sd):
            c = _op(k, level, "mkclean", v)
            assert not c & (_PAGE_DIRTY | sd), level
            typ = {"pte": pte_t, "pmd": pmd_t, "pud": pud_t}[level]
            assert not getattr(k, f"{level}_dirty")(typ(c)), level


@pytest.mark.parametrize("name", X86)
def test_mkwrite_moves_saved_dirty_back(name: str) -> None:
    """arch/x86/mm/pgtable.c ``pte_mkwrite``/``pmd_mkwrite`` (non-shadow-stack vma):
    ``pXX_mkwrite_novma`` then ``pXX_clear_saveddirty``; asm/pgtable.h ``pud_mkwrite`` sets
    ``_PAGE_RW`` then ``pud_clear_saveddirty``.  ``pte_mkwrite_novma`` alone only sets RW."""
    k = boot(name)
    sd = saved_dirty(k)
    for level, val in _leaves(k):
        wp = _op(k, level, "wrprotect", val)
        assert _op(k, level, "mkwrite", wp) == val, level
    pte_wp = int(k.pte_wrprotect(k.pte_mkdirty(k.pfn_pte(PFN, k.PAGE_SHARED))))
    assert int(k.pte_mkwrite_novma(pte_t(pte_wp))) == pte_wp | _PAGE_RW
    assert int(k.pte_mkwrite_novma(pte_t(pte_wp))) & sd


@pytest.mark.parametrize("name", X86)
def test_mkdirty_depends_on_user_shstk(name: str) -> None:
    """arch/x86/include/asm/pgtable.h ``pXX_mkdirty``: "Avoid creating Dirty=1,Write=0 PTEs"
    sets ``_PAGE_SAVED_DIRTY`` instead of ``_PAGE_DIRTY`` only if
    ``cpu_feature_enabled(X86_FEATURE_USER_SHSTK)`` and the entry is not writable."""
    k = boot(name)
    sd = saved_dirty(k)
    ro = {
        "pte": int(k.pfn_pte(PFN, k.PAGE_READONLY)),
        "pmd": int(k.pmd_mkhuge(k.pfn_pmd(PMD_PFN, k.PAGE_READONLY))),
    }
    if k.config.word_bits == 64:
        ro["pud"] = int(k.pud_mkhuge(k.pfn_pud(PUD_PFN, k.PAGE_READONLY)))
    for level, val in ro.items():
        d = _op(k, level, "mkdirty", val)
        assert d & _PAGE_DIRTY and not d & sd, level
    k.X86_FEATURE_USER_SHSTK = True  # only possible on X86_64 hardware; modelled anyway
    for level, val in ro.items():
        d = _op(k, level, "mkdirty", val)
        assert d & sd and not d & _PAGE_DIRTY, level
        # a writable entry still gets hardware Dirty
        w = val | _PAGE_RW
        assert _op(k, level, "mkdirty", w) & _PAGE_DIRTY, level


@pytest.mark.parametrize("name", X86)
def test_modify_saved_dirty_fixup(name: str) -> None:
    """arch/x86/include/asm/pgtable.h ``pte_modify``/``pmd_modify``/``pud_modify``: "Only do
    this if the old value was Write=1": Write=1 -> Write=0 moves Dirty to SavedDirty
    (``pXX_mksaveddirty``), Write=0 -> Write=1 moves SavedDirty back
    (``pXX_clear_saveddirty``)."""
    k = boot(name)
    sd = saved_dirty(k)
    for level, val in _leaves(k):
        ro = _op(k, level, "modify", val, k.PAGE_READONLY)
        assert not ro & (_PAGE_RW | _PAGE_DIRTY), level
        back = _op(k, level, "modify", ro, k.PAGE_SHARED)
        assert back & _PAGE_RW and not back & sd, level
        if level == "pmd":
            # pmd_modify dropped hardware Dirty first: nothing was saved, nothing restored
            assert not ro & sd and not back & _PAGE_DIRTY
            # a SavedDirty pmd (wrprotected) gets Dirty back on a Write=1 modify
            wp = _op(k, level, "wrprotect", val)
            assert wp & sd
            back = _op(k, level, "modify", wp, k.PAGE_SHARED)
            assert back & _PAGE_DIRTY and not back & sd
        else:
            assert ro & sd, level
            assert back & _PAGE_DIRTY, level
    # A Write=0,Dirty=1 entry (a shadow-stack-like value) stays as it is on a Write=0 modify.
    pte = int(k.pfn_pte(PFN, k.PAGE_READONLY)) | _PAGE_DIRTY
    assert int(k.pte_modify(pte_t(pte), k.PAGE_READONLY)) & _PAGE_DIRTY


# -- 2. pmd_modify and _PAGE_CHG_MASK --------------------------------------------------------


@pytest.mark.parametrize("name", X86)
def test_pmd_modify_drops_hardware_dirty(name: str) -> None:
    """arch/x86/include/asm/pgtable.h ``pmd_modify``: ``val &= (_HPAGE_CHG_MASK &
    ~_PAGE_DIRTY)`` before the SavedDirty fix-up; ``pud_modify`` and ``pte_modify`` keep
    Dirty through their masks."""
    k = boot(name)
    pmd = k.pmd_mkdirty(k.pmd_mkhuge(k.pfn_pmd(PMD_PFN, k.PAGE_SHARED)))
    out = int(k.pmd_modify(pmd, k.PAGE_SHARED))
    assert not out & (_PAGE_DIRTY | saved_dirty(k))
    assert out & _PAGE_PSE and k.pmd_pfn(pmd_t(out)) == PMD_PFN
    # SavedDirty survives (it is in _HPAGE_CHG_MASK) and comes back as Dirty on Write=1.
    wp = k.pmd_wrprotect(pmd)
    assert int(k.pmd_modify(wp, k.PAGE_SHARED)) & _PAGE_DIRTY
    pte = k.pte_mkdirty(k.pfn_pte(PFN, k.PAGE_SHARED))
    assert int(k.pte_modify(pte, k.PAGE_SHARED)) & _PAGE_DIRTY
    if k.config.word_bits == 64:
        pud = k.pud_mkdirty(k.pud_mkhuge(k.pfn_pud(PUD_PFN, k.PAGE_SHARED)))
        assert int(k.pud_modify(pud, k.PAGE_SHARED)) & _PAGE_DIRTY


@pytest.mark.parametrize("name", X86)
def test_chg_masks_keep_pat(name: str) -> None:
    """arch/x86/include/asm/pgtable_types.h: ``_PAGE_CHG_MASK = _COMMON_PAGE_CHG_MASK |
    _PAGE_PAT`` and ``_HPAGE_CHG_MASK = _COMMON_PAGE_CHG_MASK | _PAGE_PSE |
    _PAGE_PAT_LARGE``: ``pte_modify`` keeps the 4K PAT bit (7), ``pmd_modify`` the large
    one (12)."""
    k = boot(name)
    assert k._PAGE_CHG_MASK & _PAGE_PAT
    assert k._HPAGE_CHG_MASK & (_PAGE_PSE | _PAGE_PAT_LARGE) == _PAGE_PSE | _PAGE_PAT_LARGE
    pte = pte_t(k.pfn_pte(PFN, k.PAGE_SHARED) | _PAGE_PAT)
    out = k.pte_modify(pte, k.PAGE_READONLY)
    assert out & _PAGE_PAT and not out & _PAGE_RW
    assert k.pte_pfn(out) == PFN
    prot = pgprot_t(k.protval_4k_2_large(k.PAGE_SHARED | _PAGE_PAT) | _PAGE_PSE)
    pmd = k.pfn_pmd(PMD_PFN, prot)
    assert pmd & _PAGE_PAT_LARGE
    out_pmd = k.pmd_modify(pmd, k.PAGE_READONLY)
    assert out_pmd & _PAGE_PAT_LARGE and k.pmd_pfn(out_pmd) == PMD_PFN


# -- 3. pud_set_huge ------------------------------------------------------------------------


@pytest.mark.parametrize("name", X86_64)
def test_pud_set_huge_inverts_like_pfn_pte(name: str) -> None:
    """arch/x86/mm/pgtable.c ``pud_set_huge``: ``set_pte((pte_t *)pud, pfn_pte(addr >>
    PAGE_SHIFT, protval_4k_2_large(prot) | _PAGE_PSE))``; with a non-present protection
    (pgtable-invert.h) ``pfn_pte`` inverts every ``PTE_PFN_MASK`` bit, 12-51 included.
    (i386/i386-pae have no pud level: ``pud_set_huge`` is the stub returning 0.)"""
    k = boot(name)
    addr = k.config.kernel_range[0]
    p4d = k.p4d_alloc(k.init_mm, k.pgd_offset_k(addr), addr)
    assert p4d is not None
    pud = k.pud_alloc(k.init_mm, p4d, addr)
    assert pud is not None
    phys = 3 * k.PUD_SIZE
    assert k.pud_set_huge(pud, phys, k.PAGE_NONE) == 1
    want = k.pfn_pte(phys >> k.PAGE_SHIFT, pgprot_t(k.protval_4k_2_large(k.PAGE_NONE) | _PAGE_PSE))
    got = int(k.pudp_get(pud))
    assert got == int(want)
    # bits 12-29 are inverted too (pfn_pud would have left them 0)
    low = ((1 << k.PUD_SHIFT) - 1) & ~((1 << k.PAGE_SHIFT) - 1)
    assert got & low == low
    # present protection: the plain value, readable back through pud_pfn
    assert k.pud_set_huge(pud, phys, k.PAGE_KERNEL) == 1
    got = k.pudp_get(pud)
    assert k.pud_leaf(got) and k.pud_pfn(got) == phys >> k.PAGE_SHIFT
    assert int(got) == int(k.pfn_pte(phys >> k.PAGE_SHIFT,
                                     pgprot_t(k.protval_4k_2_large(k.PAGE_KERNEL) | _PAGE_PSE)))
    k.pud_clear_huge(pud)


@pytest.mark.parametrize("name", ["i386", "i386-pae"])
def test_pud_set_huge_stub_on_32bit(name: str) -> None:
    """include/linux/pgtable.h: without a real pud level (32-bit) ``pud_set_huge`` is 0."""
    k = boot(name)
    addr = k.config.kernel_range[0]
    pud = k.pud_offset(k.p4d_offset(k.pgd_offset_k(addr), addr), addr)
    before = int(k.pudp_get(pud))
    assert k.pud_set_huge(pud, 0, k.PAGE_KERNEL) == 0
    assert int(k.pudp_get(pud)) == before
