"""What two machines are compared on after every op of a side-by-side run.

:func:`snapshot` takes the observable state of one session's machine; :func:`compare` says,
in words, the first way two snapshots differ (None when they agree).
"""

from __future__ import annotations

from ptshim.session import Session

__all__ = ["State", "compare", "snapshot"]


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


