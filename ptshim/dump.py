"""``ptshim dump``: the session's page tables in the kernel's ptdump style.

The listing is produced by the legacy call site :mod:`legacy.mm.ptdump` (``mm/ptdump.c`` +
the x86 ``note_page`` of ``arch/x86/mm/dump_pagetables.c``) over two areas with a marker
each, ``---[ User Space ]---`` (the configuration's user range) and ``---[ Kernel Space
]---`` (its kernel range).  Where one root serves both halves (x86) both are read through
the process's pgd, as x86's ``current_kernel`` dump does; with a separate kernel root
(arm64 TTBR1) the kernel half is read from ``init_mm``.
"""

from __future__ import annotations

from legacy.mm.ptdump import addr_marker, pg_state_for, ptdump_range, ptdump_walk_pgd
from ptshim.session import Session


def dump_session(s: Session) -> str:
    k = s.k
    user = ptdump_range(*s.config.user_range)
    kernel = ptdump_range(*s.config.kernel_range)
    markers = [addr_marker(user.start, "User Space"), addr_marker(kernel.start, "Kernel Space")]
    st = pg_state_for(k, [user, kernel], markers)
    if k.SEPARATE_KERNEL_ROOT:
        st.range = [user]
        ptdump_walk_pgd(k, st, s.mm, flush=False)
        st.range = [kernel]
        ptdump_walk_pgd(k, st, k.init_mm)
    else:
        ptdump_walk_pgd(k, st, s.mm)
    header = (f"# {s.config.name}: page tables after {s.ops_done} ops "
              f"(mm pgd {s.mm.pgd.pa:#x}, init_mm pgd {k.init_mm.pgd.pa:#x})\n")
    return header + st.text()
