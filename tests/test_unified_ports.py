"""The level-generic call-site ports (unified/mm) against the legacy call sites.

For every registered configuration and every kind of op, the same scenario runs on two
fresh kernels -- one through the legacy backend, one through the unified backend -- and
after every op the two machines must hold byte-identical page-table frames, the same set of
allocated frames and the same ``pgtables_bytes`` (process mm and ``init_mm``).  The unified
machine is also checked on its own after every op: the configuration's hardware walker must
read exactly the model's mappings (``Session.verify``), and the teardown (``mmput``) must
leave no frame charged to the mm and the same frames as the legacy teardown.

fork (``dup_mm``), mremap (``move_page_tables``), the split of a huge leaf at each level,
and -ENOMEM at every allocation of a map are compared the same way, call site for call site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import legacy
from legacy import GenericKernel, mm_struct, vm_area_struct
from legacy.mm import mmap as lmmap
from legacy.mm import mremap as lmremap
from legacy.mm.huge_memory import split_huge_pmd, split_huge_pud
from legacy.mm.vma import find_vma
from ptshim.compare import compare, snapshot
from ptshim.model import Run
from ptshim.scenario import Limits, load_json_scenario
from ptshim.session import Session, runs_of
from unified import PageTables
from unified import mm as umm
from unified.levels import Level
from unified.mm.split import split_huge_leaf

ARCHES = legacy.arch_names()


# -- scenarios built from a configuration's geometry -------------------------------------


def _geometry(arch: str) -> dict[str, Any]:
    k = legacy.boot(arch)
    lim = Limits.from_kernel(k)
    big = max(k.PUD_SIZE, k.PMD_SIZE, max(lim.user_leaf_sizes), max(lim.kernel_leaf_sizes))
    user_base = 4 * big if 4 * big + 8 * big <= lim.user_range[1] else lim.user_range[1] // 4
    user_base -= user_base % big
    if user_base < lim.first_user_address:  # no huge leaf below it (Limits)
        user_base += big
    klo, khi = lim.kernel_range
    kbig = max(k.PMD_SIZE, max(lim.kernel_leaf_sizes))
    kernel_base = -(-klo // kbig) * kbig + 2 * kbig
    return {
        "k": k, "lim": lim, "page": k.PAGE_SIZE, "pmd": k.PMD_SIZE, "pud": k.PUD_SIZE,
        "U": user_base, "K": kernel_base if kernel_base + 4 * kbig <= khi else None,
        "top": lim.user_range[1],
    }


def _map(va: int, size: int, prot: str = "rw", pa: int = 0x4000_0000, ps: int | None = None,
         user: bool | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"op": "map", "va": va, "pa": pa, "size": size, "prot": prot}
    if ps is not None:
        op["page_size"] = ps
    if user is not None:
        op["user"] = user
    return op


def _unmap(va: int, size: int) -> dict[str, Any]:
    return {"op": "unmap", "va": va, "size": size}


def _protect(va: int, size: int, prot: str) -> dict[str, Any]:
    return {"op": "protect", "va": va, "size": size, "prot": prot}


def case_ops(arch: str, case: str) -> list[dict[str, Any]] | None:
    """The ops of ``case`` on ``arch``, or None if the configuration cannot run it."""
    g = _geometry(arch)
    page, pmd, pud, U, K = g["page"], g["pmd"], g["pud"], g["U"], g["K"]
    lim: Limits = g["lim"]
    if case == "small":  # 4K leaves across a PMD boundary, protect, unmap in pieces
        a = U + pmd - 2 * page
        return [_map(a, 5 * page), _map(U + 5 * pmd, page, "r", pa=0x10000),
                _protect(a + page, 2 * page, "r"), _protect(a, page, "none"),
                _unmap(a, page), _unmap(a + 3 * page, 2 * page), _unmap(U, 6 * pmd)]
    if case == "neighbours":  # floor/ceiling: tables shared with the vmas around stay
        return [_map(U, 3 * page), _map(U + 3 * page, 2 * page, "r"),
                _map(U + pmd + page, page), _map(U + 2 * pud, page, "rx"),
                _unmap(U + 3 * page, 2 * page), _unmap(U + pmd + page, page),
                _unmap(U, 3 * page), _unmap(U + 2 * pud, page)]
    if case == "top":  # the last pages of the user range: ceiling at the top
        top = g["top"]
        return [_map(top - 3 * page, 3 * page), _map(top - pmd - page, page, "r"),
                _unmap(top - 2 * page, page), _unmap(top - pmd - page, pmd + page)]
    if case == "huge-pmd":
        if pmd not in lim.user_leaf_sizes or pmd == page:
            return None
        return [_map(U, 3 * pmd, ps=pmd, pa=16 * pmd), _map(U + 3 * pmd, 2 * page),
                _unmap(U + pmd + 5 * page, page), _protect(U + 2 * pmd + page, page, "r"),
                # a whole PROT_NONE leaf where the kernel can keep one (Limits)
                _protect(U, pmd, "none" if lim.prot_none_lost_leaf != pmd else "r"),
                _unmap(U + 2 * pmd, pmd), _unmap(U, 4 * pmd)]
    if case == "huge-pud":
        if pud not in lim.user_leaf_sizes or pud == pmd:
            return None
        return [_map(U, pud, ps=pud, pa=2 * pud), _protect(U + 3 * pmd, pmd, "r"),
                _unmap(U + pmd + page, page), _unmap(U + 5 * pmd, 2 * pmd), _unmap(U, pud)]
    if case == "kernel":
        if K is None:
            return None
        ops = [_map(K + pmd - page, 3 * page, "rw", pa=0x10_0000),
               _protect(K + pmd, page, "r"), _unmap(K + pmd - page, page)]
        if pmd in lim.kernel_leaf_sizes and pmd != page:
            ops += [_map(K + 2 * pmd, 2 * pmd, "rw", pa=4 * pmd, ps=pmd),
                    _protect(K + 3 * pmd, pmd, "rx"), _unmap(K + 2 * pmd + page, page),
                    _protect(K + 2 * pmd + 4 * page, page, "none")]
        if pud in lim.kernel_leaf_sizes and pud != pmd:
            ops += [_map(K + 2 * pud, pud, "r", pa=2 * pud, ps=pud),
                    _unmap(K + 2 * pud + pmd + page, page), _protect(K + 2 * pud, pmd, "rw")]
        return ops
    raise ValueError(case)


CASES = ["small", "neighbours", "top", "huge-pmd", "huge-pud", "kernel"]


def _pair(arch: str) -> tuple[Session, Session]:
    return Session(arch, "legacy"), Session(arch, "unified")


def _same(sl: Session, su: Session, where: str) -> None:
    d = compare(snapshot(sl), snapshot(su), max(sl.k.SIZEOF_PTE, sl.k.SIZEOF_PGD))
    assert d is None, f"{sl.config.name}: {where}: {d}"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("arch", ARCHES)
def test_ops_byte_identical_walker_checked(arch: str, case: str) -> None:
    ops = case_ops(arch, case)
    if ops is None:
        pytest.skip(f"{arch} cannot run {case}")
    sc = load_json_scenario({"ops": ops}, case)
    sl, su = _pair(arch)
    sl.validate(sc)
    for op in sc.ops:
        sl.apply(op)
        su.apply(op)
        where = f"after op {op.index} ({op.kind})"
        _same(sl, su, where)
        # The hardware walker must read the model's mappings, accounting must be right.
        sl.verify()
        su.verify()
    sl.teardown()
    su.teardown()  # checks: no frame charged to the mm, pgtables_bytes 0, no lock held
    _same(sl, su, "after teardown")


# -- -ENOMEM at every allocation of a map: the same allocations, in the same order ----------


@pytest.mark.parametrize("arch", ARCHES)
def test_enomem_at_every_allocation(arch: str) -> None:
    g = _geometry(arch)
    page, pmd = g["page"], g["pmd"]
    huge = pmd in g["lim"].user_leaf_sizes and pmd != page
    maps = [_map(g["U"] + pmd - page, 3 * page)]
    if huge:
        maps.append(_map(g["U"] + 4 * pmd, 2 * pmd, ps=pmd, pa=8 * pmd))
    if g["K"] is not None:
        maps.append(_map(g["K"] + pmd - page, 2 * page, pa=0x20_0000))
    for raw in maps:
        sc = load_json_scenario({"ops": [raw]}, "oom")
        for n in range(1, 8):
            sl, su = _pair(arch)
            outcomes = []
            for s in (sl, su):
                s.k.mem.fail_after(n)
                try:
                    s.apply(sc.ops[0])
                    outcomes.append("ok")
                except legacy.OutOfMemory:
                    outcomes.append("ENOMEM")
                s.k.mem.fail_after(0)
            assert outcomes[0] == outcomes[1], (arch, raw, n, outcomes)
            _same(sl, su, f"map {raw} failing at allocation {n}")
            sl.teardown()
            su.teardown()
            _same(sl, su, f"teardown after map failing at allocation {n}")


# -- fork and mremap, call site for call site ----------------------------------------------


def _user_ops(arch: str) -> list[dict[str, Any]]:
    g = _geometry(arch)
    page, pmd, U = g["page"], g["pmd"], g["U"]
    ops = [_map(U + pmd - 2 * page, 4 * page), _map(U + 3 * pmd, page, "r", pa=7 * page)]
    if pmd in g["lim"].user_leaf_sizes and pmd != page:
        ops.append(_map(U + 4 * pmd, 2 * pmd, ps=pmd, pa=6 * pmd))
    return ops


@pytest.mark.parametrize("arch", ARCHES)
def test_fork_copy_page_range(arch: str) -> None:
    sc = load_json_scenario({"ops": _user_ops(arch)}, "fork")
    sl, su = _pair(arch)
    sl.run(sc)
    su.run(sc)
    pt = PageTables(su.k)
    child_l = lmmap.dup_mm(sl.k, sl.mm)
    child_u = umm.dup_mm(pt, su.mm)
    assert child_l is not None and child_u is not None
    _same(sl, su, "after dup_mm")
    assert child_l.pgtables_bytes == child_u.pgtables_bytes
    lmmap.mmput(sl.k, child_l)
    umm.mmput(pt, child_u)
    _same(sl, su, "after the child's mmput")
    su.verify()
    sl.teardown()
    su.teardown()
    _same(sl, su, "after teardown")


def _move_both(sl: Session, su: Session, old: int, new: int, length: int) -> None:
    """Move ``[old, old + length)`` of the vma there to ``new`` on both machines."""
    pt = PageTables(su.k)
    moved = []
    for s in (sl, su):
        k, mm = s.k, s.mm
        vma = find_vma(k, mm, old)
        assert vma is not None
        new_vma = lmremap.copy_vma(k, vma, new, length, vma.vm_pgoff)
        assert new_vma is not None
        if s is sl:
            moved.append(lmremap.move_page_tables(k, vma, old, new_vma, new, length))
        else:
            moved.append(umm.move_page_tables(pt, vma, old, new_vma, new, length))
    assert moved[0] == moved[1] == length


@pytest.mark.parametrize("arch", ARCHES)
def test_mremap_move_page_tables(arch: str) -> None:
    g = _geometry(arch)
    page, pmd, pud, U = g["page"], g["pmd"], g["pud"], g["U"]
    huge = pmd in g["lim"].user_leaf_sizes and pmd != page
    ops = [_map(U + 3 * page, 2 * page), _map(U + 2 * pmd, pmd)]
    if huge:
        ops.append(_map(U + 4 * pmd, 2 * pmd, ps=pmd, pa=8 * pmd))
    sc = load_json_scenario({"ops": ops}, "mremap")
    sl, su = _pair(arch)
    sl.run(sc)
    su.run(sc)
    dest = U + pud + 8 * pmd if pud > pmd else U + 16 * pmd
    # ptes one by one (unaligned), a whole PTE table (HAVE_MOVE_PMD), huge pmds
    _move_both(sl, su, U + 3 * page, dest + 7 * page, 2 * page)
    _same(sl, su, "after moving ptes")
    _move_both(sl, su, U + 2 * pmd, dest + 2 * pmd, pmd)
    _same(sl, su, "after moving a PTE table")
    if huge:
        _move_both(sl, su, U + 4 * pmd, dest + 4 * pmd, 2 * pmd)
        _same(sl, su, "after moving huge pmds")
        _move_both(sl, su, dest + 4 * pmd + page, dest + 8 * pmd + page, pmd)
        _same(sl, su, "after moving half of two huge pmds (split)")
    lmmap.mmput(sl.k, sl.mm)
    umm.mmput(PageTables(su.k), su.mm)
    _same(sl, su, "after mmput")


# -- splitting a huge leaf at each level -------------------------------------------------


def _huge_entry(pt: PageTables, mm: mm_struct, addr: int, level: int) -> Any:
    table = pt.root_for(mm, addr)
    while True:
        e = pt.entry(table, addr)
        if e.level == level:
            return e
        table = pt.descend(e)


def _translations(s: Session) -> list[Run]:
    """What the hardware walker reads, merged into runs whatever the leaf sizes."""
    return runs_of((t.va, t.pa, t.size, 0, t.prot, t.user) for t in s.hardware_leaves())


SplitFn = Callable[[GenericKernel, vm_area_struct, Any, int], None]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("space", ["user", "kernel"])
def test_split_leaf_each_level(arch: str, space: str) -> None:
    g = _geometry(arch)
    lim: Limits = g["lim"]
    sizes = lim.user_leaf_sizes if space == "user" else lim.kernel_leaf_sizes
    base = g["U"] if space == "user" else g["K"]
    if base is None:
        pytest.skip("no kernel range")
    done = 0
    for size, level, legacy_split in ((g["pmd"], Level.PMD, split_huge_pmd),
                                      (g["pud"], Level.PUD, split_huge_pud)):
        if size not in sizes or size == g["page"] or (level == Level.PUD and size == g["pmd"]):
            continue
        sl, su = _pair(arch)
        sc = load_json_scenario({"ops": [_map(base, size, ps=size, pa=2 * size)]}, "split")
        sl.run(sc)
        su.run(sc)
        pt = PageTables(su.k)
        mm_l = sl.mm if space == "user" else sl.k.init_mm
        mm_u = su.mm if space == "user" else su.k.init_mm
        el = _huge_entry(PageTables(sl.k), mm_l, base, level)
        eu = _huge_entry(pt, mm_u, base, level)
        vma_l = find_vma(sl.k, mm_l, base) or vm_area_struct(mm_l, base, base + size, 0, 0)
        vma_u = find_vma(su.k, mm_u, base) or vm_area_struct(mm_u, base, base + size, 0, 0)
        before = _translations(su)
        legacy_split(sl.k, vma_l, el.ptr, base)
        split_huge_leaf(pt, vma_u, eu)
        _same(sl, su, f"after splitting the level-{int(level)} leaf")
        assert pt.is_table(pt.read(eu))
        # The hardware sees the same translations, now through smaller leaves.
        assert _translations(su) == before
        assert max(t.size for t in su.hardware_leaves()) < size
        done += 1
    if not done:
        pytest.skip(f"{arch} has no {space} huge leaves")
