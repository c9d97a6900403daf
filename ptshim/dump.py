"""``ptshim dump``: the session's page tables in the kernel's ptdump style.

The listing is the architecture's (``k.ptdump_pg_state``: x86's ``note_page`` of
``arch/x86/mm/dump_pagetables.c``, arm64's of ``arch/arm64/mm/ptdump.c``, see
:mod:`legacy.ptdump`) over two areas with a marker each, ``---[ User Space ]---`` (the
configuration's user range) and ``---[ Kernel Space ]---`` (its kernel range).  The walk
feeding it is the session's API:

- ``legacy``: the legacy call site :mod:`legacy.mm.ptdump` (``mm/ptdump.c`` over
  ``walk_page_range_debug``).  Where one root serves both halves (x86) both are read
  through the process's pgd, as x86's ``current_kernel`` dump does; with a separate kernel
  root (arm64 TTBR1) the kernel half is read from ``init_mm``.
- ``unified``: :mod:`unified.mm.ptdump`, the same walk through the unified API
  (``walk_range`` from ``PageTables.root_for``, which picks the same roots).
"""

from __future__ import annotations

from legacy.generic import GenericKernel
from legacy.mm.ptdump import ptdump_walk_pgd
from legacy.mm_types import mm_struct
from legacy.ptdump import PgState, addr_marker, ptdump_range
from ptshim.session import Session
from unified.mm.ptdump import ptdump_walk_pgd as unified_ptdump_walk_pgd
from unified.pagetables import PageTables

APIS = ("legacy", "unified")


def top_table_span(k: GenericKernel, mm: mm_struct) -> int:
    """What ``mm``'s top table translates: ``PTRS_PER_X << X_SHIFT`` of the lowest level
    folded into it (``mm_p4d_folded``...) that has more than one entry.  The user walk stops
    there: past it ``pgd_offset`` wraps (s390: a 3-level mm spans 4 TiB, ``asce_limit``)."""
    group = [("PGD", "PGDIR")]
    for name, folded in (("P4D", k.mm_p4d_folded), ("PUD", k.mm_pud_folded),
                         ("PMD", k.mm_pmd_folded)):
        if not folded(mm):
            break
        group.append((name, name))
    ptrs, shift = next((getattr(k, f"PTRS_PER_{n}"), getattr(k, f"{s}_SHIFT"))
                       for n, s in reversed(group) if getattr(k, f"PTRS_PER_{n}") > 1)
    return int(ptrs) << int(shift)


def dump_state(s: Session, api: str | None = None) -> PgState:
    """Walk the session's tables with ``api`` (default: the session's) into a fresh
    listing state of the session's kernel."""
    api = s.api if api is None else api
    k = s.k
    start, end = s.config.user_range
    user = ptdump_range(start, min(end, top_table_span(k, s.mm)))
    kernel = ptdump_range(*s.config.kernel_range)
    markers = [addr_marker(user.start, "User Space"), addr_marker(kernel.start, "Kernel Space")]
    st = k.ptdump_pg_state([user, kernel], markers)
    if api == "unified":
        unified_ptdump_walk_pgd(PageTables(k), st, s.mm)
    elif api != "legacy":
        raise ValueError(f"unknown api {api!r} (one of {', '.join(APIS)})")
    elif k.SEPARATE_KERNEL_ROOT:
        st.range, st.mm = [user], s.mm
        ptdump_walk_pgd(k, st, s.mm, flush=False)
        st.range, st.mm = [kernel], k.init_mm
        ptdump_walk_pgd(k, st, k.init_mm)
    else:
        st.mm = s.mm
        ptdump_walk_pgd(k, st, s.mm)
    return st


def dump_text(s: Session, api: str | None = None) -> str:
    """The listing alone (no header line)."""
    return dump_state(s, api).text()


def dump_session(s: Session, api: str | None = None) -> str:
    k = s.k
    header = (f"# {s.config.name}: page tables after {s.ops_done} ops "
              f"(mm pgd {s.mm.pgd.pa:#x}, init_mm pgd {k.init_mm.pgd.pa:#x})\n")
    return header + dump_text(s, api)
