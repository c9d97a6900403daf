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

from legacy.mm.ptdump import ptdump_walk_pgd
from legacy.ptdump import PgState, addr_marker, ptdump_range
from ptshim.session import Session
from unified.mm.ptdump import ptdump_walk_pgd as unified_ptdump_walk_pgd
from unified.pagetables import PageTables

APIS = ("legacy", "unified")


def dump_state(s: Session, api: str | None = None) -> PgState:
    """Walk the session's tables with ``api`` (default: the session's) into a fresh
    listing state of the session's kernel."""
    api = s.api if api is None else api
    k = s.k
    user = ptdump_range(*s.config.user_range)
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
