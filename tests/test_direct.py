"""Direct probes (ptshim/direct.py): the call sites with inputs the scenario validator
refuses but the kernel handles; legacy and unified must fail or succeed identically."""

from __future__ import annotations

import pytest

import ptshim.backends_unified as bu
import unified.mm.protect as uprotect
from ptshim.direct import PROBES, run_probe, run_probes
from tests.conftest import ARCH_NAMES


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_every_probe_agrees(arch: str) -> None:
    results = run_probes(arch)
    assert len(results) == len(PROBES)
    assert [r.divergence for r in results if r.divergence] == []
    top = next(r for r in results if "end == 0" in r.probe)
    # vmap_range(addr, 0) is the kernel's BUG_ON(addr >= end); set_memory -EINVAL.
    assert top.outcomes[0].startswith("BadInput: vmap_range: empty range")
    assert top.outcomes[2] == "returned -22"


def test_a_port_that_walks_to_the_top_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A set_memory port that treats ``end == 0`` as "the top" (as the unified walk can)
    instead of failing as walk_kernel_page_table_range does."""
    original = uprotect.set_memory_prot

    def set_memory_prot(pt, start, end, newprot):  # type: ignore[no-untyped-def]
        if start >= end:
            return 0  # planted: an end that wrapped to 0 is "nothing to do"
        return original(pt, start, end, newprot)

    monkeypatch.setattr(uprotect, "set_memory_prot", set_memory_prot)
    monkeypatch.setattr(bu, "set_memory_prot", set_memory_prot)
    probe = next(p for p in PROBES if "end == 0" in p.name)
    r = run_probe("x86_64", probe)
    assert r.divergence is not None
    assert r.divergence.startswith("set_memory to the top: legacy returned -22; unified")
