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
from ptshim.compare import compare, snapshot
from ptshim.model import Prot
from ptshim.scenario import (
    Limits,
    MapOp,
    Op,
    ProtectOp,
    Scenario,
    op_to_json,
    validate,
)
from ptshim.scenario_gen import ScenarioGen
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
