"""Scenarios: parsing, every validation error on every configuration, errors that leave the
machine untouched, and -ENOMEM in the middle of a map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arches.errors import BadInput, OutOfMemory
from legacy import arch_names
from ptshim.model import Extent, Model, cut
from ptshim.scenario import (
    MapOp,
    ProtectOp,
    UnmapOp,
    load_json_scenario,
    load_scenario,
    parse_op,
    parse_scenario,
)
from ptshim.session import Session

ARCHES = arch_names()
USER_VA = 0x400000
USER_PA = 0x10000000


def snapshot(s: Session) -> tuple[Any, ...]:
    """Everything an op may change: memory image, accounting, vmas, model."""
    k = s.k
    return (
        list(k.mem.image()),
        s.mm.pgtables_bytes,
        k.init_mm.pgtables_bytes,
        [(v.vm_start, v.vm_end, v.vm_flags, v.vm_page_prot) for v in s.mm.mmap],
        s.model.extents,
        sorted(k.ptdescs),
    )


def op(**kw: Any) -> dict[str, Any]:
    return {k: (hex(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in kw.items()}


def kernel_va(s: Session) -> int:
    """A page-aligned address well inside the kernel range."""
    start = s.config.kernel_range[0]
    return start + 64 * s.config.page_size


# -- parsing -------------------------------------------------------------------------------


def test_parse_ints_and_defaults() -> None:
    sc = parse_scenario({"ops": [
        {"op": "map", "va": 4096, "pa": "0x2000", "size": "0X1000", "prot": "rw"},
        {"op": "unmap", "va": "0x1000", "size": 4096, "comment": "why"},
        {"op": "protect", "va": 4096, "size": 4096, "prot": "none"},
    ], "description": "ignored"})
    m, u, p = sc.ops
    assert m == MapOp(0, 0x1000, 0x2000, 0x1000, "rw", None, None)
    assert u == UnmapOp(1, 0x1000, 0x1000)
    assert p == ProtectOp(2, 0x1000, 0x1000, "none")
    assert load_json_scenario(json.dumps(sc.to_json())).ops == sc.ops


@pytest.mark.parametrize(("data", "message"), [
    ([], "must be a JSON object"),
    ({}, "\"ops\" must be a list"),
    ({"ops": {}}, "\"ops\" must be a list"),
    ({"ops": [3]}, "op 0: an op must be a JSON object"),
    ({"ops": [{"op": "remap"}]}, "op 0: \"op\" must be one of"),
    ({"ops": [{"op": "unmap", "va": 0}]}, "op 0 (unmap): missing field size"),
    ({"ops": [{"op": "map", "va": 0}]}, "op 0 (map): missing fields pa, prot, size"),
    ({"ops": [{"op": "unmap", "va": 0, "size": 1, "pa": 0}]}, "op 0 (unmap): unknown field pa"),
    ({"ops": [{"op": "unmap", "va": True, "size": 1}]}, "op 0 (unmap): va must be an integer"),
    ({"ops": [{"op": "unmap", "va": 1.5, "size": 1}]}, "op 0 (unmap): va must be an integer"),
    ({"ops": [{"op": "unmap", "va": "4096", "size": 1}]}, "not a \"0x...\" hexadecimal"),
    ({"ops": [{"op": "unmap", "va": "0xzz", "size": 1}]}, "va '0xzz' is not a hexadecimal"),
    ({"ops": [{"op": "unmap", "va": -4096, "size": 1}]}, "op 0 (unmap): va -4096 is negative"),
    ({"ops": [{"op": "protect", "va": 0, "size": 1, "prot": "wx"}]}, "prot 'wx' is not one of"),
    ({"ops": [{"op": "map", "va": 0, "pa": 0, "size": 1, "prot": "r", "user": 1}]},
     "op 0 (map): user must be true or false"),
])
def test_parse_errors(data: object, message: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_scenario(data)
    assert message in str(e.value)


def test_parse_op_index_in_message() -> None:
    with pytest.raises(BadInput, match=r"^op 7 \(protect\): missing field prot$"):
        parse_op(7, {"op": "protect", "va": 0, "size": 4096})


def test_load_scenario_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"ops\": [")
    with pytest.raises(BadInput, match=r"bad\.json: invalid JSON: .* \(line 1"):
        load_scenario(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text("{\"ops\": [{\"op\": \"map\"}]}")
    with pytest.raises(BadInput, match=r"wrong\.json: op 0 \(map\): missing fields"):
        load_scenario(wrong)


def test_examples_parse() -> None:
    files = sorted(Path(__file__).parent.parent.joinpath("examples").glob("*.json"))
    assert len(files) >= 5
    for f in files:
        assert load_scenario(f).ops


# -- the model ------------------------------------------------------------------------------


def split_to(leaf: int, user: bool) -> int:
    return {0x40000000: 0x200000, 0x200000: 0x1000}[leaf]


def test_cut_splits_only_the_straddling_leaf() -> None:
    e = Extent(0x40000000, 0x40000000, 0x80000000, "rw", True, 0x40000000)
    pieces = cut(e, 0x40201000, split_to)
    assert [(p.va, p.size, p.page_size) for p in pieces] == [
        (0x40000000, 0x200000, 0x200000),
        (0x40200000, 0x1000, 0x1000),
        (0x40201000, 0x1ff000, 0x1000),
        (0x40400000, 0x3fc00000, 0x200000),
    ]
    assert all(p.pa - e.pa == p.va - e.va for p in pieces)


def test_model_protect_and_remove() -> None:
    m = Model([Extent(0x200000, 0x400000, 0x0, "rw", True, 0x200000)])
    m.protect(0x201000, 0x202000, "r", split_to)
    assert [(e.va, e.size, e.prot, e.page_size) for e in m] == [
        (0x200000, 0x1000, "rw", 0x1000), (0x201000, 0x1000, "r", 0x1000),
        (0x202000, 0x1fe000, "rw", 0x1000), (0x400000, 0x200000, "rw", 0x200000)]
    m.protect(0x400000, 0x401000, "rw", split_to)  # no change: no split
    assert m.extents[-1].page_size == 0x200000
    m.remove(0x1000, 0x201000, split_to)
    assert m.first_hole(0x200000, 0x600000) == (0x200000, 0x201000)
    assert m.first_hole(0x201000, 0x600000) is None


# -- validation, on every configuration ------------------------------------------------------


def bad_ops(s: Session) -> list[tuple[dict[str, Any], str]]:
    """(op, expected message fragment) for every validation error this configuration has."""
    c = s.config
    page = c.page_size
    # a pfn is an unsigned long too: on i386-pae that caps pa at 44 bits, below phys_bits
    pbits = min(c.phys_bits, c.word_bits + c.page_shift)
    top = 1 << c.word_bits
    kva = kernel_va(s)
    out: list[tuple[dict[str, Any], str]] = [
        (op(op="map", va=USER_VA, pa=USER_PA, size=page, prot="r", page_size=3 * page),
         f"page_size {3 * page:#x} is not a leaf size of {c.name}"),
        (op(op="map", va=USER_VA, pa=USER_PA, size=0, prot="r"), "size is 0"),
        (op(op="unmap", va=USER_VA, size=0), "op 1 (unmap): size is 0"),
        (op(op="map", va=USER_VA + 16, pa=USER_PA, size=page, prot="r"),
         f"va {USER_VA + 16:#x} is not a multiple of page_size {page:#x}"),
        (op(op="map", va=USER_VA, pa=USER_PA + 16, size=page, prot="r"),
         f"pa {USER_PA + 16:#x} is not a multiple of page_size {page:#x}"),
        (op(op="map", va=USER_VA, pa=USER_PA, size=page + 16, prot="r"),
         f"size {page + 16:#x} is not a multiple of page_size {page:#x}"),
        (op(op="protect", va=USER_VA, size=page + 16, prot="r"), "is not a multiple"),
        (op(op="map", va=top - page, pa=USER_PA, size=2 * page, prot="r"),
         f"beyond the {c.word_bits}-bit address space"),
        (op(op="unmap", va=top, size=page), "beyond the"),
        (op(op="map", va=c.user_range[1] - page, pa=USER_PA, size=2 * page, prot="r"),
         "straddles the boundary of the user range"),
        (op(op="map", va=kva, pa=USER_PA, size=page, prot="r", user=True),
         "user is true but va"),
        (op(op="map", va=USER_VA, pa=USER_PA, size=page, prot="r", user=False),
         "user is false but va"),
        (op(op="map", va=USER_VA, pa=(1 << pbits) - page, size=2 * page, prot="r"),
         f"needs pfn {(1 << pbits) // page:#x}, beyond the {pbits}-bit physical"),
        (op(op="map", va=USER_VA - page, pa=USER_PA, size=2 * page, prot="r"),
         f"overlaps the existing mapping [{USER_VA:#x}, {USER_VA + page:#x})"),
        (op(op="protect", va=USER_VA, size=2 * page, prot="r"),
         f"[{USER_VA + page:#x}, {USER_VA + 2 * page:#x}) is not mapped"),
        (op(op="protect", va=kva, size=page, prot="r"), "is not fully mapped"),
    ]
    hole = -(-c.user_range[1] // page) * page
    if hole + page <= c.kernel_range[0]:
        out.append((op(op="map", va=hole, pa=USER_PA, size=page, prot="r"),
                    "is neither in the user range"))
    for size in c.leaf_sizes:
        if size not in s.limits.kernel_leaf_sizes:
            base = -(-kva // size) * size
            out.append((op(op="map", va=base, pa=0, size=size, prot="r", page_size=size),
                        "cannot map kernel pages of that size"))
            break
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_validation_errors_leave_the_machine_unchanged(arch: str) -> None:
    s = Session(arch)
    page = s.config.page_size
    first = op(op="map", va=USER_VA, pa=USER_PA, size=page, prot="rw")
    s.run(load_json_scenario({"ops": [first]}))
    before = snapshot(s)
    for bad, message in bad_ops(s):
        sc = load_json_scenario({"ops": [first, bad]})
        with pytest.raises(BadInput) as e:
            s.apply(sc.ops[1])
        text = str(e.value)
        assert text.startswith(f"op 1 ({bad['op']}): "), text
        assert message in text, (bad, text)
        assert snapshot(s) == before, bad
        # A whole scenario with the bad op last runs nothing at all.
        fresh = Session(arch)
        untouched = snapshot(fresh)
        with pytest.raises(BadInput):
            fresh.run(sc)
        assert snapshot(fresh) == untouched
    s.verify()
    s.teardown()


@pytest.mark.parametrize("arch", ARCHES)
def test_unmap_of_unmapped_range_is_fine(arch: str) -> None:
    s = Session(arch)
    page = s.config.page_size
    s.run(load_json_scenario({"ops": [
        op(op="unmap", va=USER_VA, size=16 * page),
        op(op="map", va=USER_VA, pa=USER_PA, size=2 * page, prot="r"),
        op(op="unmap", va=USER_VA - 4 * page, size=16 * page),
        op(op="unmap", va=kernel_va(s), size=page),
    ]}))
    assert not s.model.extents
    s.verify()
    s.teardown()


# -- -ENOMEM in the middle of a map ----------------------------------------------------------


def enomem_cases(s: Session) -> list[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """(name, ops before, the map op that will fail) for this configuration."""
    c, lim = s.config, s.limits
    page = c.page_size
    pmd = s.k.PMD_SIZE
    # Base pages across a PMD boundary (two PTE tables), next to an existing mapping.
    va = 4 * pmd - 2 * page
    cases = [(
        "user-pages",
        [op(op="map", va=va - 8 * page, pa=USER_PA, size=page, prot="r")],
        op(op="map", va=va, pa=USER_PA, size=4 * page, prot="rw"),
    )]
    huge = [x for x in lim.user_leaf_sizes if x > page]
    if huge:
        h = huge[0]
        cases.append(("user-huge", [op(op="map", va=USER_VA, pa=USER_PA, size=page, prot="r")],
                      op(op="map", va=8 * h, pa=2 * h, size=2 * h, prot="rw", page_size=h)))
    kva = kernel_va(s)
    kend = kva + 4 * pmd
    cases.append(("kernel-pages", [],
                  op(op="map", va=kend - 2 * page, pa=0x1000000, size=4 * page, prot="rw")))
    return cases


@pytest.mark.parametrize("arch", ARCHES)
def test_enomem_during_map_is_undone(arch: str) -> None:
    for name, before_ops, failing in enomem_cases(Session(arch)):
        probe = Session(arch)
        probe.run(load_json_scenario({"ops": before_ops}))
        start = probe.k.mem.allocations
        tables, frames = set(probe.k.ptdescs), set(probe.k.mem.allocated_frames())
        probe.run(load_json_scenario({"ops": [failing]}))
        needed = probe.k.mem.allocations - start
        new = set(probe.k.ptdescs) - tables
        probe.verify()
        probe.teardown()
        if needed == 0:
            # every new table is a fragment of a page the mm had already (ppc64 64K PTE
            # tables: pte_fragment_alloc from mm->context.pte_frag): nothing to fail
            assert new and all(probe.k.frame_of(pa) in frames for pa in new), name
            continue
        for n in range(1, needed + 1):
            s = Session(arch)
            s.run(load_json_scenario({"ops": before_ops}))
            before = snapshot(s)
            model_before = s.model.extents
            s.k.mem.fail_after(n)
            with pytest.raises(OutOfMemory, match=r"op 0 \(map\): -ENOMEM"):
                s.apply(load_json_scenario({"ops": [failing]}).ops[0])
            assert s.model.extents == model_before
            if name.startswith("user"):
                # Exactly as before: the vma is gone and its new tables are freed.
                assert snapshot(s) == before, (name, n)
            s.verify()
            s.teardown()


@pytest.mark.parametrize("arch", ARCHES)
def test_enomem_during_split_taints_but_stays_consistent(arch: str) -> None:
    """A split that cannot allocate fails the unmap/protect half-way, as munmap/mprotect
    may; the session stops trusting its model but the machine stays consistent."""
    s = Session(arch)
    page = s.config.page_size
    cases = []
    kh = [x for x in s.limits.kernel_leaf_sizes if x > page]
    if kh:
        kva = -(-kernel_va(s) // kh[0]) * kh[0]
        cases.append((op(op="map", va=kva, pa=0, size=kh[0], prot="rw", page_size=kh[0]),
                      op(op="unmap", va=kva + page, size=page)))
    uh = [x for x in s.limits.user_leaf_sizes if x > s.k.PMD_SIZE]
    if uh:
        cases.append((op(op="map", va=uh[0], pa=0, size=uh[0], prot="rw", page_size=uh[0]),
                      op(op="protect", va=uh[0] + page, size=page, prot="r")))
    if not cases:
        pytest.skip("no split that allocates on this configuration")
    for mapping, cutting in cases:
        s = Session(arch)
        sc = load_json_scenario({"ops": [mapping, cutting]})
        s.apply(sc.ops[0])
        s.k.mem.fail_after(1)
        with pytest.raises(OutOfMemory, match=r"op 1 \((unmap|protect)\): -ENOMEM"):
            s.apply(sc.ops[1])
        assert s.tainted
        s.verify()
        s.teardown()


@pytest.mark.parametrize("arch", ARCHES)
def test_protect_without_change_splits_nothing(arch: str) -> None:
    s = Session(arch)
    page = s.config.page_size
    huge = [x for x in s.limits.user_leaf_sizes if x > page]
    if not huge:
        pytest.skip("no user huge pages")
    h = huge[0]
    s.run(load_json_scenario({"ops": [
        op(op="map", va=4 * h, pa=2 * h, size=2 * h, prot="rw", page_size=h),
        op(op="protect", va=4 * h + page, size=h, prot="rw"),
    ]}))
    assert [e.page_size for e in s.model] == [h]
    assert {t.size for t in s.hardware_leaves()} == {h}
    s.verify()
    s.teardown()


@pytest.mark.parametrize("arch", ["ppc64-radix-4k", "x86_64"])
def test_fork_after_mprotect_of_a_whole_pfn_pmd_is_refused_where_pmd_modify_drops_special(
        arch: str) -> None:
    """ppc64 at v6.18: ``pmd_modify`` keeps ``_HPAGE_CHG_MASK``, which lacks
    ``_PAGE_SPECIAL``, so an mprotected huge pfn pmd is no longer special and fork's
    ``copy_huge_pmd`` write-protects it like a THP page (the model, and a later kernel,
    keep it writable).  The mprotect still runs (and verifies); the fork after it is
    refused as bad input, from a probe of ``pmd_modify`` itself.  Where the bit survives,
    the fork runs and the shared pfn map stays writable."""
    import legacy
    from ptshim.scenario import Limits

    raw = {"ops": [
        {"op": "map", "va": "0x8000000000", "pa": "0x1000000000", "size": "0x40000000",
         "prot": "r", "user": True, "page_size": "0x40000000"},
        {"op": "protect", "va": "0x8000000000", "size": "0x8000000", "prot": "rw"},
        {"op": "fork"},
    ]}
    s = Session(arch)
    sc = parse_scenario(raw, "pfn-pmd-protect-fork")
    if Limits.from_kernel(legacy.boot(arch)).special_lost_leaf:
        with pytest.raises(BadInput, match="op 2 .*pmd_modify drops pmd_special"):
            s.validate(sc)
        s.run(parse_scenario({"ops": raw["ops"][:2]}, "pfn-pmd-protect"))
        s.verify()
        return
    s.run(sc)
    s.verify()


@pytest.mark.parametrize(("arch", "share"), [
    ("x86_64", 1.0),        # a 2 MiB leaf: 512 ptes
    ("i386", 1.0),          # a 4 MiB leaf: 1,024 ptes
    ("arm64-16k-48", 1.0),  # a 32 MiB leaf: 2,048 ptes
    ("arm64-64k-48", 1 / 4),  # a 512 MiB leaf: 8,192 ptes
])
def test_cuts_end_inside_costly_huge_leaves_less_often(arch: str, share: float) -> None:
    """``SPLIT_ENTRIES``: the generator's unmaps and protects end inside a huge PMD leaf
    (a split) as often everywhere as the split costs allow, and at leaf boundaries
    otherwise."""
    import random

    from legacy import boot
    from ptshim.scenario_gen import ScenarioGen

    k = boot(arch)
    gen = ScenarioGen(arch, random.Random(7))
    assert gen._split_share(k.PMD_SIZE, True) == share
    va = 64 * k.PMD_SIZE
    model = Model([Extent(va, 4 * k.PMD_SIZE, 0, "rw", True, k.PMD_SIZE)])
    points = []
    for _ in range(2000):
        got = gen._cut(model, True)
        assert got is not None
        points += got
    inside = sum(1 for p in points if va < p < va + 4 * k.PMD_SIZE and p % k.PMD_SIZE)
    full = 0.45  # what a cut does where splits cost no more than SPLIT_ENTRIES
    assert abs(inside / len(points) - full * share) < 0.05, inside / len(points)


def test_limits_are_kept_per_configuration_and_kernel_class() -> None:
    """``Limits.from_kernel`` derives a configuration's limits once; a kernel of another
    class on the same configuration (here a CPU without PSE: no transparent huge pages)
    gets its own."""
    from legacy import boot
    from ptshim.scenario import Limits

    k = boot("x86_64")
    assert Limits.from_kernel(k) is Limits.from_kernel(boot("x86_64"))
    assert k.PMD_SIZE in Limits.from_kernel(k).user_leaf_sizes

    class NoThp(type(k)):
        def has_transparent_hugepage(self) -> bool:
            return False

    no_thp = NoThp(k.config, la57=False)
    assert Limits.from_kernel(no_thp).user_leaf_sizes == (k.PAGE_SIZE,)
    assert k.PMD_SIZE in Limits.from_kernel(boot("x86_64")).user_leaf_sizes
