"""The differential harness: ``ptshim diff [--pair SPEC] [--arch NAME|all] [--examples N]
[--seed S] [--jobs N] [--keep-going] [--out DIR] [--replay FILE]``.

With ``--pair`` it compares a user's call-site pair (:mod:`ptshim.pairs`, docs/pairs.md);
without, the two built-in backends, as described here.

For each configuration, ``N`` random scenarios (a seeded generator, so a run is
reproducible from ``--seed``) are run twice, on two fresh kernels of that configuration: one
driven by the ``legacy`` backend, the other by the ``unified`` one (both looked up in
:data:`ptshim.backends.BACKENDS`).  After every op the two machines must agree on:

- the op's outcome (both succeed, or both fail with the same kind of error);
- the page-table memory: the same allocated frames, byte for byte (``k.mem.image()``);
- ``pgtables_bytes`` of the process mm and of ``init_mm``;

and at the end the unified machine must pass the session's own checks (hardware walker ==
model, accounting, locks) whenever the legacy one does, and both teardowns (``mmput``) must
leave the same machine.

Each scenario is seeded from ``(seed, arch, index)`` alone (reproducible whatever
``--jobs``); the campaign engine is :func:`ptshim.pairs.run_campaigns`.  On a divergence
the scenario is shrunk -- ops removed, then sizes reduced, while it
still diverges -- and the minimal reproducer is written as a scenario file (``docs/cli.md``
format, plus ``arch``/``seed``/``divergence`` keys the parser ignores) to
``diff-<arch>-seed<S>.json`` in ``--out`` (default: the current directory); the command
exits 1.  ``ptshim run FILE --arch ARCH --api unified`` then replays it, and
:func:`reproduces` checks it.

Scenarios are built to hit what the ports must get right: base pages crossing PMD
boundaries, huge PMD/PUD leaves (user and kernel), unmaps and protects that cover leaves
partly (splits) or free whole tables (floor/ceiling), neighbouring vmas, kernel mappings
that need ``arch_sync_kernel_mappings``, and the top of the user range.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from arches.errors import BadInput, PtshimError
from legacy import boot
from ptshim.backends import BACKENDS, LegacyBackend
from ptshim.compare import State, compare, snapshot
from ptshim.model import Extent, Model, Prot
from ptshim.scenario import (
    ForkOp,
    Limits,
    MapOp,
    MremapOp,
    Op,
    ProtectOp,
    Scenario,
    UnmapOp,
    op_to_json,
    validate,
)
from ptshim.scenario_gen import ScenarioGen
from ptshim.session import Session

if TYPE_CHECKING:
    from ptshim.pairs import Divergence as PairDivergence
    from ptshim.pairs import ExampleResult, Progress

__all__ = [
    "Divergence", "ScenarioGen", "main", "reproduces", "run_pair", "shrink",
]

LEGACY, UNIFIED = "legacy", "unified"


@dataclass(frozen=True)
class Divergence:
    """Where and how the two machines stopped agreeing."""

    step: str
    """``op N (kind)``, ``verify`` or ``teardown``."""
    what: str

    def describe(self) -> str:
        return f"{self.step}: {self.what}"


# -- running one scenario on both backends ---------------------------------------------


def _outcome(fn: Callable[[], object]) -> str:
    """"ok", or the kind of error (its class name) the step raised."""
    try:
        fn()
    except Exception as e:  # a port may fail in any way: that is what we are looking for
        return f"{type(e).__name__}: {' '.join(str(e).split())[:400]}"
    return "ok"


def _same_outcome(a: str, b: str) -> bool:
    return a == b or (a != "ok" and b != "ok" and a.split(":")[0] == b.split(":")[0])


def run_pair(arch: str, scenario: Scenario) -> Divergence | None:
    """Run ``scenario`` on a legacy and a unified kernel of ``arch``, comparing after every
    op, then verify and tear both down.  :class:`BadInput` if the scenario is not valid
    input for ``arch``."""
    sl = Session(arch, LEGACY)
    su = Session(arch, UNIFIED)
    sl.validate(scenario)
    esize = max(sl.k.SIZEOF_PTE, sl.k.SIZEOF_PGD)
    for op in scenario.ops:
        step = f"op {op.index} ({op.kind})"
        ra = _outcome(partial(sl.apply, op))
        rb = _outcome(partial(su.apply, op))
        if not _same_outcome(ra, rb):
            return Divergence(step, f"legacy: {ra}; unified: {rb}")
        a, b = snapshot(sl), snapshot(su)
        d = compare(a, b, esize)
        if d is not None:
            return Divergence(step, _decoded(d, sl, su, a, b, esize))
        if ra != "ok":
            # Both failed alike: not a difference, but the reference itself broke a rule
            # (a TLB or lock check, a BUG): a run that proves nothing must not pass.
            return Divergence(step, f"both sides fail (the legacy reference too): legacy: "
                                    f"{ra}; unified: {rb}")
    va = _outcome(sl.verify)
    # The walker's view is a function of memory, roots and the model, which the snapshots
    # just found equal: check it once, on the reference; the rest on both.
    vb = _outcome(partial(su.verify, hardware=va != "ok"))
    if va == "ok" and vb != "ok":
        return Divergence("verify", f"the unified machine fails its checks: {vb}")
    if va != "ok":  # as for an op: a reference that breaks the rules proves nothing
        return Divergence("verify", f"both sides fail (the legacy reference too): legacy: "
                                    f"{va}; unified: {vb}")
    ta = _outcome(sl.teardown)
    tb = _outcome(su.teardown)
    if not _same_outcome(ta, tb):
        return Divergence("teardown", f"legacy: {ta}; unified: {tb}")
    d = compare(snapshot(sl), snapshot(su), esize)
    return None if d is None else Divergence("teardown", d)


def _decoded(what: str, sl: Session, su: Session, a: State, b: State, esize: int) -> str:
    """``what``, and for a page-table byte difference the first differing entry decoded:
    VA range, level (kernel and hardware), table and index, both values' flags."""
    from ptshim.decode import TableMap, describe_value, entry_diffs

    if not what.startswith("frame ") or a.frames.keys() != b.frames.keys():
        return what
    diffs = entry_diffs(a.frames, b.frames, esize, limit=1)
    if not diffs:
        return what
    pa, x, y = diffs[0]
    big = sl.k.mem.byteorder == "big"
    for mm in sl.mms:
        loc = TableMap(sl.k, mm).locate(pa)
        if loc is not None:
            g = loc.table.group
            vx = describe_value(sl.k, g, int.from_bytes(x, "big" if big else "little"))
            vy = describe_value(su.k, g, int.from_bytes(y, "big" if big else "little"))
            return (f"{loc.describe()} of mm {sl.mms.index(mm)} differs: legacy {vx}; "
                    f"unified {vy}")
    return what


# -- shrinking ---------------------------------------------------------------------------


def _reindex(ops: Sequence[Op]) -> tuple[Op, ...]:
    return tuple(replace(op, index=i) for i, op in enumerate(ops))


def shrink(arch: str, scenario: Scenario, budget_s: float = 60.0) -> tuple[Scenario, Divergence]:
    """A smaller scenario that still diverges (ops removed, then sizes cut), and its
    divergence.  ``scenario`` must diverge."""
    lim = Limits.from_kernel(boot(arch))
    split = LegacyBackend(boot(arch)).split_size
    deadline = time.monotonic() + budget_s

    def diverges(ops: Sequence[Op]) -> Divergence | None:
        cand = Scenario(_reindex(ops), scenario.name)
        try:
            validate(cand, lim, split)
            return run_pair(arch, cand)
        except (BadInput, ValueError):
            return None

    ops = list(scenario.ops)
    found = diverges(ops)
    if found is None:
        raise ValueError("shrink: the scenario does not diverge")
    # 1. remove chunks of ops (ddmin), the last op first
    n = 2
    while len(ops) > 1 and time.monotonic() < deadline:
        chunk = -(-len(ops) // n)
        for start in range(len(ops) - chunk, -chunk, -chunk):
            lo = max(0, start)
            cand = ops[:lo] + ops[lo + chunk:]
            d = diverges(cand) if cand else None
            if d is not None:
                ops, found = cand, d
                n = max(n - 1, 2)
                break
        else:
            if n >= len(ops):
                break
            n = min(len(ops), n * 2)
    # 2. simpler ops: smaller sizes, base pages, fewer fields
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for i, op in enumerate(ops):
            for simpler in _simpler(op, lim.page_size):
                cand = ops[:i] + [simpler] + ops[i + 1:]
                d = diverges(cand)
                if d is not None:
                    ops, found = cand, d
                    changed = True
                    break
            if changed:
                break
    return Scenario(_reindex(ops), scenario.name), found


def _simpler(op: Op, page: int) -> list[Op]:
    """Smaller variants of ``op`` for the shrinker (a fork has none)."""
    if isinstance(op, ForkOp):
        return []
    out: list[Op] = []
    ps = op.page_size if isinstance(op, MapOp) and op.page_size else page
    for size in (ps, op.size // 2 - (op.size // 2) % ps):
        if 0 < size < op.size:
            out.append(replace(op, size=size))
    if op.size > ps and isinstance(op, (UnmapOp, ProtectOp)):
        out.append(replace(op, va=op.va + ps, size=op.size - ps))
    if isinstance(op, MapOp):
        if op.prot != "rw":
            out.append(replace(op, prot="rw"))
        if op.user is not None:
            out.append(replace(op, user=None))
    elif isinstance(op, ProtectOp) and op.prot != "r":
        out.append(replace(op, prot="r"))
    return out


# -- campaign and CLI --------------------------------------------------------------------

SCENARIO_TAGS = ("user-huge", "kernel-huge", "split", "unmap", "protect", "kernel", "top",
                 "anon", "fork", "mremap", "table-free", "move-table")
"""What a scenario of the built-in comparison hits (its coverage line): a huge user / kernel
map, an unmap or protect cutting a huge leaf (a split), unmaps, protects, kernel-range ops,
user ops near the top of the user range, anonymous maps, forks, mremaps, a user unmap whose
``free_pgtables`` frees a PTE table (``table-free``), an mremap that moves a whole PTE table
(``move-table``: mm/mremap.c ``move_normal_pmd``, after ``try_realign_addr``)."""


def _pte_spans(extents: Sequence[Extent], pmd: int, page: int | None) -> set[int]:
    """The PMD-aligned spans holding ``extents`` (of base pages with translations only,
    when ``page`` is given: the spans that have a PTE table)."""
    out: set[int] = set()
    for e in extents:
        if page is not None and (e.page_size != page or e.empty):
            continue
        span = e.va - e.va % pmd
        while span < e.end:
            out.add(span)
            span += pmd
    return out


def _frees_table(gen: ScenarioGen, before: Sequence[Extent], after: Sequence[Extent]) -> bool:
    """Whether an unmap took the last vma out of a PMD span that had a PTE table: no vma
    of the process is left in it to stop ``free_pgd_range`` (its floor is the previous
    vma's end, its ceiling the next vma's start)."""
    return bool(_pte_spans(before, gen.pmd, gen.page) - _pte_spans(after, gen.pmd, None))


def _moves_table(gen: ScenarioGen, model: Model, op: MremapOp) -> bool:
    """Whether ``move_page_tables`` meets a whole PTE table to move: old and new addresses
    at the same offset in their PMD spans, the range reaching the next span, realigned down
    (``try_realign_addr``: the range starts its vma and no vma lies between the span's
    start and either address), the moved part has translations and the destination span
    holds no other vma (so no PTE table: ``move_normal_pmd`` wants an empty pmd)."""
    pmd, mm = gen.pmd, op.mm
    off = op.va % pmd
    if not gen.move_pmd or off != op.new_va % pmd or op.size < pmd - off:
        return False
    old_span, new_span = op.va - off, op.new_va - off
    ext = model.overlapping(old_span, op.va + 1, mm)
    moved = [e for e in ext if e.user and e.va <= op.va < e.end]
    if not moved or moved[0].empty or moved[0].page_size != gen.page:
        return False
    if off and (any(e.va < op.va for e in ext if e.user and e.vma == moved[0].vma)
                or any(e.end <= op.va for e in ext if e.user)):
        return False
    dest = [e for e in model.overlapping(new_span, new_span + pmd, mm)
            if e.user and not (op.new_va <= e.va and e.end <= op.new_va + op.size)
            and not (op.va <= e.va and e.end <= op.va + op.size)]
    return not dest


def scenario_tags(gen: ScenarioGen, scenario: Scenario) -> frozenset[str]:
    """The :data:`SCENARIO_TAGS` ``scenario`` hits (replayed on the model)."""
    from ptshim.scenario import apply_to_model, check_op

    lim = gen.lim
    model = Model()
    tags: set[str] = set()
    # The generator's last window below the top of the user range (ScenarioGen._base).
    top_window = max(max(lim.user_leaf_sizes), gen.pmd) * 4
    for op in scenario.ops:
        user = check_op(op, lim, model)
        if isinstance(op, (ForkOp, MremapOp)):
            tags.add(op.kind)
            if isinstance(op, MremapOp) and _moves_table(gen, model, op):
                tags.add("move-table")
            apply_to_model(op, user, lim, model, gen.split)
            continue
        if isinstance(op, UnmapOp) and user:
            before = model.user_extents(op.mm)
            apply_to_model(op, user, lim, model, gen.split)
            tags.add("unmap")
            if _frees_table(gen, before, model.user_extents(op.mm)):
                tags.add("table-free")
            for e in before:
                if e.page_size > gen.page and (e.va < op.va < e.end or e.va < op.end < e.end):
                    tags.add("split")
            if op.end > lim.user_range[1] - 2 * top_window:
                tags.add("top")
            continue
        if isinstance(op, MapOp) and op.anon:
            tags.add("anon")
        if not user:
            tags.add("kernel")
        elif op.end > lim.user_range[1] - 2 * top_window:
            tags.add("top")
        if isinstance(op, MapOp):
            if op.page_size is not None and op.page_size > gen.page:
                tags.add("user-huge" if user else "kernel-huge")
        else:
            tags.add(op.kind)
            for e in model.overlapping(op.va, op.end):
                if e.page_size > gen.page and (e.va < op.va < e.end or e.va < op.end < e.end):
                    tags.add("split")
        apply_to_model(op, user, lim, model, gen.split)
    return frozenset(tags)


def _scenario(arch: str, seed: int, index: int) -> tuple[ScenarioGen, Scenario]:
    from ptshim.pairs import example_rng, scenario_gen

    rng = example_rng("diff", seed, arch, index)
    gen = scenario_gen(arch, rng)
    return gen, gen.scenario(rng.randint(1, 8), f"diff-{arch}-seed{seed}-{index}")


@dataclass
class BackendsSubject:
    """The built-in backends (``legacy`` vs ``unified``) as a campaign subject of
    :func:`ptshim.pairs.run_campaigns`."""

    kind: str = "backends"

    def example(self, arch: str, seed: int, index: int) -> ExampleResult:
        from ptshim.pairs import ExampleResult

        gen, sc = _scenario(arch, seed, index)
        d = run_pair(arch, sc)
        return ExampleResult(index, scenario_tags(gen, sc), len(sc.ops),
                             None if d is None else d.describe())

    def shrink(self, arch: str, seed: int, index: int, budget_s: float) -> PairDivergence:
        from ptshim.pairs import Divergence as PD

        _, sc = _scenario(arch, seed, index)
        small, d = shrink(arch, sc, budget_s)
        return PD(arch, small, None, None, d.step, (d.what,), example=index, seed=seed)

    def applicable(self, arch: str) -> tuple[str, ...]:
        lim = Limits.from_kernel(boot(arch))
        out = {"unmap", "protect", "kernel", "top", "anon", "fork", "mremap", "table-free"}
        if boot(arch).HAVE_MOVE_PMD:
            out.add("move-table")
        if len(lim.user_leaf_sizes) > 1:
            out.update(("user-huge", "split"))
        if len(lim.kernel_leaf_sizes) > 1:
            out.update(("kernel-huge", "split"))
        return tuple(t for t in SCENARIO_TAGS if t in out)


def reproducer_json(arch: str, seed: int, scenario: Scenario, d: Divergence) -> dict[str, object]:
    return {
        "arch": arch,
        "seed": seed,
        "divergence": {"step": d.step, "what": d.what},
        "ops": [op_to_json(op) for op in scenario.ops],
    }


def reproduces(path: str | Path) -> Divergence | None:
    """Run a reproducer file written by ``ptshim diff``; its divergence, or None."""
    from ptshim.scenario import parse_scenario

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return run_pair(str(data["arch"]), parse_scenario(data, Path(path).stem))


def _progress(args: argparse.Namespace, total: int) -> Progress:
    from ptshim.pairs import Progress

    return Progress(total)


def _jobs(args: argparse.Namespace) -> int:
    from ptshim.pairs import default_jobs

    jobs = getattr(args, "jobs", None)
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise BadInput("--jobs must be >= 1")
    return int(jobs)


def _err(msg: str) -> None:
    print(f"ptshim: {msg}", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    """The ``ptshim diff`` command: 0 if the two sides agree everywhere, 1 on a divergence,
    (2, raised as :class:`BadInput`, on bad input)."""
    from ptshim.pairs import resolve_arches

    if getattr(args, "replay", None):
        return _replay(args)
    if args.examples < 0:
        raise BadInput("--examples must be >= 0")
    arches = resolve_arches(args.arch)
    jobs = _jobs(args)
    out = Path(getattr(args, "out", None) or ".")
    if getattr(args, "pair", None):
        return _main_pair(args, arches, jobs, out)
    if UNIFIED not in BACKENDS:
        raise BadInput("ptshim diff: the unified backend is not registered")
    from ptshim.pairs import run_campaigns

    report = run_campaigns(BackendsSubject(), arches, args.examples, args.seed, jobs=jobs,
                           keep_going=bool(getattr(args, "keep_going", False)),
                           progress=_progress(args, len(arches) * args.examples),
                           name="legacy vs unified backends")
    rc = 0
    for c in report.configs:
        print(f"{c.arch}: {c.examples} scenarios, {c.ops} ops: " + (
            "legacy and unified identical after every op" if c.identical else "DIVERGED")
            + f" ({c.seconds:.1f} s)")
        print("  " + c.coverage_line())
    for c in report.configs:
        d = c.divergence
        if d is None:
            continue
        rc = 1
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"diff-{c.arch}-seed{args.seed}.json"
        path.write_text(json.dumps(reproducer_json(c.arch, args.seed, d.scenario,
                                                   Divergence(d.step, d.what)), indent=1)
                        + "\n", encoding="utf-8")
        n = len(d.scenario.ops)
        _err(f"divergence on {c.arch} at {d.step}: {d.what} (scenario {d.example}: "
             f"{c.first_seen})")
        _err(f"minimal reproducer ({n} op{'s' if n != 1 else ''}) written to {path}; replay "
             f"with `ptshim run {path} --arch {c.arch} --api unified` or "
             f"`ptshim diff --replay {path}`")
    if report.not_run:
        print("not run (stopped at the first divergence; --keep-going runs them): "
              + ", ".join(report.not_run))
    if rc == 0 or getattr(args, "keep_going", False):
        rc |= _direct_probes(arches, jobs)
    if rc == 0:
        print(f"no divergence ({len(arches)} configuration{'s' if len(arches) != 1 else ''}, "
              f"seed {args.seed}, {report.seconds:.1f} s)")
    return rc


def _direct_probes(arches: list[str], jobs: int = 1) -> int:
    """The call sites driven directly with inputs scenarios never make
    (:mod:`ptshim.direct`): both APIs must fail or succeed identically, one configuration
    per worker process.  1 on a divergence."""
    from ptshim.direct import PROBES, run_probes

    if jobs > 1 and len(arches) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(arches))) as pool:
            results = [r for rs in pool.map(run_probes, arches) for r in rs]
    else:
        results = [r for a in arches for r in run_probes(a)]
    bad = [r for r in results if r.divergence is not None]
    for r in bad:
        _err(f"direct probe diverges on {r.arch}: {r.probe}: {r.divergence}")
    print(f"direct probes: {len(PROBES)} per configuration (vmap over leaves, end == 0, "
          f"reversed and empty ranges, TASK_SIZE): "
          + ("identical" if not bad else f"{len(bad)} DIVERGED"))
    return 1 if bad else 0


def _main_pair(args: argparse.Namespace, arches: list[str], jobs: int, out: Path) -> int:
    import shlex

    from ptshim.pairs import Pair, PairSubject, run_campaigns, write_reproducers

    pair = Pair.load(args.pair)
    report = run_campaigns(PairSubject(pair), arches, args.examples, args.seed, jobs=jobs,
                           keep_going=bool(getattr(args, "keep_going", False)),
                           progress=_progress(args, len(arches) * args.examples),
                           name=pair.name)
    write_reproducers(pair, report, out)
    for c in report.configs:
        verdict = "identical" if c.identical else f"DIVERGED (example {c.divergence.example})" \
            if c.divergence is not None else "DIVERGED"
        print(f"{c.arch}: {verdict}, {c.examples} examples, {c.ops} machine ops, "
              f"{c.seconds:.1f} s")
        print("  " + c.coverage_line())
    rc = 0
    for c in report.configs:
        if c.divergence is None:
            continue
        rc = 1
        print()
        print(c.divergence.describe())
        if c.reproducer is not None:
            _err(f"divergence on {c.arch}; minimal reproducer written to {c.reproducer}; "
                 f"replay with `ptshim diff --pair {shlex.quote(pair.name)} --replay "
                 f"{shlex.quote(str(c.reproducer))}`")
    if report.not_run:
        print("not run (stopped at the first divergence; --keep-going runs them): "
              + ", ".join(report.not_run))
    if rc == 0:
        print(f"{pair.name}: identical on {len(arches)} configuration"
              f"{'s' if len(arches) != 1 else ''} (seed {args.seed}, {report.seconds:.1f} s)")
    return rc


def _replay(args: argparse.Namespace) -> int:
    """``--replay FILE``: a pair reproducer (with ``--pair``, or the pair the file names) or
    a built-in backends' one."""
    from ptshim.pairs import Pair, load_reproducer, replay

    path = Path(args.replay)
    data = load_reproducer(path)
    spec = getattr(args, "pair", None) or data.get("pair")
    if spec:
        d = replay(Pair.load(str(spec)), path)
        if d is None:
            print(f"{path}: identical (the divergence no longer reproduces)")
            return 0
        print(d.describe())
        return 1
    try:
        bd = reproduces(path)
    except (KeyError, ValueError) as e:
        raise BadInput(f"--replay {path}: {e}") from None
    if bd is None:
        print(f"{path}: identical (the divergence no longer reproduces)")
        return 0
    print(f"{data['arch']}: {bd.describe()}")
    return 1


__all__ += ["BackendsSubject", "PtshimError", "Prot", "SCENARIO_TAGS", "reproducer_json",
            "scenario_tags"]
