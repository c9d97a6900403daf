"""The ``ptshim`` command (the contract and its extensions: ``docs/cli.md``).

Exit codes: 0 success; 1 a failed check, a divergence or an op that failed with -ENOMEM (an
injected allocation failure: the same line from ``run`` and ``dump``, either API); 2 bad input
or unwritable output (one line on stderr).
Every :class:`~arches.errors.PtshimError` is caught here: no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from arches.errors import BadInput, CheckFailed, PtshimError
from ptshim.backends import API_NAMES, BACKENDS
from ptshim.scenario import Scenario, load_scenario, scenario_paths

if TYPE_CHECKING:
    from ptshim.progress import ScenarioProgress
    from ptshim.session import Session

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(BadInput):
    """A command line argparse rejects."""


class OutputError(PtshimError):
    """Standard output cannot be written (a full device, an I/O error): exit 2."""


class _GuardedOutput:
    """Standard output for the length of :func:`main`: a failed write or flush (``OSError``
    other than a broken pipe) becomes :class:`OutputError`; text the stream cannot encode
    (a file name with undecodable bytes) is written with backslash escapes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.failed = False

    def _fail(self, e: OSError) -> NoReturn:
        self.failed = True
        raise OutputError(f"cannot write the output: {e.strerror or e}") from None

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except UnicodeEncodeError:
            enc = getattr(self.stream, "encoding", None) or "utf-8"
            return self.write(text.encode(enc, "backslashreplace").decode(enc))
        except OSError as e:
            self._fail(e)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            self._fail(e)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _discard_stdout(stream: TextIO) -> None:
    """After stdout failed: point its descriptor at /dev/null so that the interpreter's
    final flush of what is still buffered does not fail again (and print a traceback)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return  # not a real file (a test's stand-in): nothing is flushed at exit
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def version_text() -> str:
    """``ptshim <package version> (Linux v6.18.y page-table semantics)``."""
    from importlib.metadata import PackageNotFoundError, version

    from ptshim.version import KERNEL_VERSION_TEXT

    try:
        pkg = version("ptshim")
    except PackageNotFoundError:
        pkg = "unknown"
    return f"ptshim {pkg} ({KERNEL_VERSION_TEXT})"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ptshim", description="Linux page-table API emulation: scenarios, "
                "checks, exports and dumps.")
    p.add_argument("--version", action="version", version=version_text())
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    a = sub.add_parser("arches", help="list the configurations")
    a.add_argument("--json", action="store_true", help="machine-readable output")

    r = sub.add_parser("run", help="run a scenario (or a directory of them), verify, report")
    r.add_argument("scenario", help="scenario file, or a directory of *.json scenarios")
    r.add_argument("--arch", required=True, help="configuration name, or 'all'")
    r.add_argument("--api", default="legacy", choices=API_NAMES)
    r.add_argument("--export", metavar="DIR", help="write phys.bin and machine.json to DIR")
    r.add_argument("--why", action="store_true",
                   help="with several runs: list why each n/a cell is not valid input")

    d = sub.add_parser("dump", help="run a scenario, then print the page tables (ptdump style)")
    d.add_argument("scenario")
    d.add_argument("--arch", required=True)
    d.add_argument("--api", default="legacy", choices=API_NAMES)

    f = sub.add_parser("diff", help="side by side: a call-site pair (--pair), or the built-in "
                       "legacy and unified backends")
    f.add_argument("--pair", metavar="MODULE:LEGACY_FN,MODULE:UNIFIED_FN",
                   help="compare your own call sites: legacy f(k, mm, start, end) and unified "
                   "g(pt, mm, start, end); MODULE is importable or a .py path")
    f.add_argument("--arch", default="all", help="configuration name, or 'all' (default)")
    f.add_argument("--examples", type=int, default=100, help="examples per configuration")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes (default: the number of cores)")
    f.add_argument("--keep-going", action="store_true",
                   help="run every configuration, not only up to the first divergence")
    f.add_argument("--out", metavar="DIR", default=".",
                   help="where a divergence's reproducer is written (default: .)")
    f.add_argument("--replay", metavar="FILE",
                   help="run a reproducer written by a previous divergence, and nothing else")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command: an exit code, never a traceback (errors: one line on stderr)."""
    real = sys.stdout
    out = _GuardedOutput(real)
    sys.stdout = cast(TextIO, out)
    broken = False
    try:
        code = _main(argv)
        if not out.failed:
            try:
                out.flush()  # a full device may only fail here
            except OutputError as e:
                _err(f"error: {e}")
                code = EXIT_BAD_INPUT
            except BrokenPipeError:  # the reader went away (``| head``): not an error
                broken = True
    finally:
        sys.stdout = real
    if out.failed or broken:
        _discard_stdout(real)
    return code


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "arches":
            return cmd_arches(args.json)
        if args.command == "run":
            return cmd_run(args.scenario, args.arch, args.api, args.export, args.why)
        if args.command == "dump":
            return cmd_dump(args.scenario, args.arch, args.api)
        return cmd_diff(args)
    except CheckFailed as e:
        _err(f"check failed: {e}")
        return EXIT_FAIL
    except PtshimError as e:
        _err(f"error: {e}")
        return EXIT_BAD_INPUT
    except SystemExit as e:  # --help / --version
        return e.code if isinstance(e.code, int) else EXIT_OK
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _err(message: str) -> None:
    print("ptshim: " + " ".join(message.split()), file=sys.stderr)


# -- arches ----------------------------------------------------------------------------------


def arch_facts(name: str) -> dict[str, Any]:
    """What ``ptshim arches`` says about one configuration (booting its kernel for the
    folding facts)."""
    from legacy import boot

    k = boot(name)
    c = k.config
    init = k.init_mm  # run-time folding: x86-64's ptrs_per_p4d = 1, riscv's mm_p?d_folded
    folded = [
        lvl for lvl, flag, ptrs, run_time in (
            ("p4d", k.PAGETABLE_P4D_FOLDED, k.PTRS_PER_P4D, k.mm_p4d_folded(init)),
            ("pud", k.PAGETABLE_PUD_FOLDED, k.PTRS_PER_PUD, k.mm_pud_folded(init)),
            ("pmd", k.PAGETABLE_PMD_FOLDED, k.PTRS_PER_PMD, k.mm_pmd_folded(init)),
        ) if flag or ptrs == 1 or run_time
    ]
    return {
        "name": c.name,
        "family": c.family,
        "description": c.description,
        "levels": len(c.hw_levels),
        "hw_levels": [
            {"name": lv.name, "shift": lv.shift, "entries": lv.entries,
             "entry_size": lv.entry_size, "table_bytes": lv.table_bytes, "leaf": lv.leaf_ok}
            for lv in c.hw_levels
        ],
        "folded": folded,
        "page_size": c.page_size,
        "leaf_sizes": list(c.leaf_sizes),
        "word_bits": c.word_bits,
        "va_bits": c.va_bits,
        "phys_bits": c.phys_bits,
        "roots": list(c.roots),
        "endianness": c.endianness,
        "user_range": list(c.user_range),
        "kernel_range": list(c.kernel_range),
        "table_bytes": {
            "pgd": k.PTRS_PER_PGD * k.SIZEOF_PGD,
            "p4d": k.PTRS_PER_P4D * k.SIZEOF_P4D,
            "pud": k.PTRS_PER_PUD * k.SIZEOF_PUD,
            "pmd": k.PTRS_PER_PMD * k.SIZEOF_PMD,
            "pte": k.PTRS_PER_PTE * k.SIZEOF_PTE,
        },
    }


def _size(n: int) -> str:
    for unit in ("", "K", "M", "G", "T", "P"):
        if n < 1024 or n % 1024:
            return f"{n}{unit}"
        n //= 1024
    return f"{n}E"


def cmd_arches(as_json: bool) -> int:
    from legacy import arch_names

    facts = [arch_facts(n) for n in arch_names()]
    if as_json:
        print(json.dumps(facts, indent=1))
        return EXIT_OK
    head = ("name", "levels", "folded", "page", "leaves", "VA bits", "roots", "endian",
            "tables (bytes)")
    rows = [head]
    for f in facts:
        rows.append((
            f["name"],
            f"{f['levels']} " + "/".join(lv["name"] for lv in f["hw_levels"]),
            ",".join(f["folded"]) or "-",
            _size(f["page_size"]),
            ",".join(_size(s) for s in f["leaf_sizes"]),
            str(f["va_bits"]),
            ",".join(f["roots"]),
            f["endianness"],
            "/".join(str(lv["table_bytes"]) for lv in f["hw_levels"]),
        ))
    _table(rows)
    return EXIT_OK


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


# -- run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "FAIL", "n/a"
    detail: str


def run_one(scenario: Scenario, arch: str, api: str, export_dir: str | None = None
            ) -> tuple[Outcome, str]:
    """Run, verify, (export,) tear down.  Returns the outcome and a summary line.
    :class:`BadInput` (and unknown-arch) propagate; other failures become "FAIL"."""
    from ptshim.progress import ScenarioProgress
    from ptshim.session import Session

    s = Session(arch, api)
    s.validate(scenario)  # bad input for this configuration: raised before anything runs
    try:
        with ScenarioProgress(arch, len(scenario.ops), s.k.mem) as progress:
            run_ops(s, scenario, progress)
            progress.phase("verify")
            stats = s.verify()
            if export_dir is not None:
                from ptshim.export import export

                export(s, export_dir)
            progress.phase("teardown", stats.leaves)
            s.teardown()
    except BadInput:
        raise
    except PtshimError as e:
        return Outcome("FAIL", str(e)), f"{arch}: {scenario.name}: FAIL: {e}"
    summary = f"{arch}: {scenario.name}: ok ({api}): {stats.describe()}; teardown clean"
    return Outcome("ok", f"{stats.tables}t/{stats.pgtables_bytes}B"), summary


def run_ops(s: Session, scenario: Scenario, progress: ScenarioProgress) -> None:
    """Apply the ops of ``scenario``, telling ``progress`` about each."""
    from ptshim.scenario import MapOp

    for i, op in enumerate(scenario.ops):
        leaves = op.size // (op.page_size or s.limits.page_size) if isinstance(op, MapOp) else 0
        progress.op(i, op, leaves)
        s.apply(op)


def cmd_run(path: str, arch: str, api: str, export_dir: str | None, why: bool = False
            ) -> int:
    from arches import get_config
    from legacy import arch_names

    if api not in BACKENDS:
        raise BadInput(f"--api {api}: the {api} backend is not available yet "
                       f"(available: {', '.join(BACKENDS)})")
    arches = arch_names() if arch == "all" else [arch]
    for a in arches:
        get_config(a)  # UnknownArch with the list of names
    paths = scenario_paths(path)
    scenarios = [load_scenario(p) for p in paths]
    if len(arches) == 1 and len(scenarios) == 1 and not Path(path).is_dir():
        outcome, summary = run_one(scenarios[0], arches[0], api, export_dir)
        if outcome.status == "FAIL":
            raise CheckFailed(outcome.detail)
        print(summary)
        return EXIT_OK
    if export_dir is not None:
        raise BadInput("--export needs one scenario file and one --arch")
    return run_matrix(scenarios, arches, api, why)


def run_matrix(scenarios: list[Scenario], arches: list[str], api: str,
               why: bool = False) -> int:
    """Every scenario on every configuration: one table, failures listed below it, the
    reasons of the n/a cells with ``why``.  A scenario that is valid input for none of the
    configurations is bad input (exit 2, naming why), not a column of n/a."""
    rows: list[list[str]] = [["arch"] + [s.name for s in scenarios]]
    failures: list[str] = []
    reasons: dict[tuple[str, str], str] = {}
    for a in arches:
        row = [a]
        for sc in scenarios:
            try:
                outcome, _ = run_one(sc, a, api)
            except BadInput as e:
                outcome = Outcome("n/a", "")
                reasons[a, sc.name] = " ".join(str(e).split())
            if outcome.status == "FAIL":
                failures.append(f"{a}: {sc.name}: {' '.join(outcome.detail.split())}")
            row.append(outcome.status + (f" {outcome.detail}" if outcome.status == "ok" else ""))
        rows.append(row)
    from legacy import arch_names

    for sc in scenarios:
        if set(arches) >= set(arch_names()) and all((a, sc.name) in reasons for a in arches):
            first = reasons[arches[0], sc.name]
            raise BadInput(f"scenario {sc.name} is not valid input for any configuration "
                           f"({arches[0]}: {first})")
    _table(rows)
    print("cells: ok <page-table frames charged to the process mm>t/<pgtables_bytes>B; "
          "n/a = the scenario is not valid input for that configuration"
          + ("" if why else " (--why lists the reasons)"))
    if why:
        for (a, name), reason in reasons.items():
            print(f"n/a {a}: {name}: {reason}")
    for f in failures:
        print("FAIL " + f)
    total = len(arches) * len(scenarios)
    ok = sum(c.startswith("ok") for r in rows[1:] for c in r[1:])
    print(f"{ok}/{total} ok, {len(failures)} FAIL, {total - ok - len(failures)} n/a "
          f"(api {api})")
    return EXIT_FAIL if failures else EXIT_OK


# -- dump, diff --------------------------------------------------------------------------


def cmd_dump(path: str, arch: str, api: str) -> int:
    from ptshim.dump import dump_session
    from ptshim.session import Session

    if Path(path).is_dir():
        raise BadInput(f"{path}: dump takes one scenario file, not a directory")
    scenario = load_scenario(path)
    from ptshim.progress import ScenarioProgress

    s = Session(arch, api)
    s.validate(scenario)
    try:
        with ScenarioProgress(arch, len(scenario.ops), s.k.mem) as progress:
            run_ops(s, scenario, progress)
        print(dump_session(s), end="")
        s.verify()
        s.teardown()
    except (BadInput, OutputError):
        raise
    except PtshimError as e:
        # As ``run`` reports it (run_one: a FAIL): the scenario was valid input and the
        # machine failed it -- an op's -ENOMEM, a stale TLB entry or a lock left held at
        # syscall exit -- exit 1 with the same one line.
        raise CheckFailed(str(e)) from None
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    """Delegates to ``ptshim.diff.main(args)`` (the differential harness's module)."""
    import importlib

    try:
        harness = importlib.import_module("ptshim.diff")
    except ModuleNotFoundError as e:
        if e.name != "ptshim.diff":
            raise
        raise BadInput("ptshim diff: the differential harness is not available yet") from None
    return int(harness.main(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
