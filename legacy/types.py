"""Entry values, entry pointers and protections: the C types of the legacy API.

Values (``pte_t`` ... ``pgd_t``, ``pgprot_t``) are distinct ``NewType``s over ``int``: free at
run time, distinct for ``mypy --strict``.  An entry value may be wider than a machine word
(64-bit entries on i386-pae; a two-word ``pgd_t`` on 32-bit ARM): a Python int holds it whole.

Pointers (``pte_t *`` ... ``pgd_t *``) are small objects holding the physical address of the
entry and the size of the pointed-to type, so ``ptr + 1`` steps one entry as in C, and a cast
between levels (``(pud_t *)p4d`` in the folding headers) keeps the address.  The emulated
kernel's direct map is the identity: a table's "virtual" address is its physical address.
"""

from __future__ import annotations

from typing import NewType, Self

pte_t = NewType("pte_t", int)
pmd_t = NewType("pmd_t", int)
pud_t = NewType("pud_t", int)
p4d_t = NewType("p4d_t", int)
pgd_t = NewType("pgd_t", int)
pgprot_t = NewType("pgprot_t", int)


_new = object.__new__


class EntryPtr:
    """``X_t *``: the address of one entry in a page table, and the entry size."""

    __slots__ = ("pa", "size")
    level_name = "entry"

    def __init__(self, pa: int, size: int) -> None:
        self.pa = pa
        self.size = size

    def __add__(self, n: int) -> Self:
        # (built without __init__: ``pte + 1`` runs once per entry of every table loop)
        p = _new(type(self))
        p.pa = self.pa + n * self.size
        p.size = self.size
        return p

    def __sub__(self, n: int) -> Self:
        return self + -n

    def index_from(self, base: Self) -> int:
        """``self - base`` in C: how many entries ``self`` lies past ``base``."""
        return (self.pa - base.pa) // self.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntryPtr) and type(other) is type(self) and other.pa == self.pa

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pa))

    def __repr__(self) -> str:
        return f"({self.level_name}_t *){self.pa:#x}"


class PgdPtr(EntryPtr):
    __slots__ = ()
    level_name = "pgd"


class P4dPtr(EntryPtr):
    __slots__ = ()
    level_name = "p4d"


class PudPtr(EntryPtr):
    __slots__ = ()
    level_name = "pud"


class PmdPtr(EntryPtr):
    __slots__ = ()
    level_name = "pmd"


class PtePtr(EntryPtr):
    __slots__ = ()
    level_name = "pte"


pgtable_t = PtePtr
"""``pgtable_t``: the kernel's handle of a PTE table (its first entry here)."""
