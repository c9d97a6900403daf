"""Classic arm's part of ptdump: ``arch/arm/mm/dump.c`` (``pte_bits``, ``section_bits`` for
``__LINUX_ARM_ARCH__ >= 6``, ``pg_level``, ``get_domain_name``, ``note_page``; Linux v6.18),
a base of :class:`~legacy.arm.pgtable_2level.ArmKernel`.

A line is the range, the size (``%9lu%c`` in K/M/G...), the level name (``PGD`` for a
section: ``CONFIG_PGTABLE_LEVELS`` is 2; ``PTE``), the domain of the first-level descriptor
(``KERNEL``, ``USER   ``, ``IO     ``, ``VECTORS``), then the flag columns::

    0x00400000-0x00404000          16K PTE USER    USR ro NX SHD MEM/CACHED/WBWA

PTE columns come from the *Linux* pte (``L_PTE_USER``, ``L_PTE_RDONLY``, ``L_PTE_XN``,
``L_PTE_SHARED``, the memory type), section columns from the hardware descriptor (AP, XN,
S).  Only runs with a non-zero protection are printed.  A run also breaks when the domain
changes.

dump.c walks the tables itself; here the generic walk (:mod:`legacy.mm.ptdump`, which
sees a pmd's first word only) feeds ``note_page``, which adds the second 1M section of a
pgd entry as dump.c's ``walk_pmd`` does.  The domain of a pte is taken from the pmd the walk
last reported (``effective_prot`` at level 3), which is the pte's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from legacy.generic import GenericKernel
from legacy.ptdump import PgState, addr_marker, ptdump_range

# Linux pte bits and hardware section bits (the ptdump module must not import the kernel
# class that inherits it; the values are pgtable-2level.h's and pgtable-2level-hwdef.h's)
_L_PTE_RDONLY = 1 << 7
_L_PTE_USER = 1 << 8
_L_PTE_XN = 1 << 9
_L_PTE_SHARED = 1 << 10
_L_PTE_MT_MASK = 0x0F << 2
_PMD_SECT_XN = 1 << 4
_PMD_SECT_AP_WRITE = 1 << 10
_PMD_SECT_AP_READ = 1 << 11
_PMD_SECT_APX = 1 << 15
_PMD_SECT_S = 1 << 16
_AP_MASK = _PMD_SECT_APX | _PMD_SECT_AP_READ | _PMD_SECT_AP_WRITE
_PMD_TYPE_SECT = 2
_SECTION_SIZE = 1 << 20


@dataclass(frozen=True)
class prot_bits:
    mask: int
    val: int
    set: str
    clear: str | None = None


PTE_BITS = (
    prot_bits(_L_PTE_USER, _L_PTE_USER, "USR", "   "),
    prot_bits(_L_PTE_RDONLY, _L_PTE_RDONLY, "ro", "RW"),
    prot_bits(_L_PTE_XN, _L_PTE_XN, "NX", "x "),
    prot_bits(_L_PTE_SHARED, _L_PTE_SHARED, "SHD", "   "),
    prot_bits(_L_PTE_MT_MASK, 0x00 << 2, "SO/UNCACHED"),
    prot_bits(_L_PTE_MT_MASK, 0x01 << 2, "MEM/BUFFERABLE/WC"),
    prot_bits(_L_PTE_MT_MASK, 0x02 << 2, "MEM/CACHED/WT"),
    prot_bits(_L_PTE_MT_MASK, 0x03 << 2, "MEM/CACHED/WBRA"),
    prot_bits(_L_PTE_MT_MASK, 0x06 << 2, "MEM/MINICACHE"),
    prot_bits(_L_PTE_MT_MASK, 0x07 << 2, "MEM/CACHED/WBWA"),
    prot_bits(_L_PTE_MT_MASK, 0x04 << 2, "DEV/SHARED"),
    prot_bits(_L_PTE_MT_MASK, 0x0C << 2, "DEV/NONSHARED"),
    prot_bits(_L_PTE_MT_MASK, 0x09 << 2, "DEV/WC"),
    prot_bits(_L_PTE_MT_MASK, 0x0B << 2, "DEV/CACHED"),
)
"""``pte_bits[]`` (classic: with MINICACHE and DEV/NONSHARED)."""

SECTION_BITS = (
    prot_bits(_AP_MASK, _PMD_SECT_APX | _PMD_SECT_AP_WRITE, "    ro"),
    prot_bits(_AP_MASK, _PMD_SECT_AP_WRITE, "    RW"),
    prot_bits(_AP_MASK, _PMD_SECT_AP_READ, "USR ro"),
    prot_bits(_AP_MASK, _PMD_SECT_AP_READ | _PMD_SECT_AP_WRITE, "USR RW"),
    prot_bits(_PMD_SECT_XN, _PMD_SECT_XN, "NX", "x "),
    prot_bits(_PMD_SECT_S, _PMD_SECT_S, "SHD", "   "),
)
"""``section_bits[]`` for ``__LINUX_ARM_ARCH__ >= 6`` without LPAE."""

DOMAIN_NAMES = {0: "KERNEL ", 1: "USER   ", 2: "IO     ", 3: "VECTORS"}
"""``get_domain_name`` (``PMD_DOMAIN(DOMAIN_KERNEL)`` ... ``DOMAIN_VECTORS``)."""


def _mask(bits: tuple[prot_bits, ...]) -> int:
    m = 0
    for b in bits:
        m |= b.mask
    return m


def dump_prot(prot: int, bits: tuple[prot_bits, ...]) -> str:
    """``dump_prot``: for each entry ``set`` when ``(prot & mask) == val``, else ``clear``
    (nothing when there is none), each after a space."""
    out = ""
    for b in bits:
        s = b.set if prot & b.mask == b.val else b.clear
        if s is not None:
            out += " " + s
    return out


def domain_name(pmdval: int) -> str:
    return DOMAIN_NAMES.get((pmdval >> 5) & 0xF, "unknown")


class ArmPgState(PgState):
    """``struct pg_state`` and ``note_page`` of arch/arm/mm/dump.c (no W+X check)."""

    def __init__(self, k: GenericKernel, ranges: list[ptdump_range],
                 markers: list[addr_marker]) -> None:
        super().__init__(k, ranges, markers)
        self.current_domain: str | None = None
        self._pmd = 0

    def effective_prot(self, level: int, val: int) -> None:
        if level == 3:
            self._pmd = val

    def _domain(self, level: int, val: int) -> str | None:
        if level == 3:
            return domain_name(val)
        if level == 4:
            return domain_name(self._pmd)
        return None

    def note_page(self, addr: int, level: int, val: int) -> None:
        """dump.c ``walk_pmd``: after a pmd noted whole (none or a section), the second
        section of the pair, ``pmd[1]``, is noted on its own when it is one (``if
        (SECTION_SIZE < PMD_SIZE && pmd_leaf(pmd[1]))``) -- read here from the mm being
        walked."""
        self._note(addr, level, val)
        # a hole above the pte level is one 2M pgd entry here (every level above is folded)
        if 0 <= level <= 3 and not addr & _SECTION_SIZE:
            k = self.k
            mm = self.mm if self.mm is not None else k.init_mm
            second = k.mem.read(k.pmd_off(mm, addr).pa + 4, 4)
            if second & _PMD_TYPE_SECT:
                self._note((addr + _SECTION_SIZE) & k.ULONG_MASK, 3, second)

    def _note(self, addr: int, level: int, val: int) -> None:
        k = self.k
        prot = val & k.ptdump_prot_mask(level) if level >= 0 else 0
        domain = self._domain(level, val)
        if self.level == -1:
            if level == -1:
                return  # nothing was noted
            self.level, self.current_prot, self.start_address = level, prot, addr
            self.current_domain = domain
            self.print_marker()
            return
        flush = level == -1
        nxt = self.next_marker_start()
        if (flush or prot != self.current_prot or level != self.level
                or domain != self.current_domain or (nxt is not None and addr >= nxt)):
            end = self.flush_address if flush else addr
            if self.current_prot:
                delta = ((end - self.start_address) & k.ULONG_MASK) >> 10
                units = "KMGTPE"
                unit = 0
                while not delta & 1023 and delta and unit + 1 < len(units):
                    delta >>= 10
                    unit += 1
                line = (f"0x{self.start_address:08x}-0x{end:08x}   "
                        f"{delta:9d}{units[unit]} {k.ptdump_level_name(self.level)}")
                if self.current_domain:
                    line += " " + self.current_domain
                line += k.ptdump_flags(self.level, self.current_prot)
                self.lines.append(line)
            while not flush and nxt is not None and addr >= nxt:
                self.marker += 1
                self.print_marker()
                nxt = self.next_marker_start()
            self.start_address, self.current_prot = addr, prot
            self.current_domain, self.level = domain, level


class ArmPtdump(GenericKernel):
    """The kernel's ptdump hook on classic arm (see :class:`legacy.ptdump.PtdumpGeneric`)."""

    PTDUMP_LEVEL_NAMES = ("", "", "", "PGD", "PTE")
    """``pg_level[].name``: the pmd level is "PGD" (``CONFIG_PGTABLE_LEVELS`` = 2); the
    levels above have no name and no bits."""

    def _ptdump_bits(self, level: int) -> tuple[prot_bits, ...]:
        return SECTION_BITS if level == 3 else PTE_BITS if level == 4 else ()

    def ptdump_prot_mask(self, level: int) -> int:
        """``pg_level[level].mask``: the OR of its bits' masks (0 above the pmd)."""
        return _mask(self._ptdump_bits(level))

    def ptdump_flags(self, level: int, val: int) -> str:
        return dump_prot(val & self.ptdump_prot_mask(level), self._ptdump_bits(level))

    def ptdump_pg_state(self, ranges: list[ptdump_range],
                        markers: list[addr_marker]) -> PgState:
        return ArmPgState(self, ranges, markers)


__all__ = ["PTE_BITS", "SECTION_BITS", "ArmPgState", "ArmPtdump", "dump_prot", "prot_bits"]
