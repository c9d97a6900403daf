"""An independent MMU for cross-checking exports: the x86 CPU of Unicorn (QEMU's TCG).

``ptshim run … --export DIR`` writes page tables our own walkers (``arches/``) read back.
This module loads the same bytes into an emulated CPU that nobody on this project wrote --
Unicorn 2's x86 CPU with ``UC_TLB_CPU``, i.e. QEMU's own page walker -- and asks it what a
virtual address translates to:

- the exported frames are mapped at their physical addresses, and CR0/CR3/CR4/IA32_EFER
  are set to the exported ``registers`` (plus CR4.SMAP, see below);
- a probe executes a one-byte load (``mov al, [rbx]``), store (``mov [rbx], al``) or a jump
  to the address at CPL 0.  Nothing but the page tables is mapped, so a load that
  translates ends in Unicorn's "unmapped memory" hook, which reports the *physical* address
  QEMU's walk produced; a load that does not translate raises #PF (or #GP for a
  non-canonical address), seen by the interrupt hook;
- writable = the store does not fault (CR0.WP is set, so read-only pages fault at CPL 0
  too); executable = the jump does not fault (EFER.NXE); user = with CR4.SMAP set, a load
  with EFLAGS.AC clear faults on a user page and not on a supervisor page.

The probes need code at a mapped virtual address: :class:`UnicornX86Mmu` adds one page of
its own ("the harness") under a *non-present* entry of the exported tables (in Unicorn's
copy only), in physical memory no frame and no mapping uses.  Its VA span,
:attr:`UnicornX86Mmu.harness_span`, is the span of that one entry; callers must not probe
inside it.

Configurations: x86_64 (4-level), x86_64-la57 (5-level: the Icelake-Server model has LA57),
i386 (2-level, PSE) and i386-pae.  Limits: QEMU 5.0 TCG (Unicorn 2.1) gives these CPU
models 40 physical address bits -- a translation to a PA at or above 2^40 faults (reserved
bits).  A translation that lands in an exported frame (a mapping of a page-table page) reads
memory instead of reporting a PA: :meth:`UnicornX86Mmu.probe` raises :class:`Ambiguous`.

arm64 is not supported: Unicorn 2.1.4's AArch64 walker takes a prefetch abort on every
stage-1 walk that starts at level 0 (T0SZ <= 24 with a 4K granule, i.e. every 48-bit VA
configuration), whatever the tables hold; 39-bit (level-1 start) walks work.  It also has
no FEAT_HAFDBS, so TCR_EL1.HD's clean-writable (DBM) pages would read as read-only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

_uc: Any
_x86: Any
try:  # optional dependency
    import unicorn as _uc
    from unicorn import x86_const as _x86
except ImportError:  # pragma: no cover - depends on the environment
    _uc = None
    _x86 = None

IA32_EFER = 0xC0000080
CR4_LA57 = 1 << 12
CR4_SMAP = 1 << 21
EFLAGS_AC = 1 << 18
INTR_PF = 14

# mov al, [rbx] / mov [rbx], al: the same bytes in 32- and 64-bit mode (ebx/rbx).
LOAD = b"\x8a\x03"
STORE = b"\x88\x03"


class Unsupported(Exception):
    """This independent MMU cannot run this configuration (the message says why)."""


class Ambiguous(Exception):
    """The translation hit memory Unicorn has mapped, so its physical address is unseen."""


def available() -> str | None:
    """None when Unicorn is importable, else why not."""
    if _uc is None:
        return "the optional 'unicorn' package is not installed (pip install unicorn)"
    return None


@dataclass(frozen=True)
class Probe:
    """What the emulated CPU does with one virtual address."""

    pa: int | None
    """Physical address a load reaches; None when the load faults."""
    writable: bool | None
    """A store does not fault (None when the load faults)."""
    executable: bool | None
    """A jump there does not fault (None when the load faults)."""
    user: bool | None
    """A supervisor load faults under SMAP (None when the load faults)."""
    fault: int | None = None
    """The exception vector of a faulting load (14 #PF, 13 #GP)."""


@dataclass(frozen=True)
class _Mode:
    levels: int
    entry: int  # bytes per entry
    top_entries: int
    root_mask: int  # CR3 bits that hold the root table's address
    addr_mask: int  # entry bits that hold the next table's address
    word_bits: int
    ps_levels: frozenset[int]  # levels (0 = top) whose entries may be leaves (PS)


_MODES = {
    4: _Mode(4, 8, 512, ((1 << 52) - 1) & ~0xFFF, ((1 << 52) - 1) & ~0xFFF, 64,
             frozenset({1, 2})),
    5: _Mode(5, 8, 512, ((1 << 52) - 1) & ~0xFFF, ((1 << 52) - 1) & ~0xFFF, 64,
             frozenset({2, 3})),
    2: _Mode(2, 4, 1024, 0xFFFFF000, 0xFFFFF000, 32, frozenset({0})),
    3: _Mode(3, 8, 4, 0xFFFFFFE0, ((1 << 52) - 1) & ~0xFFF, 32, frozenset({1})),
}


def _mode_of(regs: dict[str, int]) -> _Mode:
    cr4, efer = regs["cr4"], regs["efer"]
    if efer & (1 << 10):  # LMA
        return _MODES[5 if cr4 & CR4_LA57 else 4]
    return _MODES[3 if cr4 & (1 << 5) else 2]


class UnicornX86Mmu:
    """Unicorn's x86 CPU loaded with one export (``machine.json`` dict + ``phys.bin``)."""

    PAGE = 0x1000

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None:
            raise Unsupported(why)
        arch = machine["arch"]
        if not arch.startswith(("x86", "i386")):
            raise Unsupported(f"{arch}: Unicorn 2.1.4's AArch64 MMU faults on every walk that "
                              "starts at level 0 (48-bit VA), so only x86 is wired up")
        regs = machine["registers"]
        self.mode = m = _mode_of(regs)
        self.arch = arch
        uc: Any = _uc.Uc(_uc.UC_ARCH_X86, _uc.UC_MODE_64 if m.word_bits == 64 else _uc.UC_MODE_32)
        # A model with SMAP and NX; TCG ignores what it cannot do, checked below.
        uc.ctl_set_cpu_model(_x86.UC_CPU_X86_ICELAKE_SERVER)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        self.uc = uc
        fs = machine["frame_size"]
        frames: list[int] = machine["frames"]
        if len(phys) != fs * len(frames) or fs % self.PAGE:
            raise ValueError("phys.bin does not match machine.json")
        for lo, hi in _merge((pa, pa + fs) for pa in frames):
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * fs:(i + 1) * fs])
        self._ram = _merge((pa, pa + fs) for pa in frames)
        busy = self._ram + [(r["pa"], r["pa"] + r["size"]) for r in machine["mappings"]]
        self.harness_span = self._install_harness(regs["cr3"] & m.root_mask, _merge(busy))
        uc.msr_write(IA32_EFER, regs["efer"])
        uc.reg_write(_x86.UC_X86_REG_CR4, regs["cr4"] | CR4_SMAP)
        uc.reg_write(_x86.UC_X86_REG_CR3, regs["cr3"])
        uc.reg_write(_x86.UC_X86_REG_CR0, regs["cr0"])
        got = (uc.reg_read(_x86.UC_X86_REG_CR0), uc.reg_read(_x86.UC_X86_REG_CR4),
               uc.msr_read(IA32_EFER))
        want = (regs["cr0"], regs["cr4"] | CR4_SMAP, regs["efer"])
        if got != want:
            raise Unsupported(f"{arch}: the emulated CPU refused the control registers: "
                              f"cr0/cr4/efer {tuple(map(hex, got))}, wanted "
                              f"{tuple(map(hex, want))}")
        self._events: list[tuple[str, int]] = []
        uc.hook_add(_uc.UC_HOOK_INTR, self._on_intr)
        uc.hook_add(_uc.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self._ctx = uc.context_save()
        self._check_harness()

    # -- the harness page --------------------------------------------------------------

    def _install_harness(self, root: int, busy: list[tuple[int, int]]) -> tuple[int, int]:
        """Map one code page under a non-present entry; return the entry's VA span."""
        m, uc = self.mode, self.uc
        found = self._free_entry(root, 0, 0)
        if found is None:
            raise Unsupported(f"{self.arch}: no non-present entry to hang the probe code on")
        entry_pa, level, va = found
        tables = m.levels - 1 - level  # tables below the free entry
        need = (tables + 1) * self.PAGE
        base = self._free_phys(need, busy)
        uc.mem_map(base, need)
        self.code_pa = base + tables * self.PAGE
        flags = 0x3  # present, writable, supervisor
        cur = entry_pa
        for i in range(tables):
            t = base + i * self.PAGE
            # PAE PDPTEs have no R/W or U/S bits (they are reserved there).
            pdpte = m.levels == 3 and level == 0 and i == 0
            self._write_entry(cur, t | (0x1 if pdpte else flags))
            cur = t  # index 0 of every new table: va has zero bits below the free entry
        self._write_entry(cur, self.code_pa | 0x1)  # present, read-only, supervisor
        uc.mem_write(self.code_pa, LOAD + STORE + b"\x90")
        self.code_va = va
        span = 1 << (12 + (m.levels - 1 - level) * (10 if m.entry == 4 else 9))
        return va, va + span

    def _free_entry(self, table: int, level: int, va: int) -> tuple[int, int, int] | None:
        m = self.mode
        n = m.top_entries if level == 0 else self.PAGE // m.entry
        shift = 12 + (m.levels - 1 - level) * (10 if m.entry == 4 else 9)
        order = list(range(1, n)) + [0]  # leave VA 0 alone if possible
        present: list[tuple[int, int]] = []
        for i in order:
            e = self._read_entry(table + i * m.entry)
            v = _canonical(va | i << shift, m)
            if v is None:
                continue
            if not e & 1:
                return table + i * m.entry, level, v
            leaf = level == m.levels - 1 or (level in m.ps_levels and e & 0x80)
            if not leaf and not e >> 63:  # skip NX paths: the code must be executable
                present.append((i, e))
        if level + 1 >= m.levels:
            return None
        for i, e in present:
            child = e & m.addr_mask
            if self._is_ram(child):
                hit = self._free_entry(child, level + 1, _canonical(va | i << shift, m) or 0)
                if hit is not None:
                    return hit
        return None

    def _free_phys(self, size: int, busy: list[tuple[int, int]]) -> int:
        step = 0x200000
        base = step
        limit = 1 << 32
        while base + size <= limit:
            if all(base + size <= lo or hi <= base for lo, hi in busy):
                return base
            base += step
        raise Unsupported(f"{self.arch}: no free physical memory below 4G for the harness")

    def _is_ram(self, pa: int) -> bool:
        return any(lo <= pa < hi for lo, hi in self._ram)

    def _read_entry(self, pa: int) -> int:
        fmt = "<I" if self.mode.entry == 4 else "<Q"
        return int(struct.unpack(fmt, self.uc.mem_read(pa, self.mode.entry))[0])

    def _write_entry(self, pa: int, value: int) -> None:
        self.uc.mem_write(pa, struct.pack("<I" if self.mode.entry == 4 else "<Q", value))

    def _check_harness(self) -> None:
        """The code page itself must load (from our own RAM: no PA report) without faults."""
        ev = self._run(self.code_va, self.code_va, self.code_va + len(LOAD), ac=True)
        if ev:
            raise Unsupported(f"{self.arch}: the probe code does not run: {ev}")

    # -- probing ---------------------------------------------------------------------------

    def _on_intr(self, uc: Any, intno: int, _ud: Any) -> None:
        self._events.append(("intr", intno))
        uc.emu_stop()

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     _ud: Any) -> bool:
        self._events.append(("pa", address))
        return False

    def _run(self, va: int, start: int, end: int, ac: bool) -> list[tuple[str, int]]:
        uc = self.uc
        self._events = []
        uc.context_restore(self._ctx)
        uc.reg_write(_x86.UC_X86_REG_RBX if self.mode.word_bits == 64 else _x86.UC_X86_REG_EBX,
                     va)
        uc.reg_write(_x86.UC_X86_REG_EFLAGS, 0x2 | (EFLAGS_AC if ac else 0))
        try:
            uc.emu_start(start, end)
        except _uc.UcError:
            pass  # the unmapped-memory stop; the hook has recorded it
        return self._events

    def _access(self, va: int, kind: str, ac: bool = True) -> tuple[int | None, int | None]:
        """(pa, None) when the access translates, (None, vector) when it faults."""
        if kind == "x":
            ev = self._run(va, va, va + 1, ac)
        else:
            off = 0 if kind == "r" else len(LOAD)
            ev = self._run(va, self.code_va + off, self.code_va + off + 2, ac)
        if not ev:
            raise Ambiguous(f"{va:#x}: the {kind} access hit mapped memory")
        what, n = ev[0]
        return (n, None) if what == "pa" else (None, n)

    def probe(self, va: int) -> Probe:
        lo, hi = self.harness_span
        if lo <= va < hi:
            raise ValueError(f"{va:#x} is inside the harness span [{lo:#x}, {hi:#x})")
        pa, vec = self._access(va, "r")
        if pa is None:
            return Probe(None, None, None, None, vec)
        wpa, _ = self._access(va, "w")
        xpa, _ = self._access(va, "x")
        spa, _ = self._access(va, "r", ac=False)
        for other in (wpa, xpa, spa):
            if other is not None and other != pa:
                raise AssertionError(f"{va:#x}: accesses reach different PAs {pa:#x}, "
                                     f"{other:#x}")
        return Probe(pa, wpa is not None, xpa is not None, spa is None)


def _canonical(va: int, m: _Mode) -> int | None:
    if m.word_bits == 32:
        return va if va < 1 << 32 else None
    bits = 12 + m.levels * 9
    if va >> (bits - 1):
        return va | ((1 << 64) - (1 << bits))
    return va


def _merge(ranges: Any) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def load(machine: dict[str, Any], phys: bytes) -> UnicornX86Mmu:
    """The independent MMU for this export; :class:`Unsupported` says when there is none."""
    return UnicornX86Mmu(machine, phys)
