"""LoongArch's part of ptdump: none.  There is no ``arch/loongarch/mm/ptdump.c`` (none in
the stored tree's ``arch/loongarch/mm/``), so the listing is :mod:`legacy.ptdump`'s generic
one."""

from __future__ import annotations

from legacy.generic import GenericKernel


class LoongarchPtdump(GenericKernel):
    """The generic ptdump hook (see :class:`legacy.ptdump.PtdumpGeneric`)."""


__all__ = ["LoongarchPtdump"]
