"""Direct probes: the call sites driven with inputs the scenario validator refuses but the
kernel handles, on a legacy and a unified kernel side by side.

Scenarios never map over an existing kernel leaf, never end a range at the very top of the
address space (``end == 0``), never pass an empty or reversed range; the kernel's call sites
still define what happens then -- an error code, a ``BUG()`` (here :class:`BadInput`), or a
quiet success.  Each probe runs the same steps through the legacy call sites
(:func:`ptshim.backends.legacy_call_sites`) and through the unified ports
(:func:`ptshim.backends_unified.unified_call_sites`), each on a fresh kernel, and both must
fail or succeed identically and leave the same machine (:mod:`ptshim.compare`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from legacy import GenericKernel, boot, mm_struct, pgprot_t
from legacy.mm_types import mmap_write_locked
from ptshim.backends import CallSites, legacy_call_sites, user_vm_flags
from ptshim.compare import compare, snapshot_machine
from unified import PageTables

__all__ = ["PROBES", "Probe", "ProbeResult", "run_probes"]

Step = Callable[[GenericKernel, CallSites, mm_struct], object]


@dataclass(frozen=True)
class Probe:
    name: str
    steps: tuple[tuple[str, Step], ...]
    """(label, step); a step returns the call site's result, or raises."""


@dataclass(frozen=True)
class ProbeResult:
    arch: str
    probe: str
    divergence: str | None
    outcomes: tuple[str, ...]
    """The legacy outcome of each step (what both agreed on, when they agree)."""


def _kva(k: GenericKernel, top: bool = False) -> int:
    """A PMD-aligned kernel address with room for a few huge leaves (or the last PMD below
    the top of the address space)."""
    lo, hi = k.config.kernel_range
    if top:
        return (hi - k.PMD_SIZE) & k.ULONG_MASK
    span = k.PMD_SIZE * 4
    return -(-(lo + span) // span) * span


def _pa(k: GenericKernel) -> int:
    return 1 << 30


def _shift(size: int) -> int:
    return size.bit_length() - 1


def _vmap(huge: bool, top: bool = False, end_zero: bool = False, again: bool = False,
          pa_shift: int = 0) -> Step:
    def step(k: GenericKernel, cs: CallSites, mm: mm_struct) -> object:
        va = _kva(k, top)
        size = k.PMD_SIZE
        end = 0 if end_zero else (va + size) & k.ULONG_MASK
        shift = _shift(k.PMD_SIZE) if huge and k.HAVE_ARCH_HUGE_VMAP else k.PAGE_SHIFT
        return cs.vmap_range(k, va, end, _pa(k) + pa_shift, k.PAGE_KERNEL, shift)
    return step


def _vunmap(top: bool = False, end_zero: bool = False, reversed_: bool = False) -> Step:
    def step(k: GenericKernel, cs: CallSites, mm: mm_struct) -> object:
        va = _kva(k, top)
        end = 0 if end_zero else (va + k.PMD_SIZE) & k.ULONG_MASK
        if reversed_:
            va, end = end, va
        cs.vunmap_range(k, va, end)
        k.flush_tlb_kernel_range(min(va, end), max(va, end))
        return None
    return step


def _set_memory(top: bool = False, end_zero: bool = False) -> Step:
    def step(k: GenericKernel, cs: CallSites, mm: mm_struct) -> object:
        va = _kva(k, top)
        end = 0 if end_zero else (va + k.PMD_SIZE) & k.ULONG_MASK
        return cs.change_memory_common(k, va, end, k.PAGE_KERNEL_RO)
    return step


def _munmap(start: Callable[[GenericKernel], int], length: Callable[[GenericKernel], int]
            ) -> Step:
    def step(k: GenericKernel, cs: CallSites, mm: mm_struct) -> object:
        with mmap_write_locked(mm):
            return cs.do_munmap(k, mm, start(k), length(k))
    return step


def _mmap_top(k: GenericKernel, cs: CallSites, mm: mm_struct) -> object:
    """A mapping ending exactly at TASK_SIZE (the top of the user range)."""
    size = 4 * k.PAGE_SIZE
    va = k.TASK_SIZE - size
    with mmap_write_locked(mm):
        addr = cs.mmap_region(k, mm, va, size, user_vm_flags("rw"), 0x4242)
        vma = cs.find_vma(k, mm, va)
        assert vma is not None
        return (addr, cs.remap_pfn_range(k, vma, va, 0x4242, size,
                                         pgprot_t(vma.vm_page_prot)))


def _protect_top(k: GenericKernel, cs: CallSites, mm: mm_struct) -> object:
    size = 4 * k.PAGE_SIZE
    va = k.TASK_SIZE - size
    with mmap_write_locked(mm):
        vma = cs.find_vma(k, mm, va)
        assert vma is not None
        return cs.change_protection(k, vma, va, k.TASK_SIZE, pgprot_t(k.vm_get_page_prot(1)))


def _protect_empty(k: GenericKernel, cs: CallSites, mm: mm_struct) -> object:
    va = k.TASK_SIZE - 4 * k.PAGE_SIZE
    with mmap_write_locked(mm):
        vma = cs.find_vma(k, mm, va)
        assert vma is not None
        return cs.change_protection(k, vma, va, va, pgprot_t(k.vm_get_page_prot(1)))


PROBES: tuple[Probe, ...] = (
    Probe("vmap over existing base pages", (
        ("vmap pages", _vmap(False)), ("vmap pages again", _vmap(False, pa_shift=1 << 21)),
    )),
    Probe("huge vmap over a PTE table", (
        ("vmap pages", _vmap(False)), ("vunmap", _vunmap()), ("vmap huge", _vmap(True)),
    )),
    Probe("vmap over an existing huge leaf", (
        ("vmap huge", _vmap(True)), ("vmap huge again", _vmap(True, pa_shift=1 << 22)),
        ("vmap pages over it", _vmap(False)),
    )),
    Probe("kernel ranges ending at the top (end == 0)", (
        ("vmap to the top", _vmap(False, top=True, end_zero=True)),
        ("vmap below the top", _vmap(False, top=True)),
        ("set_memory to the top", _set_memory(top=True, end_zero=True)),
        ("vunmap to the top", _vunmap(top=True, end_zero=True)),
    )),
    Probe("reversed and empty kernel ranges", (
        ("vmap pages", _vmap(False)), ("vunmap reversed", _vunmap(reversed_=True)),
        ("set_memory", _set_memory()),
    )),
    Probe("user range at TASK_SIZE", (
        ("mmap at the top", _mmap_top), ("mprotect to the top", _protect_top),
        ("mprotect empty", _protect_empty),
        ("munmap past TASK_SIZE", _munmap(lambda k: k.TASK_SIZE - k.PAGE_SIZE,
                                          lambda k: 2 * k.PAGE_SIZE)),
        ("munmap unaligned", _munmap(lambda k: k.TASK_SIZE - 4 * k.PAGE_SIZE + 1,
                                     lambda k: k.PAGE_SIZE)),
        ("munmap zero length", _munmap(lambda k: k.TASK_SIZE - 4 * k.PAGE_SIZE,
                                       lambda k: 0)),
        ("munmap to the top", _munmap(lambda k: k.TASK_SIZE - 4 * k.PAGE_SIZE,
                                      lambda k: 4 * k.PAGE_SIZE)),
    )),
)


def _outcome(fn: Callable[[], object]) -> str:
    try:
        r = fn()
    except Exception as e:  # any failure is an outcome to compare
        return f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
    return f"returned {r!r}"


def _same(a: str, b: str) -> bool:
    """Equal results, or errors of the same class (messages name API-specific details)."""
    if a == b:
        return True
    return (not a.startswith("returned") and not b.startswith("returned")
            and a.split(":")[0] == b.split(":")[0])


def run_probe(arch: str, probe: Probe) -> ProbeResult:
    """Run ``probe`` on a legacy and a unified kernel of ``arch``, comparing after each
    step (outcome, then the machines, including the end-of-call-site checks)."""
    from ptshim.backends_unified import unified_call_sites

    sides = []
    for api in ("legacy", "unified"):
        k = boot(arch)
        mm = k.mm_alloc()
        assert mm is not None
        cs = legacy_call_sites() if api == "legacy" else unified_call_sites(PageTables(k))
        sides.append((k, mm, cs))
    esize = max(sides[0][0].SIZEOF_PTE, sides[0][0].SIZEOF_PGD)
    outcomes: list[str] = []
    for label, step in probe.steps:
        got = []
        for k, mm, cs in sides:
            def run(k: GenericKernel = k, mm: mm_struct = mm, cs: CallSites = cs,
                    step: Step = step, label: str = label) -> object:
                r = step(k, cs, mm)
                k.syscall_exit(label)
                return r
            got.append(_outcome(run))
        outcomes.append(got[0])
        if not _same(got[0], got[1]):
            return ProbeResult(arch, probe.name, f"{label}: legacy {got[0]}; unified {got[1]}",
                               tuple(outcomes))
        d = compare(snapshot_machine(sides[0][0], [sides[0][1]]),
                    snapshot_machine(sides[1][0], [sides[1][1]]), esize)
        if d is not None:
            return ProbeResult(arch, probe.name, f"{label}: {d}", tuple(outcomes))
    return ProbeResult(arch, probe.name, None, tuple(outcomes))


def run_probes(arch: str) -> list[ProbeResult]:
    """Every probe of :data:`PROBES` on ``arch``."""
    return [run_probe(arch, p) for p in PROBES]
