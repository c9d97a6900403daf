"""Huge leaves (legacy/mm/huge_memory.py), change_protection (mprotect.py), vmap/vunmap
(vmalloc.py).

Every check reads the machine: translations and leaf sizes come from the configuration's
hardware walker, raw entries from physical memory, accounting from the frames charged to
each mm, and frees from the frame allocator.  User call sites run as the syscall would:
under ``mmap_write_lock`` and followed by ``k.syscall_exit`` (no stale TLB entry, no lock
left); kernel ones are followed by the same check.  Runs on every ``legacy.arch_names()``
configuration, with the leaf sizes the configuration supports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legacy
from arches.config import Fault, Translation
from legacy import GenericKernel, mm_struct, vm_area_struct
from legacy.mm.huge_memory import (
    insert_pfn_pmd,
    insert_pfn_pud,
    split_huge_pmd,
    split_huge_pud,
    split_large_page,
)
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import do_munmap, dup_mm, mmap_region, mmput
from legacy.mm.mprotect import change_protection
from legacy.mm.mremap import move_vma
from legacy.mm.vm_flags import (
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_PFNMAP,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)
from legacy.mm.vma import find_vma
from legacy.mm.vmalloc import vmap_range, vunmap_range
from legacy.mm_types import mmap_write_locked
from legacy.types import PtePtr, pgprot_t

ARCHES = legacy.arch_names()
SHARED = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE | VM_PFNMAP
VA = 0x4000_0000  # 1 GiB: PUD-aligned and user on every configuration
PA = 0x4000_0000  # mapped physical memory: far above the page-table frames (16 MiB+)
HYP = settings(max_examples=8, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def huge_levels(k: GenericKernel) -> list[str]:
    """The huge leaf levels the configuration's MMU supports."""
    out = []
    if k.PMD_SIZE != k.PAGE_SIZE and k.PMD_SIZE in k.config.leaf_sizes:
        out.append("pmd")
    # ... and where the kernel can build a pud leaf at all (s390 has no pfn_pud)
    if k.PUD_SIZE != k.PMD_SIZE and k.PUD_SIZE in k.config.leaf_sizes and (
            k.has_transparent_pud_hugepage() or k.HAVE_ARCH_HUGE_VMAP):
        out.append("pud")
    return out


CASES = [(a, lv) for a in ARCHES for lv in huge_levels(legacy.boot(a))]


def block(k: GenericKernel, level: str) -> int:
    return k.PMD_SIZE if level == "pmd" else k.PUD_SIZE


# -- reading the machine -----------------------------------------------------------------


def regs(k: GenericKernel, mm: mm_struct) -> dict[str, int]:
    kernel_root = k.mm_root(k.init_mm if k.SEPARATE_KERNEL_ROOT else mm)
    return k.config.make_registers(k.mm_root(mm), kernel_root)


def translate(k: GenericKernel, mm: mm_struct, va: int) -> Translation | Fault:
    return k.config.walker.translate(k.mem, regs(k, mm), va)


def hw_writable(k: GenericKernel, mm: mm_struct, va: int, writable: bool) -> bool:
    """What the MMU grants for a leaf the kernel made ``writable``: on a kernel whose dirty
    bit is kept by faults (``k.SOFTWARE_YOUNG_DIRTY``, s390: a clean leaf is DAT-protected)
    only once the leaf is dirty (``pmd_dirty``/``pte_dirty``)."""
    if not (writable and k.SOFTWARE_YOUNG_DIRTY):
        return writable
    f = cast(Any, k)
    pmd = k.pmd_off(mm, va)
    v = k.pmdp_get(pmd)
    if k.pmd_leaf(v):
        return bool(f.pmd_dirty(v))
    return bool(k.pte_dirty(k.ptep_get(k.pte_offset_kernel(pmd, va))))


def hw_young(k: GenericKernel, mm: mm_struct, va: int) -> bool:
    """Whether the MMU translates the leaf at ``va``: on a kernel whose young bit is kept
    by faults (``k.SOFTWARE_YOUNG_DIRTY``, s390: an old leaf is invalid) only if young."""
    if not k.SOFTWARE_YOUNG_DIRTY:
        return True
    f = cast(Any, k)
    pmd = k.pmd_off(mm, va)
    v = k.pmdp_get(pmd)
    if k.pmd_leaf(v):
        return bool(f.pmd_young(v))
    return bool(f.pte_young(k.ptep_get(k.pte_offset_kernel(pmd, va))))


def tables_image(k: GenericKernel) -> tuple[dict[int, bytes], list[tuple[int, bytes]]]:
    """The bytes of every live page table, and of every frame holding none (data): what
    must not change when nothing does.  A table freed inside a frame that stays (a ppc64
    fragment, a slab object) is poisoned: those bytes are nobody's and not compared."""
    tables = {pa: k.mem.read_bytes(pa, getattr(k, f"PTRS_PER_{d.level.upper()}")
                                   * k.SIZEOF_PTE) for pa, d in k.ptdescs.items()}
    frames = {k.frame_of(pa) for pa in tables}
    return tables, [(pa, b) for pa, b in k.mem.image() if pa not in frames]


def leaves(k: GenericKernel, mm: mm_struct, user: bool = True) -> list[Translation]:
    is_in = k.config.is_user if user else k.config.is_kernel
    return [t for t in k.config.walker.leaves(k.mem, regs(k, mm)) if is_in(t.va)]


def accounted_bytes(k: GenericKernel, mm: mm_struct) -> int:
    """What ``pgtables_bytes`` must be for the table frames charged to ``mm``."""
    per = {
        "pte": k.PTRS_PER_PTE * k.SIZEOF_PTE,
        "pmd": 0 if k.mm_pmd_folded(mm) else k.PTRS_PER_PMD * k.SIZEOF_PMD,
        "pud": 0 if k.mm_pud_folded(mm) else k.PTRS_PER_PUD * k.SIZEOF_PUD,
    }
    return sum(per.get(d.level, 0) for d in k.ptdescs.values() if d.mm is mm)


def no_lock_held(k: GenericKernel) -> bool:
    return not any(m.page_table_lock.held for m in k.mms) and not any(
        d.ptl is not None and d.ptl.held for d in k.ptdescs.values()
    )


@contextmanager
def syscall(k: GenericKernel, mm: mm_struct, what: str) -> Iterator[None]:
    """The call sites in the block run as one syscall of ``mm``: ``mmap_write_lock`` around
    them, then the end-of-call-site check."""
    with mmap_write_locked(mm):
        yield
    k.syscall_exit(what)


def map_huge(k: GenericKernel, mm: mm_struct, level: str, va: int, pa: int,
             nblocks: int = 1) -> vm_area_struct:
    size = block(k, level)
    with syscall(k, mm, "mmap + huge faults"):
        assert mmap_region(k, mm, va, nblocks * size, SHARED, pa >> k.PAGE_SHIFT) == va
        vma = find_vma(k, mm, va)
        assert vma is not None
        insert = insert_pfn_pmd if level == "pmd" else insert_pfn_pud
        for i in range(nblocks):
            pfn = (pa + i * size) >> k.PAGE_SHIFT
            assert insert(k, vma, va + i * size, pfn, pgprot_t(vma.vm_page_prot)) == 0
    return vma


def assert_leaf(t: Translation | Fault, va: int, pa: int, size: int, writable: bool) -> None:
    assert isinstance(t, Translation), t
    assert (t.pa, t.size, t.writable, t.user) == (pa, size, writable, True)
    assert t.va == va


# -- huge maps -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "level"), CASES)
def test_huge_map_is_one_hardware_leaf_and_teardown_frees_all(name: str, level: str) -> None:
    k = legacy.boot(name)
    frames0 = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    size = block(k, level)
    map_huge(k, mm, level, VA, PA)

    w = hw_writable(k, mm, VA, True)
    assert [(t.va, t.pa, t.size, t.writable, t.user) for t in leaves(k, mm)] == [
        (VA, PA, size, w, True)
    ]
    for off in (0, k.PAGE_SIZE + 0x123, size // 2 + 8, size - 1):
        assert_leaf(translate(k, mm, VA + off), VA + off, PA + off, size, w)
    assert isinstance(translate(k, mm, VA + size), Fault)
    # A huge pmd carries its deposited PTE table (and pays for it); a huge pud has none.
    ptes = sum(1 for d in k.ptdescs.values() if d.mm is mm and d.level == "pte")
    assert ptes == (1 if level == "pmd" else 0)
    assert mm.pgtables_bytes == accounted_bytes(k, mm)
    assert no_lock_held(k)

    mmput(k, mm)  # zap_huge_p?d + free_pgtables + check_mm
    assert len(k.mem) == frames0


@pytest.mark.parametrize(("name", "level"), CASES)
def test_insert_refuses_misaligned_pfn_and_occupied_slot(name: str, level: str) -> None:
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    vma = map_huge(k, mm, level, VA, PA, nblocks=2)
    insert = insert_pfn_pmd if level == "pmd" else insert_pfn_pud
    prot = pgprot_t(vma.vm_page_prot)
    frames, image = len(k.mem), tables_image(k)
    with syscall(k, mm, "refused huge faults"):
        assert insert(k, vma, VA, PA >> k.PAGE_SHIFT, prot) == -16  # -EBUSY: slot taken
        assert insert(k, vma, VA + 2 * block(k, level), PA >> k.PAGE_SHIFT, prot) == -14
        assert insert(k, vma, VA, (PA >> k.PAGE_SHIFT) + 1, prot) == -22
    # Nothing changed; a deposit allocated for the refused insert was given back.
    assert len(k.mem) == frames and tables_image(k) == image
    assert mm.pgtables_bytes == accounted_bytes(k, mm) and no_lock_held(k)
    mmput(k, mm)


# -- splits keep every page's translation -------------------------------------------------


def check_split(k: GenericKernel, mm: mm_struct, level: str, a: int, b: int,
                inside: str) -> None:
    """After changing [VA+a, VA+b) of one huge leaf: ``inside`` is 'ro' or 'gone'."""
    size = block(k, level)
    got = leaves(k, mm)
    covered = 0
    for t in got:
        off = t.va - VA
        assert 0 <= off and off + t.size <= size
        assert t.pa == PA + off  # same pfn for every page
        is_in = a <= off < b
        assert is_in == (a < off + t.size <= b), f"leaf {t} straddles the changed range"
        if is_in:
            assert inside == "ro" and not t.writable and t.user
        else:
            assert t.writable == hw_writable(k, mm, t.va, True) and t.user
        covered += t.size
    assert covered == size - (b - a if inside == "gone" else 0)
    # Leaf sizes: for a pud, 2M blocks untouched or wholly changed stay huge pmds.
    sub = k.PMD_SIZE if level == "pud" else size
    for t in got:
        blk = (t.va - VA) // sub * sub
        whole = b <= blk or blk + sub <= a or (a <= blk and blk + sub <= b)
        assert t.size == (sub if level == "pud" and whole else k.PAGE_SIZE)
    if inside == "gone":
        assert isinstance(translate(k, mm, VA + a), Fault)
        assert isinstance(translate(k, mm, VA + b - 1), Fault)


def offsets(k: GenericKernel, level: str, data: st.DataObject) -> tuple[int, int]:
    pages = block(k, level) // k.PAGE_SIZE
    a = data.draw(st.integers(0, pages - 1))
    b = data.draw(st.integers(a + 1, pages).filter(lambda b: (a, b) != (0, pages)))
    return a * k.PAGE_SIZE, b * k.PAGE_SIZE


@pytest.mark.parametrize(("name", "level"), CASES)
@HYP
@given(data=st.data())
def test_partial_protect_splits_and_keeps_the_rest(name: str, level: str,
                                                    data: st.DataObject) -> None:
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    vma = map_huge(k, mm, level, VA, PA)
    a, b = offsets(k, level, data)
    allocs = k.mem.allocations
    with syscall(k, mm, "mprotect"):
        ret = change_protection(k, vma, VA + a, VA + b,
                                k.vm_get_page_prot(VM_READ | VM_SHARED))
    assert ret == (b - a) // k.PAGE_SIZE
    if level == "pmd":
        assert k.mem.allocations == allocs  # the split used the deposited table
    check_split(k, mm, level, a, b, "ro")
    assert mm.pgtables_bytes == accounted_bytes(k, mm) and no_lock_held(k)
    mmput(k, mm)


@pytest.mark.parametrize(("name", "level"), CASES)
@HYP
@given(data=st.data())
def test_partial_munmap_splits_and_keeps_the_rest(name: str, level: str,
                                                   data: st.DataObject) -> None:
    k = legacy.boot(name)
    frames0 = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    map_huge(k, mm, level, VA, PA)
    a, b = offsets(k, level, data)
    with syscall(k, mm, "munmap"):
        assert do_munmap(k, mm, VA + a, b - a) == 0
    check_split(k, mm, level, a, b, "gone")
    assert mm.pgtables_bytes == accounted_bytes(k, mm) and no_lock_held(k)
    mmput(k, mm)
    assert len(k.mem) == frames0


@pytest.mark.parametrize(("name", "level"), CASES)
def test_split_huge_entry_directly_preserves_bytes_of_every_translation(name: str,
                                                                      level: str) -> None:
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    vma = map_huge(k, mm, level, VA, PA)
    before = {(t.va, t.pa, t.writable, t.executable, t.user) for t in leaves(k, mm)}
    pmd = k.pmd_off(mm, VA)
    with syscall(k, mm, "split"):
        if level == "pmd":
            split_huge_pmd(k, vma, pmd, VA + k.PAGE_SIZE)
        else:
            pud = k.pud_offset(k.p4d_offset(k.pgd_offset(mm, VA), VA), VA)
            split_huge_pud(k, vma, pud, VA + k.PAGE_SIZE)
    got = leaves(k, mm)
    sub = k.PAGE_SIZE if level == "pmd" else k.PMD_SIZE
    assert {t.size for t in got} == {sub}
    assert len(got) == block(k, level) // sub
    # Same permissions, pa = base + offset for every page (the first leaf stands for all).
    perms = {(t.writable, t.executable, t.user) for t in got}
    assert perms == {p[2:] for p in before}
    assert all(t.pa - PA == t.va - VA for t in got)
    assert mm.pgtables_bytes == accounted_bytes(k, mm)
    mmput(k, mm)


@pytest.mark.parametrize(("name", "level"), CASES)
def test_split_table_is_byte_identical_to_a_direct_map(name: str, level: str) -> None:
    """A split huge pmd's PTE table holds exactly the bytes ``remap_pfn_range`` writes for
    the same range and protection; a split huge pud's PMD table exactly those of one
    ``insert_pfn_pmd`` per 2M block."""
    k = legacy.boot(name)
    split_mm, direct_mm = k.mm_alloc(), k.mm_alloc()
    assert split_mm is not None and direct_mm is not None
    size = block(k, level)
    vma = map_huge(k, split_mm, level, VA, PA)
    if level == "pmd":
        with syscall(k, split_mm, "split"):
            split_huge_pmd(k, vma, k.pmd_off(split_mm, VA), VA)
        with syscall(k, direct_mm, "mmap + remap_pfn_range"):
            assert mmap_region(k, direct_mm, VA, size, SHARED, PA >> k.PAGE_SHIFT) == VA
            dvma = find_vma(k, direct_mm, VA)
            assert dvma is not None
            assert remap_pfn_range(k, dvma, VA, PA >> k.PAGE_SHIFT, size,
                                   pgprot_t(dvma.vm_page_prot)) == 0
        tables = [k.pte_offset_kernel(k.pmd_off(m, VA), VA).pa for m in (split_mm, direct_mm)]
    else:
        pud = k.pud_offset(k.p4d_offset(k.pgd_offset(split_mm, VA), VA), VA)
        with syscall(k, split_mm, "split"):
            split_huge_pud(k, vma, pud, VA)
        map_huge(k, direct_mm, "pmd", VA, PA, nblocks=size // k.PMD_SIZE)
        tables = [k.pmd_off(m, VA).pa for m in (split_mm, direct_mm)]
    a, b = (k.mem.read_bytes(t, k.PAGE_SIZE) for t in tables)
    probe = k.pmd_mkhuge(k.pfn_pmd(PA >> k.PAGE_SHIFT, pgprot_t(vma.vm_page_prot)))
    if level == "pmd" and not k.pmd_special(k.pmd_mkspecial(probe)):
        # !ARCH_SUPPORTS_PMD_PFNMAP (s390): the huge pmd could not be special, so neither
        # are the ptes it splits into; remap_pfn_range's are (pte_mkspecial)
        ptes = [k.ptep_get(PtePtr(tables[0] + i * k.SIZEOF_PTE, k.SIZEOF_PTE))
                for i in range(k.PTRS_PER_PTE)]
        assert not any(k.pte_special(v) for v in ptes)
        b2 = [k.ptep_get(PtePtr(tables[1] + i * k.SIZEOF_PTE, k.SIZEOF_PTE))
              for i in range(k.PTRS_PER_PTE)]
        assert [k.pte_mkspecial(v) for v in ptes] == b2
        rest = k.PTRS_PER_PTE * k.SIZEOF_PTE  # the rest of the page (s390: 2 KiB of zeros)
        assert a[rest:] == b[rest:]
    else:
        assert a == b and any(a)
    assert split_mm.pgtables_bytes == accounted_bytes(k, split_mm)
    mmput(k, split_mm)
    mmput(k, direct_mm)


# -- fork and mremap keep the deposit with the huge pmd ----------------------------------


@pytest.mark.parametrize(("name", "level"), CASES)
def test_fork_then_split_in_child_and_teardown_both(name: str, level: str) -> None:
    k = legacy.boot(name)
    frames0 = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    map_huge(k, mm, level, VA, PA)
    child = dup_mm(k, mm)
    assert child is not None
    view = [(t.va, t.pa, t.size, t.writable) for t in leaves(k, mm)]
    # copy_huge_pmd makes the child's leaf old (pmd_mkold)
    assert [(t.va, t.pa, t.size, t.writable) for t in leaves(k, child)] == [
        v for v in view if hw_young(k, child, v[0])]
    assert child.pgtables_bytes == accounted_bytes(k, child)
    k.syscall_exit("fork")
    cvma = find_vma(k, child, VA)
    assert cvma is not None
    with syscall(k, child, "mprotect in the child"):
        change_protection(k, cvma, VA, VA + k.PAGE_SIZE,
                          k.vm_get_page_prot(VM_READ | VM_SHARED))
    assert [(t.va, t.pa, t.size, t.writable) for t in leaves(k, mm)] == view  # parent intact
    t = translate(k, child, VA)
    if hw_young(k, child, VA):
        assert isinstance(t, Translation) and not t.writable and t.pa == PA
    else:  # the split kept the child's leaf old: the MMU faults until an access sets young
        pte = k.ptep_get(k.pte_offset_kernel(k.pmd_off(child, VA), VA))
        assert isinstance(t, Fault) and k.pte_present(pte) and not k.pte_write(pte)
        assert k.pte_pfn(pte) == PA >> k.PAGE_SHIFT
    mmput(k, child)
    mmput(k, mm)
    assert len(k.mem) == frames0


@pytest.mark.parametrize(("name", "level"), [c for c in CASES if c[1] == "pmd"])
def test_mremap_moves_the_huge_leaf(name: str, level: str) -> None:
    """(A huge pud is not tested: mremap's get_old_pud() clears it with pud_none_or_clear_bad,
    x86's pud_bad counting PSE as bad.)"""
    k = legacy.boot(name)
    frames0 = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    size = block(k, level)
    vma = map_huge(k, mm, level, VA, PA)
    new = VA + max(k.PUD_SIZE, 2 * size)  # another PMD table: the deposit follows the pmd
    with syscall(k, mm, "mremap"):
        assert move_vma(k, vma, VA, size, size, new) == new
    assert [(t.va, t.pa, t.size) for t in leaves(k, mm)] == [(new, PA, size)]
    assert isinstance(translate(k, mm, VA), Fault)
    assert mm.pgtables_bytes == accounted_bytes(k, mm) and no_lock_held(k)
    mmput(k, mm)
    assert len(k.mem) == frames0


# -- PROT_NONE (x86 L1TF: the PFN of a not-present entry is inverted) ---------------------


@pytest.mark.parametrize("name", [a for a in ARCHES if legacy.boot(a).config.family == "x86"])
def test_prot_none_faults_is_protnone_and_inverts_the_pfn(name: str) -> None:
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    small = VA + 4 * k.PMD_SIZE
    with syscall(k, mm, "mmap + remap_pfn_range"):
        assert mmap_region(k, mm, small, k.PAGE_SIZE, SHARED, PA >> k.PAGE_SHIFT) == small
        svma = find_vma(k, mm, small)
        assert svma is not None
        assert remap_pfn_range(k, svma, small, PA >> k.PAGE_SHIFT, k.PAGE_SIZE,
                               pgprot_t(svma.vm_page_prot)) == 0
    hvma = map_huge(k, mm, "pmd", VA, PA)
    pte = k.pte_offset_kernel(k.pmd_off(mm, small), small)
    pmd = k.pmd_off(mm, VA)
    pte_mask = k.PTE_PFN_MASK  # type: ignore[attr-defined]
    pmd_mask = k.PHYSICAL_PMD_PAGE_MASK  # type: ignore[attr-defined]
    invert = bool(k.PFN_INVERT)  # type: ignore[attr-defined]

    for vma in (svma, hvma):
        vma.vm_page_prot = k.PAGE_NONE
        with syscall(k, mm, "mprotect(PROT_NONE)"):
            change_protection(k, vma, vma.vm_start, vma.vm_end, k.PAGE_NONE)
    assert isinstance(translate(k, mm, small), Fault)
    assert isinstance(translate(k, mm, VA + 0x3000), Fault)
    raw_pte = k.mem.read(pte.pa, pte.size)
    raw_pmd = k.mem.read(pmd.pa, pmd.size)
    assert k.pte_protnone(k.ptep_get(pte))  # type: ignore[attr-defined]
    assert k.pmd_protnone(k.pmdp_get(pmd))  # type: ignore[attr-defined]
    want_pte = (~PA if invert else PA) & pte_mask
    want_pmd = (~PA if invert else PA) & pmd_mask
    assert raw_pte & pte_mask == want_pte
    assert raw_pmd & pmd_mask == want_pmd
    assert k.pte_pfn(k.ptep_get(pte)) == PA >> k.PAGE_SHIFT  # the kernel still sees the pfn
    assert k.pmd_pfn(k.pmdp_get(pmd)) == PA >> k.PAGE_SHIFT

    rw = k.vm_get_page_prot(SHARED)
    for vma in (svma, hvma):
        vma.vm_page_prot = rw
        with syscall(k, mm, "mprotect(PROT_READ|PROT_WRITE)"):
            change_protection(k, vma, vma.vm_start, vma.vm_end, rw)
    assert_leaf(translate(k, mm, small), small, PA, k.PAGE_SIZE, True)
    assert_leaf(translate(k, mm, VA + 0x3000), VA + 0x3000, PA + 0x3000, k.PMD_SIZE, True)
    assert k.mem.read(pte.pa, pte.size) & pte_mask == PA & pte_mask
    assert k.mem.read(pmd.pa, pmd.size) & pmd_mask == PA & pmd_mask
    mmput(k, mm)


# -- vmap / vunmap -------------------------------------------------------------------------


def kernel_base(k: GenericKernel, align: int) -> int:
    lo = k.config.kernel_range[0]
    return (lo + align - 1) // align * align


def kernel_views(k: GenericKernel, mms: list[mm_struct]) -> Iterator[set[tuple[int, ...]]]:
    for mm in [k.init_mm, *mms]:
        yield {(t.va, t.pa, t.size, t.writable, t.user) for t in leaves(k, mm, user=False)}


@pytest.mark.parametrize("name", ARCHES)
def test_vmap_is_seen_by_pgds_made_before_and_after(name: str) -> None:
    k = legacy.boot(name)
    prot = k.PAGE_KERNEL
    before = k.mm_alloc()
    assert before is not None
    kva = kernel_base(k, k.PUD_SIZE)
    end = kva + 2 * k.PMD_SIZE + 3 * k.PAGE_SIZE
    assert vmap_range(k, kva, end, PA, prot, k.PMD_SHIFT) == 0
    k.syscall_exit("vmap")
    after = k.mm_alloc()
    assert after is not None

    huge = k.arch_vmap_pmd_supported(prot)
    step = [k.PMD_SIZE] * 2 if huge else [k.PAGE_SIZE] * (2 * k.PMD_SIZE // k.PAGE_SIZE)
    step += [k.PAGE_SIZE] * 3
    want, va = set(), kva
    for s in step:
        want.add((va, PA + va - kva, s, True, False))
        va += s
    views = list(kernel_views(k, [before, after]))
    assert views[0] == want
    assert all(v == want for v in views)  # before: by arch_sync_kernel_mappings; after: clone
    assert no_lock_held(k)

    tables, frames = len(k.ptdescs), len(k.mem)
    vunmap_range(k, kva, end)
    k.syscall_exit("vunmap")
    assert all(v == set() for v in kernel_views(k, [before, after]))
    assert (len(k.ptdescs), len(k.mem)) == (tables, frames)  # vunmap frees no page table

    if huge:
        # 4K pages leave a PTE table behind; a huge vmap over it frees it (pmd_free_pte_page)
        # -- except on x86-PAE, where "ioremap() does not update sync'd pmd entries": the
        # table stays and the range is mapped with 4K pages again.
        frees = not (k.config.family == "x86" and k.config.word_bits == 32)
        assert vmap_range(k, kva, kva + 4 * k.PAGE_SIZE, PA, prot, k.PAGE_SHIFT) == 0
        vunmap_range(k, kva, kva + 4 * k.PAGE_SIZE)
        tables, frames = len(k.ptdescs), len(k.mem)
        assert vmap_range(k, kva, kva + k.PMD_SIZE, PA, prot, k.PMD_SHIFT) == 0
        k.syscall_exit("vmap over a freed PTE table")
        assert len(k.ptdescs) == tables - frees
        if not k.table_cache_frames(k.init_mm):  # (else the freed table's page may stay)
            assert len(k.mem) == frames - frees
        sizes = [k.PMD_SIZE] if frees else [k.PAGE_SIZE] * (k.PMD_SIZE // k.PAGE_SIZE)
        want = {(kva + i * s, PA + i * s, s, True, False) for i, s in enumerate(sizes)}
        for v in kernel_views(k, [before, after]):
            assert v == want
        vunmap_range(k, kva, kva + k.PMD_SIZE)
    for mm in (before, after):
        mmput(k, mm)


@pytest.mark.parametrize("name", ARCHES)
def test_vmap_pud_leaf_replaces_tables_in_the_way(name: str) -> None:
    k = legacy.boot(name)
    prot = k.PAGE_KERNEL
    if not (k.arch_vmap_pud_supported(prot) and k.PUD_SIZE in k.config.leaf_sizes):
        pytest.skip("no huge vmap at the pud level")
    mm = k.mm_alloc()
    assert mm is not None
    kva = kernel_base(k, k.PUD_SIZE)
    # Tables first: one 2M leaf and a few pages; then clear them (tables stay).
    assert vmap_range(k, kva, kva + k.PMD_SIZE, PA, prot, k.PMD_SHIFT) == 0
    assert vmap_range(k, kva + k.PMD_SIZE, kva + k.PMD_SIZE + 8 * k.PAGE_SIZE, PA, prot,
                      k.PAGE_SHIFT) == 0
    vunmap_range(k, kva, kva + k.PUD_SIZE)
    tables, frames = len(k.ptdescs), len(k.mem)
    assert vmap_range(k, kva, kva + k.PUD_SIZE, PA, prot, k.PUD_SHIFT) == 0
    k.syscall_exit("vmap over freed PMD and PTE tables")
    assert len(k.ptdescs) == tables - 2  # the PMD and the PTE table (pud_free_pmd_page)
    if not k.table_cache_frames(k.init_mm):  # (else a freed table's page may stay)
        assert len(k.mem) == frames - 2
    for v in kernel_views(k, [mm]):
        assert v == {(kva, PA, k.PUD_SIZE, True, False)}
    mmput(k, mm)


@pytest.mark.parametrize("name", ARCHES)
def test_kernel_split_and_protect_keep_every_translation(name: str) -> None:
    k = legacy.boot(name)
    prot = k.PAGE_KERNEL
    if not k.arch_vmap_pmd_supported(prot):
        pytest.skip("no huge kernel leaves")
    mm = k.mm_alloc()
    assert mm is not None
    kva = kernel_base(k, k.PUD_SIZE)
    assert vmap_range(k, kva, kva + 2 * k.PMD_SIZE, PA, prot, k.PMD_SHIFT) == 0
    pmd = k.pmd_off_k(kva)
    frames = len(k.mem)
    assert split_large_page(k, k.init_mm, pmd, kva) == 0
    k.syscall_exit("split_large_page")
    assert len(k.mem) == frames + 1
    got = [(t.va, t.pa, t.size, t.writable) for t in leaves(k, mm, user=False)]
    n = k.PMD_SIZE // k.PAGE_SIZE
    assert got[:n] == [(kva + i * k.PAGE_SIZE, PA + i * k.PAGE_SIZE, k.PAGE_SIZE, True)
                       for i in range(n)]
    assert got[n:] == [(kva + k.PMD_SIZE, PA + k.PMD_SIZE, k.PMD_SIZE, True)]

    # Protect one page of the split leaf and part of the intact one (a pseudo-vma of init_mm).
    ro = k.PAGE_KERNEL_RO
    vma = vm_area_struct(k.init_mm, kva, kva + 2 * k.PMD_SIZE, VM_READ, ro)
    lo, hi = kva + k.PAGE_SIZE, kva + k.PMD_SIZE + 2 * k.PAGE_SIZE
    change_protection(k, vma, lo, hi, ro)
    k.syscall_exit("change_protection of init_mm")
    for t in leaves(k, mm, user=False):
        assert t.pa - PA == t.va - kva and t.size == k.PAGE_SIZE
        assert t.writable == (not lo <= t.va < hi)
    assert no_lock_held(k)
    mmput(k, mm)
