"""The differential harness: ``ptshim diff [--arch NAME|all] [--examples N] [--seed S]``.

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

On the first divergence the scenario is shrunk -- ops removed, then sizes reduced, while it
still diverges -- and the minimal reproducer is written as a scenario file (``design.md``
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
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from arches.errors import BadInput, PtshimError
from legacy import arch_names, boot
from ptshim.backends import BACKENDS, LegacyBackend
from ptshim.model import PROTS, Model, Prot
from ptshim.scenario import (
    Limits,
    MapOp,
    Op,
    ProtectOp,
    Scenario,
    UnmapOp,
    apply_to_model,
    check_op,
    op_to_json,
    validate,
)
from ptshim.session import Session

__all__ = [
    "Divergence", "ScenarioGen", "main", "reproduces", "run_campaign", "run_pair", "shrink",
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


State = tuple[dict[int, bytes], int, int]


def snapshot(s: Session) -> State:
    """(frame -> bytes of every allocated frame, process ``pgtables_bytes``, ``init_mm``'s)."""
    return dict(s.k.mem.image()), s.mm.pgtables_bytes, s.k.init_mm.pgtables_bytes


def compare(a: State, b: State, entry_size: int) -> str | None:
    """None if the states are equal, else the first difference, in words."""
    fa, fb = a[0], b[0]
    if fa.keys() != fb.keys():
        only_a = sorted(fa.keys() - fb.keys())
        only_b = sorted(fb.keys() - fa.keys())
        return ("allocated frames differ: only legacy has "
                + (", ".join(f"{pa:#x}" for pa in only_a[:4]) or "none")
                + f"{' ...' if len(only_a) > 4 else ''}; only unified has "
                + (", ".join(f"{pa:#x}" for pa in only_b[:4]) or "none")
                + f"{' ...' if len(only_b) > 4 else ''}")
    for pa in sorted(fa):
        x, y = fa[pa], fb[pa]
        if x != y:
            off = next(i for i in range(len(x)) if x[i] != y[i])
            off -= off % entry_size
            return (f"frame {pa:#x} differs at offset {off:#x}: legacy "
                    f"{x[off:off + entry_size].hex()}, unified {y[off:off + entry_size].hex()}")
    if a[1] != b[1]:
        return f"pgtables_bytes: legacy {a[1]}, unified {b[1]}"
    if a[2] != b[2]:
        return f"init_mm pgtables_bytes: legacy {a[2]}, unified {b[2]}"
    return None


def _outcome(fn: Callable[[], object]) -> str:
    """"ok", or the kind of error (its class name) the step raised."""
    try:
        fn()
    except Exception as e:  # a port may fail in any way: that is what we are looking for
        return f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
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
        d = compare(snapshot(sl), snapshot(su), esize)
        if d is not None:
            return Divergence(step, d)
        if ra != "ok":  # both failed alike: the rest would run on a half-done op
            return None
    va = _outcome(sl.verify)
    vb = _outcome(su.verify)
    if va == "ok" and vb != "ok":
        return Divergence("verify", f"the unified machine fails its checks: {vb}")
    ta = _outcome(sl.teardown)
    tb = _outcome(su.teardown)
    if not _same_outcome(ta, tb):
        return Divergence("teardown", f"legacy: {ta}; unified: {tb}")
    d = compare(snapshot(sl), snapshot(su), esize)
    return None if d is None else Divergence("teardown", d)


# -- the scenario generator --------------------------------------------------------------


class ScenarioGen:
    """Random valid scenarios for one configuration (validated against the model as they
    are built)."""

    def __init__(self, arch: str, rng: random.Random) -> None:
        k = boot(arch)
        self.arch = arch
        self.rng = rng
        self.lim = Limits.from_kernel(k)
        self.split = LegacyBackend(k).split_size
        self.page = k.PAGE_SIZE
        self.pmd = k.PMD_SIZE
        self.pud = k.PUD_SIZE
        self.pgdir = k.PGDIR_SIZE
        self.max_pa = min(1 << self.lim.phys_bits, 1 << 40)

    def _base(self, user: bool) -> int:
        """Start of the window the ops of one space use: a few big-leaf slots, sometimes
        right below the top of the user range (the free_pgd_range ceiling)."""
        rng = self.rng
        lo, hi = self.lim.user_range if user else self.lim.kernel_range
        big = max(self.lim.user_leaf_sizes if user else self.lim.kernel_leaf_sizes)
        span = max(big, self.pmd) * 4
        first = -(-lo // span) * span + (span if user and lo == 0 else 0)
        # The kernel window stays clear of the last page of the address space, which
        # scenarios may not touch (vmap_range BUG_ONs when ``end`` wraps to 0).
        last = (hi - (span if user else 2 * span)) // span * span
        if last < first:
            return first
        choice = rng.random()
        if choice < 0.2:
            return last
        if choice < 0.5:
            # just below a top-level boundary: tables of two pgd entries
            edge = -(-(first + span) // self.pgdir) * self.pgdir
            if first <= edge - span // 2 <= last:
                return edge - span // 2
        return first + rng.randrange(0, min(64, (last - first) // span + 1)) * span

    def _size(self, ps: int) -> int:
        rng = self.rng
        if ps == self.page:
            return ps * rng.choice([1, 2, 3, rng.randint(1, 40), rng.randint(400, 1100)])
        return ps * rng.choice([1, 1, 2, 3])

    def _map(self, user: bool, base: int, span: int) -> MapOp:
        rng = self.rng
        sizes = self.lim.user_leaf_sizes if user else self.lim.kernel_leaf_sizes
        weights = [6 if s == self.page else (3 if s <= self.pmd else 1) for s in sizes]
        ps = rng.choices(sizes, weights)[0]
        size = self._size(ps)
        slot = max(ps, self.pmd if rng.random() < 0.5 else ps)
        va = base + rng.randrange(0, max(1, span // slot)) * slot
        if ps == self.page and rng.random() < 0.5:
            va += rng.randrange(-3, 4) * ps
            va = max(va, base)
        pa = rng.randrange(0, max(1, (self.max_pa - size) // ps)) * ps
        return MapOp(0, va, pa, size, rng.choice(PROTS), user if rng.random() < 0.8 else None,
                     ps if ps != self.page or rng.random() < 0.3 else None)

    def _cut(self, model: Model, user: bool) -> tuple[int, int] | None:
        """A range over existing extents of one space, its ends anywhere (page aligned)."""
        rng = self.rng
        ext = [e for e in model if e.user == user]
        if not ext:
            return None
        i = rng.randrange(len(ext))
        j = min(len(ext) - 1, i + rng.choice([0, 0, 0, 1, 2]))
        a, b = ext[i], ext[j]

        def point(e_va: int, e_size: int) -> int:
            mode = rng.random()
            pages = e_size // self.page
            if mode < 0.3:
                return e_va
            if mode < 0.5:
                return e_va + e_size
            if mode < 0.7 and e_size > self.pmd:
                return e_va + rng.randrange(0, e_size // self.pmd + 1) * self.pmd
            return e_va + rng.randrange(0, pages + 1) * self.page

        lo = point(a.va, a.size)
        hi = point(b.va, b.size)
        if hi <= lo:
            lo, hi = min(lo, hi), max(lo, hi) + self.page
        if rng.random() < 0.2:  # reach beyond the mappings (munmap of holes, free_pgtables)
            lo = max(self.lim.user_range[0] if user else self.lim.kernel_range[0],
                     lo - rng.randint(1, 600) * self.page)
        return lo, hi

    def op(self, model: Model, bases: dict[bool, int]) -> Op | None:
        rng = self.rng
        user = rng.random() < 0.65
        base = bases[user]
        span = max(self.lim.user_leaf_sizes if user else self.lim.kernel_leaf_sizes) * 4
        span = max(span, self.pmd * 4)
        kind = rng.choices(["map", "unmap", "protect"], [5, 3, 3])[0]
        if kind == "map" or not len(model):
            return self._map(user, base, span)
        cut = self._cut(model, user)
        if cut is None:
            return self._map(user, base, span)
        lo, hi = cut
        if kind == "unmap":
            return UnmapOp(0, lo, hi - lo)
        return ProtectOp(0, lo, hi - lo, rng.choice(PROTS))

    def scenario(self, n_ops: int, name: str) -> Scenario:
        """A valid scenario of up to ``n_ops`` ops."""
        model = Model()
        bases = {True: self._base(True), False: self._base(False)}
        ops: list[Op] = []
        tries = 0
        while len(ops) < n_ops and tries < n_ops * 20:
            tries += 1
            op = self.op(model, bases)
            if op is None:
                continue
            op = replace(op, index=len(ops))
            try:
                user = check_op(op, self.lim, model)
                apply_to_model(op, user, self.lim, model, self.split)
            except (BadInput, ValueError):
                continue
            ops.append(op)
        return Scenario(tuple(ops), name)


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
    out: list[Op] = []
    ps = op.page_size if isinstance(op, MapOp) and op.page_size else page
    for size in (ps, op.size // 2 - (op.size // 2) % ps):
        if 0 < size < op.size:
            out.append(replace(op, size=size))
    if op.size > ps and not isinstance(op, MapOp):
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


@dataclass(frozen=True)
class ArchResult:
    arch: str
    scenarios: int
    ops: int
    divergence: tuple[Scenario, Divergence] | None = None


def run_campaign(arch: str, examples: int, seed: int,
                 log: Callable[[str], None] = lambda s: None) -> ArchResult:
    """``examples`` random scenarios on ``arch``; stops at the first divergence (shrunk)."""
    rng = random.Random(f"ptshim-diff:{seed}:{arch}")
    gen = ScenarioGen(arch, rng)
    ops = 0
    for i in range(examples):
        sc = gen.scenario(rng.randint(1, 8), f"diff-{arch}-seed{seed}-{i}")
        ops += len(sc.ops)
        d = run_pair(arch, sc)
        if d is not None:
            log(f"{arch}: scenario {i} diverges at {d.describe()}; shrinking")
            return ArchResult(arch, i + 1, ops, shrink(arch, sc))
    return ArchResult(arch, examples, ops)


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


def main(args: argparse.Namespace) -> int:
    """The ``ptshim diff`` command: 0 if the backends agree everywhere, 1 on a divergence."""
    if UNIFIED not in BACKENDS:
        raise BadInput("ptshim diff: the unified backend is not registered")
    if args.examples < 0:
        raise BadInput("--examples must be >= 0")
    names = arch_names()
    arches = names if args.arch == "all" else [args.arch]
    for a in arches:
        if a not in names:
            raise BadInput(f"unknown --arch {a!r} (known: {', '.join(names)}, all)")
    out = Path(getattr(args, "out", None) or ".")
    t0 = time.monotonic()
    for a in arches:
        t = time.monotonic()
        r = run_campaign(a, args.examples, args.seed,
                         log=lambda s: print(s, file=sys.stderr, flush=True))
        if r.divergence is not None:
            sc, d = r.divergence
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"diff-{a}-seed{args.seed}.json"
            path.write_text(json.dumps(reproducer_json(a, args.seed, sc, d), indent=1) + "\n",
                            encoding="utf-8")
            print(f"ptshim: divergence on {a} at {d.describe()}", file=sys.stderr)
            print(f"ptshim: minimal reproducer ({len(sc.ops)} op"
                  f"{'s' if len(sc.ops) != 1 else ''}) written to {path}; replay with "
                  f"`ptshim run {path} --arch {a} --api unified`", file=sys.stderr)
            return 1
        print(f"{a}: {r.scenarios} scenarios, {r.ops} ops: legacy and unified identical "
              f"after every op ({time.monotonic() - t:.1f} s)")
    print(f"no divergence ({len(arches)} configuration{'s' if len(arches) != 1 else ''}, "
          f"seed {args.seed}, {time.monotonic() - t0:.1f} s)")
    return 0


__all__ += ["ArchResult", "PtshimError", "Prot", "reproducer_json"]
